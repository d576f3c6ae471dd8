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
use crate::train::grouping::{self, Grouping};
use crate::train::lockstep::{train_lockstep, Job};
use crate::train::{Event, Observer, VariantOutcome};
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
    /// How runs of the same shapes are grouped to train in lockstep.
    pub grouping: Grouping,
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
    run_variants(exp, data, dir, opts, fresh_summary(exp, opts)?, lock)
}

/// The summary a fresh run of `exp` starts from, once its settings and
/// options are checked.
pub fn fresh_summary(exp: &Experiment, opts: &RunOptions) -> Result<RunSummary> {
    exp.validate()?;
    if opts.threads == 0 {
        return Err(crate::error::input("threads: must be at least 1"));
    }
    Ok(RunSummary::started(&exp.name, opts.threads))
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
    let (exp, summary) = to_resume(dir, opts)?;
    run_variants(&exp, data, dir, opts, summary, lock)
}

/// The settings and summary the interrupted run in `dir` continues from
/// (read under its lock, which the caller holds).
pub fn to_resume(dir: &Path, opts: &RunOptions) -> Result<(Experiment, RunSummary)> {
    let exp = Experiment::from_file(&dir.join(SETTINGS))?;
    let summary = summary_to_resume(dir, &exp, opts)?;
    Ok((exp, summary))
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
    lock: RunLock,
) -> Result<RunOutcome> {
    let run = OpenRun::open(exp, data, dir, opts, summary, lock)?;
    let specs: Vec<&RunSpec> = run.pending.iter().map(|&u| &run.shared.specs[u]).collect();
    let plan = grouping::plan(&specs, opts.threads, opts.grouping);
    let groups: Vec<Vec<usize>> = plan.groups.iter().map(|g| g.iter().map(|&i| run.pending[i]).collect()).collect();
    // Groups train side by side on the plan's lanes, each taking the next
    // group not yet started, until none is left, a stop is requested or a
    // lane failed; a group interrupted stops its lane. Results do not
    // depend on the grouping or the threads (see `train::lockstep`).
    let shared = &run.shared;
    let stop = || opts.stop.load(Ordering::SeqCst) || shared.failed.load(Ordering::SeqCst);
    let outcome = on_lanes(&groups, plan.lanes, &stop, |group| {
        let units: Vec<(&SharedRun, usize)> = group.iter().map(|&u| (shared, u)).collect();
        match first_error(train_units(&units, data, plan.threads)) {
            Ok(interrupted) => Ok(if interrupted { LaneFlow::Stop } else { LaneFlow::Next }),
            Err(e) => {
                shared.failed.store(true, Ordering::SeqCst);
                Err(e)
            }
        }
    });
    run.close(outcome)
}

/// A run directory opened for training: its log, examples, theory and
/// summary written, its lock held, its pending runs (variant and seed)
/// ready to train alone or in lockstep with other runs' (a sweep's points
/// share groups).
pub struct OpenRun<'a> {
    shared: SharedRun<'a>,
    /// The units not finished yet, by position in `exp.runs()`.
    pending: Vec<usize>,
    // One writer per run directory: held until the run closes.
    _lock: RunLock,
}

impl<'a> OpenRun<'a> {
    /// Opens `dir` for `exp` with `summary` (fresh, or the one to resume).
    pub fn open(
        exp: &'a Experiment,
        data: &'a Dataset,
        dir: &'a Path,
        opts: &'a RunOptions,
        summary: RunSummary,
        lock: RunLock,
    ) -> Result<Self> {
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
        let specs = units.iter().map(|unit| RunSpec::resolve(exp, unit, DataShape::of(data))).collect();
        let shared = SharedRun {
            exp,
            dir,
            opts,
            units,
            specs,
            log: OrderedLog::new(Some(log), pending.clone(), opts.quiet),
            summary: Mutex::new(summary),
            failed: AtomicBool::new(false),
            theory,
        };
        Ok(OpenRun { shared, pending, _lock: lock })
    }

    /// The resolved runs still to train.
    pub fn pending(&self) -> Vec<(&SharedRun<'a>, usize)> {
        self.pending.iter().map(|&u| (&self.shared, u)).collect()
    }

