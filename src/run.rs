//! Runs an experiment end to end: run directory, data, every variant,
//! records and summary.

use crate::console::{Console, OrderedLog};
use crate::data::Dataset;
use crate::experiment::Experiment;
use crate::fsutil::write_atomic;
use crate::parallel::{on_lanes, LaneFlow};
use crate::probe::Probe;
use crate::record::dir::{LOG, SETTINGS, THEORY};
use crate::record::{save_examples, Recorder, RunDir, RunStatus, RunSummary};
use crate::runlock::RunLock;
use crate::spec::{DataShape, RunSpec};
use crate::theory::norms::{norm_verdict, without_norms, NormInputs};
use crate::theory::VariantPrediction;
use crate::train::checkpoint::load_checkpoint;
use crate::train::{train_variant, Event, Observer, VariantOutcome};
use crate::verdict::Verdict;
use anyhow::{Context, Result};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

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
    /// Continue a checkpoint made under other numerics (another
    /// instruction-set path: the result is no longer bit-identical, and
    /// the summary says so) instead of refusing.
    pub allow_other_numerics: bool,
}

/// True when `err` or anything it wraps is bad input (an
/// [`crate::error::InputError`], or a malformed IDX file): what the command
/// line exits 2 on and Python raises `initscope.InputError` for.
pub fn is_input_error(err: &anyhow::Error) -> bool {
    err.chain().any(|c| c.is::<crate::error::InputError>() || c.is::<crate::data::idx::IdxError>())
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
    let dir = start_run_dir(exp, opts)?;
    let data = exp.dataset.load(&opts.data_root)?;
    run_on_data(exp, &data, &dir, opts)
}

/// Validates `exp`, creates its run directory (`opts.run_dir`, or a new
/// one under `opts.runs_root`) and saves the resolved settings in it.
pub fn start_run_dir(exp: &Experiment, opts: &RunOptions) -> Result<PathBuf> {
    exp.validate()?;
    let dir = create_run_dir(exp, opts)?;
    write_atomic(&dir.join(SETTINGS), exp.to_toml().as_bytes())?;
    Ok(dir)
}

/// Runs every variant of `exp` on already loaded data, recording into `dir`.
/// The settings are validated here too, so a library user meets the same
/// one-line errors as the command line, never a panic.
pub fn run_on_data(exp: &Experiment, data: &Dataset, dir: &Path, opts: &RunOptions) -> Result<RunOutcome> {
    run_with_lock(exp, data, dir, opts, RunLock::acquire(dir)?)
}

/// [`run_on_data`] in a run directory whose lock the caller took (a sweep
/// point takes it before it looks at what the directory holds).
pub fn run_with_lock(
    exp: &Experiment,
    data: &Dataset,
    dir: &Path,
    opts: &RunOptions,
    lock: RunLock,
) -> Result<RunOutcome> {
    exp.validate()?;
    if opts.threads == 0 {
        return Err(crate::error::input("threads: must be at least 1"));
    }
    run_variants(exp, data, dir, opts, RunSummary::started(&exp.name, opts.threads), lock)
}

/// Continues an interrupted (or killed) run in `dir` from its records:
/// finished variants are kept, the interrupted one continues from its last
/// checkpoint, the rest run. The finished run is bit-identical to one that
/// never stopped.
pub fn resume_experiment(dir: &Path, opts: &RunOptions) -> Result<RunOutcome> {
    if !dir.join(SETTINGS).is_file() {
        return Err(crate::error::input(format!("{}: not a run directory (no experiment.toml)", dir.display())));
    }
    let lock = RunLock::acquire(dir)?;
    let exp = Experiment::from_file(&dir.join(SETTINGS))?;
    let summary = summary_to_resume(dir, &exp, opts)?;
    let data = exp.dataset.load(&opts.data_root)?;
    run_variants(&exp, &data, dir, opts, summary, lock)
}

/// [`resume_experiment`] on already loaded data (the run's own settings
/// are read from its `experiment.toml`).
pub fn resume_on_data(dir: &Path, data: &Dataset, opts: &RunOptions) -> Result<RunOutcome> {
    resume_with_lock(dir, data, opts, RunLock::acquire(dir)?)
}

/// [`resume_on_data`] in a run directory whose lock the caller took: the
/// records it continues from are read under the lock, so no other writer
/// changes them meanwhile.
pub fn resume_with_lock(dir: &Path, data: &Dataset, opts: &RunOptions, lock: RunLock) -> Result<RunOutcome> {
    let exp = Experiment::from_file(&dir.join(SETTINGS))?;
    let summary = summary_to_resume(dir, &exp, opts)?;
    run_variants(&exp, data, dir, opts, summary, lock)
}

