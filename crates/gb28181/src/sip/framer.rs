//! SIP over TCP: frames messages by `Content-Length` across arbitrary chunking.
//!
//! A stream has no datagram boundaries, so the body length must come from `Content-Length`
//! (RFC 3261 18.3). The framer reads exactly that many bytes — the Hikvision NVR `+1` trait
//! (see [`crate::quirks::Quirk::ShortBodyUdp`]) is *not* compensated here, because on a stream
//! the device really sends the announced bytes. When the stream holds bytes that cannot start a
//! message (a peer bug, a desynchronised length, binary junk), the framer reports how many
//! bytes it skipped and resynchronises on the next line that parses as a SIP start line.
//! Double-CRLF keep-alive pings (RFC 5626 4.4.1) are surfaced so the caller can answer them.

use bytes::{Buf, Bytes, BytesMut};
use thiserror::Error;

use super::error::SipError;
use super::message::Message;
use super::parse::{
    content_length, find_header_end, leading_line_ends, parse_head, parse_message,
    parse_start_line, BodyFraming, ParseLimits,
};
use crate::quirks::Quirk;

/// Longest start line we wait for before declaring the bytes garbage.
const MAX_START_LINE: usize = 8 * 1024;

/// One unit taken off the stream.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Frame {
    /// A complete SIP message.
    Message(Message),
    /// A CRLFCRLF keep-alive ping; RFC 5626 expects a single CRLF ("pong") in answer.
    Ping,
}

/// A problem on the stream. The framer has already skipped the offending bytes; keep calling
/// [`StreamFramer::next_frame`].
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum FrameError {
    /// Bytes that cannot start a SIP message were discarded.
    #[error("skipped {skipped} bytes that do not start a SIP message")]
    Garbage {
        /// Bytes discarded.
        skipped: usize,
    },
    /// A message whose head did not parse was discarded.
    #[error("discarded a {skipped}-byte message: {error}")]
    Malformed {
        /// Why it did not parse.
        error: SipError,
        /// Bytes discarded.
        skipped: usize,
    },
    /// A header block longer than the limit; its first line was discarded.
    #[error("header block exceeds {limit} bytes")]
    HeadersTooLarge {
        /// The limit.
        limit: usize,
    },
}

#[derive(Debug, Clone, Copy)]
struct Pending {
    total: usize,
    missing_length: bool,
}

/// Per-connection framer. Feed bytes with [`push`](Self::push) and drain with
/// [`next_frame`](Self::next_frame) until it returns `None`.
#[derive(Debug, Default)]
pub struct StreamFramer {
    buf: BytesMut,
    limits: ParseLimits,
    pending: Option<Pending>,
    /// Dropping a line that cannot be a start line, up to its LF.
    discarding: bool,
}

impl StreamFramer {
    /// A framer with default limits.
    pub fn new() -> Self {
        Self::with_limits(ParseLimits::default())
    }

    /// A framer with explicit limits.
    pub fn with_limits(limits: ParseLimits) -> Self {
        StreamFramer {
            buf: BytesMut::new(),
            limits,
            pending: None,
            discarding: false,
        }
    }

    /// Appends received bytes.
    pub fn push(&mut self, data: &[u8]) {
        self.buf.extend_from_slice(data);
    }

    /// Bytes buffered but not yet framed.
    pub fn buffered(&self) -> usize {
        self.buf.len()
    }

