//! Optimisers, layers and the loss held to PyTorch's own precision, against
//! fixtures made by PyTorch 2.15 (scripts/torch-fixtures.py; no PyTorch is
//! needed here). Run with `--nocapture` to see the comparison tables.

mod common;
use common::*;

use initscope::data::batch::fill_batch;
use initscope::data::{Dataset, DatasetName, LabeledImages};
use initscope::nn::batchnorm::BatchNorm;
use initscope::nn::loss::softmax_cross_entropy;
use initscope::nn::{torch_init, Activation, Init, Model, Workspace};
use initscope::optim::{Optimizer, OptimizerSettings};
use initscope::train::Trainer;
use serde_json::Value;
use std::path::PathBuf;

const SEED_SIZES: [usize; 6] = [784, 512, 256, 128, 64, 10];
/// Steps compared, as the table.
const STEPS: usize = 60;

fn optim_json() -> Value {
    torch_fixture_json("optim.json")
}

fn floats(v: &Value) -> Vec<f64> {
    v.as_array().unwrap().iter().map(|x| x.as_f64().unwrap()).collect()
}

fn kaiming() -> (Init, Init) {
    (Init::kaiming_relu(), Init::zeros())
}

/// The seed network (with batch norm when asked) as PyTorch draws it from
/// seed 123 with Kaiming weights and zero biases.
fn seed_model(batch_norm: bool) -> Model {
    let mut model = Model::mlp_with_batch_norm(&SEED_SIZES, Activation::Relu, batch_norm);
    torch_init::initialise(&mut model, &vec![kaiming(); SEED_SIZES.len() - 1], 123);
    model
}

fn mnist() -> Dataset {
    let fetch = initscope(&["data", "fetch", "mnist"]);
    assert!(fetch.status.success(), "fetch failed: {}", stderr(&fetch));
    let root =
        std::env::var_os("INITSCOPE_DATA_DIR").map(PathBuf::from).unwrap_or_else(initscope::data::default_data_root);
    Dataset::load(DatasetName::Mnist, &root).unwrap()
}

/// Mean cross-entropy of `model` in evaluation mode on `rows` images from `first`.
fn eval_loss(model: &Model, data: &LabeledImages, first: usize, rows: usize) -> f64 {
    let mut ws = Workspace::new(model, rows);
    let indices: Vec<u32> = (first as u32..(first + rows) as u32).collect();
    let mut labels = Vec::new();
    fill_batch(data, &indices, &mut ws.input, &mut labels);
    model.forward(&mut ws, rows);
    let mut dlogits = vec![0.0; rows * model.classes()];
    f64::from(softmax_cross_entropy(model.logits(&ws, rows), &labels, &mut dlogits, model.classes()))
}

fn relative(a: f64, b: f64) -> f64 {
    (a - b).abs() / b.abs()
}

/// initscope's losses for one fixture setting: `(training, evaluation)`.
fn initscope_losses(setting: &Value, data: &LabeledImages) -> (Vec<f64>, Vec<f64>) {
    let settings: OptimizerSettings = serde_json::from_value(setting["optimizer"].clone()).unwrap();
    let batch_norm = setting["batch_norm"].as_bool().unwrap();
    let batch = 128;
    let mut trainer = Trainer::new(seed_model(batch_norm), settings, batch, 1);
    let (mut losses, mut evals) = (Vec::new(), Vec::new());
    for k in 0..STEPS {
        let indices: Vec<u32> = ((k * batch) as u32..((k + 1) * batch) as u32).collect();
        losses.push(f64::from(trainer.step(data, &indices)));
        if batch_norm {
            let first = setting["eval_first"].as_u64().unwrap() as usize;
            evals.push(eval_loss(trainer.model(), data, first, batch));
        }
    }
    (losses, evals)
}

/// PyTorch's own spread at each step: over the fixture's float64 run and
/// the float32 runs made again with layer 1's sums in other orders (the
/// same machine as it is, permuted and reversed inputs; `reorder_sensitivity`
/// in `optim.json`), the running maximum of their relative distance to the
/// fixture's float32 loss. A change of summation order is what initscope's
/// products are to PyTorch's, so this is the yardstick; it depends on
/// PyTorch's rounding only, never on the machine running the test.
fn torch_spread(fixture_f32: &[f64], others: &[Vec<f64>]) -> Vec<f64> {
    let mut spread = 0.0f64;
    (0..fixture_f32.len())
        .map(|k| {
            for other in others {
                spread = spread.max(relative(other[k], fixture_f32[k]));
            }
            spread
        })
        .collect()
}

