//! Lockstep groups give every run the bits it gets alone: whole sweep
//! tables and every record file compared with lockstep on (several group
//! shapes and thread counts) and off, after SIGINT and SIGKILL too, and a
//! run's own seeds.

mod common;
use common::*;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

/// Every record of a run's variant that must not depend on how it trained.
const RECORDS: [&str; 7] = [
    "final.safetensors",
    "initial.safetensors",
    "steps.csv",
    "epochs.csv",
    "test_predictions.csv",
    "probe/layers.csv",
    "theory.json",
];

/// 8 points of one shape (tanh, 784-32-32-10 on 28x28 images) over the
/// weight gain and the learning rate, one seed: every point trains on the
/// same batches, so their input Linears are stacked.
fn gain_sweep(dir: &Path, data: &Path, epochs: usize) -> PathBuf {
    let text = format!(
        r#"name = "gains"
dataset = "{data}"
seed = 3
epochs = {epochs}
batch_size = 50
validation_fraction = 0.1
log_every = 0
[model]
width = 32
depth = 2
activation = "tanh"
[optimizer]
lr = 0.05
[probe]
every = 4
histogram_every = 0
[[variants]]
name = "tanh"
weight_init = {{ scheme = "kaiming_normal", mode = "fan_in", gain = 1.0 }}
bias_init = {{ scheme = "normal", mean = 0.0, std = 0.1 }}
[sweep]
"variants.0.weight_init.gain" = [0.8, 1.2, 1.6, 2.0]
"optimizer.lr" = [0.02, 0.1]
"#,
        data = data.display()
    );
    let file = dir.join("gains.toml");
    std::fs::write(&file, text).unwrap();
    file
}

/// Every record file of every run under `out/runs`, by relative path.
fn records(out: &Path, variants: &[&str]) -> Vec<(String, Vec<u8>)> {
    let mut all = Vec::new();
    let mut points: Vec<_> = std::fs::read_dir(out.join("runs")).unwrap().map(|e| e.unwrap().path()).collect();
    points.sort();
    for point in points {
        for variant in variants {
            for record in RECORDS {
                let path = point.join(variant).join(record);
                let bytes = std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
                all.push((path.strip_prefix(out).unwrap().display().to_string(), bytes));
            }
        }
    }
    all
}

/// Asserts `a` and `b` hold the same records, naming the first that differs.
fn assert_same_records(a: &[(String, Vec<u8>)], b: &[(String, Vec<u8>)], what: &str) {
    assert_eq!(a.len(), b.len(), "{what}: another number of records");
    for ((name, x), (_, y)) in a.iter().zip(b) {
        assert!(x == y, "{what}: {name} differs from training alone");
    }
}

#[test]
fn lockstep_sweeps_give_every_point_the_bits_it_gets_alone() {
    let tmp = tempfile::tempdir().unwrap();
    let data = synthetic_dir(tmp.path(), 1000, 200, 28);
    let file = gain_sweep(tmp.path(), &data, 2);
    let alone = tmp.path().join("alone");
    let r = initscope(&["sweep", file.to_str().unwrap(), "--threads", "2", "--out", alone.to_str().unwrap()]);
    assert!(r.status.success(), "{}", stderr(&r));
    assert!(String::from_utf8_lossy(&r.stdout).contains("no lockstep: 8 runs, 2 at a time"));
    let (table, weights) = (table_without_seconds(&alone), records(&alone, &["tanh"]));
    for (args, said) in [
        (["--lockstep", "--threads", "2"], "lockstep: 2 groups of up to 4 runs, 2 at a time on 1 thread each"),
        (["--lockstep", "--threads", "1"], "lockstep: 1 group of up to 8 runs, 1 at a time on 1 thread each"),
        (["--group-size", "3", "--threads=2"], "lockstep: 3 groups of up to 3 runs, 2 at a time on 1 thread each"),
    ] {
        let out = tmp.path().join(args.join(""));
        let mut all = vec!["sweep", file.to_str().unwrap(), "--out", out.to_str().unwrap()];
        all.extend(args);
        let r = initscope(&all);
        assert!(r.status.success(), "{args:?}: {}", stderr(&r));
        assert!(String::from_utf8_lossy(&r.stdout).contains(said), "{args:?}: {}", String::from_utf8_lossy(&r.stdout));
        assert_eq!(table_without_seconds(&out), table, "{args:?}: the table differs");
        assert_same_records(&records(&out, &["tanh"]), &weights, &format!("{args:?}"));
    }
    let r = initscope(&["sweep", file.to_str().unwrap(), "--group-size", "0", "--out", "unused"]);
    assert_eq!(r.status.code(), Some(2));
    assert_eq!(stderr(&r).trim(), "error: --group-size: must be at least 1");
}

