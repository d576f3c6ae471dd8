//! The Slurm executor: a sweep's points as a job array. initscope adds no
//! scheduler of its own: it prepares the sweep directory (on the cluster's
//! shared filesystem) as the local executor does, writes one batch script,
//! `slurm/submit.sh`, and submits it as arrays of at most the cluster's
//! `MaxArraySize` tasks. Each task runs its points through the same code
//! path as local points (`local::run_points`); on Slurm's warning
//! signal before the time limit, or SIGTERM at preemption, a task stops at
//! the next step with a checkpoint and requeues itself, so the point
//! resumes bit-identically.
//!
//! ```text
//! <sweep>/slurm/submit.sh        the batch script (readable, submittable by hand)
//! <sweep>/slurm/tasks-<n>.txt    submission n: per task, the points it runs
//! <sweep>/slurm/jobs.txt         the arrays submitted: job id, tasks file, offset
//! <sweep>/slurm/<job>_<task>.out each task's log
//! ```

use super::local::{load_data, plan_points, progress_bar, run_points, SweepOptions};
use super::queue::{self, Queue, SubmittedArray};
use super::spec::SweepSpec;
use super::table::PointState;
use super::SweepDir;
use crate::error::input;
use crate::train::grouping::Grouping;
use anyhow::{bail, Context, Result};
use std::path::{Path, PathBuf};
use std::process::Command;

/// How the sweep goes to Slurm.
#[derive(Clone, Debug)]
pub struct SlurmOptions {
    /// `--partition`.
    pub partition: Option<String>,
    /// `--time` (HH:MM:SS).
    pub time: Option<String>,
    /// `--cpus-per-task` (and the threads of each point).
    pub cpus_per_task: usize,
    /// `--mem`.
    pub mem: Option<String>,
    /// At most this many tasks at once (`%K` of `--array`).
    pub max_running: Option<usize>,
    /// Points each task runs, one after another.
    pub points_per_task: usize,
    /// More `#SBATCH` arguments, as given.
    pub sbatch_args: Vec<String>,
    /// Times a stopped task requeues itself before its point counts as failed.
    pub max_requeues: usize,
    /// The initscope binary the tasks run.
    pub binary: PathBuf,
}

/// What was submitted.
#[derive(Debug)]
pub struct Submission {
    /// The job ids, one per array.
    pub jobs: Vec<String>,
    /// Tasks submitted.
    pub tasks: usize,
    /// Points they run.
    pub points: usize,
    /// Points left to the sweep's live tasks (queued, running or requeued
    /// from an earlier submission): nothing new is submitted for them.
    pub held: usize,
    /// The live tasks holding them.
    pub live_tasks: usize,
}

/// Prepares `opts.dir` for `spec` and submits every point still to run
/// (failed ones only with `opts.retry_failed`) that no live task of an
/// earlier submission holds.
pub fn submit(spec: &SweepSpec, opts: &SweepOptions, slurm: &SlurmOptions) -> Result<Submission> {
    let points = spec.points()?;
    let dir = SweepDir::prepare(spec, &opts.dir)?;
    let queue = Queue::read(&opts.dir);
    let mut states = queue.states(&dir, &points);
    let mut to_run = Vec::new();
    for (point, state) in points.iter().zip(states.iter_mut()) {
        if opts.retry_failed && matches!(state, PointState::Failed(_)) {
            super::local::retry(&dir, point, opts.quiet)?;
            *state = dir.state(point);
        }
        if matches!(state, PointState::Pending | PointState::Interrupted) {
            to_run.push(point.index);
        }
    }
    let held = states
        .iter()
        .filter(|s| matches!(s, PointState::Queued(_) | PointState::Requeued(_) | PointState::Running(_)))
        .count();
    let slurm_dir = opts.dir.join("slurm");
    std::fs::create_dir_all(&slurm_dir)?;
    let mut submission = Submission { jobs: Vec::new(), tasks: 0, points: 0, held, live_tasks: queue.tasks.len() };
    if to_run.is_empty() {
        return Ok(submission);
    }
    let tasks: Vec<Vec<usize>> = to_run.chunks(slurm.points_per_task.max(1)).map(<[usize]>::to_vec).collect();
    submission.jobs = submit_arrays(&slurm_dir, opts, slurm, &tasks)?;
    submission.tasks = tasks.len();
    submission.points = to_run.len();
    Ok(submission)
}

