//! `initscope bench`: how fast the engine is on this machine, measured in
//! one run and reported as ratios (speed lives here, never in tests).
//!
//! Everything runs on synthetic MNIST-shaped data held in memory, so the
//! benchmark needs no data set.

use crate::data::batch::epoch_order;
use crate::data::LabeledImages;
use crate::experiment::Experiment;
use crate::experiment::ProbeSettings;
use crate::nn::matmul::{matmul, MatRef};
use crate::nn::{Init, Model, Workspace};
use crate::optim::OptimizerSettings;
use crate::parallel::{for_each_split, part};
use crate::probe::Probe;
use crate::spec::{DataShape, RunSpec};
use crate::train::{Event, Observer, Trainer, SHARDS};
use anyhow::Result;
use std::time::Instant;

/// The seed network.
const SIZES: [usize; 6] = [784, 512, 256, 128, 64, 10];
/// The seed batch.
const BATCH: usize = 128;
/// Steps per epoch of the seed experiment.
const STEPS: usize = 421;

/// FLOPs of one training step per sample: forward `2 * sum(in * out)`,
/// weight gradients the same, input gradients for every layer but the
/// first `2 * sum(in * out)` over layers 2..n.
pub fn step_flops_per_sample(sizes: &[usize]) -> f64 {
    let products: Vec<f64> = sizes.windows(2).map(|w| (w[0] * w[1]) as f64).collect();
    let all: f64 = products.iter().sum();
    4.0 * all + 2.0 * products[1..].iter().sum::<f64>()
}

/// Forward FLOPs per sample.
pub fn forward_flops_per_sample(sizes: &[usize]) -> f64 {
    2.0 * sizes.windows(2).map(|w| (w[0] * w[1]) as f64).sum::<f64>()
}

fn synthetic(count: usize) -> LabeledImages {
    let mut state = 0x2545_f491_4f6c_dd1du64;
    let pixels = (0..count * 784)
        .map(|_| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            if state % 5 < 3 {
                0
            } else {
                (state >> 40) as u8
            }
        })
        .collect();
    LabeledImages { count, rows: 28, cols: 28, pixels, labels: (0..count).map(|i| (i * 7 % 10) as u8).collect() }
}

/// The seed experiment's network, resolved as a run resolves it, with
/// Kaiming weights and zero biases.
fn model() -> Model {
    let exp = Experiment::seed_experiment();
    let spec = RunSpec::resolve(&exp, &exp.runs()[0], DataShape { input_width: SIZES[0], classes: SIZES[5] });
    assert_eq!(spec.widths, SIZES, "the benchmark measures the seed network");
    let mut m = spec.model();
    m.initialise(&Init::kaiming_relu(), &Init::zeros(), 1);
    m
}

/// One epoch of the seed's 421 steps in the shuffled order of `seed`.
fn train_epoch(trainer: &mut Trainer, data: &LabeledImages, seed: u64) {
    for b in epoch_order(0..54_000, true, seed, "shuffle/train", 1).chunks_exact(BATCH) {
        trainer.step(data, b);
    }
}

/// Best of `repeats` timings of `f`, in seconds.
fn best_of(repeats: usize, mut f: impl FnMut()) -> f64 {
    (0..repeats)
        .map(|_| {
            let start = Instant::now();
            f();
            start.elapsed().as_secs_f64()
        })
        .fold(f64::INFINITY, f64::min)
}

/// Seconds per call of `f`: the best of five rounds of `calls` calls (the
/// benchmarks' tables of single products and passes).
pub fn seconds_per_call(calls: usize, mut f: impl FnMut()) -> f64 {
    best_of(5, || (0..calls).for_each(|_| f())) / calls.max(1) as f64
}

/// Peak resident memory of this process, from `/proc/self/status`.
pub fn peak_memory_mib() -> Option<f64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kib: f64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib / 1024.0)
}

/// A practical peak measured outside this crate (the `speed` benchmark
/// measures OpenBLAS, which only a dev-dependency links).
#[derive(Clone, Debug)]
pub struct Peak {
    /// What was measured, e.g. "OpenBLAS 2048^3, 2 threads".
    pub source: String,
    /// Its GFLOP/s.
    pub gflops: f64,
}

