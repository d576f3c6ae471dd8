//! The local executor: a sweep's points on this machine, side by side on
//! the lanes that a run's variants use, with the data loaded once.

use super::spec::{Point, SweepSpec};
use super::table::{PointState, ResultRow};
use super::SweepDir;
use crate::data::Dataset;
use crate::fsutil::write_atomic;
use crate::parallel::{on_lanes, LaneFlow};
use crate::record::dir::SETTINGS;
use crate::record::RunSummary;
use crate::run::{first_error, fresh_summary, to_resume, train_units, OpenRun, RunOptions};
use crate::runlock::RunLock;
use crate::spec::{DataShape, RunSpec};
use crate::train::grouping::{plan_keyed, Grouping, Plan};
use anyhow::Result;
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

/// How a sweep runs.
#[derive(Clone, Debug)]
pub struct SweepOptions {
    /// The sweep directory (made, or continued when it holds the same sweep).
    pub dir: PathBuf,
    /// Root of the data sets.
    pub data_root: PathBuf,
    /// Worker threads: points train side by side, one lane per thread.
    pub threads: usize,
    /// No progress bar or lines (errors still go to standard error).
    pub quiet: bool,
    /// Raised (by a signal handler) to stop every point at its next step.
    pub stop: Arc<AtomicBool>,
    /// Run the points that failed before again.
    pub retry_failed: bool,
    /// How points of the same shapes are grouped to train in lockstep.
    pub grouping: Grouping,
}

/// A point that failed.
#[derive(Clone, Debug, PartialEq)]
pub struct FailedPoint {
    /// The point, 1-based.
    pub point: usize,
    /// Its axis values (`model.depth = 3, optimizer.lr = 0.1`).
    pub values: String,
    /// Why, in one line.
    pub why: String,
}

/// Where a sweep stands when [`run_sweep`] returns.
#[derive(Debug)]
pub struct SweepOutcome {
    /// Points in the sweep.
    pub total: usize,
    /// Points finished (now or before).
    pub done: usize,
    /// The points that failed.
    pub failed: Vec<FailedPoint>,
    /// Points another live process holds (left to it).
    pub running: usize,
    /// Stopped on request; the same command continues it.
    pub interrupted: bool,
}

/// Runs (or continues) the sweep `spec` in `opts.dir`: finished points are
/// kept, interrupted ones resume from their checkpoints, failed ones run
/// again only with `retry_failed`. Every point is validated before any runs.
pub fn run_sweep(spec: &SweepSpec, opts: &SweepOptions) -> Result<SweepOutcome> {
    if opts.threads == 0 {
        return Err(crate::error::input("threads: must be at least 1"));
    }
    let points = spec.points()?;
    let dir = SweepDir::prepare(spec, &opts.dir)?;
    let mut states: Vec<PointState> = points.iter().map(|p| dir.state(p)).collect();
    if opts.retry_failed {
        for (point, state) in points.iter().zip(states.iter_mut()) {
            if matches!(state, PointState::Failed(_)) {
                retry(&dir, point, opts.quiet)?;
                *state = dir.state(point);
            }
        }
    }
    let to_run: Vec<usize> =
        (0..points.len()).filter(|&p| matches!(states[p], PointState::Pending | PointState::Interrupted)).collect();
    if !opts.quiet {
        println!("{}", plan_line(&states));
    }
    let data = load_data(&points, &to_run, opts)?;
    let rows: Vec<Vec<ResultRow>> = points.iter().zip(&states).map(|(p, s)| dir.rows(p, s)).collect::<Result<_>>()?;
    dir.write_table(spec, &rows)?;
    let bar = progress_bar(points.len(), points.len() - to_run.len(), opts.quiet);
    let shared = Lanes {
        spec,
        points: &points,
        dir: &dir,
        data: &data,
        opts,
        rows: Mutex::new(rows),
        states: Mutex::new(states),
        bar,
    };
    shared.run(&to_run)?;
    shared.bar.finish_and_clear();
    let states = shared.states.into_inner().unwrap_or_else(|p| p.into_inner());
    let failed = points
        .iter()
        .zip(&states)
        .filter_map(|(p, s)| match s {
            PointState::Failed(why) => Some(FailedPoint { point: p.index + 1, values: p.describe(), why: why.clone() }),
            _ => None,
        })
        .collect();
    Ok(SweepOutcome {
        total: points.len(),
        done: states.iter().filter(|s| **s == PointState::Done).count(),
        failed,
        running: states.iter().filter(|s| matches!(s, PointState::Running(_))).count(),
        interrupted: states.iter().any(|s| matches!(s, PointState::Pending | PointState::Interrupted)),
    })
}

