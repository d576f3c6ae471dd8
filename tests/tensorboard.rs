//! TensorBoard event files read back by TensorBoard's own reader (the
//! Python `tensorboard` package): every scalar tag present, per-step losses
//! equal to `steps.csv`, histograms at the probe's steps. Needs the package,
//! so it is ignored by a plain `cargo test`; `.ci/run` installs it and runs
//! this with `--ignored`, where a missing package is a failure.

mod common;
use common::*;
use std::path::Path;
use std::process::Command;

fn read_back(dir: &Path) -> serde_json::Value {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("scripts/read-tensorboard.py");
    let out = Command::new("python3").arg(script).arg(dir).output().expect("python3 runs");
    assert!(out.status.success(), "the reader failed: {}", String::from_utf8_lossy(&out.stderr));
    serde_json::from_slice(&out.stdout).unwrap()
}

#[test]
#[ignore = "needs the Python tensorboard package; .ci/run installs it and runs this with --ignored"]
fn tensorboards_reader_reads_every_record_back() {
    let tmp = tempfile::tempdir().unwrap();
    let data = synthetic_dir(tmp.path(), 1000, 100, 10);
    let out = tmp.path().join("run");
    short_run(&data, 2, &out);
    for variant in ["kaiming", "normal"] {
        let events = read_back(&out.join("tensorboard").join(variant));
        let scalars = events["scalars"].as_object().unwrap();
        let mut expected = vec![
            "loss".to_string(),
            "epoch/mean_loss".into(),
            "epoch/train_accuracy".into(),
            "epoch/valid_accuracy".into(),
            "optimizer/lr".into(),
            "optimizer/grad_norm".into(),
        ];
        for layer in 1..=5 {
            for name in ["weight_norm", "grad_norm", "update_ratio", "pre_std"] {
                expected.push(format!("layer{layer}/{name}"));
            }
            if layer < 5 {
                expected.push(format!("layer{layer}/post_std"));
            }
        }
        for tag in &expected {
            assert!(scalars.contains_key(tag), "{variant}: no scalar {tag}");
        }
        // Every step's loss, as steps.csv has it.
        let mut reader = csv::Reader::from_path(out.join(variant).join("steps.csv")).unwrap();
        let losses: Vec<(i64, f32)> =
            reader.records().map(|r| r.unwrap()).map(|r| (r[0].parse().unwrap(), r[3].parse().unwrap())).collect();
        let read: Vec<(i64, f32)> = scalars["loss"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| (e[0].as_i64().unwrap(), e[1].as_f64().unwrap() as f32))
            .collect();
        assert_eq!(read, losses, "{variant}: the per-step losses differ from steps.csv");
        let lrs = scalars["optimizer/lr"].as_array().unwrap();
        assert_eq!(lrs.len(), losses.len(), "{variant}: one lr per step");
        assert!(lrs.iter().all(|e| (e[1].as_f64().unwrap() - 0.1).abs() < 1e-7), "{variant}: the seed's lr 0.1");
        assert_eq!(scalars["epoch/valid_accuracy"].as_array().unwrap().len(), 2);
        let histograms = events["histograms"].as_object().unwrap();
        for kind in ["weight", "weight_grad", "pre", "post"] {
            assert!(histograms.contains_key(&format!("{kind}/layer1")), "{variant}: no {kind} histogram");
        }
    }
    // `export` rewrites them from the records alone.
    std::fs::remove_dir_all(out.join("tensorboard")).unwrap();
    let r = initscope(&["export", "tensorboard", out.to_str().unwrap()]);
    assert!(r.status.success(), "{}", stderr(&r));
    let events = read_back(&out.join("tensorboard/kaiming"));
    assert!(events["scalars"]["loss"].as_array().unwrap().len() > 10);
}
