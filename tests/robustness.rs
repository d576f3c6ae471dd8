//! Inputs that once crashed or hung the tool: each now ends in one line
//! naming the file or field with exit 2, or runs. Every command runs under
//! a deadline, so a hang fails the test instead of stalling CI.

mod common;
use common::*;
use initscope::experiment::Experiment;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

/// Runs the binary with `args`, killing it and failing the test if it is
/// still running after `limit`.
fn run_within(args: &[&str], limit: Duration) -> Output {
    let mut child = Command::new(env!("CARGO_BIN_EXE_initscope"))
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("the binary starts");
    let start = Instant::now();
    while child.try_wait().unwrap().is_none() {
        if start.elapsed() > limit {
            child.kill().ok();
            panic!("initscope {} still running after {limit:?}", args.join(" "));
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    child.wait_with_output().unwrap()
}

/// Exit 2 and one line on standard error containing `needle`.
fn assert_refused(out: &Output, needle: &str) {
    let err = stderr(out);
    assert_eq!(out.status.code(), Some(2), "{needle}: {err}");
    assert_eq!(err.trim_end().lines().count(), 1, "not one line: {err}");
    assert!(err.contains(needle), "{err} lacks {needle}");
}

/// An experiment on a synthetic 8x8 data set under `dir`, one variant,
/// edited by `edit`, written as `name`.toml.
fn experiment_file(dir: &Path, name: &str, edit: impl Fn(&mut Experiment)) -> PathBuf {
    let data = if dir.join("synthetic").is_dir() { dir.join("synthetic") } else { synthetic_dir(dir, 600, 100, 8) };
    let mut exp = Experiment::seed_experiment();
    exp.name = name.into();
    exp.dataset = initscope::data::DataSource::Dir(data);
    exp.epochs = 1;
    exp.variants.truncate(1);
    edit(&mut exp);
    let path = dir.join(format!("{name}.toml"));
    std::fs::write(&path, exp.to_toml()).unwrap();
    path
}

fn path_str(p: &Path) -> &str {
    p.to_str().unwrap()
}

/// A narrow interval 5.9 to 6 standard deviations out holds 1.7e-9 of the
/// normal's mass: rejection sampling never finished. By the inverse CDF it
/// takes no longer than any other scheme, and every weight is inside.
#[test]
fn a_truncated_normal_far_in_the_tail_initialises_at_once() {
    let tmp = tempfile::tempdir().unwrap();
    let file = experiment_file(tmp.path(), "tail", |e| {
        e.model.hidden = vec![32, 16];
        e.variants[0].weight_init = initscope::nn::Init::TruncatedNormal { mean: 0.0, std: 1.0, a: 5.9, b: 6.0 };
    });
    let out = tmp.path().join("run");
    let r = run_within(&["run", path_str(&file), "--quiet", "--out", path_str(&out)], Duration::from_secs(60));
    assert!(r.status.success(), "{}", stderr(&r));
    let tensors = initscope::tensorfile::load(&out.join("kaiming/initial.safetensors")).unwrap();
    let weights: Vec<f32> =
        tensors.iter().filter(|t| t.0.ends_with(".weight")).flat_map(|t| t.2.iter().copied()).collect();
    assert_eq!(weights.len(), 64 * 32 + 32 * 16 + 16 * 10);
    assert!(weights.iter().all(|w| (5.9..=6.0).contains(w)), "a weight outside [5.9, 6]");
}

/// Starts `initscope run FILE --out OUT` and sends SIGTERM once `ready`
/// exists under OUT plus `delay`; returns the finished process's output and
/// the seconds from the signal to its exit.
fn stop_when(file: &Path, out: &Path, ready: &str, delay: Duration) -> (Output, f64) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_initscope"))
        .args(["run", path_str(file), "--quiet", "--threads", "1", "--out", path_str(out)])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let start = Instant::now();
    while !out.join(ready).exists() {
        if start.elapsed() > Duration::from_secs(60) || child.try_wait().unwrap().is_some() {
            child.kill().ok();
            panic!("{ready} never appeared before the run ended");
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    std::thread::sleep(delay);
    Command::new("kill").args(["-TERM", &child.id().to_string()]).status().unwrap();
    let signalled = Instant::now();
    while child.try_wait().unwrap().is_none() {
        assert!(signalled.elapsed() < Duration::from_secs(120), "SIGTERM was not honoured");
        std::thread::sleep(Duration::from_millis(10));
    }
    let seconds = signalled.elapsed().as_secs_f64();
    (child.wait_with_output().unwrap(), seconds)
}

/// Orthogonalising two 4096 x 4096 layers takes minutes (measured: 139 s
/// on a 2-core EPYC, 17 s for 2048 x 2048), so a SIGTERM 300 ms after the
/// run directory appears lands in it on any machine hundreds of times
/// faster too (the data, 600 tiny images, takes a millisecond); were the
/// initialisation over before the signal, the log would lack its line and
/// the test fail. The run stops within seconds, having recorded nothing,
/// and `resume` would start the variant afresh.
#[test]
fn a_stop_during_initialisation_is_honoured_at_once() {
    let tmp = tempfile::tempdir().unwrap();
    let file = experiment_file(tmp.path(), "wide", |e| {
        e.model.hidden = vec![4096, 4096];
        e.variants[0].weight_init = initscope::nn::Init::Orthogonal { gain: initscope::nn::Gain::Value(1.0) };
    });
    let out = tmp.path().join("stopped");
    let (r, seconds) = stop_when(&file, &out, "experiment.toml", Duration::from_millis(300));
    assert_eq!(r.status.code(), Some(130), "{}", stderr(&r));
    assert!(seconds < 3.0, "{seconds:.1} s from SIGTERM to exit: initialisation ran on");
    let log = std::fs::read_to_string(out.join("log.txt")).unwrap();
    assert!(log.contains("kaiming stopped while initialising"), "{log}");
    assert!(!out.join("kaiming/checkpoint.json").exists());
    let summary: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("summary.json")).unwrap()).unwrap();
    assert_eq!(summary["status"], "interrupted");
}

/// A run stopped by SIGTERM after its first epoch (a 1024-wide network, 50
/// epochs of 4 steps): its checkpoint serves the resume checks below.
fn interrupted_mid_training(dir: &Path) -> (PathBuf, PathBuf) {
    let file = experiment_file(dir, "long", |e| {
        e.model.hidden = vec![1024, 1024];
        e.epochs = 50;
    });
    let out = dir.join("stopped");
    let (r, _) = stop_when(&file, &out, "kaiming/epochs.csv", Duration::ZERO);
    assert_eq!(r.status.code(), Some(130), "{}", stderr(&r));
    assert!(out.join("kaiming/checkpoint.json").is_file());
    (file, out)
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap().flatten() {
        let target = to.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            copy_dir(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), &target).unwrap();
        }
    }
}

