//! What Slurm holds of a sweep: the submissions recorded in
//! `slurm/jobs.txt` (each array's job id, its tasks file and the offset of
//! its first task there) and the tasks of those arrays that `squeue` still
//! lists, mapped back to the points they run. The Slurm executor's submit,
//! status and wait, and the sweep report, read a point's state through
//! [`Queue::overlay`], so that "queued", "running" and "requeued" mean what
//! Slurm says, not what the files alone suggest.
//!
//! ```text
//! slurm/jobs.txt   one submitted array per line: <job id> <tasks file> <offset>
//! ```

use super::table::PointState;
use crate::fsutil::write_atomic;
use anyhow::Result;
use std::path::Path;
use std::process::Command;

/// One submitted job array, a line of `slurm/jobs.txt`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SubmittedArray {
    /// Slurm's job id of the array.
    pub job: String,
    /// The tasks file (`tasks-<n>.txt`, in `slurm/`) whose lines its tasks run.
    pub tasks_file: String,
    /// The line of the tasks file that array task 0 runs.
    pub offset: usize,
}

/// The arrays recorded in `slurm/jobs.txt` (none if there is no such file).
/// A line holding only a job id (written before the tasks file was
/// recorded) is kept with an empty tasks file: its tasks map to no point.
pub fn submitted(slurm_dir: &Path) -> Vec<SubmittedArray> {
    let text = std::fs::read_to_string(slurm_dir.join("jobs.txt")).unwrap_or_default();
    text.lines()
        .filter_map(|line| {
            let mut fields = line.split_whitespace();
            let job = fields.next()?.to_string();
            let tasks_file = fields.next().unwrap_or("").to_string();
            let offset = fields.next().and_then(|o| o.parse().ok()).unwrap_or(0);
            Some(SubmittedArray { job, tasks_file, offset })
        })
        .collect()
}

/// Appends `arrays` to `slurm/jobs.txt` (rewritten atomically).
pub fn record(slurm_dir: &Path, arrays: &[SubmittedArray]) -> Result<()> {
    let mut text = std::fs::read_to_string(slurm_dir.join("jobs.txt")).unwrap_or_default();
    for a in arrays {
        text.push_str(&format!("{} {} {}\n", a.job, a.tasks_file, a.offset));
    }
    write_atomic(&slurm_dir.join("jobs.txt"), text.as_bytes())
}

/// One array task that Slurm still holds.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LiveTask {
    /// `<array job>_<task>`.
    pub id: String,
    /// Slurm's state (`PENDING`, `RUNNING`, `REQUEUED`, ...).
    pub state: String,
    /// Why it is pending (`Resources`, `BeginTime`, ...; `None` when running).
    pub reason: String,
    /// Times Slurm restarted it (requeues).
    pub restarts: usize,
}

impl LiveTask {
    /// Whether its process runs (or is finishing).
    pub fn is_running(&self) -> bool {
        matches!(self.state.as_str(), "RUNNING" | "COMPLETING" | "SUSPENDED" | "STOPPED")
    }

    /// Whether Slurm holds it after a requeue: being requeued, or pending
    /// again (a requeued task waits for its begin time, `Reason=BeginTime`).
    pub fn is_requeued(&self) -> bool {
        self.state.starts_with("REQUEUE")
            || (self.state == "PENDING" && (self.restarts > 0 || self.reason == "BeginTime"))
    }

    /// The word `sweep status` counts it under: running, requeued or queued.
    pub fn word(&self) -> &'static str {
        if self.is_running() {
            "running"
        } else if self.is_requeued() {
            "requeued"
        } else {
            "queued"
        }
    }
}

/// The sweep's tasks Slurm still holds, and the points each runs.
#[derive(Debug, Default)]
pub struct Queue {
    /// Every live task of the sweep's arrays.
    pub tasks: Vec<LiveTask>,
    /// Per live task (same order), the points (0-based) its line runs, in order.
    points: Vec<Vec<usize>>,
}

impl Queue {
    /// Reads `slurm/jobs.txt` of sweep directory `dir` and asks `squeue`
    /// which of its tasks are still held (empty when nothing was submitted
    /// or `squeue` cannot be run).
    pub fn read(dir: &Path) -> Queue {
        let slurm_dir = dir.join("slurm");
        let arrays = submitted(&slurm_dir);
        if arrays.is_empty() {
            return Queue::default();
        }
        let ids: Vec<&str> = arrays.iter().map(|a| a.job.as_str()).collect();
        let tasks = squeue(&ids);
        let points = tasks.iter().map(|t| task_points(&slurm_dir, &arrays, &t.id)).collect();
        Queue { tasks, points }
    }

    /// Whether Slurm holds no task of the sweep.
    pub fn is_empty(&self) -> bool {
        self.tasks.is_empty()
    }

    /// Points (0-based) that a live task will run or runs.
    pub fn held_points(&self) -> Vec<usize> {
        self.points.iter().flatten().copied().collect()
    }

    /// Turns each point's state read from its files into the truth with
    /// Slurm's view added: a point not finished whose task is pending is
    /// `queued` (or `requeued`, after a requeue); in a running task, the
    /// first point not finished is `running` (starting, or holding its
    /// lock) and later ones are `queued`. `states` is indexed by point.
    pub fn overlay(&self, states: &mut [PointState]) {
        for (task, points) in self.tasks.iter().zip(&self.points) {
            let mut first_open = true;
            for &p in points {
                let Some(state) = states.get_mut(p) else { continue };
                if matches!(state, PointState::Done | PointState::Failed(_)) {
                    continue;
                }
                let running = task.is_running() && first_open;
                first_open = false;
                if matches!(state, PointState::Running(_)) {
                    continue; // its lock names the holder
                }
                *state = if running {
                    PointState::Running(format!("Slurm task {}", task.id))
                } else if task.is_requeued() {
                    PointState::Requeued(task.id.clone())
                } else {
                    PointState::Queued(task.id.clone())
                };
            }
        }
    }

