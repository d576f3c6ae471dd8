//! The Slurm executor against a real single-node Slurm, which
//! `scripts/local-slurm.sh start` sets up (`.ci/run` starts it): the same
//! table as the local executor for the same points, a task signalled
//! mid-point requeued and finishing bit-identical, and `--retry-failed`
//! resubmitting only failed points. Ignored by a plain `cargo test`.

mod common;
use common::*;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// One test at a time on the one-node cluster (the requeue test times a
/// signal into a running task).
static CLUSTER: std::sync::Mutex<()> = std::sync::Mutex::new(());

fn slurm_sweep(file: &Path, out: &Path, extra: &[&str]) -> std::process::Output {
    let mut args = vec!["sweep", file.to_str().unwrap(), "--quiet", "--executor", "slurm", "--wait"];
    args.extend_from_slice(&["--out", out.to_str().unwrap()]);
    args.extend_from_slice(extra);
    initscope(&args)
}

/// A sweep file of points long enough (10 epochs) that a signal or a
/// requeue lands inside one, and its table run by the local executor in
/// `<tmp>/local`: what every Slurm run of it must equal.
fn long_sweep_run_locally(tmp: &Path) -> (std::path::PathBuf, std::path::PathBuf) {
    let data = synthetic_dir(tmp, 12000, 200, 28);
    let file = sweep_file(tmp, &data, 10, 256);
    let local = tmp.join("local");
    let r = initscope(&["sweep", file.to_str().unwrap(), "--quiet", "--out", local.to_str().unwrap()]);
    assert!(r.status.success(), "{}", stderr(&r));
    (file, local)
}

