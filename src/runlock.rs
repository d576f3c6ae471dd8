//! One writer per run directory: `<run>/lock.json`, created exclusively
//! (`O_CREAT | O_EXCL`, which shared filesystems honour) by the process
//! that trains in it and removed when it is done. It names the holder
//! (host, pid, Slurm job), so that a second process finds the run taken
//! and says by whom, and so that a lock left by a holder that is gone is
//! recognised as stale and taken over:
//!
//! - a holder on this host whose pid no longer runs is gone;
//! - a holder on another host with a Slurm job id is gone when `squeue`
//!   answers and no longer lists that job, or lists it as pending (a
//!   requeued task waiting to start again);
//! - a holder with this process's own Slurm job id is this task's earlier
//!   run, before a requeue (Slurm runs one instance of a task at a time);
//! - anything else is taken as live (another host without Slurm cannot be
//!   asked); removing `lock.json` by hand releases it.

use anyhow::{Context, Result};
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};

/// The lock file's name inside a run directory.
pub const LOCK_FILE: &str = "lock.json";

/// Who holds a run directory.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Holder {
    /// The holder's host name.
    pub host: String,
    /// Its process id on that host.
    pub pid: u32,
    /// Its Slurm job (`<array job>_<task>` or `<job>`), when it runs in one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub slurm_job: Option<String>,
}

impl Holder {
    /// This process.
    pub fn current() -> Self {
        let slurm_job = match (std::env::var("SLURM_ARRAY_JOB_ID"), std::env::var("SLURM_ARRAY_TASK_ID")) {
            (Ok(job), Ok(task)) => Some(format!("{job}_{task}")),
            _ => std::env::var("SLURM_JOB_ID").ok(),
        };
        Holder { host: host_name(), pid: std::process::id(), slurm_job }
    }

    /// Whether the holder may still be running (see the module doc).
    pub fn is_live(&self) -> bool {
        if self.host == host_name() {
            return Path::new(&format!("/proc/{}", self.pid)).exists();
        }
        match &self.slurm_job {
            Some(job) => slurm_holds(job).unwrap_or(true),
            None => true,
        }
    }

    /// Whether this holder is an earlier run of the Slurm task `me` runs in
    /// (the same job id, another process): a requeued task takes its lock.
    fn is_earlier_run_of(&self, me: &Holder) -> bool {
        self.slurm_job.is_some() && self.slurm_job == me.slurm_job && (self.host != me.host || self.pid != me.pid)
    }

    /// "pid 123 on node1 (Slurm job 45_2)".
    pub fn describe(&self) -> String {
        let job = self.slurm_job.as_ref().map(|j| format!(" (Slurm job {j})")).unwrap_or_default();
        format!("pid {} on {}{job}", self.pid, self.host)
    }
}

/// A run directory is being trained in by another live process.
#[derive(Debug, thiserror::Error)]
#[error("{}: in use by {}; one process writes a run at a time (remove {LOCK_FILE} there if that process is gone)", .dir.display(), .holder.describe())]
pub struct RunDirBusy {
    /// The run directory.
    pub dir: PathBuf,
    /// Who holds it.
    pub holder: Holder,
}

/// The lock on a run directory, released when dropped.
#[derive(Debug)]
pub struct RunLock {
    path: PathBuf,
    holder: Holder,
}

impl RunLock {
    /// Takes `dir`'s lock, taking over a stale one; a live holder is a
    /// [`RunDirBusy`] error.
    pub fn acquire(dir: &Path) -> Result<RunLock> {
        let path = dir.join(LOCK_FILE);
        let holder = Holder::current();
        let text = serde_json::to_string(&holder).expect("a holder always serialises");
        for _ in 0..3 {
            match std::fs::OpenOptions::new().write(true).create_new(true).open(&path) {
                Ok(mut file) => {
                    use std::io::Write;
                    file.write_all(text.as_bytes())
                        .and_then(|_| file.sync_all())
                        .with_context(|| format!("{}: cannot write", path.display()))?;
                    return Ok(RunLock { path, holder });
                }
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
                    let found = read_holder(&path);
                    match found {
                        Some(other) if other.is_live() && !other.is_earlier_run_of(&holder) => {
                            return Err(RunDirBusy { dir: dir.into(), holder: other }.into())
                        }
                        // Stale, or being written this very moment (empty): a
                        // stale one is removed if it still holds what was judged.
                        Some(stale) => {
                            if read_holder(&path).as_ref() == Some(&stale) {
                                let _ = std::fs::remove_file(&path);
                            }
                        }
                        None => std::thread::sleep(std::time::Duration::from_millis(100)),
                    }
                }
                Err(e) => return Err(e).with_context(|| format!("{}: cannot create", path.display())),
            }
        }
        match read_holder(&path) {
            Some(other) => Err(RunDirBusy { dir: dir.into(), holder: other }.into()),
            None => Err(crate::error::input(format!(
                "{}: unreadable; remove it if no initscope runs there",
                path.display()
            ))),
        }
    }
}

