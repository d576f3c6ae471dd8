//! `initscope sweep` end to end on small synthetic data: one run directory
//! per point and one table row per point and variant; continuation after
//! SIGINT and after SIGKILL gives the table of an uninterrupted sweep; a
//! failed point is listed and run again only with --retry-failed; bad
//! sweep files are refused before anything runs.

mod common;
use common::*;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

fn sweep(file: &Path, out: &Path, extra: &[&str]) -> std::process::Output {
    let mut args = vec!["sweep", file.to_str().unwrap(), "--quiet", "--out", out.to_str().unwrap()];
    args.extend_from_slice(extra);
    initscope(&args)
}

#[test]
fn a_sweep_writes_a_run_per_point_and_a_row_per_point_and_variant() {
    let tmp = tempfile::tempdir().unwrap();
    let data = synthetic_dir(tmp.path(), 1000, 200, 10);
    let file = sweep_file(tmp.path(), &data, 2, 32);
    let out = tmp.path().join("sweep");
    let r = sweep(&file, &out, &["--threads", "2"]);
    assert!(r.status.success(), "{}", stderr(&r));

    let rows = table_without_seconds(&out);
    assert_eq!(rows.len(), 1 + 8, "4 points x 2 variants");
    assert_eq!(&rows[0][..5], ["point", "run", "variant", "model.depth", "optimizer.lr"]);
    assert_eq!(column(&rows, "model.depth"), ["1", "1", "1", "1", "3", "3", "3", "3"]);
    assert_eq!(column(&rows, "optimizer.lr"), ["0.05", "0.05", "0.2", "0.2", "0.05", "0.05", "0.2", "0.2"]);
    assert!(column(&rows, "status").iter().all(|s| s == "done"));
    // Each point is a run directory as `initscope run` writes it, and its
    // row carries what its summary says.
    for (i, (run, test)) in column(&rows, "run").iter().zip(column(&rows, "test_accuracy")).enumerate() {
        let dir = out.join(run);
        let exp = initscope::experiment::Experiment::from_file(&dir.join("experiment.toml")).unwrap();
        assert_eq!(exp.model.hidden.len(), if i < 4 { 1 } else { 3 });
        let summary: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(dir.join("summary.json")).unwrap()).unwrap();
        assert_eq!(summary["status"], "complete");
        let v = &summary["variants"][i % 2];
        let percent = 100.0 * v["test"]["correct"].as_f64().unwrap() / v["test"]["total"].as_f64().unwrap();
        assert!((test.parse::<f64>().unwrap() - percent).abs() < 1e-3, "row {i}: {test} against {percent}");
    }
    let r = initscope(&["report", out.join("runs/p0001").to_str().unwrap()]);
    assert!(r.status.success(), "report of a point: {}", stderr(&r));
    assert!(out.join("report.html").is_file());
    for name in ["phase-kaiming.svg", "phase-kaiming.png", "phase-xavier.svg"] {
        assert!(out.join("plots").join(name).is_file(), "{name}");
    }
    let r = initscope(&["sweep", "report", out.to_str().unwrap(), "--metric", "final-loss"]);
    assert!(r.status.success(), "{}", stderr(&r));

    // The same command again finds nothing to do and leaves the results.
    let before = std::fs::read(out.join("runs/p0004/kaiming/final.safetensors")).unwrap();
    let r = sweep(&file, &out, &[]);
    assert!(r.status.success(), "{}", stderr(&r));
    assert_eq!(std::fs::read(out.join("runs/p0004/kaiming/final.safetensors")).unwrap(), before);
    assert_eq!(table_without_seconds(&out), rows);
}

/// Starts a sweep in the background.
fn start_sweep(file: &Path, out: &Path) -> std::process::Child {
    Command::new(env!("CARGO_BIN_EXE_initscope"))
        .args(["sweep", file.to_str().unwrap(), "--quiet", "--threads", "2", "--out", out.to_str().unwrap()])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("the binary starts")
}

