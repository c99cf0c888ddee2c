//! Shared helpers of the end-to-end tests: a data directory with a configuration, the real
//! `vigil` binary (CLI commands and the daemon), and a minimal HTTP/1.1 client.
//!
//! Each test binary uses a subset of these helpers.
#![allow(dead_code)]

use std::io::{BufRead, BufReader, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Output, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

pub mod dataset;
pub mod gst_server;
pub mod mount;
pub mod video;

/// The binary under test.
pub fn vigil_bin() -> &'static str {
    env!("CARGO_BIN_EXE_vigil")
}

/// A data directory with a configuration file, deleted at the end of the test.
pub struct Env {
    pub dir: tempfile::TempDir,
    pub config: PathBuf,
}

impl Env {
    /// A fresh data directory; `extra` is appended to the configuration (TOML). Recording is
    /// off unless `extra` has a `[recording]` section: the datasets file cameras at addresses
    /// that tests must not contact.
    pub fn new(extra: &str) -> Env {
        let dir = tempfile::Builder::new()
            .prefix("vigil-e2e-")
            .tempdir()
            .expect("temporary directory");
        let config = dir.path().join("vigil.toml");
        let data = dir.path().join("data");
        let recording = if extra.contains("[recording") {
            ""
        } else {
            "[recording]\nenabled = false\n\n"
        };
        let text = format!(
            "[data]\ndir = {:?}\n\n[log]\nfilter = \"info\"\n\n{recording}{extra}\n",
            data.display().to_string()
        );
        std::fs::write(&config, text).expect("writing the configuration");
        Env { dir, config }
    }

    pub fn data_dir(&self) -> PathBuf {
        self.dir.path().join("data")
    }

    pub fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    /// `vigil --config <config> <args>` with stdout and stderr captured.
    pub fn cli(&self, args: &[&str]) -> Output {
        Command::new(vigil_bin())
            .arg("--config")
            .arg(&self.config)
            .args(args)
            .output()
            .expect("running vigil")
    }

    /// Creates a token with the CLI and returns its text.
    pub fn token(&self, role: &str, name: &str) -> String {
        let out = self.cli(&["token", "create", "--role", role, "--name", name]);
        assert!(
            out.status.success(),
            "vigil token create failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let token = String::from_utf8(out.stdout).expect("utf-8 token");
        let token = token.trim().to_owned();
        assert!(token.starts_with("vigil_"), "{token}");
        token
    }

    /// Starts `vigil run` on a free port and waits until it listens.
    pub fn start(&self) -> Daemon {
        let log = self.path(&format!("daemon-{}.log", now_ms()));
        Daemon::spawn(
            Command::new(vigil_bin())
                .arg("--config")
                .arg(&self.config)
                .args(["run", "--listen", "127.0.0.1:0"]),
            log,
            "vigil listening on ",
        )
    }
}

fn now_ms() -> u128 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0)
}

/// A running daemon (killed if the test ends without stopping it).
pub struct Daemon {
    child: Option<Child>,
    /// `http://127.0.0.1:<port>`
    pub base: String,
    /// Lines the daemon printed on stdout.
    pub stdout: Vec<String>,
    /// Where its stderr (logs) goes.
    pub log: PathBuf,
}

impl Daemon {
    /// Spawns `command`, sends its stderr to `log`, and reads stdout until a line starting
    /// with `ready` (followed by the URL) appears; keeps reading until `ready_lines` lines.
    pub fn spawn(command: &mut Command, log: PathBuf, ready: &str) -> Daemon {
        let stderr = std::fs::File::create(&log).expect("log file");
        let mut child = command
            .stdout(Stdio::piped())
            .stderr(Stdio::from(stderr))
            .spawn()
            .expect("starting vigil");
        let stdout = child.stdout.take().expect("stdout");
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        let deadline = Instant::now() + Duration::from_secs(60);
        let mut lines = Vec::new();
        let mut base = None;
        while base.is_none() {
            let left = deadline.saturating_duration_since(Instant::now());
            match rx.recv_timeout(left) {
                Ok(line) => {
                    if let Some(pos) = line.find("http://") {
                        if line.contains(ready) {
                            let url = &line[pos..];
                            let end = url[7..].find('/').map_or(url.len(), |i| i + 7);
                            base = Some(url[..end].to_owned());
                        }
                    }
                    lines.push(line);
                }
                Err(_) => {
                    let _ = child.kill();
                    panic!(
                        "vigil did not report ready; stdout {lines:?}; log:\n{}",
                        std::fs::read_to_string(&log).unwrap_or_default()
                    );
                }
            }
        }
        // Collect what else arrives promptly (the demo prints its token after the URL).
        while let Ok(line) = rx.recv_timeout(Duration::from_millis(300)) {
            lines.push(line);
        }
        Daemon {
            child: Some(child),
            base: base.unwrap_or_default(),
            stdout: lines,
            log,
        }
    }