/// Makes failed `point` run again: forgets its failure and, when its
/// records are corrupt (it could only fail the same way again), moves its
/// run directory aside so that it runs from scratch, saying so.
pub(crate) fn retry(dir: &SweepDir, point: &Point, quiet: bool) -> Result<()> {
    dir.clear_failure(point)?;
    if let Some(why) = dir.corrupt_record(point) {
        let aside = dir.move_aside(point)?;
        if !quiet {
            println!(
                "point {}: {why}; its run directory is kept as {}; running it from scratch",
                point.index + 1,
                aside.display()
            );
        }
    }
    Ok(())
}

/// What a (continued) sweep is about to do, in one line: "6 points: 2 done
/// (skipped), 2 resumed from checkpoints, 2 to run".
pub(crate) fn plan_line(states: &[PointState]) -> String {
    let count = |f: fn(&PointState) -> bool| states.iter().filter(|s| f(s)).count();
    let parts = [
        (count(|s| *s == PointState::Done), "done (skipped)"),
        (count(|s| *s == PointState::Interrupted), "resumed from checkpoints"),
        (count(|s| *s == PointState::Pending), "to run"),
        (count(|s| matches!(s, PointState::Running(_))), "being run by another process (skipped)"),
        (count(|s| matches!(s, PointState::Failed(_))), "failed before (kept; --retry-failed runs them again)"),
    ];
    let said: Vec<String> = parts.iter().filter(|(n, _)| *n > 0).map(|(n, what)| format!("{n} {what}")).collect();
    format!("{} points: {}", states.len(), said.join(", "))
}

/// Each data set the points to run use, loaded once.
pub(crate) fn load_data(points: &[Point], to_run: &[usize], opts: &SweepOptions) -> Result<HashMap<String, Dataset>> {
    let mut data = HashMap::new();
    for &p in to_run {
        let source = &points[p].experiment.dataset;
        let key = format!("{source:?}");
        if let std::collections::hash_map::Entry::Vacant(slot) = data.entry(key) {
            slot.insert(source.load(&opts.data_root)?);
        }
    }
    Ok(data)
}

pub(crate) fn progress_bar(total: usize, done: usize, quiet: bool) -> ProgressBar {
    let target = if quiet { ProgressDrawTarget::hidden() } else { ProgressDrawTarget::stderr() };
    let bar = ProgressBar::with_draw_target(Some(total as u64), target);
    bar.set_style(
        ProgressStyle::with_template("{bar:30} {pos}/{len} points  {elapsed} elapsed, about {eta} left  {msg}")
            .expect("the template is valid"),
    );
    bar.set_position(done as u64);
    bar.reset_eta();
    bar
}

/// What the lanes of a sweep share.
struct Lanes<'a> {
    spec: &'a SweepSpec,
    points: &'a [Point],
    dir: &'a SweepDir,
    data: &'a HashMap<String, Dataset>,
    opts: &'a SweepOptions,
    /// Every point's rows of the table, replaced as points finish.
    rows: Mutex<Vec<Vec<ResultRow>>>,
    states: Mutex<Vec<PointState>>,
    bar: ProgressBar,
}

