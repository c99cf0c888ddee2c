//! Helpers of the recording tests: the real GStreamer RTSP server, simulated cameras, waiting
//! for a camera's recording state, reading a live stream for a while, time formatting, and
//! checking a stopped (or killed) daemon's store against its index offline.

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use vigil_core::id::GbId;
use vigil_core::time::Timestamp;
use vigil_index::{Index, SegmentRecord};
use vigil_store::scan;

use super::Client;

/// The configuration of a daemon that records quickly: segments of `segment_secs`, 1 s
/// fragments, short watchdogs and reconnect delays, 2 s access tests.
pub fn fast_recording(segment_secs: u64) -> String {
    format!(
        "[recording]\n\
         enabled = true\n\
         segment_secs = {segment_secs}\n\
         max_fragment_ms = 1000\n\
         reconcile_secs = 5\n\
         live_wait_secs = 10\n\
         [recording.rtsp]\n\
         stall_timeout_secs = 2\n\
         key_frame_timeout_secs = 2\n\
         backoff_min_ms = 200\n\
         backoff_max_secs = 2\n\
         [recording.access_test]\n\
         seconds = 2\n"
    )
}

/// The wall clock in milliseconds.
pub fn now_ms() -> i64 {
    Timestamp::from_system_time(std::time::SystemTime::now()).as_millis()
}

/// An RFC 3339 text as milliseconds.
pub fn ms(text: &str) -> i64 {
    Timestamp::parse_rfc3339(text)
        .unwrap_or_else(|e| panic!("{text:?} is not RFC 3339: {e}"))
        .as_millis()
}

/// Milliseconds as RFC 3339 text (for query strings).
pub fn rfc3339(ms: i64) -> String {
    Timestamp::from_millis(ms).to_string()
}

/// Polls `check` every 100 ms until it returns `Ok`, or panics after `limit` naming `what`
/// and the last `Err` (what it saw).
pub fn wait_for<T>(what: &str, limit: Duration, mut check: impl FnMut() -> Result<T, String>) -> T {
    let deadline = Instant::now() + limit;
    loop {
        match check() {
            Ok(v) => return v,
            Err(last) if Instant::now() > deadline => {
                panic!("{what}: not within {limit:?}; last seen: {last}")
            }
            Err(_) => std::thread::sleep(Duration::from_millis(100)),
        }
    }
}

/// `GET /cameras/{id}/recorder`.
pub fn recorder(api: &Client, camera: &str) -> serde_json::Value {
    api.get(&format!("/api/v1/cameras/{camera}/recorder"))
        .expect(200)
        .json()
}

/// Waits until the camera records and its last durable fragment ends at least `seconds`
/// after its recording started; returns the recorder state.
pub fn wait_recording(api: &Client, camera: &str, seconds: f64) -> serde_json::Value {
    wait_for(
        &format!("camera {camera} recording {seconds} s"),
        Duration::from_secs(40),
        || {
            let s = recorder(api, camera);
            let recorded = s["recorder"]["committed_end"]
                .as_str()
                .zip(s["recorder"]["since"].as_str())
                .map(|(end, since)| (ms(end) - ms(since)) as f64 / 1000.0);
            match (s["state"].as_str(), recorded) {
                (Some("recording"), Some(r)) if r >= seconds => Ok(s),
                _ => Err(s.to_string()),
            }
        },
    )
}

/// `GET path` read as a stream: the status, the headers, and the body up to `max` bytes or
/// until `limit` passes (a live stream never ends by itself).
pub fn read_stream(
    client: &Client,
    path: &str,
    max: usize,
    limit: Duration,
) -> (u16, Vec<(String, String)>, Vec<u8>) {
    let host = client.base.trim_start_matches("http://");
    let mut stream = TcpStream::connect(host).expect("connecting to vigil");
    stream
        .set_read_timeout(Some(Duration::from_millis(500)))
        .expect("timeout");
    let auth = client
        .token
        .as_ref()
        .map_or(String::new(), |t| format!("Authorization: Bearer {t}\r\n"));
    write!(
        stream,
        "GET {path} HTTP/1.1\r\nHost: {host}\r\n{auth}Connection: close\r\n\r\n"
    )
    .expect("sending the request");
    let deadline = Instant::now() + limit;
    let mut raw = Vec::new();
    let mut buf = [0u8; 64 << 10];
    let mut decoded: Option<PartialResponse> = None;
    while Instant::now() < deadline {
        match stream.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => raw.extend_from_slice(&buf[..n]),
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ) => {}
            Err(e) => panic!("reading {path}: {e}"),
        }
        decoded = decode_response(&raw);
        if decoded
            .as_ref()
            .is_some_and(|(_, _, body)| body.len() >= max)
        {
            break;
        }
    }
    decoded.unwrap_or_else(|| panic!("no HTTP answer to {path} within {limit:?}"))
}