    pub fn pid(&self) -> u32 {
        self.child.as_ref().map_or(0, Child::id)
    }

    /// Sends `signal` (`libc::SIGTERM`, `libc::SIGKILL`) and waits for the exit.
    pub fn signal_and_wait(mut self, signal: libc::c_int) -> ExitStatus {
        let mut child = self.child.take().expect("running daemon");
        let pid = libc::pid_t::try_from(child.id()).expect("pid fits pid_t");
        // SAFETY: kill(2) takes plain integers and touches no memory of ours; `pid` is our own
        // child, which has not been waited for, so the id cannot have been reused.
        let sent = unsafe { libc::kill(pid, signal) };
        assert_eq!(sent, 0, "kill({pid}, {signal}) failed");
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if let Some(status) = child.try_wait().expect("waiting for vigil") {
                return status;
            }
            if Instant::now() > deadline {
                let _ = child.kill();
                panic!(
                    "vigil did not exit after signal {signal}; log:\n{}",
                    std::fs::read_to_string(&self.log).unwrap_or_default()
                );
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// SIGTERM and wait; asserts a clean exit.
    pub fn stop(self) {
        let log = self.log.clone();
        let status = self.signal_and_wait(libc::SIGTERM);
        assert!(
            status.success(),
            "vigil exited with {status}; log:\n{}",
            std::fs::read_to_string(&log).unwrap_or_default()
        );
    }

    pub fn logs(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    pub fn client(&self, token: Option<&str>) -> Client {
        Client {
            base: self.base.clone(),
            token: token.map(str::to_owned),
        }
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// An HTTP answer.
#[derive(Debug)]
pub struct Response {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Response {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|e| panic!("not JSON ({e}): {}", self.text()))
    }

    /// Asserts the status, showing the body otherwise.
    pub fn expect(self, status: u16) -> Response {
        assert_eq!(self.status, status, "body: {}", self.text());
        self
    }

    /// Asserts a problem document with this status and returns it.
    pub fn problem(self, status: u16) -> serde_json::Value {
        assert_eq!(self.status, status, "body: {}", self.text());
        assert_eq!(
            self.header("content-type"),
            Some("application/problem+json"),
            "{}",
            self.text()
        );
        let p = self.json();
        assert_eq!(p["status"], status);
        p
    }
}

/// A minimal HTTP/1.1 client (one connection per request, `Connection: close`).
#[derive(Clone)]
pub struct Client {
    pub base: String,
    pub token: Option<String>,
}

impl Client {
    pub fn with_token(&self, token: &str) -> Client {
        Client {
            base: self.base.clone(),
            token: Some(token.to_owned()),
        }
    }

    pub fn get(&self, path: &str) -> Response {
        self.request("GET", path, None, &[])
    }

    pub fn delete(&self, path: &str) -> Response {
        self.request("DELETE", path, None, &[])
    }

    pub fn post_json(&self, path: &str, body: &serde_json::Value) -> Response {
        self.request(
            "POST",
            path,
            Some("application/json"),
            body.to_string().as_bytes(),
        )
    }

    pub fn put_json(&self, path: &str, body: &serde_json::Value) -> Response {
        self.request(
            "PUT",
            path,
            Some("application/json"),
            body.to_string().as_bytes(),
        )
    }

    pub fn post(&self, path: &str, content_type: &str, body: &[u8]) -> Response {
        self.request("POST", path, Some(content_type), body)
    }

    pub fn request(
        &self,
        method: &str,
        path: &str,
        content_type: Option<&str>,
        body: &[u8],
    ) -> Response {
        self.send(method, path, content_type, body, false, &[])
    }

    /// A request without a body, with extra headers (`Range`, `If-Range`, …).
    pub fn request_with(&self, method: &str, path: &str, headers: &[(&str, &str)]) -> Response {
        self.send(method, path, None, b"", false, headers)
    }

    /// Sends with `Expect: 100-continue`: the body goes only if the server asks for it (as
    /// curl does for large uploads).
    pub fn post_expecting_continue(&self, path: &str, content_type: &str, body: &[u8]) -> Response {
        self.send("POST", path, Some(content_type), body, true, &[])
    }

    fn send(
        &self,
        method: &str,
        path: &str,
        content_type: Option<&str>,
        body: &[u8],
        expect_continue: bool,
        extra: &[(&str, &str)],
    ) -> Response {
        let host = self.base.trim_start_matches("http://");
        let mut stream = TcpStream::connect(host).expect("connecting to vigil");
        stream
            .set_read_timeout(Some(Duration::from_secs(120)))
            .expect("timeout");
        let mut head = format!("{method} {path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n");
        if let Some(t) = &self.token {
            head.push_str(&format!("Authorization: Bearer {t}\r\n"));
        }
        if let Some(ct) = content_type {
            head.push_str(&format!("Content-Type: {ct}\r\n"));
        }
        if !body.is_empty() || matches!(method, "POST" | "PUT") {
            head.push_str(&format!("Content-Length: {}\r\n", body.len()));
        }
        if expect_continue {
            head.push_str("Expect: 100-continue\r\n");
        }
        for (name, value) in extra {
            head.push_str(&format!("{name}: {value}\r\n"));
        }
        head.push_str("\r\n");
        stream
            .write_all(head.as_bytes())
            .expect("sending the request");
        let mut reader = BufReader::new(stream.try_clone().expect("clone"));
        if expect_continue {
            let (status, headers) = read_head(&mut reader);
            if status != 100 {
                return read_body(&mut reader, status, headers);
            }
        }
        stream.write_all(body).expect("sending the body");
        loop {
            let (status, headers) = read_head(&mut reader);
            if status != 100 {
                return read_body(&mut reader, status, headers);
            }
        }
    }
}

fn read_head(reader: &mut impl BufRead) -> (u16, Vec<(String, String)>) {
    let mut line = String::new();
    reader.read_line(&mut line).expect("status line");
    let status: u16 = line
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("bad status line {line:?}"));
    let mut headers = Vec::new();
    loop {
        let mut h = String::new();
        reader.read_line(&mut h).expect("header line");
        let h = h.trim_end();
        if h.is_empty() {
            break;
        }
        if let Some((k, v)) = h.split_once(':') {
            headers.push((k.trim().to_ascii_lowercase(), v.trim().to_owned()));
        }
    }
    (status, headers)
}

fn read_body(reader: &mut impl BufRead, status: u16, headers: Vec<(String, String)>) -> Response {
    let get = |name: &str| {
        headers
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.clone())
    };
    let mut body = Vec::new();
    if get("transfer-encoding").is_some_and(|v| v.eq_ignore_ascii_case("chunked")) {
        loop {
            let mut size = String::new();
            reader.read_line(&mut size).expect("chunk size");
            let n = usize::from_str_radix(size.trim().split(';').next().unwrap_or("0"), 16)
                .expect("chunk size is hex");
            if n == 0 {
                let mut trailer = String::new();
                let _ = reader.read_line(&mut trailer);
                break;
            }
            let mut chunk = vec![0; n];
            reader.read_exact(&mut chunk).expect("chunk");
            body.extend_from_slice(&chunk);
            let mut crlf = [0; 2];
            reader.read_exact(&mut crlf).expect("chunk end");
        }
    } else if let Some(n) = get("content-length").and_then(|v| v.parse::<usize>().ok()) {
        body.resize(n, 0);
        reader.read_exact(&mut body).expect("body");
    } else {
        let _ = reader.read_to_end(&mut body);
    }
    Response {
        status,
        headers,
        body,
    }
}

/// Encodes text as GB18030 (what Excel on a Chinese Windows saves).
pub fn gb18030(text: &str) -> Vec<u8> {
    let (bytes, _, unmappable) = encoding_rs::GB18030.encode(text);
    assert!(!unmappable);
    bytes.into_owned()
}

/// Reads a whole file.
pub fn read(path: &Path) -> Vec<u8> {
    std::fs::read(path).unwrap_or_else(|e| panic!("reading {}: {e}", path.display()))
}
