//! Writing results: every file goes through `viz::write_atomic` (temporary file in the
//! same folder, then rename), so an interrupted run never leaves a truncated file.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::Serialize;

use crate::error::{PipelineError, Result};

/// The output folder of a run, created by its first write.
#[derive(Debug, Clone)]
pub struct OutDir {
    root: PathBuf,
}

impl OutDir {
    /// Checks that `root` is, or can become, a folder: it is one, or its nearest
    /// existing ancestor is one. Nothing is written or created yet (the folder is
    /// created by the first write), so a run that fails on bad input leaves no trace.
    pub fn new(root: &Path) -> Result<Self> {
        if root.exists() && !root.is_dir() {
            return Err(PipelineError::OutIsFile(root.to_path_buf()));
        }
        // A folder cannot be created under a file: say so now, not after the work.
        let mut ancestor = root.parent();
        while let Some(dir) = ancestor.filter(|d| !d.as_os_str().is_empty()) {
            match std::fs::metadata(dir) {
                Ok(m) if m.is_dir() => break,
                Ok(_) => {
                    return Err(PipelineError::OutBelowFile {
                        out: root.to_path_buf(),
                        file: dir.to_path_buf(),
                    })
                }
                // Missing (or below a file, which a higher ancestor reveals): go up.
                Err(_) => ancestor = dir.parent(),
            }
        }
        Ok(Self {
            root: root.to_path_buf(),
        })
    }

    /// `name` inside the folder.
    pub fn path(&self, name: &str) -> PathBuf {
        self.root.join(name)
    }

    /// Writes `bytes` to `name` inside the folder, atomically.
    pub fn write(&self, name: &str, bytes: &[u8]) -> Result<PathBuf> {
        let path = self.path(name);
        viz::write_atomic(&path, bytes)?;
        Ok(path)
    }

    /// Removes `name` inside the folder if it exists (a stale output of another run).
    pub fn remove(&self, name: &str) -> Result<()> {
        let path = self.path(name);
        match std::fs::remove_file(&path) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
            Err(source) => Err(PipelineError::Io {
                what: "removing",
                path,
                source,
            }),
        }
    }

    /// Pretty JSON with a final newline.
    pub fn write_json<T: Serialize>(&self, name: &str, value: &T) -> Result<PathBuf> {
        self.write(name, &json_bytes(value)?)
    }

    /// Merges `fields` into the JSON object in `name` (creating it), keys sorted, so
    /// that stages can add their wall times to one `timings.json`.
    pub fn merge_json(
        &self,
        name: &str,
        fields: BTreeMap<String, serde_json::Value>,
    ) -> Result<PathBuf> {
        // Stages that run side by side (`cargo xtask all`) merge into the same files:
        // one read-modify-write at a time.
        static MERGING: std::sync::Mutex<()> = std::sync::Mutex::new(());
        let _one_at_a_time = MERGING.lock().unwrap_or_else(|e| e.into_inner());
        let path = self.path(name);
        let mut object = match std::fs::read(&path) {
            Ok(bytes) => match serde_json::from_slice::<serde_json::Value>(&bytes) {
                Ok(serde_json::Value::Object(map)) => map,
                // A file we cannot read as an object is replaced, not merged.
                _ => serde_json::Map::new(),
            },
            Err(_) => serde_json::Map::new(),
        };
        for (k, v) in fields {
            object.insert(k, v);
        }
        self.write_json(name, &serde_json::Value::Object(object))
            .map_err(|e| e.context(format!("writing {}", path.display())))
    }
}

/// `value` as pretty JSON with a final newline.
pub fn json_bytes<T: Serialize>(value: &T) -> Result<Vec<u8>> {
    let mut text = serde_json::to_string_pretty(value)?;
    text.push('\n');
    Ok(text.into_bytes())
}

/// Wall seconds of each stage, written to `timings.json` (never to `metrics.json`,
/// which must be reproducible byte for byte).
#[derive(Debug, Default, Clone)]
pub struct Timings {
    stages: BTreeMap<String, serde_json::Value>,
}

impl Timings {
    /// Records `seconds` under `stage`.
    pub fn record(&mut self, stage: &str, seconds: f64) {
        self.record_value(stage, serde_json::json!(seconds));
    }

    /// Records any value under `key`.
    pub fn record_value(&mut self, key: &str, value: serde_json::Value) {
        self.stages.insert(key.to_string(), value);
    }

    /// The seconds recorded under `stage`, if any.
    pub fn seconds(&self, stage: &str) -> Option<f64> {
        self.stages.get(stage).and_then(serde_json::Value::as_f64)
    }

    /// Merges these times into `timings.json` of `out`.
    pub fn write(self, out: &OutDir) -> Result<()> {
        out.merge_json("timings.json", self.stages)?;
        Ok(())
    }
}