/// Per step, initscope's relative loss difference to PyTorch float32 must
/// stay within 10x PyTorch's own spread (see [`torch_spread`]) so far, with
/// a floor of 1e-6. Returns the largest difference of each, and the first
/// step past the bound.
fn compare_with_torch(ours: &[f64], f32s: &[f64], spread: &[f64]) -> (f64, f64, Option<String>) {
    let mut worst = 0.0f64;
    let mut first_failure = None;
    for k in 0..ours.len() {
        let ours_rel = relative(ours[k], f32s[k]);
        worst = worst.max(ours_rel);
        if ours_rel > (10.0 * spread[k]).max(1e-6) && first_failure.is_none() {
            first_failure = Some(format!(
                "step {k}: initscope {} against PyTorch f32 {} ({ours_rel:.1e} relative) exceeds 10x PyTorch's own spread so far ({:.1e})",
                ours[k], f32s[k], spread[k]
            ));
        }
    }
    (worst, spread.last().copied().unwrap_or(0.0), first_failure)
}

/// The first `STEPS` values of `setting[key]`, the fixture's float64 run
/// and the reordered float32 runs for the losses named by `prefix` (`""`
/// for training, `"eval_"` for evaluation mode).
fn torch_runs(setting: &Value, reordered: &Value, prefix: &str) -> (Vec<f64>, Vec<Vec<f64>>) {
    let f32s = floats(&setting[format!("{prefix}f32")])[..STEPS].to_vec();
    let mut others = vec![floats(&setting[format!("{prefix}f64")])[..STEPS].to_vec()];
    let runs = ["f32", "reversed"].into_iter().map(String::from).chain((1..=8).map(|s| format!("permuted{s}")));
    for run in runs {
        others.push(floats(&reordered[format!("{prefix}{run}")])[..STEPS].to_vec());
    }
    (f32s, others)
}