impl Drop for RunLock {
    fn drop(&mut self) {
        if read_holder(&self.path).as_ref() == Some(&self.holder) {
            let _ = std::fs::remove_file(&self.path);
        }
    }
}

/// The holder named by the lock file at `path`, if it can be read.
pub fn read_holder(path: &Path) -> Option<Holder> {
    serde_json::from_str(&std::fs::read_to_string(path).ok()?).ok()
}

/// The live holder of run directory `dir`, if any.
pub fn live_holder(dir: &Path) -> Option<Holder> {
    read_holder(&dir.join(LOCK_FILE)).filter(Holder::is_live)
}

fn host_name() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|h| h.trim().to_string())
        .or_else(|_| std::env::var("HOSTNAME"))
        .unwrap_or_else(|_| "localhost".into())
}

/// Whether `job` still runs under Slurm (`None` when `squeue` cannot
/// answer): a job squeue has forgotten, or one pending (a requeued task
/// waiting to start again), holds nothing.
fn slurm_holds(job: &str) -> Option<bool> {
    let out = std::process::Command::new("squeue").args(["-h", "-o", "%T", "-j", job]).output().ok()?;
    if !out.status.success() {
        // squeue says "Invalid job id specified" for a job it has forgotten.
        return String::from_utf8_lossy(&out.stderr).contains("Invalid job id").then_some(false);
    }
    let state = String::from_utf8_lossy(&out.stdout).trim().to_string();
    Some(!state.is_empty() && state != "PENDING" && !state.starts_with("REQUEUE"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_second_lock_is_refused_naming_the_holder_and_released_on_drop() {
        let tmp = tempfile::tempdir().unwrap();
        let lock = RunLock::acquire(tmp.path()).unwrap();
        let err = RunLock::acquire(tmp.path()).unwrap_err();
        let busy = err.downcast_ref::<RunDirBusy>().expect("a busy error");
        assert_eq!(busy.holder.pid, std::process::id());
        assert!(err.to_string().contains(&format!("in use by pid {}", std::process::id())), "{err}");
        drop(lock);
        assert!(!tmp.path().join(LOCK_FILE).exists());
        RunLock::acquire(tmp.path()).unwrap();
    }

    #[test]
    fn a_lock_whose_holder_is_gone_is_taken_over() {
        let tmp = tempfile::tempdir().unwrap();
        // A process that has exited: its pid no longer runs.
        let mut child = std::process::Command::new("true").spawn().unwrap();
        let gone = child.id();
        child.wait().unwrap();
        let stale = Holder { host: host_name(), pid: gone, slurm_job: None };
        std::fs::write(tmp.path().join(LOCK_FILE), serde_json::to_string(&stale).unwrap()).unwrap();
        assert!(live_holder(tmp.path()).is_none());
        let _lock = RunLock::acquire(tmp.path()).unwrap();
        assert_eq!(read_holder(&tmp.path().join(LOCK_FILE)).unwrap().pid, std::process::id());
    }

    #[test]
    fn a_requeued_slurm_task_takes_the_lock_of_its_earlier_run() {
        let me = Holder { host: "node2".into(), pid: 7, slurm_job: Some("45_2".into()) };
        let earlier = Holder { host: "node1".into(), pid: 99, slurm_job: Some("45_2".into()) };
        let other_task = Holder { slurm_job: Some("45_3".into()), ..earlier.clone() };
        assert!(earlier.is_earlier_run_of(&me));
        assert!(!other_task.is_earlier_run_of(&me));
        assert!(!me.is_earlier_run_of(&me));
        let no_slurm = Holder { host: "node2".into(), pid: 8, slurm_job: None };
        assert!(!no_slurm.is_earlier_run_of(&Holder { pid: 9, ..no_slurm.clone() }));
    }
}