impl Lanes<'_> {
    /// Runs the points `to_run` in lockstep groups (see
    /// [`crate::train::grouping`]) on the plan's lanes, each taking the next
    /// group until none is left or a stop is requested.
    fn run(&self, to_run: &[usize]) -> Result<()> {
        let plan = plan_points(self.points, to_run, self.data, self.opts);
        if !self.opts.quiet && !to_run.is_empty() {
            self.bar.suspend(|| println!("{}", plan.describe()));
        }
        let groups: Vec<Vec<usize>> = plan.groups.iter().map(|g| g.iter().map(|&i| to_run[i]).collect()).collect();
        let stop = || self.opts.stop.load(Ordering::SeqCst);
        on_lanes(&groups, plan.lanes, &stop, |group| self.group(group, plan.threads).map(|()| LaneFlow::Next))?;
        Ok(())
    }

    /// Runs the points `group` in lockstep on `threads` threads, then
    /// records each one's state.
    fn group(&self, group: &[usize], threads: usize) -> Result<()> {
        let points: Vec<&Point> = group.iter().map(|&p| &self.points[p]).collect();
        let data = &self.data[&format!("{:?}", points[0].experiment.dataset)];
        let states = run_points(&points, self.dir, data, self.opts, threads);
        for (&p, state) in group.iter().zip(states) {
            self.point(p, state)?;
        }
        Ok(())
    }

    /// Records point `p`'s `state` and rewrites the table. Only a failure to write the table is an error:
    /// a point's own failure is recorded and the sweep goes on.
    fn point(&self, p: usize, state: PointState) -> Result<()> {
        let point = &self.points[p];
        if let PointState::Failed(why) = &state {
            self.dir.record_failure(point, why)?;
        }
        let rows = self.dir.rows(point, &state)?;
        {
            let mut all = self.rows.lock().unwrap_or_else(|e| e.into_inner());
            all[p] = rows;
            self.dir.write_table(self.spec, &all)?;
        }
        let line = match &state {
            PointState::Done => format!("point {} done ({})", p + 1, point.describe()),
            PointState::Failed(why) => format!("point {} FAILED ({}): {why}", p + 1, point.describe()),
            PointState::Running(holder) => {
                format!("point {} skipped ({}): being run by {holder}", p + 1, point.describe())
            }
            _ => format!("point {} interrupted ({})", p + 1, point.describe()),
        };
        if matches!(state, PointState::Done | PointState::Failed(_)) {
            self.bar.inc(1);
        }
        if !self.opts.quiet {
            self.bar.suspend(|| println!("{line}"));
        }
        self.states.lock().unwrap_or_else(|e| e.into_inner())[p] = state;
        Ok(())
    }
}

/// The lockstep plan of the points `to_run`: grouped by their first run's
/// shapes and their data set.
pub(crate) fn plan_points(
    points: &[Point],
    to_run: &[usize],
    data: &HashMap<String, Dataset>,
    opts: &SweepOptions,
) -> Plan {
    let specs: Vec<RunSpec> = to_run
        .iter()
        .map(|&p| {
            let exp = &points[p].experiment;
            let shape = DataShape::of(&data[&format!("{:?}", exp.dataset)]);
            RunSpec::resolve(exp, &exp.runs()[0], shape)
        })
        .collect();
    let refs: Vec<&RunSpec> = specs.iter().collect();
    let keys: Vec<String> = to_run
        .iter()
        .map(|&p| format!("{:?}/{}", points[p].experiment.dataset, points[p].experiment.runs().len()))
        .collect();
    plan_keyed(&refs, &keys, opts.threads, opts.grouping)
}

/// A point's run directory, held, with what its run needs.
struct PointRun {
    run_dir: PathBuf,
    run_opts: RunOptions,
    exp: crate::experiment::Experiment,
}

