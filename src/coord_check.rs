//! The coord check (Yang et al. 2022, Tensor Programs V, arXiv 2203.03466,
//! section D.1; `mup.coord_check.get_coord_data`): for several widths of
//! one network and its first few steps on one fixed batch, the mean |x| of
//! every layer's output. Where a parametrisation is right, no layer's
//! output grows or shrinks with width at any step; a fitted slope of
//! log mean|x| against log width says by how much it does.
//!
//! It does what `get_coord_data` does: seed `i` of `0..seeds` draws the
//! network (under `rng = "torch"`, `torch.manual_seed(i)` right before it),
//! then each step forwards the batch in training mode, records each
//! Linear's and each activation's output, and takes one optimiser step at
//! the experiment's learning rate. The batch is the first `batch_size`
//! training images; the loss is the experiment's.

use crate::data::batch::fill_batch;
use crate::data::{Dataset, LabeledImages};
use crate::error::input;
use crate::experiment::{Experiment, ModelSettings};
use crate::nn::layer::LayerKind;
use crate::nn::Workspace;
use crate::spec::{DataShape, RunSpec};
use crate::train::Trainer;
use anyhow::Result;
use serde::Serialize;

/// What to check.
#[derive(Clone, Debug, PartialEq)]
pub struct CoordSettings {
    /// The widths the network's hidden layers take, smallest first.
    pub widths: Vec<usize>,
    /// Steps recorded (the first forward is at initialisation).
    pub steps: usize,
    /// Seeds `0..seeds`, averaged.
    pub seeds: usize,
    /// The largest |slope| that passes.
    pub tolerance: f64,
}

impl Default for CoordSettings {
    /// `mup`'s defaults for an MLP: widths 2^7..2^11, 3 steps; 3 seeds and
    /// a tolerance of 0.1 in the slope.
    fn default() -> Self {
        CoordSettings { widths: vec![128, 256, 512, 1024, 2048], steps: 3, seeds: 3, tolerance: 0.1 }
    }
}

/// One layer's output at one step of one seed at one width (a row of
/// `coord.csv`, `get_coord_data`'s columns and the seed).
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct CoordRow {
    /// The variant.
    pub variant: String,
    /// The hidden width.
    pub width: usize,
    /// The layer's PyTorch module name (`my_network.3`).
    pub layer: String,
    /// `linear` or `activation`.
    pub kind: String,
    /// The step, from 1 (the forward before the first update).
    pub step: usize,
    /// The seed.
    pub seed: u64,
    /// Mean |x| over the batch and the layer's units (`get_coord_data`'s `l1`).
    pub l1: f64,
    /// The standard deviation of the same values (`std`, n - 1 divisor).
    pub std: f64,
}

/// The slope of one layer at one step (a row of `slopes.csv`).
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Slope {
    /// The variant.
    pub variant: String,
    /// The layer's module name.
    pub layer: String,
    /// The step.
    pub step: usize,
    /// Least-squares slope of ln(mean over seeds of l1) against ln(width).
    pub slope: f64,
}

/// Every model of `exp` with its hidden layers at `width`: each hidden
/// width of a plain network, the stream of a residual one. A network of
/// unequal hidden widths has no single width to set and is refused.
pub fn widen(exp: &Experiment, width: usize) -> Result<Experiment> {
    let mut exp = exp.clone();
    let set = |model: &mut ModelSettings, key: &str| -> Result<()> {
        if model.hidden.windows(2).any(|w| w[0] != w[1]) {
            return Err(input(format!(
                "{key}.hidden: the coord check sets every hidden layer to each width; {:?} has unequal widths (write `width` and `depth`)",
                model.hidden
            )));
        }
        model.hidden.iter_mut().for_each(|h| *h = width);
        Ok(())
    };
    set(&mut exp.model, "model")?;
    for (i, v) in exp.variants.iter_mut().enumerate() {
        if let Some(model) = &mut v.model {
            set(model, &format!("variants[{i}].model"))?;
        }
    }
    Ok(exp)
}

/// The coord check of every variant of `exp` on `data`; `progress` hears
/// of each width done.
pub fn coord_rows(
    exp: &Experiment,
    data: &Dataset,
    settings: &CoordSettings,
    progress: &mut dyn FnMut(usize),
) -> Result<Vec<CoordRow>> {
    if exp.batch_size > data.train.count {
        return Err(input(format!(
            "batch_size: {} is more than the {} training images",
            exp.batch_size, data.train.count
        )));
    }
    let mut rows = Vec::new();
    for &width in &settings.widths {
        let wide = widen(exp, width)?;
        wide.validate()?;
        let units = wide.runs();
        // One unit per variant: the coord check's seeds replace the experiment's.
        for unit in units.iter().filter(|u| u.seed == units[0].seed) {
            for seed in 0..settings.seeds as u64 {
                let unit = crate::experiment::RunUnit { seed, ..unit.clone() };
                let spec = RunSpec::resolve(&wide, &unit, DataShape::of(data));
                rows.extend(one_run(&spec, &data.train, settings.steps, width));
            }
        }
        progress(width);
    }
    Ok(rows)
}

