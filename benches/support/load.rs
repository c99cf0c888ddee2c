//! What the load harnesses (`rtsp_load`, `recording_load`) share: the 4 Mbit/s test clip,
//! and reading a process's CPU time, RSS and a directory's size from `/proc` and the file
//! system. Included with `#[path]`; std only.

use std::path::{Path, PathBuf};
use std::process::Command;

pub type BoxError = Box<dyn std::error::Error>;

/// Frame rate of the clip.
pub const FPS: u32 = 25;

/// `<target>/<profile>` of the running bench binary.
pub fn target_dir() -> Result<PathBuf, BoxError> {
    let exe = std::env::current_exe()?;
    exe.parent()
        .and_then(Path::parent)
        .map(Path::to_path_buf)
        .ok_or_else(|| "cannot place the target directory".into())
}

/// Makes (once, with ffmpeg, into `<target>/<subdir>/`) the clip the simulated cameras
/// serve: 10 s of H.264 at `resolution` (`720p` or `1080p`), x264 `veryfast`, 4 Mbit/s,
/// GOP 50 (2 s), no B-frames, and a noisy `testsrc2` so that the encoder really spends
/// 4 Mbit/s.
pub fn ensure_clip(subdir: &str, resolution: &str) -> Result<PathBuf, BoxError> {
    let dir = target_dir()?.join(subdir);
    std::fs::create_dir_all(&dir)?;
    let path = dir.join(format!("clip-{resolution}-4M.h264"));
    if path.exists() {
        return Ok(path);
    }
    let size = match resolution {
        "720p" => "1280x720",
        "1080p" => "1920x1080",
        other => return Err(format!("unknown clip resolution {other:?}").into()),
    };
    eprintln!("generating {} with ffmpeg…", path.display());
    let status = Command::new("ffmpeg")
        .args(["-y", "-v", "error", "-f", "lavfi", "-i"])
        .arg(format!(
            "testsrc2=size={size}:rate={FPS},noise=alls=10:allf=t+u"
        ))
        .args(["-t", "10", "-c:v", "libx264", "-preset", "veryfast"])
        .args(["-profile:v", "high", "-b:v", "4M", "-minrate", "4M"])
        .args(["-maxrate", "4M", "-bufsize", "2M", "-g", "50"])
        .args(["-keyint_min", "50", "-sc_threshold", "0", "-bf", "0"])
        .args(["-pix_fmt", "yuv420p", "-f", "h264"])
        .arg(&path)
        .status()
        .map_err(|e| format!("cannot run ffmpeg ({e}); run scripts/ensure-test-deps"))?;
    if !status.success() {
        return Err(format!("ffmpeg failed to make the clip: {status}").into());
    }
    Ok(path)
}

/// (utime, stime) of a process in clock ticks; zeros once it is gone.
pub fn cpu_split(pid: u32) -> (u64, u64) {
    let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
        return (0, 0);
    };
    // The command name may contain spaces; fields are counted after its closing parenthesis
    // (utime and stime are fields 14 and 15 of the line, 12 and 13 after the name).
    let Some(close) = stat.rfind(')') else {
        return (0, 0);
    };
    let fields: Vec<&str> = stat[close + 2..].split_whitespace().collect();
    let get = |i: usize| {
        fields
            .get(i)
            .and_then(|f| f.parse::<u64>().ok())
            .unwrap_or(0)
    };
    (get(11), get(12))
}

/// utime + stime of a process in clock ticks.
pub fn cpu_ticks(pid: u32) -> u64 {
    let (user, system) = cpu_split(pid);
    user + system
}

pub fn clock_ticks_per_second() -> f64 {
    Command::new("getconf")
        .arg("CLK_TCK")
        .output()
        .ok()
        .and_then(|o| String::from_utf8(o.stdout).ok())
        .and_then(|s| s.trim().parse().ok())
        .unwrap_or(100.0)
}

/// Resident set size of a process in MiB (0 once it is gone).
pub fn rss_mib(pid: u32) -> f64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmRSS:"))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|kb| kb.parse::<f64>().ok())
        })
        .map_or(0.0, |kb| kb / 1024.0)
}

/// Total size of the files directly in `dir`.
pub fn dir_bytes(dir: &Path) -> u64 {
    std::fs::read_dir(dir)
        .map(|entries| {
            entries
                .filter_map(Result::ok)
                .filter_map(|e| e.metadata().ok())
                .map(|m| m.len())
                .sum()
        })
        .unwrap_or(0)
}
