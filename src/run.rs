//! Runs an experiment end to end: run directory, data, every variant,
//! records and summary.

use crate::console::Console;
use crate::data::Dataset;
use crate::experiment::Experiment;
use crate::fsutil::write_atomic;
use crate::probe::Probe;
use crate::record::{load_checkpoint, save_examples, Environment, Recorder, RunSummary};
use crate::train::{train_variant, Event, Observer, VariantOutcome};
use anyhow::{Context, Result};
use std::path::{Path, PathBuf};
use std::sync::atomic::AtomicBool;
use std::sync::Arc;

/// Where a run reads and writes, and how it reports.
#[derive(Clone, Debug)]
pub struct RunOptions {
    /// The run directory; `None` makes `runs_root/<name>-<UTC timestamp>`.
    pub run_dir: Option<PathBuf>,
    /// Parent of generated run directories.
    pub runs_root: PathBuf,
    /// Root of the data sets (`<data_root>/<dataset>/`).
    pub data_root: PathBuf,
    /// Worker threads.
    pub threads: usize,
    /// No log lines or progress bar on the console (the log file is still written).
    pub quiet: bool,
    /// Raised (by a signal handler) to stop at the next step boundary.
    pub stop: Arc<AtomicBool>,
}

/// A finished run.
#[derive(Debug)]
pub struct RunOutcome {
    /// Its directory.
    pub dir: PathBuf,
    /// What `summary.json` says.
    pub summary: RunSummary,
    /// Stopped on request before the end; `initscope resume` continues it.
    pub interrupted: bool,
}

/// Several observers as one.
pub struct Fanout<'a>(pub Vec<&'a mut dyn Observer>);

impl Observer for Fanout<'_> {
    fn on_event(&mut self, variant: &str, event: &Event) -> Result<()> {
        self.0.iter_mut().try_for_each(|o| o.on_event(variant, event))
    }
}

/// Creates a fresh run directory; an existing non-empty one is refused, so
/// no earlier records are overwritten. Checks it can be written before any
/// training starts.
fn create_run_dir(exp: &Experiment, opts: &RunOptions) -> Result<PathBuf> {
    let dir = match &opts.run_dir {
        Some(dir) => dir.clone(),
        None => {
            let stamp = humantime::format_rfc3339_seconds(std::time::SystemTime::now()).to_string();
            let stamp: String =
                stamp.chars().filter(|c| c.is_ascii_digit() || *c == 'T').collect::<String>().replace('T', "-");
            let base = opts.runs_root.join(format!("{}-{stamp}", exp.name));
            let mut dir = base.clone();
            let mut n = 2;
            while dir.exists() {
                dir = PathBuf::from(format!("{}-{n}", base.display()));
                n += 1;
            }
            dir
        }
    };
    if dir.is_dir() && std::fs::read_dir(&dir).map(|mut d| d.next().is_some()).unwrap_or(false) {
        return Err(crate::error::input(format!(
            "{}: the run directory already exists and is not empty",
            dir.display()
        )));
    }
    std::fs::create_dir_all(&dir)
        .map_err(|e| crate::error::input(format!("{}: cannot create the run directory: {e}", dir.display())))?;
    write_atomic(&dir.join(".write-test"), b"")
        .map_err(|e| crate::error::input(format!("{}: cannot write to the run directory: {e:#}", dir.display())))?;
    let _ = std::fs::remove_file(dir.join(".write-test"));
    Ok(dir)
}

/// Runs every variant of `exp`, writing the records into a new run directory.
pub fn run_experiment(exp: &Experiment, opts: &RunOptions) -> Result<RunOutcome> {
    exp.validate()?;
    let dir = create_run_dir(exp, opts)?;
    write_atomic(&dir.join("experiment.toml"), exp.to_toml().as_bytes())?;
    let data = exp.dataset.load(&opts.data_root)?;
    run_on_data(exp, &data, &dir, opts)
}

