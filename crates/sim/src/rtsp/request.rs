//! Just enough RTSP/1.0 request parsing for the simulator: request line, headers, and the body
//! length. Clients are our own puller, retina, ffmpeg and GStreamer; anything else gets a 400.

/// One parsed request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Request {
    pub method: String,
    pub uri: String,
    headers: Vec<(String, String)>,
}

impl Request {
    /// The value of the first header called `name` (case-insensitive).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    pub fn cseq(&self) -> &str {
        self.header("CSeq").unwrap_or("0")
    }

    /// The path of the request URI (`rtsp://host:port/path?q` → `/path`), without a trailing
    /// track control suffix.
    pub fn path(&self) -> &str {
        let after_scheme = self
            .uri
            .split_once("://")
            .map_or(self.uri.as_str(), |(_, r)| r);
        let path = after_scheme.find('/').map_or("/", |i| &after_scheme[i..]);
        path.split('?').next().unwrap_or(path)
    }
}

/// Why a request could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RequestError {
    #[error("malformed RTSP request line {0:?}")]
    RequestLine(String),
    #[error("malformed RTSP header line {0:?}")]
    Header(String),
    #[error("RTSP request head larger than {0} bytes")]
    TooLarge(usize),
}

const MAX_HEAD: usize = 16 * 1024;

/// Tries to take one request off the front of `buf`. Returns the request and how many bytes it
/// used (head and body), or `None` when more bytes are needed.
pub fn parse(buf: &[u8]) -> Result<Option<(Request, usize)>, RequestError> {
    let Some(head_end) = find(buf, b"\r\n\r\n") else {
        return if buf.len() > MAX_HEAD {
            Err(RequestError::TooLarge(MAX_HEAD))
        } else {
            Ok(None)
        };
    };
    let head = String::from_utf8_lossy(&buf[..head_end]);
    let mut lines = head.split("\r\n");
    let request_line = lines.next().unwrap_or_default();
    let mut parts = request_line.split(' ');
    let (Some(method), Some(uri), Some(version)) = (parts.next(), parts.next(), parts.next())
    else {
        return Err(RequestError::RequestLine(request_line.to_owned()));
    };
    if !version.starts_with("RTSP/") || method.is_empty() {
        return Err(RequestError::RequestLine(request_line.to_owned()));
    }
    let mut headers = Vec::new();
    for line in lines {
        let (name, value) = line
            .split_once(':')
            .ok_or_else(|| RequestError::Header(line.to_owned()))?;
        headers.push((name.trim().to_owned(), value.trim().to_owned()));
    }
    let request = Request {
        method: method.to_owned(),
        uri: uri.to_owned(),
        headers,
    };
    let body_len: usize = request
        .header("Content-Length")
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    let total = head_end + 4 + body_len;
    if buf.len() < total {
        return Ok(None);
    }
    Ok(Some((request, total)))
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_a_describe_and_reports_its_length() {
        let raw = b"DESCRIBE rtsp://127.0.0.1:8554/cam/3 RTSP/1.0\r\nCSeq: 2\r\nAccept: application/sdp\r\n\r\nrest";
        let (request, used) = parse(raw).unwrap().unwrap();
        assert_eq!(request.method, "DESCRIBE");
        assert_eq!(request.path(), "/cam/3");
        assert_eq!(request.cseq(), "2");
        assert_eq!(request.header("accept"), Some("application/sdp"));
        assert_eq!(&raw[used..], b"rest");
    }

    #[test]
    fn waits_for_the_whole_head_and_body() {
        assert_eq!(parse(b"OPTIONS * RTSP/1.0\r\nCSeq: 1\r\n").unwrap(), None);
        let raw = b"SET_PARAMETER rtsp://h/p RTSP/1.0\r\nCSeq: 3\r\nContent-Length: 4\r\n\r\nab";
        assert_eq!(parse(raw).unwrap(), None);
    }

    #[test]
    fn rejects_garbage() {
        assert!(parse(b"HELLO\r\n\r\n").is_err());
        assert!(parse(b"GET / HTTP/1.1\r\n\r\n").is_err());
        assert!(parse(&vec![b'a'; MAX_HEAD + 1]).is_err());
    }
}
