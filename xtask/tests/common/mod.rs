//! Helpers shared by the integration tests that run the real `xtask` binary.
//!
//! Every test works in its own scratch folder under cargo's `target/tmp` (removed on
//! drop) and always passes `--out`, so no test touches `assets/figures`.

#![allow(dead_code)] // each test file uses its own subset

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::atomic::{AtomicUsize, Ordering};

/// The binary cargo built for these tests (dev profile).
pub fn bin() -> &'static str {
    env!("CARGO_BIN_EXE_xtask")
}

/// A command for the binary with a fixed environment: one rayon thread (the binary's
/// own default, set explicitly so a caller's RAYON_NUM_THREADS does not leak in) and
/// RUST_BACKTRACE=1, so that a panic would print "panicked" and a backtrace for the
/// tests to catch.
pub fn xtask<S: AsRef<std::ffi::OsStr>>(args: &[S]) -> Command {
    let mut cmd = Command::new(bin());
    cmd.args(args)
        .env("RAYON_NUM_THREADS", "1")
        .env("RUST_BACKTRACE", "1")
        .env_remove("RUST_LOG");
    cmd
}

/// A finished run: exit code and the text of both streams.
pub struct Run {
    pub code: Option<i32>,
    pub stdout: String,
    pub stderr: String,
}

impl Run {
    pub fn from_output(out: Output) -> Self {
        Self {
            code: out.status.code(),
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        }
    }

    /// Panics with both streams unless the run exited 0.
    pub fn expect_success(self, what: &str) -> Self {
        assert_eq!(
            self.code,
            Some(0),
            "{what} failed\n--- stdout\n{}\n--- stderr\n{}",
            self.stdout,
            self.stderr
        );
        self
    }
}

/// Runs the binary to completion.
pub fn run<S: AsRef<std::ffi::OsStr>>(args: &[S]) -> Run {
    run_env(args, &[])
}

/// Runs the binary to completion with extra environment variables.
pub fn run_env<S: AsRef<std::ffi::OsStr>>(args: &[S], env: &[(&str, &str)]) -> Run {
    let mut cmd = xtask(args);
    for (k, v) in env {
        cmd.env(k, v);
    }
    Run::from_output(cmd.output().expect("the xtask binary starts"))
}

static COUNTER: AtomicUsize = AtomicUsize::new(0);

/// A fresh, empty folder under `target/tmp`, removed when dropped.
pub struct Scratch(PathBuf);

impl Scratch {
    pub fn new(name: &str) -> Self {
        let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!(
            "xtask-{name}-{}-{}",
            std::process::id(),
            COUNTER.fetch_add(1, Ordering::Relaxed)
        ));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("create scratch folder");
        Self(dir)
    }

    pub fn path(&self) -> &Path {
        &self.0
    }

    pub fn join(&self, name: &str) -> PathBuf {
        self.0.join(name)
    }

    /// Writes `bytes` to `name` in the folder and returns its path.
    pub fn file(&self, name: &str, bytes: impl AsRef<[u8]>) -> PathBuf {
        let path = self.join(name);
        std::fs::write(&path, bytes).expect("write fixture");
        path
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Everything under a path: each file's bytes and each folder (`None`), by relative
/// path; `None` for the whole tree when the path does not exist.
pub type Tree = Option<BTreeMap<String, Option<Vec<u8>>>>;

pub fn snapshot(root: &Path) -> Tree {
    let meta = std::fs::symlink_metadata(root).ok()?;
    let mut map = BTreeMap::new();
    if meta.is_file() {
        map.insert(String::new(), Some(std::fs::read(root).expect("read file")));
        return Some(map);
    }
    fn walk(root: &Path, dir: &Path, map: &mut BTreeMap<String, Option<Vec<u8>>>) {
        for entry in std::fs::read_dir(dir).expect("read folder") {
            let path = entry.expect("folder entry").path();
            let rel = path
                .strip_prefix(root)
                .expect("inside root")
                .to_string_lossy()
                .into_owned();
            if path.is_dir() {
                map.insert(format!("{rel}/"), None);
                walk(root, &path, map);
            } else {
                map.insert(rel, Some(std::fs::read(&path).expect("read file")));
            }
        }
    }
    walk(root, root, &mut map);
    Some(map)
}

/// The names (relative paths) in a snapshot, for messages.
pub fn names(tree: &Tree) -> Vec<String> {
    tree.as_ref()
        .map(|m| m.keys().cloned().collect())
        .unwrap_or_default()
}

/// Relative paths of the files (not folders) under `root`.
pub fn files(root: &Path) -> Vec<String> {
    snapshot(root)
        .unwrap_or_default()
        .into_iter()
        .filter(|(_, v)| v.is_some())
        .map(|(k, _)| k)
        .collect()
}

/// Whether a file name is one of `viz::write_atomic`'s temporary files (`.NAME.tmp-PID-N`).
pub fn is_temp_file(rel: &str) -> bool {
    let name = rel.rsplit('/').next().unwrap_or(rel);
    name.starts_with('.') && name.contains(".tmp-")
}

/// Recursively copies a folder.
pub fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).expect("create copy");
    for entry in std::fs::read_dir(from).expect("read folder") {
        let entry = entry.expect("entry");
        let target = to.join(entry.file_name());
        if entry.path().is_dir() {
            copy_dir(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), &target).expect("copy file");
        }
    }
}
