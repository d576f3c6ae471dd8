//! `cargo bench --bench point_budget`: one point of the lockstep
//! benchmark (`scripts/lockstep-bench.py`: a tanh MLP 784-64^20-10, SGD at
//! batch 128, one MNIST epoch of 48,000 images, then the evaluation of
//! 70,000), measured whole on one thread and part by part.
//!
//! Each part (a product, a `tanh` pass, a batch fill) is timed alone, hot
//! in the caches, at the shapes the point gives it, and multiplied by how
//! often the point runs it. The sum is what the point would take if
//! nothing but its kernels cost anything; the whole point against that
//! sum is the share lost between them. Perf's attribution inside this VM
//! is not reliable enough for that (it puts `tanh` at 10 % of a sweep,
//! where taking `tanh` out saves 3 %); this counts instead.
//!
//! MNIST comes from the data directory (`INITSCOPE_DATA_DIR`, else the
//! cache), fetched there first if it is missing, as `initscope` does.

use initscope::bench::seconds_per_call;
use initscope::data::batch::{epoch_order, fill_batch};
use initscope::data::{default_data_root, Dataset, DatasetName, LabeledImages};
use initscope::nn::matmul::{matmul, matmul_bias, MatRef};
use initscope::nn::tanh::tanh_slice;
use initscope::nn::{Activation, Gain, Init, Model};
use initscope::optim::clip::sum_into_and_norm;
use initscope::optim::{Optimizer, OptimizerSettings};
use initscope::train::Trainer;
use std::hint::black_box;
use std::time::Instant;

const WIDTH: usize = 64;
const HIDDEN: usize = 20;
const BATCH: usize = 128;
/// Rows of a shard (`train::SHARDS` = 2 per batch).
const SHARD: usize = BATCH / 2;
const TRAINED: usize = 48_000;
const EVAL_CHUNK: usize = 1000;
/// Training and validation images at the epoch's end, then the test set.
const EVALUATED: usize = 70_000;

fn values(len: usize, scale: f32) -> Vec<f32> {
    (0..len).map(|i| scale * ((i * 7 % 13) as f32 - 6.0) / 6.0).collect()
}

/// One part of the point: its name, seconds per call alone, calls per point.
struct Part {
    name: &'static str,
    seconds: f64,
    calls: usize,
}

/// The training step's parts, at one shard's shapes.
fn step_parts(train: &LabeledImages) -> Vec<Part> {
    let steps = TRAINED / BATCH;
    let rows: Vec<u32> = epoch_order(0..TRAINED, true, 1, "shuffle/train", 0)[..BATCH].to_vec();
    let (mut input, mut labels) = (vec![0.0; BATCH * 784], Vec::new());
    fill_batch(train, &rows, &mut input, &mut labels);
    let x = &input[..SHARD * 784].to_vec();
    let (w1, w, h, dz, bias) = (
        values(WIDTH * 784, 0.05),
        values(WIDTH * WIDTH, 0.2),
        values(SHARD * WIDTH, 1.0),
        values(SHARD * WIDTH, 0.01),
        values(WIDTH, 0.1),
    );
    let (mut z, mut g1, mut g) = (vec![0.0; SHARD * WIDTH], vec![0.0; WIDTH * 784], vec![0.0; WIDTH * WIDTH]);
    let mut a = vec![0.0; SHARD * WIDTH];
    let per_shard = 2 * steps;
    let hidden = HIDDEN - 1;
    let mut parts = vec![
        Part {
            name: "fill a batch of 128 shuffled images",
            seconds: seconds_per_call(200, || fill_batch(train, &rows, &mut input, &mut labels)),
            calls: steps,
        },
        Part {
            name: "first layer forward x W^T (zeros left out)",
            seconds: seconds_per_call(200, || {
                matmul_bias(
                    &mut z,
                    &bias,
                    MatRef::row_major(x, SHARD, 784).zeros_likely(),
                    MatRef::row_major(&w1, WIDTH, 784).t(),
                )
            }),
            calls: per_shard,
        },
        Part {
            name: "first layer dW = dz^T x (zeros left out)",
            seconds: seconds_per_call(200, || {
                matmul(
                    &mut g1,
                    false,
                    MatRef::row_major(&dz, SHARD, WIDTH).t(),
                    MatRef::row_major(x, SHARD, 784).zeros_likely(),
                )
            }),
            calls: per_shard,
        },
    ];
    let calls = per_shard * hidden;
    let (lhs, dz_t) = (MatRef::row_major(&h, SHARD, WIDTH), MatRef::row_major(&dz, SHARD, WIDTH));
    let seconds = seconds_per_call(2000, || matmul_bias(&mut z, &bias, lhs, MatRef::row_major(&w, WIDTH, WIDTH).t()));
    parts.push(Part { name: "hidden forward x W^T + b", seconds, calls });
    let seconds = seconds_per_call(2000, || matmul(&mut g, false, dz_t.t(), lhs));
    parts.push(Part { name: "hidden dW = dz^T x", seconds, calls });
    let seconds = seconds_per_call(2000, || matmul(&mut z, false, dz_t, MatRef::row_major(&w, WIDTH, WIDTH)));
    parts.push(Part { name: "hidden dx = dz W", seconds, calls });
    let tanh = seconds_per_call(2000, || tanh_slice(black_box(&h), &mut a));
    parts.push(Part { name: "tanh of 64 x 64", seconds: tanh, calls: per_shard * HIDDEN });
    let seconds = seconds_per_call(2000, || Activation::Tanh.backward(&h, &a, &dz, &mut z));
    parts.push(Part { name: "tanh backward of 64 x 64", seconds, calls: per_shard * HIDDEN });
    parts.extend(update_parts(steps));
    parts
}

