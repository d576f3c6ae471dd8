//! Mean-field theory against real random networks: the pre-activation
//! variance each run's `theory.json` predicts, against what the probe
//! measures at step 0 (before any update), over several seeds of wide
//! networks (per-layer multipliers and init factors included); and the
//! `theory` command's JSON and phase diagram.

mod common;
use common::*;
use std::path::Path;

/// Four activations and initialisations on 4 hidden layers of 512 units,
/// and per-layer input multipliers and init factors on a plain and on a
/// residual network of that width.
fn experiment(dir: &Path, data: &Path) -> std::path::PathBuf {
    let text = format!(
        r#"name = "theory-check"
description = "theory against step 0"
dataset = "{data}"
seed = 1
seeds = [1, 2, 3, 4]
epochs = 1
batch_size = 100
validation_fraction = 0.1
shuffle = true
log_every = 0

[model]
width = 512
depth = 4
activation = "relu"

[optimizer]
lr = 0.01

[probe]
every = 1
histogram_every = 0

[[variants]]
name = "relu-ordered"
weight_init = {{ scheme = "kaiming_normal", gain = 1.0 }}
bias_init = {{ scheme = "constant", value = 0.0 }}

[[variants]]
name = "tanh-chaotic"
weight_init = {{ scheme = "kaiming_normal", gain = 1.6 }}
bias_init = {{ scheme = "normal", std = 0.3 }}
model = {{ width = 512, depth = 4, activation = "tanh" }}

[[variants]]
name = "selu"
weight_init = {{ scheme = "lecun_normal" }}
bias_init = {{ scheme = "constant", value = 0.0 }}
model = {{ width = 512, depth = 4, activation = "selu" }}

[[variants]]
name = "gelu-xavier"
weight_init = {{ scheme = "xavier_normal", gain = 1.0 }}
bias_init = {{ scheme = "uniform", a = -0.1, b = 0.1 }}
model = {{ width = 512, depth = 4, activation = "gelu" }}

[[variants]]
name = "relu-multiplied"
weight_init = {{ scheme = "kaiming_normal" }}
bias_init = {{ scheme = "normal", std = 0.2 }}
layers = [{{ layer = 2, multiplier = 1.5 }}, {{ layer = 3, init_scale = 0.6, bias_init_scale = 2.0 }}]

[[variants]]
name = "residual-multiplied"
weight_init = {{ scheme = "kaiming_normal" }}
bias_init = {{ scheme = "normal", std = 0.2 }}
model = {{ width = 512, residual = {{ blocks = 3, branch_layers = 1 }} }}
layers = [{{ layer = 2, multiplier = 1.7 }}, {{ layer = 3, init_scale = 0.5 }}]
"#,
        data = data.display()
    );
    let file = dir.join("theory-check.toml");
    std::fs::write(&file, text).unwrap();
    file
}

#[test]
fn predicted_variances_match_the_step_zero_measurements_of_wide_random_networks() {
    let tmp = tempfile::tempdir().unwrap();
    let data = synthetic_dir(tmp.path(), 400, 50, 28);
    let file = experiment(tmp.path(), &data);
    let out = tmp.path().join("run");
    let r = initscope(&["run", file.to_str().unwrap(), "--quiet", "--out", out.to_str().unwrap()]);
    assert!(r.status.success(), "{}", stderr(&r));
    let variants = ["relu-ordered", "tanh-chaotic", "selu", "gelu-xavier", "relu-multiplied", "residual-multiplied"];
    for variant in variants {
        // Mean over seeds of the measured variance of each hidden layer.
        let mut measured = [0.0f64; 4];
        let mut predicted = Vec::new();
        for seed in 1..=4 {
            let dir = out.join(format!("{variant}-seed{seed}"));
            let theory: serde_json::Value =
                serde_json::from_str(&std::fs::read_to_string(dir.join("theory.json")).unwrap()).unwrap();
            predicted =
                theory["layers"].as_array().unwrap().iter().map(|l| l["pre_variance"].as_f64().unwrap()).collect();
            let mut reader = csv::Reader::from_path(dir.join("probe/layers.csv")).unwrap();
            let header = reader.headers().unwrap().clone();
            let column = |name: &str| header.iter().position(|h| h == name).unwrap();
            let (step, layer, std) = (column("step"), column("layer"), column("pre_std"));
            for row in reader.records().map(Result::unwrap).filter(|r| &r[step] == "0") {
                let l: usize = row[layer].parse().unwrap();
                if l <= 4 {
                    measured[l - 1] += row[std].parse::<f64>().unwrap().powi(2) / 4.0;
                }
            }
        }
        // 512 units a layer, 4 seeds: the measured variance scatters by a
        // few percent a layer, compounding with depth; the output layer's
        // 10 units are too few to hold to anything.
        for (l, (m, p)) in measured.iter().zip(&predicted).enumerate() {
            let ratio = m / p;
            assert!((0.85..1.18).contains(&ratio), "{variant} layer {}: measured {m}, predicted {p}", l + 1);
        }
        if variant == "relu-ordered" {
            // sigma_w^2 = 1 with ReLU halves the variance at every layer.
            for pair in predicted[..4].windows(2) {
                assert!((pair[1] / pair[0] - 0.5).abs() < 1e-9);
            }
        }
    }
}

#[test]
fn the_theory_command_prints_the_documented_json_and_draws_phase_diagrams() {
    let tmp = tempfile::tempdir().unwrap();
    let data = synthetic_dir(tmp.path(), 200, 20, 28);
    let file = experiment(tmp.path(), &data);
    let r = initscope(&["theory", file.to_str().unwrap(), "--json"]);
    assert!(r.status.success(), "{}", stderr(&r));
    let json: serde_json::Value = serde_json::from_slice(&r.stdout).unwrap();
    let variants = json["variants"].as_array().unwrap();
    assert_eq!(variants.len(), 6);
    let relu = &variants[0];
    assert_eq!(relu["name"], "relu-ordered");
    assert_eq!(relu["regime"], "ordered");
    assert!((relu["chi1"].as_f64().unwrap() - 0.5).abs() < 1e-9);
    assert!((relu["critical_weight_variance"].as_f64().unwrap() - 2.0).abs() < 1e-6);
    assert_eq!(variants[1]["regime"], "chaotic");
    let layers = relu["layers"].as_array().unwrap();
    assert_eq!(layers.len(), 5);
    for (i, layer) in layers.iter().enumerate() {
        assert_eq!(layer["layer"], i + 1);
        assert!(layer["pre_std"].as_f64().unwrap() > 0.0 && layer["grad_ratio"].as_f64().unwrap() > 0.0);
    }

    let out = tmp.path().join("diagrams");
    let r = initscope(&["theory", "--phase-diagram", "tanh", "--out", out.to_str().unwrap()]);
    assert!(r.status.success(), "{}", stderr(&r));
    let text = String::from_utf8_lossy(&r.stdout);
    let line = text.lines().find(|l| l.contains("sigma_b^2 = 0.05")).unwrap();
    let critical: f64 = line.rsplit(' ').next().unwrap().parse().unwrap();
    assert!((critical - 1.76).abs() < 0.02, "{line}");
    assert!(out.join("phase-diagram-tanh.svg").is_file() && out.join("phase-diagram-tanh.png").is_file());
    let r = initscope(&["theory", "--phase-diagram", "swish"]);
    assert_eq!(r.status.code(), Some(2), "{}", stderr(&r));
}