/// The summary an interrupted run continues from; a complete run is an error.
fn summary_to_resume(dir: &Path, exp: &Experiment, opts: &RunOptions) -> Result<RunSummary> {
    let found = RunDir::new(dir).read_summary()?;
    let mut summary = found.unwrap_or_else(|| RunSummary::started(&exp.name, opts.threads));
    if summary.status == RunStatus::Complete {
        return Err(crate::error::input(format!("{}: the run is complete; there is nothing to resume", dir.display())));
    }
    summary.status = RunStatus::Running;
    Ok(summary)
}

/// Mean-field theory's prediction for each variant of `exp`, written for
/// each run as `<variant>/theory.json` beside what the probe will measure.
fn write_theory(exp: &Experiment, data: &Dataset, dir: &Path) -> Result<Vec<VariantPrediction>> {
    let predictions = crate::theory::predict_all(exp, data);
    for unit in exp.runs() {
        let Some(p) = predictions.iter().find(|p| p.name == unit.group) else { continue };
        let path = dir.join(&unit.variant.name).join(THEORY);
        if path.exists() {
            continue;
        }
        std::fs::create_dir_all(dir.join(&unit.variant.name))?;
        let p = VariantPrediction { name: unit.variant.name.clone(), ..p.clone() };
        let json = serde_json::to_string_pretty(&p).expect("a prediction always serialises");
        write_atomic(&path, json.as_bytes())?;
    }
    Ok(predictions)
}

fn write_summary(dir: &Path, summary: &RunSummary) -> Result<()> {
    RunDir::new(dir).write_summary(summary)
}

fn run_variants(
    exp: &Experiment,
    data: &Dataset,
    dir: &Path,
    opts: &RunOptions,
    summary: RunSummary,
    // One writer per run directory: held until the run ends.
    _lock: RunLock,
) -> Result<RunOutcome> {
    let log = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(dir.join(LOG))
        .with_context(|| format!("{}: cannot open log.txt", dir.display()))?;
    save_examples(&data.test, dir)?;
    let theory = write_theory(exp, data, dir)?;
    write_summary(dir, &summary)?;
    let units = exp.runs();
    let pending: Vec<usize> =
        (0..units.len()).filter(|&u| !summary.variants.iter().any(|v| v.name == units[u].variant.name)).collect();
    // Independent variants train side by side: min(threads, variants)
    // lanes of threads / lanes threads, each taking the next variant not
    // yet started; a lone variant gets every thread. Results do not depend
    // on the split (see `train`).
    let lanes = opts.threads.min(pending.len()).max(1);
    let run = SharedRun {
        exp,
        data,
        dir,
        opts,
        threads: (opts.threads / lanes).max(1),
        log: OrderedLog::new(Some(log), pending.clone(), opts.quiet),
        summary: Mutex::new(summary),
        failed: AtomicBool::new(false),
        theory,
    };
    // A lane trains variants until none is left, a stop is requested or a
    // lane failed; a variant interrupted stops its lane.
    let stop = || opts.stop.load(Ordering::SeqCst) || run.failed.load(Ordering::SeqCst);
    let outcome = on_lanes(&pending, lanes, &stop, |&u| match run.unit(&units[u], u) {
        Ok(interrupted) => Ok(if interrupted { LaneFlow::Stop } else { LaneFlow::Next }),
        Err(e) => {
            run.failed.store(true, Ordering::SeqCst);
            Err(e)
        }
    });
    let log = run.log;
    log.flush_held()?;
    let mut summary = run.summary.into_inner().unwrap_or_else(|poisoned| poisoned.into_inner());
    let interrupted = outcome?;
    // A stop requested before a pending variant started leaves it for resume.
    let all_done = units.iter().all(|u| summary.variants.iter().any(|v| v.name == u.variant.name));
    if interrupted || !all_done {
        summary.status = RunStatus::Interrupted;
        write_summary(dir, &summary)?;
        if !interrupted {
            log.line(None, &format!("Interrupted; continue with: initscope resume {}", dir.display()))?;
        }
        return Ok(RunOutcome { dir: dir.into(), summary, interrupted: true });
    }
    summary.status = RunStatus::Complete;
    write_summary(dir, &summary)?;
    Ok(RunOutcome { dir: dir.into(), summary, interrupted: false })
}

/// What the lanes of a run share.
struct SharedRun<'a> {
    exp: &'a Experiment,
    data: &'a Dataset,
    dir: &'a Path,
    opts: &'a RunOptions,
    /// Threads of each lane.
    threads: usize,
    log: Arc<OrderedLog>,
    summary: Mutex<RunSummary>,
    /// Raised when a lane failed: the others stop at their next step.
    failed: AtomicBool,
    /// Mean-field theory's prediction per variant (as written in the experiment).
    theory: Vec<VariantPrediction>,
}