/// A step's work on the whole parameter buffer: the shards' gradients
/// summed with their norm, and the SGD update.
fn update_parts(steps: usize) -> Vec<Part> {
    let model = Model::mlp(&sizes(), Activation::Tanh);
    let tensors: Vec<_> = model.tensors().into_iter().map(|t| t.range).collect();
    let (mut params, mut grads, other) =
        (model.params.clone(), values(model.params.len(), 0.01), values(model.params.len(), 0.02));
    let mut optimizer = Optimizer::new(OptimizerSettings::sgd(0.01));
    vec![
        Part {
            name: "sum the shards' gradients, and their norm",
            seconds: seconds_per_call(500, || {
                black_box(sum_into_and_norm(&mut grads, &[&other], &tensors));
            }),
            calls: steps,
        },
        Part {
            name: "SGD update",
            seconds: seconds_per_call(500, || optimizer.step(&mut params, &grads)),
            calls: steps,
        },
    ]
}

/// The point's layer widths.
fn sizes() -> Vec<usize> {
    let mut sizes = vec![784];
    sizes.extend([WIDTH; HIDDEN]);
    sizes.push(10);
    sizes
}

/// The evaluation's parts, at one chunk's shapes.
fn eval_parts(train: &LabeledImages) -> Vec<Part> {
    let chunks = EVALUATED / EVAL_CHUNK;
    let rows: Vec<u32> = (0..EVAL_CHUNK as u32).collect();
    let (mut input, mut labels) = (vec![0.0; EVAL_CHUNK * 784], Vec::new());
    fill_batch(train, &rows, &mut input, &mut labels);
    let (w1, w, h, bias) =
        (values(WIDTH * 784, 0.05), values(WIDTH * WIDTH, 0.2), values(EVAL_CHUNK * WIDTH, 1.0), values(WIDTH, 0.1));
    let (mut z, mut a) = (vec![0.0; EVAL_CHUNK * WIDTH], vec![0.0; EVAL_CHUNK * WIDTH]);
    let x = input.clone();
    vec![
        Part {
            name: "eval: fill 1000 images in order",
            seconds: seconds_per_call(20, || fill_batch(train, &rows, &mut input, &mut labels)),
            calls: chunks,
        },
        Part {
            name: "eval: first layer x W^T (zeros left out)",
            seconds: seconds_per_call(20, || {
                matmul_bias(
                    &mut z,
                    &bias,
                    MatRef::row_major(&x, EVAL_CHUNK, 784).zeros_likely(),
                    MatRef::row_major(&w1, WIDTH, 784).t(),
                )
            }),
            calls: chunks,
        },
        Part {
            name: "eval: hidden x W^T + b",
            seconds: seconds_per_call(100, || {
                matmul_bias(
                    &mut z,
                    &bias,
                    MatRef::row_major(&h, EVAL_CHUNK, WIDTH),
                    MatRef::row_major(&w, WIDTH, WIDTH).t(),
                )
            }),
            calls: chunks * (HIDDEN - 1),
        },
        Part {
            name: "eval: tanh of 1000 x 64",
            seconds: seconds_per_call(100, || tanh_slice(black_box(&h), &mut a)),
            calls: chunks * HIDDEN,
        },
    ]
}

/// The point itself on one thread: an epoch of steps, then the evaluation.
fn whole_point(data: &Dataset) -> (f64, f64) {
    let mut model = Model::mlp(&sizes(), Activation::Tanh);
    let weight = Init::KaimingNormal { gain: Gain::Value(1.5), mode: Default::default() };
    model.initialise(&weight, &Init::Constant { value: 0.0 }, 1);
    let mut trainer = Trainer::new(model, OptimizerSettings::sgd(0.01), BATCH, 1);
    let order = epoch_order(0..TRAINED, true, 1, "shuffle/train", 0);
    let start = Instant::now();
    order.chunks_exact(BATCH).for_each(|batch| {
        trainer.step(&data.train, batch);
    });
    let training = start.elapsed().as_secs_f64();
    let start = Instant::now();
    let train_and_validation: Vec<u32> = (0..data.train.count as u32).collect();
    black_box(trainer.accuracy(&data.train, &train_and_validation));
    black_box(trainer.accuracy(&data.test, &(0..data.test.count as u32).collect::<Vec<_>>()));
    (training, start.elapsed().as_secs_f64())
}

fn print_parts(title: &str, parts: &[Part], measured: f64) {
    let sum: f64 = parts.iter().map(|p| p.seconds * p.calls as f64).sum();
    println!(
        "{title}: measured {:.0} ms, its parts alone {:.0} ms ({:.0} % of it)",
        measured * 1e3,
        sum * 1e3,
        100.0 * sum / measured
    );
    for p in parts {
        let total = p.seconds * p.calls as f64;
        println!(
            "  {:<44} {:>9.2} us x {:>6} = {:>6.1} ms ({:>4.1} %)",
            p.name,
            p.seconds * 1e6,
            p.calls,
            total * 1e3,
            100.0 * total / measured
        );
    }
}

fn main() -> anyhow::Result<()> {
    let root = std::env::var_os("INITSCOPE_DATA_DIR").map_or_else(default_data_root, Into::into);
    let data = Dataset::load(DatasetName::Mnist, &root)?;
    let (training, evaluation) = (0..3)
        .map(|_| whole_point(&data))
        .fold((f64::INFINITY, f64::INFINITY), |(t, e), (t2, e2)| (t.min(t2), e.min(e2)));
    println!("one point of the lockstep benchmark's width-64 group, one thread (best of 3):");
    print_parts("training, 375 steps of 2 shards", &step_parts(&data.train), training);
    print_parts("evaluation of 70,000 images", &eval_parts(&data.train), evaluation);
    Ok(())
}