/// The benchmark's measurements.
#[derive(Debug)]
pub struct BenchReport {
    /// Threads used.
    pub threads: usize,
    /// The peak the ratios divide by: the one given to [`run`], or else the
    /// initscope matmul's 2048^3 product over the threads.
    pub peak: Peak,
    /// GFLOP/s of one 2048^3 product through initscope's matmul, one thread.
    pub peak_gemm_1t: f64,
    /// The same with its rows split over the threads.
    pub peak_gemm: f64,
    /// GFLOP/s of a step's matrix products alone (sharded as in training).
    pub step_gemm_floor: f64,
    /// GFLOP/s of whole training steps.
    pub step: f64,
    /// Milliseconds per training step.
    pub step_ms: f64,
    /// GFLOP/s of forward-only evaluation in large batches.
    pub eval: f64,
    /// Seconds of one epoch of 421 steps with shuffling and batching.
    pub epoch_s: f64,
    /// Seconds of an epoch of two variants trained one after the other.
    pub pair_sequential_s: f64,
    /// The same with the two side by side, one lane each.
    pub pair_side_by_side_s: f64,
    /// Relative extra time of steps with the probe recording every step.
    pub probe_overhead: f64,
    /// The same over whole epochs including their evaluation.
    pub probe_epoch_overhead: f64,
}

impl BenchReport {
    /// The ratios the issue asks for, and the peak memory, one per line.
    pub fn summary_lines(&self) -> Vec<String> {
        let p = &self.peak;
        let mut lines = vec![
            format!("threads: {}", self.threads),
            format!("peak (a): {} = {:.1} GFLOP/s", p.source, p.gflops),
            format!("ratio step / peak (c/a): {:.2}", self.step / p.gflops),
            format!("ratio step / its GEMM floor (c/b): {:.2}", self.step / self.step_gemm_floor),
            format!("ratio evaluation / peak (d/a): {:.2}", self.eval / p.gflops),
        ];
        if let Some(mib) = peak_memory_mib() {
            lines.push(format!("peak resident memory: {mib:.0} MiB"));
        }
        lines
    }
}

/// Runs every measurement with `threads` worker threads; `say` gets one
/// line per result as it comes. Ratios divide by `peak` when given (a
/// faster library's product), else by initscope's matmul.
pub fn run(threads: usize, peak: Option<Peak>, say: &mut dyn FnMut(&str)) -> Result<BenchReport> {
    let (peak_gemm_1t, peak_gemm) = gemm_peaks(threads, say);
    let data = synthetic(54_000);
    let step_flops = step_flops_per_sample(&SIZES) * BATCH as f64;
    let step_gemm_floor = step_gemm_floor(threads, step_flops, say);

    // (c) Whole training steps.
    let mut trainer = Trainer::new(model(), OptimizerSettings::sgd(0.01), BATCH, threads);
    let order: Vec<u32> = (0..54_000).collect();
    let batches: Vec<&[u32]> = order.chunks_exact(BATCH).collect();
    for b in batches.iter().take(10) {
        trainer.step(&data, b);
    }
    let t = best_of(3, || {
        batches.iter().take(100).for_each(|b| {
            trainer.step(&data, b);
        })
    }) / 100.0;
    let step = step_flops / t / 1e9;
    say(&format!("(c) training step, batch 128: {:.2} ms, {step:.1} GFLOP/s", t * 1e3));

    // (d) Evaluation.
    let t = best_of(3, || {
        trainer.predict(&data, &order[..20_000]);
    });
    let eval = forward_flops_per_sample(&SIZES) * 20_000.0 / t / 1e9;
    say(&format!("(d) evaluation: {:.0} images/s, {eval:.1} GFLOP/s", 20_000.0 / t));

    // (e) A whole epoch with shuffling and batching.
    let start = Instant::now();
    train_epoch(&mut trainer, &data, 1);
    let epoch_s = start.elapsed().as_secs_f64();
    say(&format!("(e) one epoch of {STEPS} steps with shuffling: {epoch_s:.2} s"));
    let (pair_sequential_s, pair_side_by_side_s) = pair_epochs(&data, threads, say);
    let (probe_overhead, probe_epoch_overhead) = probe_overheads(&mut trainer, &data, &batches, threads, say)?;
    let peak =
        peak.unwrap_or(Peak { source: format!("initscope matmul 2048^3, {threads} threads"), gflops: peak_gemm });
    Ok(BenchReport {
        threads,
        peak,
        peak_gemm_1t,
        peak_gemm,
        step_gemm_floor,
        step,
        step_ms: step_flops / step / 1e6,
        eval,
        epoch_s,
        pair_sequential_s,
        pair_side_by_side_s,
        probe_overhead,
        probe_epoch_overhead,
    })
}