#[test]
fn resume_with_a_long_checkpoint_and_with_bad_records() {
    let tmp = tempfile::tempdir().unwrap();
    let (file, stopped) = interrupted_mid_training(tmp.path());
    let resume = |dir: &Path| run_within(&["resume", path_str(dir), "--quiet"], Duration::from_secs(300));

    // A checkpoint that has trained longer than this machine has been up.
    let long = tmp.path().join("long");
    copy_dir(&stopped, &long);
    let path = long.join("kaiming/checkpoint.json");
    let text = std::fs::read_to_string(&path).unwrap();
    let mut json: serde_json::Value = serde_json::from_str(&text).unwrap();
    json["checkpoint"]["elapsed_s"] = serde_json::json!(1e10);
    std::fs::write(&path, json.to_string()).unwrap();
    let r = resume(&long);
    assert!(r.status.success(), "{}", stderr(&r));
    let timings = std::fs::read_to_string(long.join("kaiming/timings.csv")).unwrap();
    let seconds: f64 = timings.lines().last().unwrap().split(',').nth(1).unwrap().parse().unwrap();
    assert!(seconds >= 1e10, "{timings}");

    // Resumed, the run equals one never stopped.
    let whole = tmp.path().join("whole");
    let r = run_within(&["run", path_str(&file), "--quiet", "--out", path_str(&whole)], Duration::from_secs(300));
    assert!(r.status.success(), "{}", stderr(&r));
    for name in ["steps.csv", "epochs.csv", "final.safetensors", "initial.safetensors"] {
        let read = |d: &Path| std::fs::read(d.join("kaiming").join(name)).unwrap();
        assert!(read(&long) == read(&whole), "{name} differs after the resume");
    }

    // Records that cannot be read are errors naming them, not lost history.
    for (name, needle) in
        [("kaiming/steps.csv", "steps.csv: cannot read"), ("summary.json", "summary.json: cannot read")]
    {
        let broken = tmp.path().join(format!("broken-{}", name.replace('/', "-")));
        copy_dir(&stopped, &broken);
        std::fs::remove_file(broken.join(name)).ok();
        std::fs::create_dir_all(broken.join(name)).unwrap(); // a directory cannot be read as a file
        assert_refused(&resume(&broken), needle);
    }
}