/// Status, lower-cased headers and the body received so far.
type PartialResponse = (u16, Vec<(String, String)>, Vec<u8>);

/// Parses what arrived of a response (the body de-chunked as far as it is complete).
fn decode_response(raw: &[u8]) -> Option<PartialResponse> {
    let end = raw.windows(4).position(|w| w == b"\r\n\r\n")?;
    let head = String::from_utf8_lossy(&raw[..end]);
    let mut lines = head.split("\r\n");
    let status = lines.next()?.split_whitespace().nth(1)?.parse().ok()?;
    let headers: Vec<(String, String)> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_owned()))
        .collect();
    let mut rest = &raw[end + 4..];
    let chunked = headers
        .iter()
        .any(|(k, v)| k == "transfer-encoding" && v.eq_ignore_ascii_case("chunked"));
    if !chunked {
        return Some((status, headers, rest.to_vec()));
    }
    let mut body = Vec::new();
    while let Some(eol) = rest.windows(2).position(|w| w == b"\r\n") {
        let size = std::str::from_utf8(&rest[..eol])
            .ok()
            .and_then(|s| usize::from_str_radix(s.trim(), 16).ok())?;
        if size == 0 || rest.len() < eol + 2 + size {
            break;
        }
        body.extend_from_slice(&rest[eol + 2..eol + 2 + size]);
        rest = &rest[(eol + 4 + size).min(rest.len())..];
    }
    Some((status, headers, body))
}

/// A segment file on disk: camera, path relative to the camera directory, size.
pub type SegmentFile = (GbId, String, u64);

/// Every segment file under the store root.
pub fn segment_files(root: &Path) -> Vec<SegmentFile> {
    let mut out = Vec::new();
    let Ok(cameras) = std::fs::read_dir(root) else {
        return out;
    };
    for cam in cameras.flatten() {
        let Ok(id) = GbId::parse(&cam.file_name().to_string_lossy()) else {
            continue;
        };
        for day in std::fs::read_dir(cam.path())
            .into_iter()
            .flatten()
            .flatten()
        {
            for f in std::fs::read_dir(day.path())
                .into_iter()
                .flatten()
                .flatten()
            {
                let name = f.file_name().to_string_lossy().into_owned();
                if !name.ends_with(".mp4") {
                    continue;
                }
                let rel = format!("{}/{name}", day.file_name().to_string_lossy());
                let size = f.metadata().map(|m| m.len()).unwrap_or(0);
                out.push((id, rel, size));
            }
        }
    }
    out.sort();
    out
}

/// The catalogue in the index at `index_dir` (the daemon must not run), by camera and file.
pub fn catalogue(index_dir: &Path) -> BTreeMap<(GbId, String), SegmentRecord> {
    let index = Index::open(index_dir)
        .unwrap_or_else(|e| panic!("opening the index {}: {e}", index_dir.display()));
    let mut out = BTreeMap::new();
    for camera in index.recorded_cameras().expect("recorded cameras") {
        for seg in index
            .segments(&camera, i64::MIN, i64::MAX, usize::MAX)
            .expect("segments")
        {
            out.insert((camera, seg.file.clone()), seg);
        }
    }
    out
}

/// Checks that the first `len` bytes of a segment file are complete fragments whose every
/// checksum matches; returns the number of fragments.
pub fn verify_segment(root: &Path, camera: &GbId, rel: &str, len: u64) -> usize {
    let path: PathBuf = root.join(camera.as_str()).join(rel);
    let file = std::fs::File::open(&path)
        .unwrap_or_else(|e| panic!("indexed segment {} is missing: {e}", path.display()));
    let size = file.metadata().map(|m| m.len()).unwrap_or(0);
    assert!(
        size >= len,
        "{}: {size} bytes on disk, {len} indexed",
        path.display()
    );
    let s = scan::scan(&file, len, 0).unwrap_or_else(|e| panic!("reading {}: {e}", path.display()));
    assert_eq!(s.problem, None, "{}", path.display());
    assert_eq!(s.valid_end, len, "{}", path.display());
    s.fragments.len()
}
