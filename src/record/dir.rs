//! The run directory's layout: the one place that names its files, and the
//! one reader and writer of `summary.json`. A run, a resume, a sweep's
//! table and state, the report and the TensorBoard export all find a run's
//! files through [`RunDir`], so a layout change is made here once.
//!
//! One error policy for the summary: a missing `summary.json` is `None`
//! (the run has not written it yet); one that is there but cannot be read
//! or parsed is an input error naming the file, wherever it is read. A
//! caller that can go on without it (a sweep's table) says so itself.

use super::RunSummary;
use crate::error::input;
use crate::fsutil::write_atomic;
use anyhow::Result;
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};

/// The resolved settings, runnable again.
pub const SETTINGS: &str = "experiment.toml";
/// Per-variant results and the environment.
pub const SUMMARY: &str = "summary.json";
/// The console log.
pub const LOG: &str = "log.txt";
/// The first test images, for the example grid.
pub const EXAMPLES: &str = "examples-images-idx3-ubyte";
/// A variant's loss per step.
pub const STEPS: &str = "steps.csv";
/// A variant's loss and accuracies per epoch.
pub const EPOCHS: &str = "epochs.csv";
/// A variant's seconds per epoch.
pub const TIMINGS: &str = "timings.csv";
/// A variant's weights before training.
pub const INITIAL_WEIGHTS: &str = "initial.safetensors";
/// A variant's weights after training.
pub const FINAL_WEIGHTS: &str = "final.safetensors";
/// A variant's test predictions.
pub const PREDICTIONS: &str = "test_predictions.csv";
/// Mean-field theory's prediction for a variant.
pub const THEORY: &str = "theory.json";
/// The probe's directory inside a variant's.
pub const PROBE: &str = "probe";

/// Where a run stands, as `summary.json` says.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RunStatus {
    /// Being trained (or killed while it was: nobody holds its lock).
    #[default]
    Running,
    /// Stopped on request with checkpoints; `initscope resume` continues it.
    Interrupted,
    /// Every variant finished.
    Complete,
}

/// A run directory: its root and the paths of its files.
#[derive(Clone, Debug)]
pub struct RunDir {
    root: PathBuf,
}

impl RunDir {
    /// The run directory at `root` (nothing is read or made).
    pub fn new(root: &Path) -> Self {
        RunDir { root: root.into() }
    }

    /// The directory itself.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// `<run>/<name>`, one of the run-level files named above.
    pub fn file(&self, name: &str) -> PathBuf {
        self.root.join(name)
    }

    /// A variant's directory, `<run>/<variant>`.
    pub fn variant(&self, variant: &str) -> PathBuf {
        self.root.join(variant)
    }

    /// `<run>/<variant>/<name>`, one of the variant files named above.
    pub fn variant_file(&self, variant: &str, name: &str) -> PathBuf {
        self.root.join(variant).join(name)
    }

    /// `summary.json`: `None` when it is not there, an input error naming
    /// it when it cannot be read or parsed (cut short, say).
    pub fn read_summary(&self) -> Result<Option<RunSummary>> {
        let path = self.file(SUMMARY);
        let bytes = match std::fs::read(&path) {
            Ok(bytes) => bytes,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(input(format!("{}: cannot read ({e})", path.display()))),
        };
        let parsed = std::str::from_utf8(&bytes)
            .map_err(|e| e.to_string())
            .and_then(|text| serde_json::from_str::<RunSummary>(text).map_err(|e| e.to_string()));
        parsed.map(Some).map_err(|e| input(format!("{}: corrupt ({e})", path.display())))
    }

    /// Writes `summary.json` whole (renamed into place).
    pub fn write_summary(&self, summary: &RunSummary) -> Result<()> {
        let json = serde_json::to_string_pretty(summary).expect("a summary always serialises");
        write_atomic(&self.file(SUMMARY), json.as_bytes())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_summary_reads_back_missing_as_none_and_corrupt_as_an_error_naming_it() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = RunDir::new(tmp.path());
        assert!(dir.read_summary().unwrap().is_none());
        let mut summary = RunSummary::started("x", 2);
        summary.status = RunStatus::Interrupted;
        dir.write_summary(&summary).unwrap();
        let text = std::fs::read_to_string(dir.file(SUMMARY)).unwrap();
        assert!(text.contains("\"status\": \"interrupted\""), "{text}");
        assert_eq!(dir.read_summary().unwrap().unwrap().status, RunStatus::Interrupted);
        std::fs::write(dir.file(SUMMARY), &text[..text.len() / 2]).unwrap();
        let err = dir.read_summary().unwrap_err().to_string();
        assert!(err.contains("summary.json: corrupt ("), "{err}");
        // Records made before the status was written read as running.
        std::fs::write(dir.file(SUMMARY), text.replace("\"status\": \"interrupted\",", "")).unwrap();
        assert_eq!(dir.read_summary().unwrap().unwrap().status, RunStatus::Running);
    }
}