/// A resumed run whose steps file holds fewer rows than its checkpoint
/// follows is refused: continuing would silently drop history.
#[test]
fn records_shorter_than_the_checkpoint_are_refused_on_resume() {
    let tmp = tempfile::tempdir().unwrap();
    let file = experiment_file(tmp.path(), "short", |e| e.epochs = 2);
    let out = tmp.path().join("run");
    let r = run_within(&["run", path_str(&file), "--quiet", "--out", path_str(&out)], Duration::from_secs(120));
    assert!(r.status.success(), "{}", stderr(&r));
    // Make it look killed after epoch 1: the summary says running and epoch
    // 1's checkpoint is what would be there, but steps.csv lost its rows.
    let dir = out.join("kaiming");
    let steps = std::fs::read_to_string(dir.join("steps.csv")).unwrap();
    let per_epoch = (steps.lines().count() - 1) / 2;
    std::fs::write(dir.join("steps.csv"), steps.lines().take(per_epoch / 2).collect::<Vec<_>>().join("\n")).unwrap();
    let summary_path = out.join("summary.json");
    let mut summary: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&summary_path).unwrap()).unwrap();
    summary["status"] = "interrupted".into();
    summary["variants"] = serde_json::json!([]);
    std::fs::write(&summary_path, summary.to_string()).unwrap();
    let checkpoint = serde_json::json!({
        "checkpoint": {
            "variant": "kaiming", "epoch": 2, "step": 0, "steps_taken": per_epoch, "loss_sum": 0.0,
            "initial_loss": 2.3, "elapsed_s": 1.0, "last_epoch": null,
            "numerics": initscope::nn::matmul::numerics_fingerprint()
        },
        "params_file": "final.safetensors",
        "optimizer_file": null,
        "optimizer_steps": per_epoch,
        "random_streams": ""
    });
    std::fs::write(dir.join("checkpoint.json"), checkpoint.to_string()).unwrap();
    let r = run_within(&["resume", path_str(&out), "--quiet"], Duration::from_secs(120));
    assert_refused(&r, &format!("steps.csv: {} rows, but the checkpoint follows {per_epoch}", per_epoch / 2 - 1));
}

/// Weights saved by PyTorch in half precision, bfloat16 or float64 start a
/// run (converted to f32); a tensor that is not a number is named with its
/// dtype.
#[test]
fn weights_from_a_file_in_other_dtypes() {
    use safetensors::tensor::{Dtype, TensorView};
    let tmp = tempfile::tempdir().unwrap();
    let file = experiment_file(tmp.path(), "source", |e| e.model.hidden = vec![16]);
    let first = tmp.path().join("first");
    let r = run_within(&["run", path_str(&file), "--quiet", "--out", path_str(&first)], Duration::from_secs(120));
    assert!(r.status.success(), "{}", stderr(&r));
    let tensors = initscope::tensorfile::load(&first.join("kaiming/initial.safetensors")).unwrap();
    for dtype in [Dtype::F16, Dtype::BF16, Dtype::F64, Dtype::BOOL] {
        let encoded: Vec<(String, Vec<usize>, Vec<u8>)> = tensors
            .iter()
            .map(|(name, shape, values)| {
                let bytes = values
                    .iter()
                    .flat_map(|&v| match dtype {
                        Dtype::F16 => half::f16::from_f32(v).to_le_bytes().to_vec(),
                        Dtype::BF16 => half::bf16::from_f32(v).to_le_bytes().to_vec(),
                        Dtype::F64 => f64::from(v).to_le_bytes().to_vec(),
                        _ => vec![u8::from(v > 0.0)],
                    })
                    .collect();
                (name.clone(), shape.clone(), bytes)
            })
            .collect();
        let views: Vec<(String, TensorView)> =
            encoded.iter().map(|(n, s, b)| (n.clone(), TensorView::new(dtype, s.clone(), b).unwrap())).collect();
        let weights = tmp.path().join(format!("{dtype:?}.safetensors"));
        std::fs::write(&weights, safetensors::serialize(views, &None).unwrap()).unwrap();
        let exp = experiment_file(tmp.path(), &format!("from-{dtype:?}"), |e| {
            e.model.hidden = vec![16];
            e.variants[0].weight_init = initscope::nn::Init::FromFile { path: weights.clone() };
        });
        let out = tmp.path().join(format!("run-{dtype:?}"));
        let r = run_within(&["run", path_str(&exp), "--quiet", "--out", path_str(&out)], Duration::from_secs(120));
        if dtype == Dtype::BOOL {
            assert_refused(&r, "has dtype BOOL, which cannot be read as numbers");
            continue;
        }
        assert!(r.status.success(), "{dtype:?}: {}", stderr(&r));
        let loaded = initscope::tensorfile::load(&out.join("kaiming/initial.safetensors")).unwrap();
        for ((name, _, want), (_, _, got)) in tensors.iter().zip(&loaded) {
            for (w, g) in want.iter().zip(got) {
                let rounded = match dtype {
                    Dtype::F16 => half::f16::from_f32(*w).to_f32(),
                    Dtype::BF16 => half::bf16::from_f32(*w).to_f32(),
                    _ => *w,
                };
                assert_eq!(rounded, *g, "{dtype:?} {name}");
            }
        }
    }
}