    /// The next frame, an error describing skipped bytes, or `None` when more bytes are needed.
    pub fn next_frame(&mut self) -> Option<Result<Frame, FrameError>> {
        loop {
            if let Some(p) = self.pending {
                if self.buf.len() < p.total {
                    return None;
                }
                self.pending = None;
                let frame = self.buf.split_to(p.total).freeze();
                return Some(
                    match parse_message(frame, BodyFraming::Framed, &self.limits) {
                        Ok(mut m) => {
                            if p.missing_length {
                                m.quirks.insert(Quirk::MissingContentLengthStream);
                            }
                            Ok(Frame::Message(m))
                        }
                        Err(error) => Err(FrameError::Malformed {
                            error,
                            skipped: p.total,
                        }),
                    },
                );
            }

            if self.discarding {
                let skipped = match self.buf.iter().position(|&b| b == b'\n') {
                    Some(lf) => {
                        self.discarding = false;
                        lf + 1
                    }
                    None => self.buf.len(),
                };
                if skipped == 0 {
                    return None;
                }
                self.buf.advance(skipped);
                return Some(Err(FrameError::Garbage { skipped }));
            }

            // Line ends between messages: a CRLFCRLF ping, or stray line ends to drop.
            let n = leading_line_ends(&self.buf);
            if n > 0 {
                if self.buf.starts_with(b"\r\n\r\n") {
                    self.buf.advance(4);
                    return Some(Ok(Frame::Ping));
                }
                if n == self.buf.len() && n < 4 {
                    return None; // maybe the start of a ping
                }
                self.buf.advance(n);
                continue;
            }
            if self.buf.is_empty() {
                return None;
            }

            // The first line must be a start line.
            match self.buf.iter().position(|&b| b == b'\n') {
                None => {
                    if self.buf.len() > MAX_START_LINE || !could_start_message(&self.buf) {
                        // The line can no longer become a start line: drop it through its
                        // line end, however many pushes that takes.
                        self.discarding = true;
                        continue;
                    }
                    return None;
                }
                Some(lf) => {
                    if lf > MAX_START_LINE || parse_start_line(&self.buf[..lf]).is_err() {
                        return Some(Err(self.resync()));
                    }
                }
            }

            let Some(head_len) = find_header_end(&self.buf) else {
                if self.buf.len() > self.limits.max_header_bytes {
                    self.resync();
                    return Some(Err(FrameError::HeadersTooLarge {
                        limit: self.limits.max_header_bytes,
                    }));
                }
                return None;
            };
            if head_len > self.limits.max_header_bytes {
                self.resync();
                return Some(Err(FrameError::HeadersTooLarge {
                    limit: self.limits.max_header_bytes,
                }));
            }
            let head_bytes = Bytes::copy_from_slice(&self.buf[..head_len]);
            let length = parse_head(&head_bytes, &self.limits).and_then(|h| {
                let cl = content_length(&h.headers)?;
                match cl {
                    Some(n) if n > self.limits.max_body_bytes => Err(SipError::BodyTooLarge {
                        len: n,
                        limit: self.limits.max_body_bytes,
                    }),
                    _ => Ok(cl),
                }
            });
            match length {
                Ok(cl) => {
                    self.pending = Some(Pending {
                        total: head_len + cl.unwrap_or(0),
                        missing_length: cl.is_none(),
                    });
                }
                Err(error) => {
                    // Drop the head; a body that follows will be skipped as garbage.
                    self.buf.advance(head_len);
                    return Some(Err(FrameError::Malformed {
                        error,
                        skipped: head_len,
                    }));
                }
            }
        }
    }

    /// Drops bytes up to the next line that begins like a SIP start line.
    fn resync(&mut self) -> FrameError {
        let buf = &self.buf[..];
        let mut cut = None;
        let mut i = 0;
        while let Some(off) = buf[i..].iter().position(|&b| b == b'\n') {
            let cand = i + off + 1;
            let rest = &buf[cand..];
            let line_end = rest.iter().position(|&b| b == b'\n');
            let plausible = match line_end {
                Some(e) => e <= MAX_START_LINE && parse_start_line(&rest[..e]).is_ok(),
                None => {
                    !rest.is_empty() && rest.len() <= MAX_START_LINE && could_start_message(rest)
                }
            };
            if plausible {
                cut = Some(cand);
                break;
            }
            i = cand;
        }
        // Without a plausible line, keep only an unterminated tail that might still become one.
        let skipped = cut.unwrap_or_else(|| {
            let last_lf = buf.iter().rposition(|&b| b == b'\n').map_or(0, |p| p + 1);
            if last_lf == 0 || !could_start_message(&buf[last_lf..]) {
                buf.len()
            } else {
                last_lf
            }
        });
        let skipped = skipped.max(1).min(self.buf.len());
        self.buf.advance(skipped);
        FrameError::Garbage { skipped }
    }
}