/// Runs `points` (of one data set) as one lockstep group on `threads`
/// threads, each in its run directory (continuing it when it was
/// interrupted). A crash or an error is its point's failure, not the
/// sweep's (a crash while the group trains fails the group's points).
pub(crate) fn run_points(
    points: &[&Point],
    dir: &SweepDir,
    data: &Dataset,
    opts: &SweepOptions,
    threads: usize,
) -> Vec<PointState> {
    let mut states: Vec<Option<PointState>> = points.iter().map(|_| None).collect();
    let (mut held, mut starts) = (Vec::new(), Vec::new());
    for (i, point) in points.iter().enumerate() {
        match std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| open_point(point, dir, opts, threads))) {
            Ok(Ok(Some((run, summary, lock)))) => {
                held.push((i, run));
                starts.push((summary, lock));
            }
            Ok(Ok(None)) => states[i] = Some(PointState::Done),
            Ok(Err(e)) => states[i] = Some(failure_state(&e)),
            Err(panic) => states[i] = Some(crashed(panic)),
        }
    }
    let mut opened = Vec::with_capacity(held.len());
    for ((i, run), (summary, lock)) in held.iter().zip(starts) {
        match OpenRun::open(&run.exp, data, &run.run_dir, &run.run_opts, summary, lock) {
            Ok(open) => opened.push((*i, open)),
            Err(e) => states[*i] = Some(failure_state(&e)),
        }
    }
    let units: Vec<_> = opened.iter().flat_map(|(_, open)| open.pending()).collect();
    let trained = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| train_units(&units, data, threads)));
    let mut results = match trained {
        Ok(results) => results.into_iter(),
        Err(panic) => {
            let crash = crashed(panic);
            for (i, _) in &opened {
                states[*i] = Some(crash.clone());
            }
            return states.into_iter().map(|s| s.expect("every point has a state")).collect();
        }
    };
    for (i, open) in opened {
        let own: Vec<Result<bool>> = results.by_ref().take(open.pending().len()).collect();
        states[i] = Some(match open.close(first_error(own)) {
            Ok(outcome) if outcome.interrupted => PointState::Interrupted,
            Ok(_) => PointState::Done,
            Err(e) => failure_state(&e),
        });
    }
    states.into_iter().map(|s| s.expect("every point has a state")).collect()
}

/// Takes `point`'s run directory: its lock, then what it holds judged
/// under the lock, so two processes that found the point fresh never both
/// start it. `None` when another process finished it since its state was
/// read.
fn open_point(
    point: &Point,
    dir: &SweepDir,
    opts: &SweepOptions,
    threads: usize,
) -> Result<Option<(PointRun, RunSummary, RunLock)>> {
    let run_dir = dir.run_dir(point);
    let run_opts = RunOptions {
        run_dir: Some(run_dir.clone()),
        runs_root: dir.root().join("runs"),
        data_root: opts.data_root.clone(),
        threads,
        quiet: true,
        stop: opts.stop.clone(),
        // A point continued on another node under other numerics would no
        // longer equal the uninterrupted point: it fails with the reason.
        allow_other_numerics: false,
        grouping: opts.grouping,
    };
    std::fs::create_dir_all(&run_dir)
        .map_err(|e| crate::error::input(format!("{}: cannot create: {e}", run_dir.display())))?;
    let lock = RunLock::acquire(&run_dir)?;
    if dir.is_complete(point) {
        return Ok(None);
    }
    let (exp, summary) = if run_dir.join(SETTINGS).exists() {
        to_resume(&run_dir, &run_opts)?
    } else {
        // A directory without settings was killed while being made.
        clear_all_but_lock(&run_dir)?;
        point.experiment.validate()?;
        write_atomic(&run_dir.join(SETTINGS), point.experiment.to_toml().as_bytes())?;
        (point.experiment.clone(), fresh_summary(&point.experiment, &run_opts)?)
    };
    Ok(Some((PointRun { run_dir, run_opts, exp }, summary, lock)))
}

/// The state of a point whose run failed with `e`: another process took
/// the point first (it is theirs, not failed), or the failure in one line.
fn failure_state(e: &anyhow::Error) -> PointState {
    match e.chain().find_map(|c| c.downcast_ref::<crate::runlock::RunDirBusy>()) {
        Some(busy) => PointState::Running(busy.holder.describe()),
        None => PointState::Failed(crate::error::one_line(e)),
    }
}