/// `--lr` reaches a variant that sets its own optimiser, and the saved
/// settings say so.
#[test]
fn the_learning_rate_option_reaches_every_optimiser() {
    let tmp = tempfile::tempdir().unwrap();
    let file = experiment_file(tmp.path(), "own", |e| {
        e.variants[0].optimizer = Some(initscope::optim::OptimizerSettings::sgd(0.5));
    });
    let out = tmp.path().join("run");
    let r = run_within(
        &["run", path_str(&file), "--quiet", "--lr", "0.0125", "--out", path_str(&out)],
        Duration::from_secs(120),
    );
    assert!(r.status.success(), "{}", stderr(&r));
    let saved = Experiment::from_file(&out.join("experiment.toml")).unwrap();
    assert_eq!(saved.optimizer.lr, 0.0125);
    assert_eq!(saved.variants[0].optimizer.as_ref().unwrap().lr, 0.0125);
}

/// Batch norm in training needs two samples per batch, as in PyTorch.
#[test]
fn batch_norm_with_batches_of_one_is_refused() {
    let tmp = tempfile::tempdir().unwrap();
    let file = experiment_file(tmp.path(), "bn1", |e| {
        e.model.batch_norm = true;
        e.batch_size = 1;
    });
    let r = run_within(
        &["run", path_str(&file), "--quiet", "--out", path_str(&tmp.path().join("r"))],
        Duration::from_secs(60),
    );
    assert_refused(&r, "needs at least 2 samples per training batch");
}

/// The library checks settings where a library user enters: a bad
/// experiment given to `run_on_data` is an error, not a panic.
#[test]
fn the_library_validates_what_it_is_given() {
    use initscope::run::{run_on_data, RunOptions};
    let tmp = tempfile::tempdir().unwrap();
    let data_dir = synthetic_dir(tmp.path(), 300, 50, 8);
    let data = initscope::data::Dataset::read_dir(&data_dir).unwrap();
    let opts = RunOptions {
        run_dir: None,
        runs_root: tmp.path().join("runs"),
        data_root: tmp.path().into(),
        threads: 1,
        quiet: true,
        stop: Default::default(),
        allow_other_numerics: false,
        grouping: Default::default(),
    };
    type Edit = fn(&mut Experiment);
    let cases: [(&str, Edit); 4] = [
        ("epochs: must be at least 1", |e| e.epochs = 0),
        ("batch_size: must be at least 1", |e| e.batch_size = 0),
        ("variants: at least one is needed", |e| e.variants.clear()),
        ("optimizer.lr: must be a positive number", |e| e.optimizer.lr = -1.0),
    ];
    for (i, (needle, edit)) in cases.into_iter().enumerate() {
        let mut exp = Experiment::seed_experiment();
        exp.epochs = 1;
        edit(&mut exp);
        let dir = tmp.path().join(format!("lib-{i}"));
        std::fs::create_dir_all(&dir).unwrap();
        let err = run_on_data(&exp, &data, &dir, &opts).err().unwrap_or_else(|| panic!("{needle}: accepted"));
        assert!(err.to_string().contains(needle), "{err}");
        assert!(err.is::<initscope::error::InputError>(), "{needle}: not an input error");
    }
}

/// The report reads the records strictly: a corrupt row is named by file
/// and line, never drawn as a gap or a zero.
#[test]
fn the_report_names_a_corrupt_record_row() {
    let tmp = tempfile::tempdir().unwrap();
    let file = experiment_file(tmp.path(), "corrupt", |_| {});
    let out = tmp.path().join("run");
    let r = run_within(&["run", path_str(&file), "--quiet", "--out", path_str(&out)], Duration::from_secs(120));
    assert!(r.status.success(), "{}", stderr(&r));
    for (name, line, bad) in [("steps.csv", 3, "2,1,x,2.3"), ("probe/layers.csv", 2, "0,1,abc")] {
        let path = out.join("kaiming").join(name);
        let text = std::fs::read_to_string(&path).unwrap();
        let mut lines: Vec<&str> = text.lines().collect();
        let saved = lines[line - 1];
        lines[line - 1] = bad;
        std::fs::write(&path, lines.join("\n")).unwrap();
        let r = run_within(&["report", path_str(&out)], Duration::from_secs(60));
        assert_refused(&r, &format!("kaiming/{name}:{line}:"));
        lines[line - 1] = saved;
        std::fs::write(&path, lines.join("\n")).unwrap();
    }
    let r = run_within(&["report", path_str(&out)], Duration::from_secs(60));
    assert!(r.status.success(), "the mended records report again: {}", stderr(&r));
}