#[test]
fn a_sweep_stopped_by_sigint_or_sigkill_continues_to_the_same_results() {
    let tmp = tempfile::tempdir().unwrap();
    let data = synthetic_dir(tmp.path(), 6000, 200, 28);
    let file = sweep_file(tmp.path(), &data, 6, 256);
    let reference = tmp.path().join("reference");
    let r = sweep(&file, &reference, &["--threads", "2"]);
    assert!(r.status.success(), "{}", stderr(&r));
    let expected = table_without_seconds(&reference);

    for (signal, code) in [("INT", Some(130)), ("KILL", None)] {
        let out = tmp.path().join(format!("stopped-{signal}"));
        let child = start_sweep(&file, &out);
        // Stop inside the second point, once its first variant has a
        // checkpoint (6 epochs leave time to spare on a loaded machine).
        wait_for(&out.join("runs/p0002/kaiming/checkpoint.json"), Duration::from_secs(180));
        let status = Command::new("kill").args([&format!("-{signal}"), &child.id().to_string()]).status().unwrap();
        assert!(status.success());
        let stopped = child.wait_with_output().unwrap();
        assert_eq!(stopped.status.code(), code, "{signal}: {}", String::from_utf8_lossy(&stopped.stderr));
        let partial = table_without_seconds(&out);
        assert_eq!(partial.len(), expected.len(), "{signal}: the partial table has every row");
        assert!(column(&partial, "status").iter().any(|s| s != "done"), "{signal}: stopped before the end");
        // Point 2 stopped inside its training: it continues from a checkpoint.
        let checkpoints = ["kaiming", "xavier"].map(|v| out.join("runs/p0002").join(v).join("checkpoint.json"));
        assert!(checkpoints.iter().any(|c| c.exists()), "{signal}: point 2 left no checkpoint");
        if signal == "INT" {
            assert!(column(&partial, "status").contains(&"interrupted".to_string()), "{partial:?}");
        }

        let r = sweep(&file, &out, &["--threads", "2"]);
        assert!(r.status.success(), "{signal}: continuing: {}", stderr(&r));
        assert_eq!(table_without_seconds(&out), expected, "{signal}: the table differs from the uninterrupted sweep's");
        assert!(sweep_final_weights(&out) == sweep_final_weights(&reference), "{signal}: weights differ");
    }
}

#[test]
fn a_failed_point_is_listed_and_run_again_only_with_retry_failed() {
    let tmp = tempfile::tempdir().unwrap();
    let data = synthetic_dir(tmp.path(), 600, 100, 10);
    let file = sweep_file(tmp.path(), &data, 1, 32);
    let out = tmp.path().join("sweep");
    let r = sweep(&file, &out, &[]);
    assert!(r.status.success(), "{}", stderr(&r));
    let expected = table_without_seconds(&out);

    // Point 2's run directory becomes a file: continuing it is an I/O error.
    let point2 = out.join("runs/p0002");
    std::fs::remove_dir_all(&point2).unwrap();
    std::fs::write(&point2, "in the way").unwrap();
    let r = sweep(&file, &out, &[]);
    assert_eq!(r.status.code(), Some(1), "{}", stderr(&r));
    assert!(stderr(&r).contains("point 2 (model.depth = 1, optimizer.lr = 0.2)"), "{}", stderr(&r));
    assert!(out.join("status/p0002.json").is_file());
    let rows = table_without_seconds(&out);
    assert_eq!(column(&rows, "status"), ["done", "done", "failed", "failed", "done", "done", "done", "done"]);

    // Mended, it still waits for --retry-failed.
    std::fs::remove_file(&point2).unwrap();
    let r = sweep(&file, &out, &[]);
    assert_eq!(r.status.code(), Some(1), "{}", stderr(&r));
    assert!(stderr(&r).contains("--retry-failed"), "{}", stderr(&r));
    assert!(!point2.exists(), "a failed point ran without --retry-failed");
    let r = sweep(&file, &out, &["--retry-failed"]);
    assert!(r.status.success(), "{}", stderr(&r));
    assert!(!out.join("status/p0002.json").exists());
    assert_eq!(table_without_seconds(&out), expected);
}