/// (a) GFLOP/s of a 2048^3 product through initscope's matmul on one thread,
/// and with its rows split over `threads`.
fn gemm_peaks(threads: usize, say: &mut dyn FnMut(&str)) -> (f64, f64) {
    let n = 2048;
    let a = vec![0.5f32; n * n];
    let b = vec![0.25f32; n * n];
    let mut c = vec![0.0f32; n * n];
    let t = best_of(3, || matmul(&mut c, false, MatRef::row_major(&a, n, n), MatRef::row_major(&b, n, n)));
    let peak_gemm_1t = 2.0 * (n * n * n) as f64 / t / 1e9;
    say(&format!("(a) 2048^3 product, initscope matmul, 1 thread: {peak_gemm_1t:.1} GFLOP/s"));
    // The same product with its rows split over the threads.
    let mut halves: Vec<Vec<f32>> = (0..threads).map(|t| vec![0.0f32; part(n, threads, t).len() * n]).collect();
    let t = best_of(3, || {
        for_each_split(&mut halves, threads, |i, out| {
            let rows = part(n, threads, i);
            let lhs = MatRef::row_major(&a[rows.start * n..rows.end * n], rows.len(), n);
            matmul(out, false, lhs, MatRef::row_major(&b, n, n));
        })
    });
    let peak_gemm = 2.0 * (n * n * n) as f64 / t / 1e9;
    say(&format!("(a) 2048^3 product, initscope matmul, rows split over {threads} threads: {peak_gemm:.1} GFLOP/s"));
    (peak_gemm_1t, peak_gemm)
}

/// (b) GFLOP/s of a step's matrix products alone, sharded as training
/// shards them: the floor of a step's time.
fn step_gemm_floor(threads: usize, step_flops: f64, say: &mut dyn FnMut(&str)) -> f64 {
    let m = model();
    let mut floors: Vec<(Workspace, Vec<f32>)> =
        (0..SHARDS).map(|_| (Workspace::new(&m, BATCH.div_ceil(SHARDS)), vec![0.0f32; m.params.len()])).collect();
    let products = |floors: &mut Vec<(Workspace, Vec<f32>)>| {
        for_each_split(floors, threads, |s, (ws, grads)| {
            let rows = part(BATCH, SHARDS, s).len();
            for (l, layer) in m.linears().enumerate() {
                let p = m.linear_position(l);
                let (before, after) = ws.outputs.split_at_mut(p);
                let x: &[f32] = if p == 0 { &ws.input } else { &before[p - 1] };
                let w = MatRef::row_major(&m.params[layer.weight_range()], layer.fan_out, layer.fan_in);
                let xm = MatRef::row_major(&x[..rows * layer.fan_in], rows, layer.fan_in);
                matmul(&mut after[0], false, xm, w.t());
                let dz = MatRef::row_major(&ws.grad[..rows * layer.fan_out], rows, layer.fan_out);
                matmul(&mut grads[layer.weight_range()], false, dz.t(), xm);
                if l > 0 {
                    matmul(&mut ws.grad_below, false, dz, w);
                }
            }
        })
    };
    let t = best_of(5, || (0..50).for_each(|_| products(&mut floors))) / 50.0;
    let step_gemm_floor = step_flops / t / 1e9;
    say(&format!("(b) GEMM floor of a step (its products alone): {:.2} ms, {step_gemm_floor:.1} GFLOP/s", t * 1e3));
    step_gemm_floor
}

/// (e) Seconds of an epoch of two variants one after the other, and side
/// by side.
fn pair_epochs(data: &LabeledImages, threads: usize, say: &mut dyn FnMut(&str)) -> (f64, f64) {
    // (e) again as a run with two variants trains them: side by side, one
    // thread each (when there are at least two threads), against one after
    // the other on all threads, measured back to back.
    let lanes = threads.min(2);
    let new_pair = |threads| -> Vec<Trainer> {
        (0..2).map(|_| Trainer::new(model(), OptimizerSettings::sgd(0.01), BATCH, threads)).collect()
    };
    let mut pair = new_pair(threads);
    let start = Instant::now();
    pair.iter_mut().zip([2, 3]).for_each(|(t, seed)| train_epoch(t, data, seed));
    let pair_sequential_s = start.elapsed().as_secs_f64();
    drop(pair);
    let mut pair = new_pair(threads / lanes);
    let start = Instant::now();
    for_each_split(&mut pair, lanes, |i, t| train_epoch(t, data, 2 + i as u64));
    let pair_side_by_side_s = start.elapsed().as_secs_f64();
    drop(pair);
    say(&format!(
        "(e) an epoch of two variants: one after the other {pair_sequential_s:.2} s, side by side on {lanes} lanes \
         {pair_side_by_side_s:.2} s ({:.2}x)",
        pair_sequential_s / pair_side_by_side_s
    ));
    (pair_sequential_s, pair_side_by_side_s)
}

