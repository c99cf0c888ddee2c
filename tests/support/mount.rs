//! Mounts for the disk-fault tests (a tiny tmpfs that fills up, a bind mount made read-only),
//! undone when dropped. The tests run as root, where `chmod` cannot make a directory
//! read-only, hence mounts. They need `mount`/`umount` and CAP_SYS_ADMIN; without them they
//! fail with a message saying so (they do not skip).
//!
//! Shared by the store's fault tests and the daemon's (`#[path]`): std only.

use std::path::{Path, PathBuf};
use std::process::Command;

/// A mount that is undone (lazily) when dropped.
pub struct Mount(PathBuf);

impl Mount {
    fn run(args: &[&str], target: &Path) {
        let out = Command::new("mount")
            .args(args)
            .arg(target)
            .output()
            .expect("the `mount` command is required for the fault tests");
        assert!(
            out.status.success(),
            "mount {args:?} {} failed (the fault tests need root / CAP_SYS_ADMIN): {}",
            target.display(),
            String::from_utf8_lossy(&out.stderr)
        );
    }

    /// A tmpfs of `size` (`mount -o size=`) at `target`, created if missing.
    pub fn tmpfs(target: &Path, size: &str) -> Mount {
        std::fs::create_dir_all(target).expect("creating the mount point");
        Mount::run(
            &["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"],
            target,
        );
        Mount(target.to_owned())
    }

    /// `target` bind-mounted over itself (created if missing), so that it can be made
    /// read-only and writable again with [`Mount::set_read_only`].
    pub fn bind(target: &Path) -> Mount {
        std::fs::create_dir_all(target).expect("creating the mount point");
        let path = target.to_str().expect("a UTF-8 test path");
        Mount::run(&["--bind", path], target);
        Mount(target.to_owned())
    }

    /// Makes `target` read-only from now on. Files already open keep writing to the
    /// directory underneath (as after a `chmod`); what is created from now on is refused
    /// with EROFS.
    pub fn read_only_over(target: &Path) -> Mount {
        let mount = Mount::bind(target);
        mount.set_read_only(true);
        mount
    }

    pub fn set_read_only(&self, read_only: bool) {
        let options = if read_only {
            "remount,ro,bind"
        } else {
            "remount,rw,bind"
        };
        Mount::run(&["-o", options], &self.0);
    }
}

impl Drop for Mount {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("-l").arg(&self.0).status();
    }
}
