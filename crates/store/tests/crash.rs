//! Crash test: a helper process records simulated cameras into a real index and store and is
//! killed with SIGKILL at several points; after each kill we check that every fragment the
//! index had recorded is still readable (CRC-verified), then run recovery and check that every
//! commit the helper reported survived, that every file on disk is indexed to its exact length
//! and verifies, and that recording continues on the same store in the next round.

use std::collections::HashMap;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::Duration;

use vigil_core::id::GbId;
use vigil_index::{Index, SegmentState};
use vigil_store::testing::ffprobe;
use vigil_store::{scan, Store, StoreConfig};

const CAMERAS: u32 = 4;

/// One `COMMIT` line: camera, segment path relative to the camera directory, length.
type Commit = (GbId, String, u64);

fn run_and_kill(
    root: &Path,
    index: &Path,
    kill_after: usize,
    extra_delay: Duration,
) -> Vec<Commit> {
    let mut child = Command::new(env!("CARGO_BIN_EXE_vigil-store-crash-helper"))
        .arg(root)
        .arg(index)
        .arg(CAMERAS.to_string())
        .args(["--segment-ms", "2000"])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("starting the crash helper");
    let stdout = child.stdout.take().expect("helper stdout");
    let mut lines = BufReader::new(stdout).lines();
    let mut commits = Vec::new();
    let mut ready = false;
    while commits.len() < kill_after {
        let Some(line) = lines.next() else {
            let status = child.wait().expect("helper status");
            panic!(
                "the helper exited ({status}) after {} commits",
                commits.len()
            );
        };
        let line = line.expect("reading helper output");
        if line == "READY" {
            ready = true;
            continue;
        }
        let mut parts = line.split(' ');
        if parts.next() == Some("COMMIT") {
            let camera = GbId::parse(parts.next().unwrap()).unwrap();
            let path = PathBuf::from(parts.next().unwrap());
            let len: u64 = parts.next().unwrap().parse().unwrap();
            let rel = path
                .strip_prefix(root.join(camera.as_str()))
                .unwrap()
                .to_string_lossy()
                .into_owned();
            commits.push((camera, rel, len));
        }
    }
    assert!(ready);
    std::thread::sleep(extra_delay);
    child.kill().expect("SIGKILL");
    child.wait().expect("reaping the helper");
    commits
}

/// Every segment the (crashed) index records is readable up to its recorded length, with
/// every fragment's checksum intact.
fn check_index_as_left_by_the_crash(root: &Path, index_dir: &Path) -> usize {
    let index = Index::open(index_dir).unwrap();
    let mut n = 0;
    for camera in index.recorded_cameras().unwrap() {
        for seg in index
            .segments(&camera, i64::MIN, i64::MAX, usize::MAX)
            .unwrap()
        {
            let path = root.join(camera.as_str()).join(&seg.file);
            let file = std::fs::File::open(&path)
                .unwrap_or_else(|e| panic!("indexed segment {} is missing: {e}", path.display()));
            let size = file.metadata().unwrap().len();
            assert!(
                size >= seg.len,
                "{}: {size} bytes < indexed {}",
                path.display(),
                seg.len
            );
            let s = scan::scan(&file, seg.len, 0).unwrap();
            assert_eq!(s.problem, None, "{}", path.display());
            assert_eq!(s.valid_end, seg.len, "{}", path.display());
            assert_eq!(
                s.fragments.len() as u32,
                seg.fragments,
                "{}",
                path.display()
            );
            n += 1;
        }
    }
    n
}

fn all_segment_files(root: &Path) -> Vec<(GbId, String, u64)> {
    let mut out = Vec::new();
    for cam in std::fs::read_dir(root).unwrap() {
        let cam = cam.unwrap();
        let Ok(id) = GbId::parse(&cam.file_name().to_string_lossy()) else {
            continue;
        };
        for day in std::fs::read_dir(cam.path()).unwrap() {
            let day = day.unwrap();
            for f in std::fs::read_dir(day.path()).unwrap() {
                let f = f.unwrap();
                let rel = format!(
                    "{}/{}",
                    day.file_name().to_string_lossy(),
                    f.file_name().to_string_lossy()
                );
                out.push((id, rel, f.metadata().unwrap().len()));
            }
        }
    }
    out
}

#[test]
fn kill_9_at_several_points_loses_nothing_the_index_recorded() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("store");
    let index_dir = dir.path().join("index");
    let mut all_commits: Vec<Commit> = Vec::new();
    let mut truncated_total = 0;
    let rounds: [(usize, u64); 6] = [(1, 0), (5, 3), (12, 0), (30, 7), (45, 1), (80, 0)];
    for (round, (kill_after, delay_ms)) in rounds.into_iter().enumerate() {
        let commits = run_and_kill(
            &root,
            &index_dir,
            kill_after,
            Duration::from_millis(delay_ms),
        );
        all_commits.extend(commits);
        let indexed = check_index_as_left_by_the_crash(&root, &index_dir);
        assert!(indexed > 0 || round == 0);

        let index = Arc::new(Index::open(&index_dir).unwrap());
        let mut config = StoreConfig::new(&root);
        config.segment_duration = Duration::from_secs(2);
        let (store, report) = Store::open(config, index)
            .unwrap_or_else(|e| panic!("recovery after kill {round} failed: {e}"));
        truncated_total += report.bytes_truncated;
        eprintln!("round {round}: recovery {report:?}");
        let index = store.index();

        // Every commit the helper saw is still there, at least that long.
        let mut by_file: HashMap<(GbId, String), u64> = HashMap::new();
        for cam in index.recorded_cameras().unwrap() {
            for s in index
                .segments(&cam, i64::MIN, i64::MAX, usize::MAX)
                .unwrap()
            {
                assert_eq!(s.state, SegmentState::Complete);
                by_file.insert((cam, s.file.clone()), s.len);
            }
        }
        for (cam, rel, len) in &all_commits {
            let have = by_file.get(&(*cam, rel.clone())).unwrap_or_else(|| {
                panic!("committed segment {cam}/{rel} is not indexed after recovery")
            });
            assert!(*have >= *len, "{cam}/{rel}: {have} < committed {len}");
        }
        // Every file is indexed to its exact length and verifies completely.
        let files = all_segment_files(&root);
        assert_eq!(files.len(), by_file.len(), "files and index agree");
        for (cam, rel, size) in &files {
            assert_eq!(by_file.get(&(*cam, rel.clone())), Some(size), "{cam}/{rel}");
            let path = root.join(cam.as_str()).join(rel);
            let f = std::fs::File::open(&path).unwrap();
            let s = scan::scan(&f, *size, 0).unwrap();
            assert_eq!(
                (s.problem.clone(), s.valid_end),
                (None, *size),
                "{}",
                path.display()
            );
        }
        assert!(index
            .segments_in_state(SegmentState::Writing)
            .unwrap()
            .is_empty());
        // The newest file of the first camera plays.
        let newest = files
            .iter()
            .filter(|f| f.0 == files[0].0)
            .max_by(|a, b| a.1.cmp(&b.1))
            .unwrap();
        let p = ffprobe(&root.join(newest.0.as_str()).join(&newest.1));
        assert!(p.frames > 0);
        drop(store);
    }
    eprintln!("bytes cut by recovery over all rounds: {truncated_total}");
    assert!(all_commits.len() >= rounds.iter().map(|r| r.0).sum::<usize>());
}