    /// Writes the summary's final status after the units trained
    /// (`outcome`: whether some stopped on request, or the first error).
    pub fn close(self, outcome: Result<bool>) -> Result<RunOutcome> {
        let OpenRun { shared: run, .. } = self;
        let (dir, log) = (run.dir, run.log);
        log.flush_held()?;
        let mut summary = run.summary.into_inner().unwrap_or_else(|poisoned| poisoned.into_inner());
        let interrupted = outcome?;
        // A stop requested before a pending variant started leaves it for resume.
        let all_done = run.units.iter().all(|u| summary.variants.iter().any(|v| v.name == u.variant.name));
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
}

/// A unit's observers: its console, probe and recorder.
struct UnitObservers {
    console: Console,
    probe: Probe,
    recorder: Recorder,
}

impl Observer for UnitObservers {
    fn on_event(&mut self, variant: &str, event: &Event) -> Result<()> {
        // The recorder comes last: its checkpoint.json is the commit point
        // of everything the others wrote for the same event.
        self.console.on_event(variant, event)?;
        self.probe.on_event(variant, event)?;
        self.recorder.on_event(variant, event)
    }
}

/// Trains `units` (each a run and a unit of it) in one lockstep group on
/// `threads` threads; each finished unit's result goes into its run's
/// summary. Returns, for each unit, whether it stopped on request, or its
/// error.
pub fn train_units(units: &[(&SharedRun, usize)], data: &Dataset, threads: usize) -> Vec<Result<bool>> {
    let mut results: Vec<Option<Result<bool>>> = units.iter().map(|_| None).collect();
    let mut ready = Vec::with_capacity(units.len());
    for (i, &(run, u)) in units.iter().enumerate() {
        match run.prepare(u, threads) {
            Ok((observers, resume)) => ready.push((i, observers, resume, run.stop_flag())),
            Err(e) => {
                run.failed.store(true, Ordering::SeqCst);
                results[i] = Some(Err(e));
            }
        }
    }
    let outcomes = {
        let mut jobs = Vec::with_capacity(ready.len());
        for (i, observers, resume, stop) in ready.iter_mut() {
            let (run, u) = units[*i];
            jobs.push(Job {
                spec: &run.specs[u],
                resume: resume.as_ref().map(|(c, p, o)| (c, p.as_slice(), o)),
                stop,
                failed: Some(&run.failed),
                observer: observers,
            });
        }
        train_lockstep(jobs, data, threads)
    };
    for ((i, observers, ..), outcome) in ready.into_iter().zip(outcomes) {
        let (run, u) = units[i];
        results[i] = Some(outcome.and_then(|outcome| run.complete(u, observers, outcome)));
    }
    results.into_iter().map(|r| r.expect("every unit has a result")).collect()
}

/// The first error of `results`, else whether any stopped on request.
pub fn first_error(results: impl IntoIterator<Item = Result<bool>>) -> Result<bool> {
    let mut interrupted = false;
    for r in results {
        interrupted |= r?;
    }
    Ok(interrupted)
}

/// A checkpoint to continue from: where, the parameters, the optimiser.
type Loaded = (crate::train::Checkpoint, Vec<crate::tensorfile::NamedTensor>, crate::train::OptimizerState);

/// What the units of an open run share.
pub struct SharedRun<'a> {
    exp: &'a Experiment,
    dir: &'a Path,
    opts: &'a RunOptions,
    /// Every unit of the experiment, in order, and its resolved run.
    units: Vec<crate::experiment::RunUnit>,
    specs: Vec<RunSpec>,
    log: Arc<OrderedLog>,
    summary: Mutex<RunSummary>,
    /// Raised when a unit failed: the others stop at their next step.
    failed: AtomicBool,
    /// Mean-field theory's prediction per variant (as written in the experiment).
    theory: Vec<VariantPrediction>,
}

impl SharedRun<'_> {
    /// A unit stops early on a signal, and when another unit of its run
    /// failed: its checkpoint lets `resume` continue it once the cause is
    /// mended.
    fn stop_flag(&self) -> impl Fn() -> bool + Sync + '_ {
        || self.opts.stop.load(Ordering::Relaxed) || self.failed.load(Ordering::Relaxed)
    }
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

    /// Unit `u`'s observers, and the checkpoint it continues from (checked
    /// to have been made under this machine's numerics).
    fn prepare(&self, u: usize, threads: usize) -> Result<(UnitObservers, Option<Loaded>)> {
        let variant = &self.units[u].variant;
        let mut console = Console::new(self.log.clone(), u, self.exp.log_every);
        let recorder = Recorder::new(self.dir);
        let probe = Probe::new(self.dir, self.exp.probe.clone(), threads);
        let resume = load_checkpoint(&self.dir.join(&variant.name))?;
        if let Some((checkpoint, ..)) = &resume {
            self.check_numerics(checkpoint, &mut console)?;
        }
        Ok((UnitObservers { console, probe, recorder }, resume))
    }

    /// After unit `u` trained: on finishing, adds its result to the summary
    /// (kept in the experiment's order) and writes it. Returns whether it
    /// stopped on request instead (with a checkpoint to resume from).
    fn complete(&self, u: usize, observers: UnitObservers, outcome: VariantOutcome) -> Result<bool> {
        let (dir, variant, spec) = (self.dir, &self.units[u].variant, &self.specs[u]);
        let UnitObservers { mut console, probe, .. } = observers;
        let interrupted = match outcome {
            VariantOutcome::Finished(mut result) => {
                result.verdicts = self.verdicts(spec, &probe);
                if result.verdicts.is_empty() {
                    console.line("Verdicts: none of the failure conditions was measured")?;
                }
                for v in &result.verdicts {
                    console.line(&format!("Verdict: {}", v.message))?;
                }
                let mut summary = self.summary.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
                summary.variants.push(result);
                let order: Vec<&String> = self.units.iter().map(|r| &r.variant.name).collect();
                summary.variants.sort_by_key(|v| order.iter().position(|name| **name == v.name));
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