/// Runs every variant of `exp` on already loaded data, recording into `dir`.
pub fn run_on_data(exp: &Experiment, data: &Dataset, dir: &Path, opts: &RunOptions) -> Result<RunOutcome> {
    let summary = RunSummary {
        experiment: exp.name.clone(),
        status: "running".into(),
        environment: Environment::current(opts.threads),
        variants: Vec::new(),
    };
    run_variants(exp, data, dir, opts, summary)
}

/// Continues an interrupted (or killed) run in `dir` from its records:
/// finished variants are kept, the interrupted one continues from its last
/// checkpoint, the rest run. The finished run is bit-identical to one that
/// never stopped.
pub fn resume_experiment(dir: &Path, opts: &RunOptions) -> Result<RunOutcome> {
    let exp = Experiment::from_file(&dir.join("experiment.toml"))?;
    let summary_path = dir.join("summary.json");
    let mut summary = match std::fs::read_to_string(&summary_path) {
        Ok(text) => serde_json::from_str::<RunSummary>(&text)
            .map_err(|e| crate::error::input(format!("{}: {e}", summary_path.display())))?,
        Err(_) => RunSummary {
            experiment: exp.name.clone(),
            status: "running".into(),
            environment: Environment::current(opts.threads),
            variants: Vec::new(),
        },
    };
    if summary.status == "complete" {
        return Err(crate::error::input(format!("{}: the run is complete; there is nothing to resume", dir.display())));
    }
    summary.status = "running".into();
    let data = exp.dataset.load(&opts.data_root)?;
    run_variants(&exp, &data, dir, opts, summary)
}

fn write_summary(dir: &Path, summary: &RunSummary) -> Result<()> {
    let json = serde_json::to_string_pretty(summary).expect("summary always serialises");
    write_atomic(&dir.join("summary.json"), json.as_bytes())
}

fn run_variants(
    exp: &Experiment,
    data: &Dataset,
    dir: &Path,
    opts: &RunOptions,
    mut summary: RunSummary,
) -> Result<RunOutcome> {
    let log = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(dir.join("log.txt"))
        .with_context(|| format!("{}: cannot open log.txt", dir.display()))?;
    let mut console = Console::new(Some(log), exp.log_every, opts.quiet);
    save_examples(&data.test, dir)?;
    let mut recorder = Recorder::new(dir);
    let mut probe = Probe::new(dir, exp.probe.clone(), opts.threads);
    write_summary(dir, &summary)?;
    for unit in exp.runs() {
        let variant = &unit.variant;
        if summary.variants.iter().any(|v| v.name == variant.name) {
            continue;
        }
        let resume = load_checkpoint(&dir.join(&variant.name))?;
        let resume_ref = resume.as_ref().map(|(c, p, o)| (c, p.as_slice(), o));
        // The recorder comes last: its checkpoint.json is the commit point
        // of everything the others wrote for the same event.
        let mut observers = Fanout(vec![&mut console, &mut probe, &mut recorder]);
        match train_variant(exp, &unit, data, opts.threads, resume_ref, &opts.stop, &mut observers)? {
            VariantOutcome::Finished(mut result) => {
                result.verdicts = probe.verdicts().to_vec();
                if result.verdicts.is_empty() {
                    console.line("Verdicts: none of the failure conditions was measured")?;
                }
                for v in &result.verdicts {
                    console.line(&format!("Verdict: {}", v.message))?;
                }
                summary.variants.push(result);
                write_summary(dir, &summary)?;
            }
            VariantOutcome::Interrupted(at) => {
                summary.status = "interrupted".into();
                write_summary(dir, &summary)?;
                console.line(&format!(
                    "Interrupted: {} stopped after step {} of epoch {}; continue with: initscope resume {}",
                    variant.name,
                    at.step,
                    at.epoch,
                    dir.display()
                ))?;
                return Ok(RunOutcome { dir: dir.into(), summary, interrupted: true });
            }
        }
    }
    summary.status = "complete".into();
    write_summary(dir, &summary)?;
    Ok(RunOutcome { dir: dir.into(), summary, interrupted: false })
}