/// The state of a point whose run panicked.
fn crashed(panic: Box<dyn std::any::Any + Send>) -> PointState {
    let message = panic
        .downcast_ref::<&str>()
        .map(|s| s.to_string())
        .or_else(|| panic.downcast_ref::<String>().cloned())
        .unwrap_or_default();
    PointState::Failed(format!("crashed: {message}"))
}

/// Empties run directory `dir`, which this process holds, of everything
/// but its lock.
fn clear_all_but_lock(dir: &std::path::Path) -> Result<()> {
    for entry in std::fs::read_dir(dir)? {
        let entry = entry?;
        if entry.file_name() == crate::runlock::LOCK_FILE {
            continue;
        }
        if entry.file_type()?.is_dir() {
            std::fs::remove_dir_all(entry.path())?;
        } else {
            std::fs::remove_file(entry.path())?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_plan_line_counts_every_state_it_holds() {
        let states = [
            PointState::Done,
            PointState::Interrupted,
            PointState::Pending,
            PointState::Done,
            PointState::Pending,
            PointState::Interrupted,
        ];
        assert_eq!(plan_line(&states), "6 points: 2 done (skipped), 2 resumed from checkpoints, 2 to run");
        let states = [PointState::Pending, PointState::Failed("x".into())];
        assert_eq!(plan_line(&states), "2 points: 1 to run, 1 failed before (kept; --retry-failed runs them again)");
    }

    /// 200 training and 100 test images of noise, 28x28.
    fn noise(count: usize) -> crate::data::LabeledImages {
        let pixels = (0..count * 784).map(|i| ((i * 2_654_435_761usize) >> 7) as u8).collect();
        crate::data::LabeledImages {
            count,
            rows: 28,
            cols: 28,
            pixels,
            labels: (0..count).map(|i| (i % 10) as u8).collect(),
        }
    }

    #[test]
    fn two_lanes_that_both_found_a_point_fresh_train_it_once() {
        let tmp = tempfile::tempdir().unwrap();
        let text = "name = \"race\"\nepochs = 1\nbatch_size = 50\nlog_every = 0\n[model]\nwidth = 16\ndepth = 1\n\
                    [probe]\nevery = 0\n[[variants]]\nname = \"kaiming\"\nweight_init = { scheme = \"kaiming_uniform\" }\nbias_init = { scheme = \"constant\", value = 0.0 }\n[sweep]\nseed = [1]\n";
        let spec = SweepSpec::from_toml(text, "test").unwrap();
        let point = spec.point(0).unwrap();
        let data = crate::data::Dataset::new(noise(200), noise(100));
        for round in 0..4 {
            let root = tmp.path().join(format!("sweep{round}"));
            let dir = SweepDir::prepare(&spec, &root).unwrap();
            let opts = SweepOptions {
                dir: root.clone(),
                data_root: tmp.path().into(),
                threads: 1,
                quiet: true,
                stop: Arc::new(AtomicBool::new(false)),
                retry_failed: false,
                grouping: Grouping::Auto,
            };
            let start = std::sync::Barrier::new(2);
            let ends: Vec<PointState> = std::thread::scope(|s| {
                let lanes: Vec<_> = (0..2)
                    .map(|_| {
                        s.spawn(|| {
                            start.wait();
                            run_points(&[&point], &dir, &data, &opts, 1).pop().unwrap()
                        })
                    })
                    .collect();
                lanes.into_iter().map(|l| l.join().unwrap()).collect()
            });
            assert!(ends.iter().all(|e| matches!(e, PointState::Done | PointState::Running(_))), "{ends:?}");
            assert!(ends.contains(&PointState::Done), "{ends:?}");
            assert_eq!(dir.state(&point), PointState::Done);
            let log = std::fs::read_to_string(dir.run_dir(&point).join("log.txt")).unwrap();
            assert_eq!(log.matches("== kaiming ==").count(), 1, "trained twice:\n{log}");
        }
    }
}