/// (f) The probe's relative cost per step, and over whole epochs with
/// their evaluation.
fn probe_overheads(
    trainer: &mut Trainer,
    data: &LabeledImages,
    batches: &[&[u32]],
    threads: usize,
    say: &mut dyn FnMut(&str),
) -> Result<(f64, f64)> {
    // (f) The probe recording every step, interleaved with plain steps so
    // that drifts of the machine affect both alike.
    let dir = tempfile::tempdir()?;
    let mut probe = Probe::new(dir.path(), ProbeSettings { every: 1, histogram_every: 0 }, threads);
    probe.on_event("bench", &Event::Start { model: trainer.model(), steps_per_epoch: STEPS, epochs: 1000 })?;
    let mut ratios = Vec::new();
    for round in 0..10 {
        let chunk = &batches[round * 40..round * 40 + 40];
        let start = Instant::now();
        chunk[..20].iter().for_each(|b| {
            trainer.step(data, b);
        });
        let plain = start.elapsed().as_secs_f64();
        let start = Instant::now();
        for (i, b) in chunk[20..].iter().enumerate() {
            let loss = trainer.compute_gradients(data, b);
            probe.on_event("bench", &Event::Step { epoch: 1, step: i + 1, loss, trainer })?;
            trainer.apply_update();
            probe.on_event("bench", &Event::Updated { model: trainer.model() })?;
        }
        ratios.push(start.elapsed().as_secs_f64() / plain);
    }
    ratios.sort_by(f64::total_cmp);
    let probe_overhead = (ratios[4] + ratios[5]) / 2.0 - 1.0;
    say(&format!("(f) per-step probe statistics: {:+.1}% of step time", 100.0 * probe_overhead));

    // (f) again over what training really runs: an epoch's steps and its
    // evaluation of the training and validation sets (60,000 images), as
    // the seed experiment does, alternating with and without the probe.
    let mut epoch_ratios = Vec::new();
    for round in 0..2 {
        let order = epoch_order(0..54_000, true, 7, "shuffle/train", round);
        let mut epoch = |probe: Option<&mut Probe>| -> Result<f64> {
            let start = Instant::now();
            let mut probe = probe;
            for (i, b) in order.chunks_exact(BATCH).enumerate() {
                let loss = trainer.compute_gradients(data, b);
                if let Some(p) = probe.as_deref_mut() {
                    p.on_event("bench", &Event::Step { epoch: 1, step: i, loss, trainer })?;
                }
                trainer.apply_update();
                if let Some(p) = probe.as_deref_mut() {
                    p.on_event("bench", &Event::Updated { model: trainer.model() })?;
                }
            }
            trainer.predict(data, &order);
            trainer.predict(data, &order[..6_000]);
            Ok(start.elapsed().as_secs_f64())
        };
        let plain = epoch(None)?;
        let probed = epoch(Some(&mut probe))?;
        epoch_ratios.push(probed / plain);
    }
    let probe_epoch_overhead = epoch_ratios.iter().sum::<f64>() / epoch_ratios.len() as f64 - 1.0;
    say(&format!(
        "(f) per-step probe statistics over whole epochs with their evaluation: {:+.1}% of training time",
        100.0 * probe_epoch_overhead
    ));
    Ok((probe_overhead, probe_epoch_overhead))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flop_counts_match_the_issue() {
        // 2.65 MFLOP per sample: forward 1.15, weight gradients 1.15, input gradients 0.35.
        assert!((forward_flops_per_sample(&SIZES) / 1e6 - 1.15).abs() < 0.005);
        assert!((step_flops_per_sample(&SIZES) / 1e6 - 2.645).abs() < 0.005);
    }
}
