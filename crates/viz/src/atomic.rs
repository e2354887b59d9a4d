//! The project's one atomic-write helper.

use std::fs::{self, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use crate::VizError;

/// Distinguishes temporary files of concurrent writers inside one process.
static TMP_COUNTER: AtomicU64 = AtomicU64::new(0);

/// Writes `bytes` to `path` atomically: readers see either the old file or the
/// complete new one, never a truncated file.
///
/// Missing parent folders are created. The bytes go to a hidden temporary file in
/// the target's folder (`.NAME.tmp-PID-N`, so the final rename never crosses file
/// systems), which is flushed to disk (`fsync`) and then renamed over `path`. On
/// Unix the folder is then synced too (best effort) so the rename itself survives
/// a crash. On any error the temporary file is removed and the returned
/// [`VizError::Io`] names `path`.
///
/// ```
/// let dir = std::env::temp_dir().join(format!("viz-doc-{}", std::process::id()));
/// let path = dir.join("sub/hello.txt");
/// viz::write_atomic(&path, b"hello")?;
/// assert_eq!(std::fs::read(&path)?, b"hello");
/// # std::fs::remove_dir_all(&dir)?;
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<(), VizError> {
    let io_err = |source| VizError::Io {
        path: path.to_path_buf(),
        source,
    };
    let name = path
        .file_name()
        .ok_or_else(|| VizError::InvalidInput(format!("{} has no file name", path.display())))?;
    let dir = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    };
    fs::create_dir_all(&dir).map_err(io_err)?;

    let n = TMP_COUNTER.fetch_add(1, Ordering::Relaxed);
    let tmp = dir.join(format!(
        ".{}.tmp-{}-{n}",
        name.to_string_lossy(),
        std::process::id()
    ));
    let result = (|| {
        let mut file = OpenOptions::new().write(true).create_new(true).open(&tmp)?;
        file.write_all(bytes)?;
        file.sync_all()?;
        drop(file);
        fs::rename(&tmp, path)
    })();
    if let Err(e) = result {
        // The temp file may or may not exist (open can fail); either way, try.
        let _ = fs::remove_file(&tmp);
        return Err(io_err(e));
    }
    sync_dir(&dir);
    Ok(())
}

/// Makes the rename durable where the platform allows opening a folder (Unix).
/// Failure here does not make the write fail: the data itself is already synced.
fn sync_dir(dir: &Path) {
    #[cfg(unix)]
    if let Ok(d) = fs::File::open(dir) {
        let _ = d.sync_all();
    }
    #[cfg(not(unix))]
    let _ = dir;
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scratch(name: &str) -> PathBuf {
        let d = std::env::temp_dir().join(format!(
            "viz-atomic-{name}-{}-{}",
            std::process::id(),
            TMP_COUNTER.fetch_add(1, Ordering::Relaxed)
        ));
        let _ = fs::remove_dir_all(&d);
        d
    }

    fn entries(dir: &Path) -> Vec<String> {
        let mut v: Vec<String> = fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        v.sort();
        v
    }

    #[test]
    fn writes_overwrites_and_creates_folders() {
        let root = scratch("write");
        let path = root.join("a/b/c/out.bin");
        write_atomic(&path, b"first version, longer").unwrap();
        assert_eq!(fs::read(&path).unwrap(), b"first version, longer");
        // Overwrite with something shorter: no leftover tail from the old content.
        write_atomic(&path, b"second").unwrap();
        assert_eq!(fs::read(&path).unwrap(), b"second");
        // Only the target remains in its folder: no temporary file.
        assert_eq!(entries(path.parent().unwrap()), vec!["out.bin".to_string()]);
        fs::remove_dir_all(&root).unwrap();
    }

    #[test]
    fn empty_content_is_fine() {
        let root = scratch("empty");
        let path = root.join("empty.txt");
        write_atomic(&path, b"").unwrap();
        assert_eq!(fs::read(&path).unwrap().len(), 0);
        fs::remove_dir_all(&root).unwrap();
    }

    #[test]
    fn impossible_path_is_an_error_and_leaves_nothing() {
        let root = scratch("impossible");
        fs::create_dir_all(&root).unwrap();
        let file = root.join("regular-file");
        fs::write(&file, b"x").unwrap();
        // A path "under" a regular file cannot be created.
        let target = file.join("child.png");
        let err = write_atomic(&target, b"data").unwrap_err();
        match &err {
            VizError::Io { path, .. } => assert_eq!(path, &target),
            other => panic!("expected Io error, got {other:?}"),
        }
        assert!(err.to_string().contains("child.png"), "{err}");
        assert_eq!(entries(&root), vec!["regular-file".to_string()]);
        assert_eq!(fs::read(&file).unwrap(), b"x");
        fs::remove_dir_all(&root).unwrap();
    }

    #[test]
    fn target_is_a_directory_is_an_error_and_removes_temp() {
        let root = scratch("dir-target");
        let target = root.join("taken");
        fs::create_dir_all(target.join("inside")).unwrap();
        assert!(matches!(
            write_atomic(&target, b"data"),
            Err(VizError::Io { .. })
        ));
        // The rename failed after the temp file was written: it must be gone.
        assert_eq!(entries(&root), vec!["taken".to_string()]);
        fs::remove_dir_all(&root).unwrap();
    }

    #[test]
    fn path_without_file_name_is_invalid() {
        assert!(matches!(
            write_atomic(Path::new("/"), b"x"),
            Err(VizError::InvalidInput(_))
        ));
    }
}
