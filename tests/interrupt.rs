//! Interruption: SIGINT mid-epoch and `initscope resume` give a run
//! bit-identical to one never interrupted; a run killed with SIGKILL can
//! still be reported on and resumed.

mod common;
use common::*;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

/// Enough work that a signal lands in the middle: 4 epochs of 84 steps of
/// the seed network on 28x28 images; `experiment` is a file or `None` for
/// the seed experiment.
fn start_run(experiment: Option<&Path>, data: &Path, out: &Path) -> std::process::Child {
    let mut command = Command::new(env!("CARGO_BIN_EXE_initscope"));
    command.arg("run");
    if let Some(file) = experiment {
        command.arg(file);
    }
    command
        .args(["--quiet", "--epochs", "4", "--threads", "2", "--dataset"])
        .arg(data)
        .arg("--out")
        .arg(out)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("the binary starts")
}

fn signal(child: &std::process::Child, name: &str) {
    let status = Command::new("kill").args([&format!("-{name}"), &child.id().to_string()]).status().unwrap();
    assert!(status.success());
}

const RECORDS: [&str; 7] = [
    "steps.csv",
    "epochs.csv",
    "final.safetensors",
    "test_predictions.csv",
    "probe/layers.csv",
    "probe/histograms.csv",
    "probe/changes.csv",
];

fn assert_same_records(a: &Path, b: &Path) {
    for variant in ["kaiming", "normal"] {
        for file in RECORDS {
            let read = |d: &Path| {
                std::fs::read(d.join(variant).join(file)).unwrap_or_else(|e| panic!("{variant}/{file}: {e}"))
            };
            assert!(read(a) == read(b), "{variant}/{file} differs from the uninterrupted run");
        }
    }
    let verdicts = |d: &Path| {
        let s: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(d.join("summary.json")).unwrap()).unwrap();
        assert_eq!(s["status"], "complete");
        s["variants"].as_array().unwrap().iter().map(|v| (v["test"].clone(), v["verdicts"].clone())).collect::<Vec<_>>()
    };
    assert_eq!(verdicts(a), verdicts(b));
}

/// The run `file` makes when nothing stops it (4 epochs), into `out`.
fn run_uninterrupted(file: &Path, data: &Path, out: &Path) {
    let r = initscope(&[
        "run",
        file.to_str().unwrap(),
        "--quiet",
        "--epochs",
        "4",
        "--dataset",
        data.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
    ]);
    assert!(r.status.success(), "{}", stderr(&r));
}

/// Adam keeps state (two moment buffers and a step count) that the
/// checkpoint must carry for the resumed run to match.
#[test]
fn sigint_mid_epoch_then_resume_is_bit_identical() {
    let tmp = tempfile::tempdir().unwrap();
    let data = synthetic_dir(tmp.path(), 12_000, 300, 28);
    let mut exp = initscope::experiment::Experiment::seed_experiment();
    exp.optimizer = initscope::optim::OptimizerSettings {
        kind: initscope::optim::OptimizerKind::Adam,
        ..initscope::optim::OptimizerSettings::sgd(1e-3)
    };
    // PyTorch's generator: the resumed epoch's order is replayed through
    // the earlier epochs' draws (the SIGKILL test below covers initscope's
    // own streams).
    exp.rng = initscope::rng::RngKind::Torch;
    let file = tmp.path().join("adam.toml");
    std::fs::write(&file, exp.to_toml()).unwrap();
    let reference = tmp.path().join("reference");
    run_uninterrupted(&file, &data, &reference);

    let run = tmp.path().join("interrupted");
    let child = start_run(Some(&file), &data, &run);
    // After the first epoch's records exist, stop somewhere in the second.
    wait_for(&run.join("kaiming/epochs.csv"), Duration::from_secs(120));
    std::thread::sleep(Duration::from_millis(150));
    signal(&child, "INT");
    let out = child.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(130), "{}", String::from_utf8_lossy(&out.stderr));
    let summary = std::fs::read_to_string(run.join("summary.json")).unwrap();
    assert!(summary.contains("\"status\": \"interrupted\""), "{summary}");
    let checkpoint = std::fs::read_to_string(run.join("kaiming/checkpoint.json")).unwrap();
    assert!(checkpoint.contains("\"optimizer_file\": \"checkpoint-"), "{checkpoint}");

    let r = initscope(&["resume", "--quiet", run.to_str().unwrap()]);
    assert!(r.status.success(), "{}", stderr(&r));
    assert_same_records(&reference, &run);
    assert!(!run.join("kaiming/checkpoint.json").exists(), "a finished variant keeps no checkpoint");
}

#[test]
fn sigkill_leaves_records_that_report_and_resume_read() {
    // With batch norm: its running statistics must come back from the checkpoint.
    let tmp = tempfile::tempdir().unwrap();
    let data = synthetic_dir(tmp.path(), 12_000, 300, 28);
    let file = tmp.path().join("bn.toml");
    std::fs::write(&file, initscope::presets::text("seed-batchnorm").unwrap()).unwrap();
    let run = tmp.path().join("killed");
    let mut child = start_run(Some(&file), &data, &run);
    wait_for(&run.join("kaiming/epochs.csv"), Duration::from_secs(120));
    std::thread::sleep(Duration::from_millis(300));
    child.kill().unwrap(); // SIGKILL
    child.wait().unwrap();

    let r = initscope(&["report", run.to_str().unwrap()]);
    assert!(r.status.success(), "report after SIGKILL: {}", stderr(&r));
    assert!(run.join("report.html").is_file());

    let r = initscope(&["resume", "--quiet", run.to_str().unwrap()]);
    assert!(r.status.success(), "resume after SIGKILL: {}", stderr(&r));
    let reference = tmp.path().join("reference");
    run_uninterrupted(&file, &data, &reference);
    assert_same_records(&reference, &run);
}
