//! The real RTSP server of the tests: `tests/support/rtsp_server.py` (GStreamer's
//! gst-rtsp-server through Debian's python3-gi, so `/usr/bin/python3`, not pyenv's), killed
//! on drop.
//!
//! Shared by the RTSP crate's tests and the daemon's end-to-end tests (`#[path]`): std only.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};

/// A running `rtsp_server.py`.
pub struct GstServer {
    child: Child,
    pub port: u16,
}

impl GstServer {
    /// Starts the server with `args` and waits for `READY <port>`. Panics with a clear message
    /// when GStreamer or its Python bindings are missing (the test command installs them:
    /// `scripts/ensure-test-deps`).
    pub fn start(args: &[&str]) -> GstServer {
        let script = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../../tests/support/rtsp_server.py"
        );
        let mut child = Command::new("/usr/bin/python3")
            .arg(script)
            .args(args)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| {
                panic!("cannot run /usr/bin/python3 ({e}); run scripts/ensure-test-deps")
            });
        let stdout = child.stdout.take().expect("piped stdout");
        let mut line = String::new();
        // READY comes within a second or two; a missing GStreamer module exits at once.
        let read = BufReader::new(stdout).read_line(&mut line);
        let port = line
            .strip_prefix("READY ")
            .and_then(|p| p.trim().parse().ok());
        match (read, port) {
            (Ok(_), Some(port)) => GstServer { child, port },
            _ => {
                let _ = child.kill();
                let stderr = child
                    .wait_with_output()
                    .map(|o| String::from_utf8_lossy(&o.stderr).into_owned())
                    .unwrap_or_default();
                panic!(
                    "the GStreamer RTSP server did not start (got {line:?}); install the test \
                     tools with scripts/ensure-test-deps. Its stderr:\n{stderr}"
                );
            }
        }
    }

    /// `rtsp://127.0.0.1:<port><path>`.
    pub fn url(&self, path: &str) -> String {
        self.url_with_credentials(None, path)
    }

    /// `rtsp://[user:password@]127.0.0.1:<port><path>`.
    pub fn url_with_credentials(&self, credentials: Option<(&str, &str)>, path: &str) -> String {
        let auth = credentials.map_or(String::new(), |(u, p)| format!("{u}:{p}@"));
        format!("rtsp://{auth}127.0.0.1:{}{path}", self.port)
    }
}

impl Drop for GstServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