#[test]
fn bad_sweeps_are_refused_in_one_line_before_anything_runs() {
    let tmp = tempfile::tempdir().unwrap();
    let data = synthetic_dir(tmp.path(), 300, 50, 10);
    let good = std::fs::read_to_string(sweep_file(tmp.path(), &data, 1, 32)).unwrap();
    let line = 1 + good.lines().position(|l| l.starts_with(r#""optimizer.lr""#)).unwrap();
    let at = format!("small.toml:{line}");
    let cases = [
        // A bad value at point 2 of 4, named with its axis values and line.
        (r#""optimizer.lr" = [0.05, -0.2]"#, format!("{at}: point 2 of 4 (model.depth = 1, optimizer.lr = -0.2)")),
        (r#""optimizer.lr" = []"#, at.clone()),
        (r#""optimizer.rl" = [0.1]"#, at.clone()),
        (r#""variants.5.weight_init.gain" = [1.0]"#, at.clone()),
        (r#""optimizer.lr" = ["fast"]"#, at.clone()),
    ];
    for (axis, expected) in cases {
        let text = good.replace(r#""optimizer.lr" = [0.05, 0.2]"#, axis);
        let file = tmp.path().join("small.toml");
        std::fs::write(&file, &text).unwrap();
        let out = tmp.path().join("never");
        let r = sweep(&file, &out, &[]);
        let err = stderr(&r);
        assert_eq!(r.status.code(), Some(2), "{axis}: {err}");
        assert!(err.contains(&expected), "{axis}: {err}");
        assert_eq!(err.trim().lines().count(), 1, "{axis}: {err}");
        assert!(!out.exists(), "{axis}: the sweep directory was made");
    }

    // More than 10,000 points asks for --yes and says how many.
    let text = good.replace(
        r#""optimizer.lr" = [0.05, 0.2]"#,
        &format!(r#""seed" = [{}]"#, (0..5001).map(|s| s.to_string()).collect::<Vec<_>>().join(", ")),
    );
    let file = tmp.path().join("huge.toml");
    std::fs::write(&file, text).unwrap();
    let r = sweep(&file, &tmp.path().join("huge"), &[]);
    assert_eq!(r.status.code(), Some(2), "{}", stderr(&r));
    assert!(stderr(&r).contains("10002 points") && stderr(&r).contains("--yes"), "{}", stderr(&r));

    // A directory holding another sweep is not mixed with this one.
    let file = tmp.path().join("small.toml");
    std::fs::write(&file, &good).unwrap();
    let out = tmp.path().join("taken");
    assert!(sweep(&file, &out, &["--epochs", "1"]).status.success());
    let r = sweep(&file, &out, &["--epochs", "2"]);
    assert_eq!(r.status.code(), Some(2), "{}", stderr(&r));
    assert!(stderr(&r).contains("holds a different sweep"), "{}", stderr(&r));
}

#[test]
fn the_slurm_executor_without_sbatch_says_what_to_install() {
    let tmp = tempfile::tempdir().unwrap();
    let data = synthetic_dir(tmp.path(), 300, 50, 10);
    let file = sweep_file(tmp.path(), &data, 1, 32);
    let out = tmp.path().join("sweep");
    let r = Command::new(env!("CARGO_BIN_EXE_initscope"))
        .args(["sweep", file.to_str().unwrap(), "--executor", "slurm", "--out", out.to_str().unwrap()])
        .env("PATH", tmp.path())
        .output()
        .unwrap();
    assert_eq!(r.status.code(), Some(2), "{}", stderr(&r));
    assert!(stderr(&r).contains("--executor slurm: sbatch is not on PATH"), "{}", stderr(&r));
    assert_eq!(stderr(&r).trim().lines().count(), 1);
    assert!(!out.join("slurm/jobs.txt").exists() && !out.join("slurm/tasks-1.txt").exists());
}

/// Two sweep processes on one directory: every point is trained by one of
/// them only (its run directory's lock turns the other away), and the
/// results equal a sweep run alone.
#[test]
fn two_sweep_processes_on_one_directory_never_train_the_same_point() {
    let tmp = tempfile::tempdir().unwrap();
    let data = synthetic_dir(tmp.path(), 3000, 200, 28);
    let file = sweep_file(tmp.path(), &data, 3, 256);
    let reference = tmp.path().join("reference");
    let r = sweep(&file, &reference, &["--threads", "2"]);
    assert!(r.status.success(), "{}", stderr(&r));

    let out = tmp.path().join("shared");
    let first = start_sweep(&file, &out);
    // The second starts once the first holds a point.
    wait_for(&out.join("runs/p0001/log.txt"), Duration::from_secs(120));
    let second = start_sweep(&file, &out);
    for child in [first, second] {
        let done = child.wait_with_output().unwrap();
        assert!(done.status.success(), "{}", String::from_utf8_lossy(&done.stderr));
    }
    for p in 1..=4 {
        let run = out.join(format!("runs/p{p:04}"));
        assert!(!run.join("lock.json").exists(), "point {p} kept its lock");
        let log = std::fs::read_to_string(run.join("log.txt")).unwrap();
        for variant in ["kaiming", "xavier"] {
            let starts = log.matches(&format!("== {variant} ==")).count();
            assert_eq!(starts, 1, "point {p}: {variant} trained {starts} times:\n{log}");
        }
    }
    assert_eq!(table_without_seconds(&out), table_without_seconds(&reference));
    assert!(sweep_final_weights(&out) == sweep_final_weights(&reference), "weights differ from a sweep run alone");
}

/// A point whose summary.json is cut short: `sweep report` warns naming
/// it, continuing fails the point, and `--retry-failed` moves its run
/// directory aside (kept) and runs it from scratch, to the same results.
#[test]
fn a_corrupt_record_is_mended_by_retry_failed() {
    let tmp = tempfile::tempdir().unwrap();
    let data = synthetic_dir(tmp.path(), 600, 100, 8);
    let file = sweep_file(tmp.path(), &data, 1, 16);
    let out = tmp.path().join("sweep");
    let r = sweep(&file, &out, &["--threads", "2"]);
    assert!(r.status.success(), "{}", stderr(&r));
    let expected = table_without_seconds(&out);
    let summary = out.join("runs/p0003/summary.json");
    let text = std::fs::read(&summary).unwrap();
    std::fs::write(&summary, &text[..text.len() / 2]).unwrap();

    let r = initscope(&["sweep", "report", out.to_str().unwrap()]);
    assert!(r.status.success(), "{}", stderr(&r));
    assert!(
        stderr(&r).contains("warning: point 3: ") && stderr(&r).contains("p0003/summary.json: corrupt"),
        "{}",
        stderr(&r)
    );
    let r = sweep(&file, &out, &[]);
    assert_eq!(r.status.code(), Some(1), "{}", stderr(&r));
    assert!(stderr(&r).contains("point 3 ("), "{}", stderr(&r));

    let r = initscope(&["sweep", file.to_str().unwrap(), "--out", out.to_str().unwrap(), "--retry-failed"]);
    assert!(r.status.success(), "{}", stderr(&r));
    let said = String::from_utf8_lossy(&r.stdout);
    assert!(said.contains("running it from scratch") && said.contains("p0003.corrupt-1"), "{said}");
    assert!(out.join("runs/p0003.corrupt-1/summary.json").is_file(), "the corrupt records are kept");
    assert_eq!(table_without_seconds(&out), expected);
}

#[test]
fn a_sweep_of_width_against_lr_reports_each_widths_optimum_from_its_table() {
    let tmp = tempfile::tempdir().unwrap();
    let data = synthetic_dir(tmp.path(), 600, 100, 10);
    let out = tmp.path().join("sweep");
    let r = sweep(&transfer_sweep_file(tmp.path(), &data), &out, &["--threads", "2"]);
    assert!(r.status.success(), "{}", stderr(&r));
    let rows = table_without_seconds(&out);
    assert_eq!(rows.len(), 1 + 12 * 2, "3 widths x 4 rates x 2 variants");
    // steps_per_epoch caps each epoch: 2 epochs of 4 steps, of 50 images.
    assert!(column(&rows, "steps").iter().all(|s| s == "8"), "{:?}", column(&rows, "steps"));
    let epochs = std::fs::read_to_string(out.join("runs/p0001/standard/epochs.csv")).unwrap();
    let first: Vec<&str> = epochs.lines().nth(1).unwrap().split(',').collect();
    assert_eq!(first[5], "200", "train_total of epoch 1 in\n{epochs}");

    // Each variant's optimum per width, recomputed from sweep.csv.
    let (widths, lrs, groups, losses) = (
        column(&rows, "model.width"),
        column(&rows, "optimizer.lr"),
        column(&rows, "group"),
        column(&rows, "final_loss"),
    );
    let mut expected = Vec::new();
    for group in ["standard", "mup"] {
        for width in ["16", "32", "64"] {
            let best = (0..widths.len())
                .filter(|&i| groups[i] == group && widths[i] == width)
                .min_by(|&a, &b| losses[a].parse::<f64>().unwrap().total_cmp(&losses[b].parse().unwrap()))
                .unwrap();
            expected.push((group.to_string(), width.to_string(), lrs[best].parse::<f64>().unwrap()));
        }
    }
    let optima = std::fs::read_to_string(out.join("lr-optima.csv")).unwrap();
    let mut lines = optima.lines();
    assert_eq!(lines.next(), Some("group,width,best_lr,best_log2_lr,loss,at_edge,octaves_per_doubling"));
    let found: Vec<(String, String, f64)> = lines
        .map(|l| {
            let f: Vec<&str> = l.split(',').collect();
            (f[0].to_string(), f[1].to_string(), f[2].parse().unwrap())
        })
        .collect();
    assert_eq!(found, expected, "{optima}");
    assert!(out.join("plots/lr-transfer.svg").is_file());
    let html = std::fs::read_to_string(out.join("report.html")).unwrap();
    assert!(html.contains("<h2>Learning-rate transfer</h2>"));
    assert_eq!(html.matches("octaves per doubling of width").count(), 2, "a sentence per variant");
}

#[test]
fn a_residual_sweep_over_blocks_and_weight_scale_draws_theorys_gradient_growth_over_its_map() {
    let tmp = tempfile::tempdir().unwrap();
    let data = synthetic_dir(tmp.path(), 300, 50, 8);
    let text = format!(
        r#"name = "residual-map"
dataset = "{}"
epochs = 1
batch_size = 50
log_every = 0
model = {{ width = 16, activation = "tanh", residual = {{ blocks = 2, branch_layers = 1 }} }}
probe = {{ every = 0, histogram_every = 0 }}

[[variants]]
name = "tanh"
weight_init = {{ scheme = "kaiming_normal", gain = 1.0 }}
bias_init = {{ scheme = "normal", std = 0.2 }}

[sweep]
"model.residual.blocks" = [2, 8, 32]
"variants.0.weight_init.gain" = [0.5, 4.0]
"#,
        data.display()
    );
    let file = tmp.path().join("residual-map.toml");
    std::fs::write(&file, text).unwrap();
    let out = tmp.path().join("sweep");
    let r = sweep(&file, &out, &[]);
    assert!(r.status.success(), "{}", stderr(&r));
    // Theory's gradient grows with the blocks, and faster at the larger gain.
    let growth = |point: usize| -> f64 {
        let path = out.join(format!("runs/p{point:04}/tanh/theory.json"));
        let theory: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
        theory["blocks"].as_array().unwrap().iter().map(|b| b["gradient_growth"].as_f64().unwrap().log10()).sum()
    };
    assert!(growth(3) < growth(5) && growth(4) < growth(6), "with depth");
    assert!(growth(5) < growth(6), "with the weight scale");
    let svg = std::fs::read_to_string(out.join("plots/phase-tanh.svg")).unwrap();
    assert!(svg.contains("gradient x10") && svg.contains("gradient x100"), "both contours are drawn");
}