/// One seed of one variant at one width.
fn one_run(spec: &RunSpec, train: &LabeledImages, steps: usize, width: usize) -> Vec<CoordRow> {
    let Some((model, _)) = spec.drawn_model(&|| false) else {
        return Vec::new(); // only a stop request ends a draw early, and none is made
    };
    let batch = spec.batch_size;
    let indices: Vec<u32> = (0..batch as u32).collect();
    let optimizer = spec.optimizer(&model);
    let mut trainer = Trainer::with_optimizer(model, optimizer, batch, 1).with_loss(spec.loss).with_clip(spec.clip);
    let mut ws = Workspace::new(trainer.model(), batch);
    let mut labels = Vec::new();
    let mut rows = Vec::new();
    for step in 1..=steps {
        let model = trainer.model();
        fill_batch(train, &indices, &mut ws.input, &mut labels);
        model.forward_train(&mut ws, batch);
        for info in model.info() {
            let kind = match info.kind {
                LayerKind::Linear => "linear",
                LayerKind::Activation => "activation",
                _ => continue,
            };
            let (l1, std) = l1_and_std(&ws.outputs[info.position][..batch * info.fan_out]);
            let (variant, layer, kind) = (spec.group.clone(), info.torch_name.clone(), kind.to_string());
            rows.push(CoordRow { variant, width, layer, kind, step, seed: spec.seed, l1, std });
        }
        trainer.step(train, &indices);
    }
    rows
}

/// Mean |x| and the standard deviation (n - 1 divisor), summed in f64.
fn l1_and_std(x: &[f32]) -> (f64, f64) {
    let n = x.len() as f64;
    let l1 = x.iter().map(|&v| f64::from(v).abs()).sum::<f64>() / n;
    let mean = x.iter().map(|&v| f64::from(v)).sum::<f64>() / n;
    let var = x.iter().map(|&v| (f64::from(v) - mean).powi(2)).sum::<f64>() / (n - 1.0).max(1.0);
    (l1, var.sqrt())
}

/// A curve of the coord check: (variant, layer, step).
pub type CurveKey = (String, String, usize);

/// The mean over seeds of each (variant, layer, step, width)'s l1, in the
/// rows' order of first appearance: `(curve, [(width, l1)])`.
pub fn seed_means(rows: &[CoordRow]) -> Vec<(CurveKey, Vec<(usize, f64)>)> {
    type Sums = Vec<(usize, f64, usize)>;
    let mut out: Vec<(CurveKey, Sums)> = Vec::new();
    for r in rows {
        let key = (r.variant.clone(), r.layer.clone(), r.step);
        let i = out.iter().position(|(k, _)| *k == key).unwrap_or_else(|| {
            out.push((key, Vec::new()));
            out.len() - 1
        });
        let widths = &mut out[i].1;
        match widths.iter_mut().find(|w| w.0 == r.width) {
            Some(w) => (w.1, w.2) = (w.1 + r.l1, w.2 + 1),
            None => widths.push((r.width, r.l1, 1)),
        }
    }
    out.into_iter().map(|(k, ws)| (k, ws.into_iter().map(|(w, sum, n)| (w, sum / n as f64)).collect())).collect()
}

/// The fitted slope of every layer at every step.
pub fn slopes(rows: &[CoordRow]) -> Vec<Slope> {
    seed_means(rows)
        .into_iter()
        .map(|((variant, layer, step), points)| {
            let logs: Vec<(f64, f64)> = points.iter().map(|&(w, l1)| ((w as f64).ln(), l1.ln())).collect();
            Slope { variant, layer, step, slope: crate::fit::least_squares_slope(&logs).unwrap_or(f64::NAN) }
        })
        .collect()
}

/// One variant's verdict, in a line: "passes: every slope within ±0.1
/// (…)" or "fails: my_network.5 grows as width^0.93 from step 2 (…)".
pub fn verdict(variant: &str, slopes: &[Slope], tolerance: f64) -> String {
    let own: Vec<&Slope> = slopes.iter().filter(|s| s.variant == variant).collect();
    let out_of = |s: &&&Slope| s.slope.is_nan() || s.slope.abs() > tolerance;
    let worst = own.iter().filter(out_of).max_by(|a, b| a.slope.abs().total_cmp(&b.slope.abs()));
    let largest = own.iter().map(|s| s.slope.abs()).fold(0.0, f64::max);
    let Some(worst) = worst else {
        return format!("{variant}: passes: every slope within ±{tolerance} (largest |slope| {largest:.2})");
    };
    let first_step =
        own.iter().filter(out_of).filter(|s| s.layer == worst.layer).map(|s| s.step).min().unwrap_or(worst.step);
    let failing: Vec<&str> = own
        .iter()
        .filter(out_of)
        .map(|s| s.layer.as_str())
        .collect::<std::collections::BTreeSet<_>>()
        .into_iter()
        .collect();
    let verb = if worst.slope > 0.0 { "grows" } else { "shrinks" };
    format!(
        "{variant}: fails: {}'s output {verb} as width^{:.2} (at step {}; out of ±{tolerance} from step {first_step}); layers out of bounds: {}",
        worst.layer,
        worst.slope,
        worst.step,
        failing.join(", ")
    )
}

/// The variants of `rows`, in order.
pub fn variants(rows: &[CoordRow]) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for r in rows {
        if !out.contains(&r.variant) {
            out.push(r.variant.clone());
        }
    }
    out
}

/// `rows` as CSV text (header first).
pub fn to_csv<T: Serialize>(rows: &[T]) -> Result<Vec<u8>> {
    let mut writer = csv::Writer::from_writer(Vec::new());
    for row in rows {
        writer.serialize(row)?;
    }
    writer.into_inner().map_err(|e| anyhow::anyhow!("{e}"))
}

#[cfg(test)]
mod tests;