impl SharedRun<'_> {
    /// Refuses to continue `checkpoint` under numerics other than those it
    /// was made with (one line naming its file), unless the options allow
    /// it: then says so on the console and in the summary.
    fn check_numerics(&self, checkpoint: &crate::train::Checkpoint, console: &mut Console) -> Result<()> {
        let here = crate::nn::matmul::numerics_fingerprint();
        if checkpoint.numerics == here {
            return Ok(());
        }
        let made =
            if checkpoint.numerics.is_empty() { "unrecorded (an earlier initscope)" } else { &checkpoint.numerics };
        let path = self.dir.join(&checkpoint.variant).join("checkpoint.json");
        if !self.opts.allow_other_numerics {
            return Err(crate::error::input(format!(
                "{}: made under numerics {made}, this machine computes {here}; continuing would not be bit-identical to an uninterrupted run (resume --allow-other-numerics continues anyway)",
                path.display()
            )));
        }
        console.line(&format!(
            "Warning: {} continues under numerics {here} from a checkpoint made under {made}: no longer bit-identical to an uninterrupted run",
            checkpoint.variant
        ))?;
        let mut summary = self.summary.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        summary.environment.numerics_changed.push(format!("{}: {made} -> {here}", checkpoint.variant));
        Ok(())
    }

    /// The probe's verdicts on run `spec`, with theory's prediction quoted
    /// where it explains one, and what its norms compensate for.
    fn verdicts(&self, spec: &RunSpec, probe: &Probe) -> Vec<Verdict> {
        let mut verdicts = probe.verdicts().to_vec();
        let Some(prediction) = self.theory.iter().find(|p| p.name == spec.group) else { return verdicts };
        let pre_std = probe.first_step_pre_std();
        crate::theory::quote_in_verdicts(&mut verdicts, prediction, &pre_std);
        let stream_rms = probe.first_step_stream_rms();
        let measured = NormInputs { pre_std: &pre_std, stream_rms: &stream_rms };
        let bare = without_norms(spec, prediction.input_second_moment);
        verdicts.extend(bare.and_then(|bare| norm_verdict(spec, &bare, &measured)));
        verdicts
    }

    /// Trains unit `u` with its own console, probe and recorder; on
    /// finishing, adds its result to the summary (kept in the experiment's
    /// order) and writes it. Returns whether it stopped on request instead
    /// (with a checkpoint to resume from).
    fn unit(&self, unit: &crate::experiment::RunUnit, u: usize) -> Result<bool> {
        let (exp, dir, threads) = (self.exp, self.dir, self.threads);
        let variant = &unit.variant;
        let mut console = Console::new(self.log.clone(), u, exp.log_every);
        let mut recorder = Recorder::new(dir);
        let mut probe = Probe::new(dir, exp.probe.clone(), threads);
        let resume = load_checkpoint(&dir.join(&variant.name))?;
        if let Some((checkpoint, ..)) = &resume {
            self.check_numerics(checkpoint, &mut console)?;
        }
        let resume_ref = resume.as_ref().map(|(c, p, o)| (c, p.as_slice(), o));
        // The recorder comes last: its checkpoint.json is the commit point
        // of everything the others wrote for the same event.
        let mut observers = Fanout(vec![&mut console, &mut probe, &mut recorder]);
        // A variant stops early on a signal, and when another lane failed:
        // its checkpoint lets `resume` continue it once the cause is mended.
        let stop = || self.opts.stop.load(Ordering::Relaxed) || self.failed.load(Ordering::Relaxed);
        let spec = RunSpec::resolve(exp, unit, DataShape::of(self.data));
        let outcome = train_variant(&spec, self.data, threads, resume_ref, &stop, &mut observers)?;
        let interrupted = match outcome {
            VariantOutcome::Finished(mut result) => {
                result.verdicts = self.verdicts(&spec, &probe);
                if result.verdicts.is_empty() {
                    console.line("Verdicts: none of the failure conditions was measured")?;
                }
                for v in &result.verdicts {
                    console.line(&format!("Verdict: {}", v.message))?;
                }
                let mut summary = self.summary.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
                summary.variants.push(result);
                let order: Vec<String> = exp.runs().into_iter().map(|r| r.variant.name).collect();
                summary.variants.sort_by_key(|v| order.iter().position(|name| *name == v.name));
                write_summary(dir, &summary)?;
                false
            }
            VariantOutcome::NotStarted => {
                console.line(&format!(
                    "Interrupted: {} stopped while initialising; it starts afresh with: initscope resume {}",
                    variant.name,
                    dir.display()
                ))?;
                true
            }
            VariantOutcome::Interrupted(at) => {
                console.line(&format!(
                    "Interrupted: {} stopped after step {} of epoch {}; continue with: initscope resume {}",
                    variant.name,
                    at.step,
                    at.epoch,
                    dir.display()
                ))?;
                true
            }
        };
        self.log.finish(u)?;
        Ok(interrupted)
    }
}