/// The table, remade: every optimiser setting (and the batch-norm
/// model in training and evaluation mode) for 60 steps from PyTorch's own
/// initial weights on images 0..7679 in order.
#[test]
fn optimisers_follow_pytorch_step_for_step() {
    let json = optim_json();
    let data = mnist();
    let mut failures = Vec::new();
    eprintln!("| setting | initscope vs PyTorch f32, max rel. | PyTorch's own spread (f64, reordered f32) |");
    eprintln!("|---|---|---|");
    for (name, setting) in json["losses"]["settings"].as_object().unwrap() {
        let reordered = &json["reorder_sensitivity"]["settings"][name];
        let (ours, evals) = initscope_losses(setting, &data.train);
        let mut parts = vec![(name.clone(), ours, "")];
        if !evals.is_empty() {
            parts.push((format!("{name} (evaluation mode)"), evals, "eval_"));
        }
        for (label, ours, prefix) in parts {
            let (f32s, others) = torch_runs(setting, reordered, prefix);
            let (worst, spread, failure) = compare_with_torch(&ours, &f32s, &torch_spread(&f32s, &others));
            eprintln!("| {label} | {worst:.1e}{} | {spread:.1e} |", if failure.is_some() { " (over)" } else { "" });
            failures.extend(failure.map(|f| format!("{label}, {f}")));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

/// How far `ours` is from `theirs` in units of the last place of the
/// larger of them and `before` (the parameter the update started from): an
/// update adds to the parameter, so its rounding happens at that scale.
fn ulps_at_scale(before: f32, ours: f32, theirs: f32) -> f64 {
    let scale = before.abs().max(ours.abs()).max(theirs.abs());
    let ulp = f32::from_bits(scale.to_bits() + 1) - scale;
    f64::from((ours - theirs).abs()) / f64::from(ulp)
}

/// The update arithmetic alone: from the same parameters and the same three
/// gradients (so the same exact zeros), each optimiser's parameters after
/// its first and third step. SGD in every form is bit-identical; the
/// others are within 2 ulps (4 for RMSprop's momentum buffer, which sums
/// three such steps; a handful of values in 12,730 for Adam, up to 6 % of
/// them for Adagrad and RMSprop, whose every step goes through a root), because
/// PyTorch's float32 `sqrt` on the CPU is not correctly rounded (about
/// 0.6 % of its results are 1 ulp off, see the README) and initscope's is:
/// 1 ulp in the denominator, plus the final addition's rounding. With
/// PyTorch's own square roots put in, a float32 replica of initscope's
/// Adagrad and RMSprop arithmetic gives PyTorch's bits at every step (checked
/// when the fixtures were made). The ulps are those of the largest
/// magnitude the parameter or one of its updates has had so far: an
/// update's rounding happens at the update's scale, and a parameter that
/// later returns near zero keeps that absolute error (Adagrad's and
/// RMSprop's first steps are about lr for every parameter, whatever its
/// size).
#[test]
fn one_step_updates_equal_pytorchs() {
    let json = optim_json();
    let t = torch_fixture_tensors("optim-updates.safetensors");
    let layout = Model::mlp(&[784, 16, 10], Activation::Relu).tensors();
    let flat = |prefix: &str| {
        let mut out = vec![0.0f32; layout.last().unwrap().range.end];
        for slot in &layout {
            out[slot.range.clone()].copy_from_slice(&t[&format!("{prefix}/{}", slot.name)]);
        }
        out
    };
    let params0 = flat("params0");
    let grads: Vec<Vec<f32>> = (1..=3).map(|k| flat(&format!("grad{k}"))).collect();
    let mut failures = Vec::new();
    for (name, settings) in json["updates"]["settings"].as_object().unwrap() {
        let settings: OptimizerSettings = serde_json::from_value(settings.clone()).unwrap();
        let sgd = settings.kind == initscope::optim::OptimizerKind::Sgd;
        // RMSprop's momentum buffer sums the steps' g / avg, each up to 1.5
        // ulp off (the root, then the division): 1.5 (1 + 0.9 + 0.81) and
        // the final rounding by the third step.
        let rms_momentum = settings.kind == initscope::optim::OptimizerKind::Rmsprop && settings.momentum > 0.0;
        let bound = if rms_momentum { 4.0 } else { 2.0 };
        let mut optimizer = Optimizer::new(settings);
        let mut params = params0.clone();
        let mut largest: Vec<f32> = params0.iter().map(|p| p.abs()).collect();
        for (k, grad) in grads.iter().enumerate() {
            let before = params.clone();
            optimizer.step(&mut params, grad);
            for ((m, p), b) in largest.iter_mut().zip(&params).zip(&before) {
                *m = m.max(p.abs()).max((p - b).abs());
            }
            if k == 1 {
                continue;
            }
            let expected = flat(&format!("{name}/step{}", k + 1));
            let differ = params.iter().zip(&expected).filter(|(a, b)| a.to_bits() != b.to_bits()).count();
            let worst =
                (0..params.len()).map(|i| ulps_at_scale(largest[i], params[i], expected[i])).fold(0.0, f64::max);
            let line = format!("{name} step {}: {differ} of {} values differ, worst {worst} ulp", k + 1, params.len());
            eprintln!("{line}");
            if (sgd && differ > 0) || worst > bound {
                failures.push(line);
            }
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

/// The largest difference between `ours` and `theirs` in units of the last
/// place of PyTorch's largest magnitude in the tensor (a normwise measure:
/// a value near zero that both compute by cancellation is held to the
/// tensor's scale, not its own). 0 when every bit agrees.
fn worst_ulps(ours: &[f32], theirs: &[f32]) -> f64 {
    assert_eq!(ours.len(), theirs.len());
    let scale = theirs.iter().fold(0.0f32, |m, v| m.max(v.abs()));
    ours.iter().zip(theirs).map(|(&a, &b)| ulps_at_scale(scale, a, b)).fold(0.0, f64::max)
}

/// Forward and backward of every activation against PyTorch's, on 2,048
/// values (exact zeros, -0, tiny and large ones among them). Piecewise
/// linear ones are bit-identical; the transcendental ones (Rust's and the C
/// library's functions against PyTorch's vectorised kernels) within 4 ulps
/// of the tensor's scale (measured: at most 2.125).
#[test]
fn activations_match_pytorch() {
    let t = torch_fixture_tensors("layers.safetensors");
    let (x, dy) = (&t["act/x"], &t["act/dy"]);
    let cases = [
        ("relu", Activation::Relu, 0.0, 0.0),
        ("leaky_relu", Activation::LeakyRelu { slope: 0.01 }, 0.0, 0.0),
        ("identity", Activation::Identity, 0.0, 0.0),
        ("tanh", Activation::Tanh, 4.0, 4.0),
        ("sigmoid", Activation::Sigmoid, 4.0, 4.0),
        ("gelu", Activation::Gelu, 4.0, 4.0),
        ("selu", Activation::Selu, 4.0, 4.0),
    ];
    let mut report = Vec::new();
    for (name, activation, forward_bound, backward_bound) in cases {
        let mut y = vec![0.0; x.len()];
        activation.forward(x, &mut y);
        let mut dx = vec![0.0; x.len()];
        activation.backward(x, &y, dy, &mut dx);
        let (fw, bw) = (worst_ulps(&y, &t[&format!("act/{name}/y")]), worst_ulps(&dx, &t[&format!("act/{name}/dx")]));
        report.push(format!("{name}: forward {fw} ulp, backward {bw} ulp"));
        assert!(fw <= forward_bound && bw <= backward_bound, "{}", report.join("\n"));
    }
    eprintln!("{}", report.join("\n"));
}

/// Batch norm in training mode (output, input and parameter gradients, the
/// running statistics after one batch) and in evaluation mode, and the
/// cross-entropy loss and its gradient, against PyTorch's: within 4 ulps of
/// each tensor's scale (measured: at most 3, the gamma gradient's sum).
#[test]
fn batch_norm_and_cross_entropy_match_pytorch() {
    let t = torch_fixture_tensors("layers.safetensors");
    let (x, dy) = (&t["bn/x"], &t["bn/dy"]);
    let (batch, width) = (64, 37);
    let bn = BatchNorm { width, offset: 0, running: 0 };
    let params: Vec<f32> = t["bn/gamma"].iter().chain(&t["bn/beta"]).copied().collect();
    let mut running: Vec<f32> = [vec![0.0; width], vec![1.0; width]].concat();
    let (mut y, mut xhat) = (vec![0.0; batch * width], vec![0.0; batch * width]);
    let (mut mean, mut var, mut scratch) = (vec![0.0; width], vec![0.0; width], vec![0.0f64; 2 * width]);
    bn.forward_train(&params, x, &mut y, &mut xhat, (&mut mean, &mut var), &mut scratch, batch);
    bn.update_running(&mut running, &mean, &var, batch);
    let mut d = dy.clone();
    let mut grads = vec![0.0; 2 * width];
    bn.backward(&params, &xhat, &var, &mut d, &mut grads, &mut scratch, batch);
    let mut y_eval = vec![0.0; batch * width];
    bn.forward_eval(&params, &running, x, &mut y_eval, &mut xhat, batch);
    let checks = [
        ("training output", worst_ulps(&y, &t["bn/train/y"]), 4.0),
        ("input gradient", worst_ulps(&d, &t["bn/train/dx"]), 4.0),
        ("gamma gradient", worst_ulps(&grads[..width], &t["bn/train/dgamma"]), 4.0),
        ("beta gradient", worst_ulps(&grads[width..], &t["bn/train/dbeta"]), 4.0),
        ("running mean", worst_ulps(&running[..width], &t["bn/running_mean"]), 4.0),
        ("running variance", worst_ulps(&running[width..], &t["bn/running_var"]), 4.0),
        ("evaluation output", worst_ulps(&y_eval, &t["bn/eval/y"]), 4.0),
    ];
    let labels: Vec<u8> = t["ce/labels"].iter().map(|&l| l as u8).collect();
    let mut dlogits = vec![0.0; 640];
    let loss = softmax_cross_entropy(&t["ce/logits"], &labels, &mut dlogits, 10);
    let loss_ulps = worst_ulps(&[loss], &t["ce/loss"]);
    let dlogits_ulps = worst_ulps(&dlogits, &t["ce/dlogits"]);
    let report: Vec<String> = checks
        .iter()
        .map(|(name, ulps, _)| format!("batch norm {name}: {ulps} ulp"))
        .chain([format!("cross-entropy loss: {loss_ulps} ulp"), format!("cross-entropy gradient: {dlogits_ulps} ulp")])
        .collect();
    eprintln!("{}", report.join("\n"));
    for (name, ulps, bound) in checks {
        assert!(ulps <= bound, "batch norm {name}: {ulps} ulp\n{}", report.join("\n"));
    }
    assert!(loss_ulps <= 2.0 && dlogits_ulps <= 2.0, "{}", report.join("\n"));
}

#[path = "optim_torch/residual.rs"]
mod residual;

#[path = "optim_torch/recipes.rs"]
mod recipes;

#[path = "optim_torch/mup.rs"]
mod mup;
