//! Helpers shared by the pipeline library's tests.

use std::path::PathBuf;

/// A fresh output path for one test, `toydiff-NAME-PID` in the temp folder: whatever an
/// earlier, failed run left there is removed; nothing is created.
pub fn scratch(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("toydiff-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    dir
}