    /// Every point's state: read from its files (after the queue was
    /// read, so a task that left the queue meanwhile has written what it
    /// finished), with this queue laid over them.
    pub fn states(&self, dir: &super::SweepDir, points: &[super::Point]) -> Vec<PointState> {
        let mut states: Vec<PointState> = points.iter().map(|p| dir.state(p)).collect();
        self.overlay(&mut states);
        states
    }
}

/// Every point's state: its files, with what Slurm holds now laid over them.
pub fn point_states(dir: &super::SweepDir, points: &[super::Point]) -> Vec<PointState> {
    Queue::read(dir.root()).states(dir, points)
}

/// `squeue`'s live tasks of `jobs` (one line per array task).
fn squeue(jobs: &[&str]) -> Vec<LiveTask> {
    let format = "JobArrayID:64,State:24,RestartCnt:8,Reason:64";
    let out = Command::new("squeue").args(["-h", "-r", "-O", format, "-j", &jobs.join(",")]).output();
    let Ok(out) = out else { return Vec::new() };
    String::from_utf8_lossy(&out.stdout).lines().filter_map(parse_squeue_line).collect()
}

/// One line of [`squeue`]'s output: id, state, restarts, reason (which may
/// hold spaces).
fn parse_squeue_line(line: &str) -> Option<LiveTask> {
    let mut fields = line.split_whitespace();
    let id = fields.next()?.to_string();
    let state = fields.next()?.to_string();
    let restarts = fields.next()?.parse().ok()?;
    let reason = fields.collect::<Vec<_>>().join(" ");
    Some(LiveTask { id, state, reason, restarts })
}

/// The points (0-based) that array task `id` (`<job>_<task>`) runs: the
/// line `offset + task` of its array's tasks file.
fn task_points(slurm_dir: &Path, arrays: &[SubmittedArray], id: &str) -> Vec<usize> {
    let Some((job, task)) = id.split_once('_') else { return Vec::new() };
    let Some(array) = arrays.iter().find(|a| a.job == job && !a.tasks_file.is_empty()) else { return Vec::new() };
    let Ok(task) = task.parse::<usize>() else { return Vec::new() };
    let text = std::fs::read_to_string(slurm_dir.join(&array.tasks_file)).unwrap_or_default();
    let line = text.lines().nth(array.offset + task).unwrap_or("");
    line.split_whitespace().filter_map(|p| p.parse::<usize>().ok()?.checked_sub(1)).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn task(id: &str, state: &str, restarts: usize, reason: &str) -> LiveTask {
        LiveTask { id: id.into(), state: state.into(), reason: reason.into(), restarts }
    }

    #[test]
    fn squeue_lines_parse_with_reasons_that_hold_spaces() {
        let t = parse_squeue_line("57_0        PENDING     1     BeginTime   ").unwrap();
        assert_eq!(t, task("57_0", "PENDING", 1, "BeginTime"));
        assert!(t.is_requeued() && !t.is_running());
        let t = parse_squeue_line("57_3 PENDING 0 ReqNodeNotAvail, UnavailableNodes:n1").unwrap();
        assert_eq!(t.reason, "ReqNodeNotAvail, UnavailableNodes:n1");
        assert_eq!(t.word(), "queued");
        assert_eq!(parse_squeue_line("57_1 RUNNING 0 None").unwrap().word(), "running");
        assert!(parse_squeue_line("garbage").is_none());
    }

    #[test]
    fn the_overlay_says_queued_running_and_requeued_by_task() {
        let tmp = tempfile::tempdir().unwrap();
        std::fs::write(tmp.path().join("tasks-1.txt"), "1 2\n3\n4\n").unwrap();
        let arrays = vec![SubmittedArray { job: "9".into(), tasks_file: "tasks-1.txt".into(), offset: 0 }];
        record(tmp.path(), &arrays).unwrap();
        assert_eq!(submitted(tmp.path()), arrays);
        let tasks = vec![
            task("9_0", "RUNNING", 0, "None"),
            task("9_1", "PENDING", 2, "BeginTime"),
            task("9_2", "PENDING", 0, "Priority"),
        ];
        let points = tasks.iter().map(|t| task_points(tmp.path(), &arrays, &t.id)).collect();
        let queue = Queue { tasks, points };
        assert_eq!(queue.held_points(), vec![0, 1, 2, 3]);
        let mut states = vec![PointState::Done, PointState::Pending, PointState::Interrupted, PointState::Pending];
        queue.overlay(&mut states);
        assert_eq!(states[0], PointState::Done);
        assert_eq!(states[1], PointState::Running("Slurm task 9_0".into()));
        assert_eq!(states[2], PointState::Requeued("9_1".into()));
        assert_eq!(states[3], PointState::Queued("9_2".into()));
        // Point 1 not yet started: the running task is on it; point 2 waits in it.
        let mut states = vec![PointState::Pending, PointState::Pending, PointState::Done, PointState::Done];
        queue.overlay(&mut states);
        assert_eq!(states[0], PointState::Running("Slurm task 9_0".into()));
        assert_eq!(states[1], PointState::Queued("9_0".into()));
    }
}