/// Writes the next tasks file and `submit.sh`, submits arrays of `tasks`
/// (each at most `MaxArraySize` long) and records them in `jobs.txt`.
fn submit_arrays(
    slurm_dir: &Path,
    opts: &SweepOptions,
    slurm: &SlurmOptions,
    tasks: &[Vec<usize>],
) -> Result<Vec<String>> {
    let n = std::fs::read_dir(slurm_dir)?
        .filter(|e| e.as_ref().is_ok_and(|e| e.file_name().to_string_lossy().starts_with("tasks-")))
        .count()
        + 1;
    let tasks_file = format!("tasks-{n}.txt");
    let list = slurm_dir.join(&tasks_file);
    let text: String =
        tasks.iter().map(|t| t.iter().map(|p| (p + 1).to_string()).collect::<Vec<_>>().join(" ") + "\n").collect();
    crate::fsutil::write_atomic(&list, text.as_bytes())?;
    let script = slurm_dir.join("submit.sh");
    crate::fsutil::write_atomic(&script, batch_script(&opts.dir, &opts.data_root, slurm, opts.grouping).as_bytes())?;
    if Command::new("sbatch").arg("--version").output().is_err() {
        std::fs::remove_file(&list).ok();
        return Err(input(
            "--executor slurm: sbatch is not on PATH; run from a machine with Slurm's client commands \
             (Debian: apt-get install slurm-client; to try Slurm on one machine: scripts/local-slurm.sh start)",
        ));
    }
    let limit = max_array_size()?.saturating_sub(1).max(1);
    let mut arrays = Vec::new();
    for (chunk, offset) in tasks.chunks(limit).zip((0..).step_by(limit)) {
        let mut array = format!("--array=0-{}", chunk.len() - 1);
        if let Some(k) = slurm.max_running {
            array.push_str(&format!("%{k}"));
        }
        let export = format!("--export=ALL,INITSCOPE_TASK_LIST={},INITSCOPE_TASK_OFFSET={offset}", list.display());
        let out = Command::new("sbatch")
            .args(["--parsable", &array, &export])
            .arg(&script)
            .output()
            .context("sbatch: cannot run it (is Slurm installed here?)")?;
        if !out.status.success() {
            // Nothing of a submission that did not happen stays behind
            // (arrays already submitted are listed in jobs.txt below).
            if arrays.is_empty() {
                std::fs::remove_file(&list).ok();
            }
            queue::record(slurm_dir, &arrays)?;
            bail!("sbatch rejected the job: {}", String::from_utf8_lossy(&out.stderr).trim());
        }
        let job = String::from_utf8_lossy(&out.stdout).trim().split(';').next().unwrap_or("").to_string();
        arrays.push(SubmittedArray { job, tasks_file: tasks_file.clone(), offset });
    }
    queue::record(slurm_dir, &arrays)?;
    Ok(arrays.into_iter().map(|a| a.job).collect())
}

/// The cluster's `MaxArraySize` (`scontrol show config`; 1001 if unsaid).
fn max_array_size() -> Result<usize> {
    let out = Command::new("scontrol").args(["show", "config"]).output().context("scontrol: cannot run it")?;
    let text = String::from_utf8_lossy(&out.stdout);
    Ok(text
        .lines()
        .find(|l| l.trim_start().starts_with("MaxArraySize"))
        .and_then(|l| l.split('=').nth(1))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(1001))
}

/// `slurm/submit.sh`: each array task runs `initscope sweep task` on the
/// points of its line. Slurm signals the task (USR2) 90 s before its time
/// limit; `exec` makes initscope the batch shell, so it receives it.
fn batch_script(dir: &Path, data_root: &Path, slurm: &SlurmOptions, grouping: Grouping) -> String {
    let mut lines = vec![
        "#!/bin/bash".to_string(),
        "# Written by initscope sweep --executor slurm: one array task per line".into(),
        "# of the tasks file; submitted with INITSCOPE_TASK_LIST and".into(),
        "# INITSCOPE_TASK_OFFSET exported (see slurm/jobs.txt for the jobs).".into(),
        format!("#SBATCH --job-name=initscope-{}", dir.file_name().map_or("sweep".into(), |n| n.to_string_lossy())),
        format!("#SBATCH --output={}/slurm/%A_%a.out", dir.display()),
        "#SBATCH --signal=B:USR2@90".into(),
        "#SBATCH --requeue".into(),
        "#SBATCH --open-mode=append".into(),
        format!("#SBATCH --cpus-per-task={}", slurm.cpus_per_task),
    ];
    if let Some(p) = &slurm.partition {
        lines.push(format!("#SBATCH --partition={p}"));
    }
    if let Some(t) = &slurm.time {
        lines.push(format!("#SBATCH --time={t}"));
    }
    if let Some(m) = &slurm.mem {
        lines.push(format!("#SBATCH --mem={m}"));
    }
    lines.extend(slurm.sbatch_args.iter().map(|a| format!("#SBATCH {a}")));
    lines.push(format!(
        "exec {} sweep task {} --list \"$INITSCOPE_TASK_LIST\" --task $((SLURM_ARRAY_TASK_ID + INITSCOPE_TASK_OFFSET)) --threads {} --max-requeues {} --data-dir {}",
        slurm.binary.display(),
        dir.display(),
        slurm.cpus_per_task,
        slurm.max_requeues,
        data_root.display()
    ));
    match grouping {
        Grouping::Off => {}
        Grouping::Auto => lines.last_mut().expect("the exec line").push_str(" --lockstep"),
        Grouping::AtMost(n) => lines.last_mut().expect("the exec line").push_str(&format!(" --group-size {n}")),
    }
    lines.join("\n") + "\n"
}

