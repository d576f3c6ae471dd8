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

/// Training steps per epoch of the runs here: 12,000 images less 10 % for
/// validation, in batches of 128.
const STEPS_PER_EPOCH: u64 = 10_800usize.div_ceil(128) as u64;

/// The step within its epoch at which `run`'s kaiming variant stopped.
fn stopped_step(run: &Path) -> u64 {
    let text = std::fs::read_to_string(run.join("kaiming/checkpoint.json")).unwrap();
    let json: serde_json::Value = serde_json::from_str(&text).unwrap();
    json["checkpoint"]["step"].as_u64().unwrap()
}

/// SIGINT to a run of the seed experiment once its first epoch is recorded.
fn interrupted_seed_run(data: &Path, run: &Path) {
    let child = start_run(None, data, run);
    wait_for(&run.join("kaiming/epochs.csv"), Duration::from_secs(120));
    std::thread::sleep(Duration::from_millis(150));
    signal(&child, "INT");
    let out = child.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(130), "{}", String::from_utf8_lossy(&out.stderr));
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
    // It stopped inside an epoch (not at a boundary), and the probe saved
    // the epoch's starting weights for its mid-epoch resume.
    let step = stopped_step(&run);
    assert!(step > 0 && step < STEPS_PER_EPOCH, "stopped at step {step} of {STEPS_PER_EPOCH}: not mid-epoch");
    assert!(run.join("kaiming/probe/epoch-start.safetensors").is_file(), "the probe's mid-epoch snapshot is missing");

    let r = initscope(&["resume", "--quiet", run.to_str().unwrap()]);
    assert!(r.status.success(), "{}", stderr(&r));
    let log = std::fs::read_to_string(run.join("log.txt")).unwrap();
    assert!(log.contains(&format!("== kaiming (resumed after step {step} of epoch ")), "{log}");
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

/// A checkpoint made under other numerics (another instruction-set path)
/// is refused with one line naming it; `--allow-other-numerics` continues
/// it and the summary records that the run is no longer bit-identical.
#[test]
fn resume_under_other_numerics_refuses_unless_allowed() {
    let tmp = tempfile::tempdir().unwrap();
    let data = synthetic_dir(tmp.path(), 12_000, 300, 28);
    let run = tmp.path().join("run");
    interrupted_seed_run(&data, &run);
    let path = run.join("kaiming/checkpoint.json");
    let mut json: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
    let here = json["checkpoint"]["numerics"].as_str().unwrap().to_string();
    assert_eq!(here, initscope::nn::matmul::numerics_fingerprint());
    json["checkpoint"]["numerics"] = "x86_64-scalar/k512".into();
    std::fs::write(&path, serde_json::to_string(&json).unwrap()).unwrap();

    let r = initscope(&["resume", "--quiet", run.to_str().unwrap()]);
    assert_eq!(r.status.code(), Some(2), "{}", stderr(&r));
    let err = stderr(&r);
    assert_eq!(err.trim_end().lines().count(), 1, "not one line: {err}");
    assert!(err.contains("kaiming/checkpoint.json: made under numerics x86_64-scalar/k512"), "{err}");
    assert!(err.contains("--allow-other-numerics"), "{err}");

    let r = initscope(&["resume", "--quiet", "--allow-other-numerics", run.to_str().unwrap()]);
    assert!(r.status.success(), "{}", stderr(&r));
    let summary: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(run.join("summary.json")).unwrap()).unwrap();
    assert_eq!(summary["status"], "complete");
    assert_eq!(summary["environment"]["numerics"], here.as_str());
    assert_eq!(
        summary["environment"]["numerics_changed"],
        serde_json::json!([format!("kaiming: x86_64-scalar/k512 -> {here}")])
    );
    let log = std::fs::read_to_string(run.join("log.txt")).unwrap();
    assert!(log.contains("no longer bit-identical"), "{log}");
}
