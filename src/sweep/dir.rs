//! The sweep directory: its resolved file, its points' run directories and
//! states, and its table. The one home of the sweep's layout on disk.

use super::spec::{Point, SweepSpec};
use super::table::{point_rows, write_table, PointState, ResultRow};
use crate::error::input;
use crate::fsutil::write_atomic;
use crate::record::{RunDir, RunStatus, RunSummary};
use anyhow::Result;
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};

/// A sweep directory holding one sweep.
#[derive(Clone, Debug)]
pub struct SweepDir {
    root: PathBuf,
    /// Digits of the point numbers in run directory names.
    digits: usize,
}

/// `status/<point>.json`: why a point failed.
#[derive(Serialize, Deserialize)]
struct Failure {
    point: usize,
    values: String,
    error: String,
}

impl SweepDir {
    /// Makes `root` for `spec`, or checks that it already holds the same
    /// sweep (its `sweep.toml` equals `spec`'s resolved file), so the same
    /// command continues a sweep and never mixes two.
    pub fn prepare(spec: &SweepSpec, root: &Path) -> Result<Self> {
        let resolved = spec.resolved_toml();
        let file = root.join("sweep.toml");
        match std::fs::read_to_string(&file) {
            Ok(existing) if existing == resolved => {}
            Ok(_) => {
                return Err(input(format!(
                "{}: holds a different sweep (its sweep.toml differs from this file and options); choose another --out",
                root.display()
            )))
            }
            Err(_) if root.is_dir() && std::fs::read_dir(root).is_ok_and(|mut d| d.next().is_some()) => {
                return Err(input(format!("{}: exists and is not a sweep directory (no sweep.toml)", root.display())))
            }
            Err(_) => {
                std::fs::create_dir_all(root.join("runs"))
                    .map_err(|e| input(format!("{}: cannot create the sweep directory: {e}", root.display())))?;
                write_atomic(&file, resolved.as_bytes())
                    .map_err(|e| input(format!("{}: cannot write: {e:#}", file.display())))?;
            }
        }
        Ok(Self::at(root, spec.len()))
    }

    /// Opens an existing sweep directory: its resolved sweep and the directory.
    pub fn open(root: &Path) -> Result<(SweepSpec, Self)> {
        let file = root.join("sweep.toml");
        if !file.exists() {
            return Err(input(format!("{}: not a sweep directory (no sweep.toml)", root.display())));
        }
        let spec = SweepSpec::from_file(&file)?;
        let dir = Self::at(root, spec.len());
        Ok((spec, dir))
    }

    fn at(root: &Path, points: usize) -> Self {
        SweepDir { root: root.into(), digits: points.to_string().len().max(4) }
    }

    /// The directory itself.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// The run directory's name of `point`: `p0001` for the first.
    pub fn run_name(&self, point: &Point) -> String {
        format!("p{:0width$}", point.index + 1, width = self.digits)
    }

    /// The run directory of `point`.
    pub fn run_dir(&self, point: &Point) -> PathBuf {
        self.root.join("runs").join(self.run_name(point))
    }

    fn failure_file(&self, point: &Point) -> PathBuf {
        self.root.join("status").join(format!("{}.json", self.run_name(point)))
    }

    /// Where `point` stands, from its files.
    pub fn state(&self, point: &Point) -> PointState {
        if let Ok(text) = std::fs::read_to_string(self.failure_file(point)) {
            let why = serde_json::from_str::<Failure>(&text).map_or(text, |f| f.error);
            return PointState::Failed(why);
        }
        let run_dir = self.run_dir(point);
        if let Some(holder) = crate::runlock::live_holder(&run_dir) {
            return PointState::Running(holder.describe());
        }
        if self.is_complete(point) {
            PointState::Done
        } else if run_dir.exists() {
            PointState::Interrupted
        } else {
            PointState::Pending
        }
    }

    /// Whether `point`'s summary says it is complete (whoever holds it).
    pub fn is_complete(&self, point: &Point) -> bool {
        self.summary(point).ok().flatten().is_some_and(|s| s.status == RunStatus::Complete)
    }

    /// Why `point`'s records cannot be read, if they cannot: a
    /// `summary.json` that is there but does not parse (cut short, say).
    /// Such a point cannot continue; `--retry-failed` moves its run
    /// directory aside and runs it afresh.
    pub fn corrupt_record(&self, point: &Point) -> Option<String> {
        self.summary(point).err().map(|e| e.to_string())
    }

    /// `point`'s `summary.json` ([`RunDir::read_summary`]).
    pub fn summary(&self, point: &Point) -> Result<Option<RunSummary>> {
        RunDir::new(&self.run_dir(point)).read_summary()
    }

    /// Moves `point`'s run directory aside, to `runs/<name>.corrupt-<n>`
    /// (kept for inspection, never deleted), so that it runs from scratch;
    /// returns where it went.
    pub fn move_aside(&self, point: &Point) -> Result<PathBuf> {
        let from = self.run_dir(point);
        let name = self.run_name(point);
        let to = (1..)
            .map(|n| self.root.join("runs").join(format!("{name}.corrupt-{n}")))
            .find(|p| !p.exists())
            .expect("some name is free");
        std::fs::rename(&from, &to).map_err(|e| input(format!("{}: cannot move aside: {e}", from.display())))?;
        Ok(to)
    }

    /// Records that `point` failed, and why.
    pub fn record_failure(&self, point: &Point, why: &str) -> Result<()> {
        std::fs::create_dir_all(self.root.join("status"))?;
        let failure = Failure { point: point.index + 1, values: point.describe(), error: why.into() };
        let json = serde_json::to_string_pretty(&failure).expect("a failure always serialises");
        write_atomic(&self.failure_file(point), json.as_bytes())
    }

    /// Forgets that `point` failed, so it runs again.
    pub fn clear_failure(&self, point: &Point) -> Result<()> {
        match std::fs::remove_file(self.failure_file(point)) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(e.into()),
            _ => Ok(()),
        }
    }

    /// The table rows of `point` in state `state`: a point whose summary
    /// is corrupt has no results yet (`sweep report` warns about it).
    pub fn rows(&self, point: &Point, state: &PointState) -> Result<Vec<ResultRow>> {
        let summary = self.summary(point).ok().flatten();
        point_rows(point, &format!("runs/{}", self.run_name(point)), &self.run_dir(point), summary, state)
    }

    /// Rewrites `sweep.csv` atomically from every point's rows.
    pub fn write_table(&self, spec: &SweepSpec, rows: &[Vec<ResultRow>]) -> Result<()> {
        let flat: Vec<ResultRow> = rows.iter().flatten().cloned().collect();
        write_table(&self.root.join("sweep.csv"), &spec.keys(), &flat)
    }

    /// Writes `lr-optima.csv` (each variant's best learning rate per width,
    /// [`crate::lr_transfer::optima_csv`]) atomically.
    pub fn write_lr_optima(&self, csv: &str) -> Result<()> {
        write_atomic(&self.root.join("lr-optima.csv"), csv.as_bytes())
    }
}