/// What `initscope sweep task` did.
#[derive(Debug, PartialEq, Eq)]
pub enum TaskEnd {
    /// Every point of the task finished (or failed, recorded).
    Finished,
    /// Stopped by a signal; requeued.
    Requeued,
}

/// Runs task `task` of the tasks file `list` of the sweep in `opts.dir`:
/// its points one after another, as the local executor runs a point. A
/// stop (Slurm's warning signal, SIGTERM) checkpoints the point and
/// requeues the task, at most `max_requeues` times; past that the point is
/// recorded as failed.
pub fn run_task(opts: &SweepOptions, list: &Path, task: usize, max_requeues: usize) -> Result<TaskEnd> {
    let (spec, dir) = SweepDir::open(&opts.dir)?;
    let text = std::fs::read_to_string(list).map_err(|e| input(format!("{}: cannot read: {e}", list.display())))?;
    let line = text.lines().nth(task).ok_or_else(|| input(format!("{}: no task {task}", list.display())))?;
    let indexes: Vec<usize> = line
        .split_whitespace()
        .map(|p| p.parse::<usize>().map(|p| p - 1))
        .collect::<std::result::Result<_, _>>()
        .map_err(|_| input(format!("{}: task {task}: not a list of points", list.display())))?;
    let points: Vec<_> = indexes.iter().map(|&i| spec.point(i)).collect::<Result<_>>()?;
    let data = load_data(&points, &(0..points.len()).collect::<Vec<_>>(), opts)?;
    let pending: Vec<usize> = (0..points.len())
        .filter(|&p| !matches!(dir.state(&points[p]), PointState::Done | PointState::Failed(_)))
        .collect();
    // The task's points run as its lockstep plan groups them (each alone
    // unless asked), one group after another.
    let plan = plan_points(&points, &pending, &data, opts);
    for group in &plan.groups {
        let group: Vec<&super::Point> = group.iter().map(|&i| &points[pending[i]]).collect();
        let source = &data[&format!("{:?}", group[0].experiment.dataset)];
        let states = run_points(&group, &dir, source, opts, opts.threads);
        let mut interrupted = None;
        for (point, state) in group.iter().zip(states) {
            match state {
                PointState::Failed(why) => dir.record_failure(point, &why)?,
                PointState::Interrupted => interrupted = interrupted.or(Some(*point)),
                PointState::Running(holder) => {
                    println!("point {} skipped ({}): being run by {holder}", point.index + 1, point.describe());
                    continue;
                }
                _ => {}
            }
            if !matches!(dir.state(point), PointState::Interrupted | PointState::Pending) {
                println!("point {} done ({})", point.index + 1, point.describe());
            }
        }
        if let Some(point) = interrupted {
            return requeue(&dir, point, max_requeues);
        }
    }
    Ok(TaskEnd::Finished)
}

