//! The probe's records and verdicts on small synthetic runs.

mod common;
use common::*;
use initscope::data::{Dataset, LabeledImages};
use initscope::experiment::Experiment;
use initscope::run::{run_on_data, RunOptions};

fn dataset(train: usize, test: usize, side: usize) -> Dataset {
    let set = |n, seed| {
        let (images, labels) = synthetic(n, side, seed);
        LabeledImages { count: n, rows: side, cols: side, pixels: images.data, labels: labels.data }
    };
    Dataset::new(set(train, 1), set(test, 2))
}

fn options(dir: &std::path::Path) -> RunOptions {
    RunOptions {
        run_dir: Some(dir.into()),
        runs_root: dir.into(),
        data_root: dir.into(),
        threads: 2,
        quiet: true,
        stop: Default::default(),
        allow_other_numerics: false,
        grouping: Default::default(),
    }
}

#[test]
fn an_optimiser_that_cannot_move_the_model_is_diagnosed() {
    let tmp = tempfile::tempdir().unwrap();
    let mut exp = Experiment::seed_experiment();
    exp.epochs = 2;
    // A learning rate so small that every update rounds away in f32 (the
    // biases start at 0.1, so no update from zero can show either): an
    // optimiser that cannot move its model, as in the original notebook.
    exp.optimizer.lr = 1e-30;
    exp.variants.truncate(1);
    exp.variants[0].bias_init = initscope::nn::Init::Constant { value: 0.1 };
    let data = dataset(1500, 100, 8);
    let outcome = run_on_data(&exp, &data, tmp.path(), &options(tmp.path())).unwrap();
    let verdicts = &outcome.summary.variants[0].verdicts;
    let unchanged = verdicts
        .iter()
        .find(|v| v.kind == initscope::verdict::VerdictKind::ParametersUnchanged)
        .expect("verdict fired");
    assert!(unchanged.message.contains("not one of the"), "{}", unchanged.message);
    // The same network with a working optimiser gets no such verdict.
    let mut exp = exp.clone();
    exp.optimizer.lr = 0.1;
    let tmp2 = tempfile::tempdir().unwrap();
    let outcome = run_on_data(&exp, &data, tmp2.path(), &options(tmp2.path())).unwrap();
    assert!(outcome.summary.variants[0]
        .verdicts
        .iter()
        .all(|v| v.kind != initscope::verdict::VerdictKind::ParametersUnchanged));
}

#[test]
fn probe_files_hold_a_row_per_step_and_layer_and_sane_values() {
    let tmp = tempfile::tempdir().unwrap();
    let mut exp = Experiment::seed_experiment();
    exp.epochs = 2;
    exp.probe.histogram_every = 5;
    let data = dataset(1500, 100, 8);
    run_on_data(&exp, &data, tmp.path(), &options(tmp.path())).unwrap();
    let steps = 2 * (1350 / 128);
    let layers = std::fs::read_to_string(tmp.path().join("kaiming/probe/layers.csv")).unwrap();
    assert_eq!(layers.lines().count(), 1 + 5 * steps);
    let header: Vec<&str> = layers.lines().next().unwrap().split(',').collect();
    let col = |name: &str| header.iter().position(|h| *h == name).unwrap();
    // Step 0, layer 1: the initial kaiming weights, U(-b, b) with b = sqrt(6/64): std b/sqrt(3).
    let row: Vec<&str> = layers.lines().nth(1).unwrap().split(',').collect();
    assert_eq!((row[0], row[1]), ("0", "1"));
    let std: f64 = row[col("w_std")].parse().unwrap();
    assert!((std / (2.0f64 / 64.0).sqrt() - 1.0).abs() < 0.05, "w_std {std}");
    // ReLU outputs are zero for roughly half the units.
    let zero: f64 = row[col("post_zero_frac")].parse().unwrap();
    assert!((0.2..0.8).contains(&zero), "post_zero_frac {zero}");
    // The update ratio is the update applied, |W_1 - W_0| / |W_0|: under
    // plain SGD that is lr * |dW| / |W| up to the rounding of the new
    // weights to f32 (about 1e-4 of the update, per weight, unbiased).
    let ratio: f64 = row[col("update_ratio")].parse().unwrap();
    let (gw, w): (f64, f64) = (row[col("gw_norm")].parse().unwrap(), row[col("w_norm")].parse().unwrap());
    assert!((ratio / (0.1 * gw / w) - 1.0).abs() < 1e-3, "update ratio {ratio} against lr |dW|/|W| {}", 0.1 * gw / w);
    let hist = std::fs::read_to_string(tmp.path().join("kaiming/probe/histograms.csv")).unwrap();
    let first: Vec<&str> = hist.lines().nth(1).unwrap().split(',').collect();
    assert_eq!(first.len(), 6 + 64);
    let total: u64 = first[6..].iter().map(|c| c.parse::<u64>().unwrap()).sum();
    assert_eq!(total, 512 * 64, "layer 1 weight histogram counts every weight");
}

/// Under Adam the update applied is not lr * |dW| / |W|: Adam's first step
/// moves every weight with a gradient well above eps by lr (m/sqrt(v) =
/// g/|g| at t = 1; Kingma & Ba 2015, Algorithm 1), so the first update
/// ratio is lr sqrt(n) / |W| for the n such weights, orders of magnitude
/// above the gradient ratio.
#[test]
fn under_adam_the_update_ratio_is_the_update_applied() {
    let tmp = tempfile::tempdir().unwrap();
    let mut exp = Experiment::seed_experiment();
    exp.epochs = 1;
    exp.variants.truncate(1);
    exp.optimizer = initscope::optim::OptimizerSettings {
        kind: initscope::optim::OptimizerKind::Adam,
        ..initscope::optim::OptimizerSettings::sgd(1e-3)
    };
    let data = dataset(1500, 100, 8);
    run_on_data(&exp, &data, tmp.path(), &options(tmp.path())).unwrap();
    let mut reader = csv::Reader::from_path(tmp.path().join("kaiming/probe/layers.csv")).unwrap();
    let header = reader.headers().unwrap().clone();
    let col = |name: &str| header.iter().position(|h| h == name).unwrap();
    let row = reader.records().next().unwrap().unwrap();
    assert_eq!((&row[0], &row[1]), ("0", "1"));
    let value = |name: &str| row[col(name)].parse::<f64>().unwrap();
    let (ratio, gw, w) = (value("update_ratio"), value("gw_norm"), value("w_norm"));
    let full_step = 1e-3 * ((512 * 64) as f64).sqrt() / w;
    // At most every weight moves by lr; all but a few (dead units, pixels
    // zero in the whole batch) do.
    assert!(
        ratio <= full_step * 1.0001 && ratio >= 0.9 * full_step,
        "update ratio {ratio}, lr sqrt(n)/|W| {full_step}"
    );
    let gradient_ratio = 1e-3 * gw / w;
    assert!(ratio > 10.0 * gradient_ratio, "update ratio {ratio} is not far above lr |dW|/|W| {gradient_ratio}");
    eprintln!("Adam step 0, layer 1: update ratio {ratio:.3e}, lr |dW|/|W| {gradient_ratio:.3e}");
}