#[test]
#[ignore = "needs a running Slurm; .ci/run starts one with scripts/local-slurm.sh and runs this with --ignored"]
fn a_sweep_on_slurm_gives_the_local_executors_results_and_survives_a_requeue() {
    let _cluster = CLUSTER.lock().unwrap_or_else(|e| e.into_inner());
    let tmp = tempfile::tempdir().unwrap();
    let (file, local) = long_sweep_run_locally(tmp.path());

    let out = tmp.path().join("slurm");
    let r = slurm_sweep(&file, &out, &[]);
    assert!(r.status.success(), "{}", stderr(&r));
    assert_eq!(table_without_seconds(&out), table_without_seconds(&local), "Slurm's table differs from the local one");
    assert!(sweep_final_weights(&out) == sweep_final_weights(&local));
    let script = std::fs::read_to_string(out.join("slurm/submit.sh")).unwrap();
    assert!(script.contains("#SBATCH --signal=B:USR2@90") && script.contains("sweep task"), "{script}");

    // A task signalled as Slurm signals before the time limit stops at a
    // step with a checkpoint, requeues itself and finishes bit-identical.
    let requeued = tmp.path().join("requeued");
    let child = Command::new(env!("CARGO_BIN_EXE_initscope"))
        .args(["sweep", file.to_str().unwrap(), "--quiet", "--executor", "slurm", "--wait", "--out"])
        .arg(&requeued)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let started = requeued.join("runs/p0002/kaiming/epochs.csv");
    let start = Instant::now();
    while !started.exists() {
        assert!(start.elapsed() < Duration::from_secs(300), "point 2 never started");
        std::thread::sleep(Duration::from_millis(20));
    }
    let job = first_job(&requeued);
    // scancel returns at once; once the task requeues itself, scancel's own
    // retries meet a job Slurm is requeueing, so its exit status says
    // nothing: the task's log is the evidence.
    let mut signal = Command::new("scancel")
        .args(["--signal=USR2", "--batch", &format!("{job}_1")])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    // Slurm holds a requeued job for two minutes (its begin time); once the
    // task has requeued itself, the test lets it start at once.
    let log_file = requeued.join(format!("slurm/{job}_1.out"));
    let start = Instant::now();
    while !std::fs::read_to_string(&log_file).unwrap_or_default().contains("requeueing") {
        assert!(start.elapsed() < Duration::from_secs(120), "task 1 did not requeue itself");
        std::thread::sleep(Duration::from_millis(50));
    }
    for _ in 0..100 {
        let held = Command::new("squeue").args(["-h", "-r", "-j", &format!("{job}_1"), "-o", "%T"]).output().unwrap();
        if String::from_utf8_lossy(&held.stdout).contains("PENDING") {
            let released =
                Command::new("scontrol").args(["update", &format!("JobId={job}_1"), "StartTime=now"]).status();
            assert!(released.unwrap().success());
            break;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    let finished = child.wait_with_output().unwrap();
    signal.kill().ok();
    signal.wait().ok();
    assert!(finished.status.success(), "{}", String::from_utf8_lossy(&finished.stderr));
    let log = std::fs::read_to_string(requeued.join(format!("slurm/{job}_1.out"))).unwrap_or_default();
    assert!(log.contains("requeueing"), "task 1 was not requeued:\n{log}");
    assert_eq!(table_without_seconds(&requeued), table_without_seconds(&local));
    assert!(sweep_final_weights(&requeued) == sweep_final_weights(&local), "the requeued point's weights differ");
}

#[test]
#[ignore = "needs a running Slurm; .ci/run starts one with scripts/local-slurm.sh and runs this with --ignored"]
fn retry_failed_resubmits_only_the_failed_points() {
    let _cluster = CLUSTER.lock().unwrap_or_else(|e| e.into_inner());
    let tmp = tempfile::tempdir().unwrap();
    let data = synthetic_dir(tmp.path(), 600, 100, 10);
    let file = sweep_file(tmp.path(), &data, 1, 32);
    let out = tmp.path().join("sweep");
    assert!(slurm_sweep(&file, &out, &[]).status.success());
    let expected = table_without_seconds(&out);
    // Point 3's run directory becomes a file: continuing it fails.
    let point3 = out.join("runs/p0003");
    std::fs::remove_dir_all(&point3).unwrap();
    std::fs::write(&point3, "in the way").unwrap();
    let r = slurm_sweep(&file, &out, &[]);
    assert_eq!(r.status.code(), Some(1), "{}", stderr(&r));
    assert!(out.join("status/p0003.json").exists());
    std::fs::remove_file(&point3).unwrap();
    let r = slurm_sweep(&file, &out, &["--retry-failed"]);
    assert!(r.status.success(), "{}", stderr(&r));
    let tasks = std::fs::read_to_string(out.join("slurm/tasks-3.txt")).unwrap();
    assert_eq!(tasks, "3\n", "only point 3 was resubmitted");
    assert_eq!(table_without_seconds(&out), expected);
    let r = initscope(&["sweep", "status", out.to_str().unwrap()]);
    assert!(String::from_utf8_lossy(&r.stdout).contains("4 done"), "{}", String::from_utf8_lossy(&r.stdout));
}

/// The job id of the sweep's first array (`slurm/jobs.txt`: job, tasks file, offset).
fn first_job(dir: &Path) -> String {
    let jobs = std::fs::read_to_string(dir.join("slurm/jobs.txt")).unwrap();
    jobs.split_whitespace().next().expect("a submitted job").to_string()
}

/// `sweep status`'s "Points:" line as (word, count) pairs.
fn point_counts(dir: &Path) -> Vec<(String, usize)> {
    let r = initscope(&["sweep", "status", dir.to_str().unwrap()]);
    assert!(r.status.success(), "{}", stderr(&r));
    let text = String::from_utf8_lossy(&r.stdout).to_string();
    let line = text.lines().find_map(|l| l.strip_prefix("Points: ")).unwrap_or_else(|| panic!("{text}")).to_string();
    line.split(", ")
        .map(|part| {
            let (n, word) = part.split_once(' ').unwrap();
            (word.to_string(), n.parse().unwrap())
        })
        .collect()
}

fn count(counts: &[(String, usize)], word: &str) -> usize {
    counts.iter().find(|(w, _)| w == word).map_or(0, |c| c.1)
}

/// The Slurm state of task `task` (`<job>_<n>`), if squeue lists it.
fn task_state(task: &str) -> String {
    let out = Command::new("squeue").args(["-h", "-r", "-j", task, "-o", "%T"]).output().unwrap();
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

#[test]
#[ignore = "needs a running Slurm; .ci/run starts one with scripts/local-slurm.sh and runs this with --ignored"]
fn a_second_submit_follows_the_live_tasks_and_status_tells_the_truth_through_a_requeue_from_outside() {
    let _cluster = CLUSTER.lock().unwrap_or_else(|e| e.into_inner());
    let tmp = tempfile::tempdir().unwrap();
    let (file, local) = long_sweep_run_locally(tmp.path());

    // The first submission, not followed; one task at a time, so that on
    // any machine the others are queued while it runs.
    let out = tmp.path().join("slurm");
    let first = ["sweep", file.to_str().unwrap(), "--quiet", "--executor", "slurm", "--max-running", "1", "--out"];
    let r = initscope(&[&first[..], &[out.to_str().unwrap()]].concat());
    assert!(r.status.success(), "{}", stderr(&r));
    let job = first_job(&out);
    // The same command again, with --wait, while the first array is live:
    // it submits nothing and follows the live tasks.
    let second = Command::new(env!("CARGO_BIN_EXE_initscope"))
        .args(first)
        .arg(&out)
        .arg("--wait")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();

    // While it runs, every point not done is held: queued, running or
    // requeued, never pending or interrupted.
    let (mut saw_running_with_queued, mut saw_requeued, mut requeued_at) = (false, false, None);
    let start = Instant::now();
    loop {
        let counts = point_counts(&out);
        assert_eq!(counts.iter().map(|c| c.1).sum::<usize>(), 4, "{counts:?}");
        if count(&counts, "done") == 4 {
            break;
        }
        assert_eq!(
            count(&counts, "pending") + count(&counts, "interrupted"),
            0,
            "a held point is not held: {counts:?}"
        );
        saw_running_with_queued |= count(&counts, "running") == 1 && count(&counts, "queued") >= 1;
        // Task 1 (point 2) requeued from outside once it is inside its point.
        if requeued_at.is_none() && out.join("runs/p0002/kaiming/epochs.csv").exists() {
            let r = Command::new("scontrol").args(["requeue", &format!("{job}_1")]).output().unwrap();
            assert!(r.status.success(), "{}", String::from_utf8_lossy(&r.stderr));
            requeued_at = Some(Instant::now());
        }
        if requeued_at.is_some() && !saw_requeued && count(&counts, "requeued") == 1 {
            saw_requeued = true;
            let r = initscope(&["sweep", "status", out.to_str().unwrap()]);
            let text = String::from_utf8_lossy(&r.stdout);
            assert!(text.contains("Slurm tasks: ") && text.contains(" 1 requeued, "), "{text}");
            // Slurm holds a requeued task two minutes (its begin time): start it now.
            if task_state(&format!("{job}_1")) == "PENDING" {
                let update = ["update", &format!("JobId={job}_1"), "StartTime=now"];
                assert!(Command::new("scontrol").args(update).status().unwrap().success());
            }
        }
        assert!(start.elapsed() < Duration::from_secs(600), "the sweep did not finish: {counts:?}");
        std::thread::sleep(Duration::from_millis(200));
    }
    let followed = second.wait_with_output().unwrap();
    let said = String::from_utf8_lossy(&followed.stdout);
    assert!(followed.status.success(), "{said}{}", String::from_utf8_lossy(&followed.stderr));
    assert!(said.contains("held by") && !said.contains("Submitted"), "{said}");
    assert!(saw_running_with_queued, "no status showed one point running and others queued");
    assert!(saw_requeued, "no status showed the requeued point as requeued");
    let jobs = std::fs::read_to_string(out.join("slurm/jobs.txt")).unwrap();
    assert_eq!(jobs.lines().count(), 1, "a second array was submitted:\n{jobs}");
    let log = std::fs::read_to_string(out.join(format!("slurm/{job}_1.out"))).unwrap();
    // (Slurm's own "error: *** JOB .. CANCELLED .. DUE TO JOB REQUEUE" line is expected.)
    assert!(log.contains("requeued from outside, so not again") && !log.contains("failed"), "{log}");
    assert_eq!(table_without_seconds(&out), table_without_seconds(&local));
    assert!(sweep_final_weights(&out) == sweep_final_weights(&local), "the requeued point's weights differ");
}