/// Requeues the running task, or records its point as failed when it has
/// been requeued `max_requeues` times already.
fn requeue(dir: &SweepDir, point: &super::Point, max_requeues: usize) -> Result<TaskEnd> {
    let restarts: usize = std::env::var("SLURM_RESTART_COUNT").ok().and_then(|v| v.parse().ok()).unwrap_or(0);
    if restarts >= max_requeues {
        dir.record_failure(point, &format!("stopped by Slurm {} times (--max-requeues {max_requeues})", restarts + 1))?;
        return Ok(TaskEnd::Finished);
    }
    let job = match (std::env::var("SLURM_ARRAY_JOB_ID"), std::env::var("SLURM_ARRAY_TASK_ID")) {
        (Ok(job), Ok(task)) => format!("{job}_{task}"),
        _ => std::env::var("SLURM_JOB_ID").context("not inside a Slurm job: nothing to requeue")?,
    };
    if already_requeued(&job, restarts) {
        println!("point {} stopped with a checkpoint; {job} was requeued from outside, so not again", point.index + 1);
        return Ok(TaskEnd::Requeued);
    }
    println!("point {} stopped with a checkpoint; requeueing {job}", point.index + 1);
    let out = Command::new("scontrol").args(["requeue", &job]).output().context("scontrol requeue")?;
    // A requeue from outside that landed meanwhile makes ours fail: no error.
    if !out.status.success() && !already_requeued(&job, restarts) {
        bail!("scontrol requeue {job} failed: {}", String::from_utf8_lossy(&out.stderr).trim());
    }
    Ok(TaskEnd::Requeued)
}

/// Whether Slurm has already requeued `job` (this task, started after
/// `restarts` restarts): `scontrol show job` says it is pending or being
/// requeued, or counts more restarts than this run began with.
fn already_requeued(job: &str, restarts: usize) -> bool {
    let Ok(out) = Command::new("scontrol").args(["show", "job", "-o", job]).output() else { return false };
    let text = String::from_utf8_lossy(&out.stdout);
    let field = |name: &str| text.split_whitespace().find_map(|w| w.strip_prefix(name)).map(str::to_string);
    let state = field("JobState=").unwrap_or_default();
    let counted = field("Restarts=").and_then(|r| r.parse::<usize>().ok()).unwrap_or(0);
    state == "PENDING" || state.starts_with("REQUEUE") || counted > restarts
}

/// Where a sweep on Slurm stands.
pub struct Status {
    /// Points per state (`pending`, `queued`, `running`, `requeued`,
    /// `interrupted`, `done`, `failed`), Slurm's view included.
    pub counts: Vec<(&'static str, usize)>,
    /// The sweep's tasks Slurm still holds.
    pub tasks: Vec<queue::LiveTask>,
}

/// The state words, in the order `sweep status` prints them.
const STATES: [&str; 7] = ["pending", "queued", "running", "requeued", "interrupted", "done", "failed"];

/// Points per state, and the sweep's tasks Slurm still holds, from the
/// status files and `squeue` (no accounting needed).
pub fn status(dir_path: &Path) -> Result<Status> {
    let (spec, dir) = SweepDir::open(dir_path)?;
    let points = spec.points()?;
    let queue = Queue::read(dir_path);
    let states = queue.states(&dir, &points);
    Ok(Status { counts: count_states(&states), tasks: queue.tasks })
}

/// How many points are in each state, in [`STATES`]'s order.
fn count_states(states: &[PointState]) -> Vec<(&'static str, usize)> {
    STATES.iter().map(|w| (*w, states.iter().filter(|s| s.as_str() == *w).count())).collect()
}

/// "2 running, 1 requeued, 3 queued": the states Slurm adds, the ones
/// that are there.
fn slurm_message(states: &[PointState]) -> String {
    let counts = count_states(states);
    let parts: Vec<String> = counts
        .iter()
        .filter(|(w, n)| *n > 0 && matches!(*w, "running" | "requeued" | "queued"))
        .map(|(w, n)| format!("{n} {w}"))
        .collect();
    parts.join(", ")
}

/// Blocks with a progress bar (done points; its message the running,
/// requeued and queued ones) until no task of the sweep is queued or
/// running, then returns the points still not done.
pub fn wait(dir_path: &Path, quiet: bool) -> Result<usize> {
    let (spec, dir) = SweepDir::open(dir_path)?;
    let points = spec.points()?;
    let bar = progress_bar(points.len(), 0, quiet);
    // A finished point stays finished: each poll reads only the others' files.
    let mut states = vec![PointState::Pending; points.len()];
    loop {
        let queue = Queue::read(dir_path);
        for (point, state) in points.iter().zip(states.iter_mut()) {
            if !matches!(state, PointState::Done | PointState::Failed(_)) {
                *state = dir.state(point);
            }
        }
        queue.overlay(&mut states);
        let open = states.iter().filter(|s| !matches!(s, PointState::Done | PointState::Failed(_))).count();
        bar.set_position((points.len() - open) as u64);
        bar.set_message(slurm_message(&states));
        if queue.is_empty() {
            bar.finish_and_clear();
            return Ok(open);
        }
        std::thread::sleep(std::time::Duration::from_millis(500));
    }
}