#[test]
fn a_runs_seeds_in_lockstep_give_the_bits_they_get_alone() {
    let tmp = tempfile::tempdir().unwrap();
    let data = synthetic_dir(tmp.path(), 600, 100, 28);
    let file = tmp.path().join("seeds.toml");
    let text = format!(
        "name = \"seeds\"\ndataset = \"{}\"\nseeds = [1, 2, 3]\nepochs = 2\nbatch_size = 60\nlog_every = 0\n\
         [model]\nhidden = [48, 24]\n[probe]\nevery = 3\n\
         [[variants]]\nname = \"kaiming\"\nweight_init = {{ scheme = \"kaiming_uniform\" }}\n\
         [[variants]]\nname = \"normal\"\nweight_init = {{ scheme = \"normal\", mean = 0.0, std = 0.001 }}\n",
        data.display()
    );
    std::fs::write(&file, text).unwrap();
    let mut outs = Vec::new();
    for flag in ["--threads=2", "--lockstep"] {
        let out = tmp.path().join(flag.trim_start_matches('-'));
        let r = initscope(&["run", file.to_str().unwrap(), "--quiet", flag, "--out", out.to_str().unwrap()]);
        assert!(r.status.success(), "{flag}: {}", stderr(&r));
        outs.push(out);
    }
    for variant in ["kaiming-seed1", "kaiming-seed3", "normal-seed2", "normal-seed3"] {
        for record in RECORDS {
            let read = |d: &PathBuf| std::fs::read(d.join(variant).join(record)).unwrap();
            assert!(read(&outs[0]) == read(&outs[1]), "{variant}/{record} differs in lockstep");
        }
    }
}

#[test]
fn a_lockstep_sweep_stopped_by_sigint_or_sigkill_continues_to_the_bits_of_training_alone() {
    let tmp = tempfile::tempdir().unwrap();
    let data = synthetic_dir(tmp.path(), 3000, 200, 28);
    let file = gain_sweep(tmp.path(), &data, 4);
    let reference = tmp.path().join("reference");
    let r = initscope(&["sweep", file.to_str().unwrap(), "--quiet", "--out", reference.to_str().unwrap()]);
    assert!(r.status.success(), "{}", stderr(&r));
    let (table, weights) = (table_without_seconds(&reference), records(&reference, &["tanh"]));
    for (signal, code) in [("INT", Some(130)), ("KILL", None)] {
        let out = tmp.path().join(format!("stopped-{signal}"));
        let child = Command::new(env!("CARGO_BIN_EXE_initscope"))
            .args(["sweep", file.to_str().unwrap(), "--quiet", "--lockstep", "--threads", "1"])
            .args(["--out", out.to_str().unwrap()])
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        // One group of 8: every point has a checkpoint after epoch 1.
        wait_for(&out.join("runs/p0008/tanh/checkpoint.json"), Duration::from_secs(180));
        let status = Command::new("kill").args([&format!("-{signal}"), &child.id().to_string()]).status().unwrap();
        assert!(status.success());
        let stopped = child.wait_with_output().unwrap();
        assert_eq!(stopped.status.code(), code, "{signal}: {}", String::from_utf8_lossy(&stopped.stderr));
        let partial = table_without_seconds(&out);
        assert!(column(&partial, "status").iter().all(|s| s != "done"), "{signal}: {partial:?}");
        let r = initscope(&["sweep", file.to_str().unwrap(), "--quiet", "--lockstep", "--out", out.to_str().unwrap()]);
        assert!(r.status.success(), "{signal}: continuing: {}", stderr(&r));
        assert_eq!(table_without_seconds(&out), table, "{signal}: the table differs from training alone");
        assert_same_records(&records(&out, &["tanh"]), &weights, signal);
    }
}