/// Whether an unterminated first line could still become a start line.
fn could_start_message(partial: &[u8]) -> bool {
    // Mirror `parse_start_line`: leading whitespace is trimmed, tokens are separated by
    // spaces or tabs. A `false` here must mean no completion of the line can parse, so that
    // rejecting a partial line early gives the same result as rejecting the whole line.
    let start = partial
        .iter()
        .position(|b| !b.is_ascii_whitespace())
        .unwrap_or(partial.len());
    let p = &partial[start..];
    const VERSION: &[u8] = b"SIP/2.0 ";
    let n = p.len().min(VERSION.len());
    if p[..n].eq_ignore_ascii_case(&VERSION[..n]) {
        return true;
    }
    match p.iter().position(|&b| b == b' ' || b == b'\t') {
        None => p
            .iter()
            .all(|&b| super::method::is_token_byte(b) || b == b'\r'),
        Some(sp) => p[..sp].iter().all(|&b| super::method::is_token_byte(b)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testdata::vector;

    fn drain(f: &mut StreamFramer) -> Vec<Result<Frame, FrameError>> {
        std::iter::from_fn(|| f.next_frame()).collect()
    }

    fn messages(v: &[Result<Frame, FrameError>]) -> Vec<&Message> {
        v.iter()
            .filter_map(|r| match r {
                Ok(Frame::Message(m)) => Some(m),
                _ => None,
            })
            .collect()
    }

    #[test]
    fn frames_real_messages_across_every_chunking() {
        let stream: Vec<u8> = [
            vector("05_dahua_keepalive.sip"),
            vector("09_dahua_catalog_response.sip"),
            vector("22_dahua_invite_200ok_sdp.sip"),
        ]
        .concat();
        for chunk in [1usize, 2, 3, 7, 64, 500, stream.len()] {
            let mut f = StreamFramer::new();
            let mut got = Vec::new();
            for c in stream.chunks(chunk) {
                f.push(c);
                got.extend(drain(&mut f));
            }
            let ms = messages(&got);
            assert_eq!(ms.len(), 3, "chunk {chunk}: {got:?}");
            assert_eq!(ms[0].body.len(), 180);
            assert_eq!(ms[1].body.len(), 898);
            assert_eq!(ms[2].body.len(), 224);
            assert_eq!(got.len(), 3);
            assert_eq!(f.buffered(), 0);
        }
    }

    #[test]
    fn hikvision_plus_one_reads_exactly_content_length_on_tcp() {
        // On a stream, vector 70 with its original Content-Length 909 means the NVR sent one
        // more byte (here a NUL); the framer takes it and the next message stays aligned.
        let text =
            std::str::from_utf8(vector("70_hik_nvr_catalog_response_sumnum8_num2.sip")).unwrap();
        let mut wire = text
            .replace("Content-Length:   908", "Content-Length:   909")
            .into_bytes();
        wire.push(0);
        wire.extend_from_slice(vector("05_dahua_keepalive.sip"));
        let mut f = StreamFramer::new();
        f.push(&wire);
        let got = drain(&mut f);
        let ms = messages(&got);
        assert_eq!(ms.len(), 2, "{got:?}");
        assert_eq!(ms[0].body.len(), 909);
        assert_eq!(ms[0].body.last(), Some(&0));
        assert_eq!(ms[1].cseq().unwrap().seq, 20);
    }

    #[test]
    fn recovers_from_garbage_and_reports_it() {
        let mut wire = b"\x16\x03\x01junk without newline then\nmore junk\r\n".to_vec();
        wire.extend_from_slice(vector("05_dahua_keepalive.sip"));
        wire.extend_from_slice(b"GARBAGE LINE HERE\r\n");
        wire.extend_from_slice(vector("06_server_keepalive_200ok.sip"));
        let mut f = StreamFramer::new();
        f.push(&wire);
        let got = drain(&mut f);
        let skipped: usize = got
            .iter()
            .filter_map(|r| match r {
                Err(FrameError::Garbage { skipped }) => Some(*skipped),
                _ => None,
            })
            .sum();
        assert_eq!(skipped, 40 + 19, "{got:?}");
        let ms = messages(&got);
        assert_eq!(ms.len(), 2);
        assert_eq!(ms[1].status(), Some(200));
    }

    #[test]
    fn ping_and_stray_line_ends() {
        let mut f = StreamFramer::new();
        f.push(b"\r\n");
        assert_eq!(f.next_frame(), None);
        f.push(b"\r\n");
        assert_eq!(f.next_frame(), Some(Ok(Frame::Ping)));
        f.push(b"\r\n");
        f.push(vector("06_server_keepalive_200ok.sip"));
        assert!(matches!(f.next_frame(), Some(Ok(Frame::Message(_)))));
        assert_eq!(f.next_frame(), None);
    }

    #[test]
    fn quirk_missing_content_length_stream() {
        let text = std::str::from_utf8(vector("06_server_keepalive_200ok.sip")).unwrap();
        let wire = text.replace("Content-Length: 0\r\n", "");
        let mut f = StreamFramer::new();
        f.push(wire.as_bytes());
        match f.next_frame() {
            Some(Ok(Frame::Message(m))) => {
                assert!(m.quirks.contains(Quirk::MissingContentLengthStream))
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn oversized_bodies_are_skipped() {
        let limits = ParseLimits {
            max_headers: 256,
            max_header_bytes: 420,
            max_body_bytes: 100,
        };
        let mut f = StreamFramer::with_limits(limits);
        f.push(vector("09_dahua_catalog_response.sip")); // 413-byte head, 898-byte body > 100
        f.push(b"SIP/2.0 200 OK\r\nContent-Length: 0\r\n\r\n");
        let got = drain(&mut f);
        assert!(
            matches!(
                &got[0],
                Err(FrameError::Malformed {
                    error: SipError::BodyTooLarge {
                        len: 898,
                        limit: 100
                    },
                    skipped: 413
                })
            ),
            "{got:?}"
        );
        // The body that followed is skipped as garbage, then framing resumes.
        assert!(
            matches!(&got[1], Err(FrameError::Garbage { skipped: 898 })),
            "{got:?}"
        );
        assert_eq!(messages(&got).last().and_then(|m| m.status()), Some(200));
    }

    #[test]
    fn oversized_heads_are_skipped() {
        let limits = ParseLimits {
            max_headers: 256,
            max_header_bytes: 200,
            max_body_bytes: 100,
        };
        let mut f = StreamFramer::with_limits(limits);
        f.push(vector("06_server_keepalive_200ok.sip")); // 318-byte head > 200
        f.push(b"SIP/2.0 200 OK\r\nContent-Length: 0\r\n\r\n");
        let got = drain(&mut f);
        assert!(
            matches!(&got[0], Err(FrameError::HeadersTooLarge { limit: 200 })),
            "{got:?}"
        );
        assert_eq!(got.len(), 2, "{got:?}");
        assert_eq!(messages(&got)[0].status(), Some(200));
    }
}
