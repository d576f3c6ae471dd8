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
use initscope::data::batch::{epoch_order, fill_batch, validation_split};
use initscope::data::{default_data_root, Dataset, DatasetName, LabeledImages};
use initscope::nn::matmul::{matmul, matmul_bias, MatRef};
use initscope::nn::tanh::tanh_slice;
use initscope::nn::{Activation, Gain, Init, Model};
use initscope::optim::clip::sum_into_and_norm;
use initscope::optim::{Optimizer, OptimizerSettings};
use initscope::train::{Trainer, EVAL_BATCH, SHARDS};
use std::hint::black_box;
use std::ops::Range;
use std::time::Instant;

const PIXELS: usize = 784;
const WIDTH: usize = 64;
const HIDDEN: usize = 20;
const BATCH: usize = 128;
/// Rows of one shard of a training batch.
const SHARD: usize = BATCH / SHARDS;
/// The benchmark's `validation_fraction`.
const VALIDATION: f64 = 0.2;

/// Made-up operand values, mixed in sign, of magnitude up to `scale`.
fn values(len: usize, scale: f32) -> Vec<f32> {
    (0..len).map(|i| scale * ((i * 7 % 13) as f32 - 6.0) / 6.0).collect()
}

/// Calls per timing round for a part over `rows` rows (about as long for
/// every shape).
fn reps(rows: usize) -> usize {
    (128_000 / rows).max(20)
}

/// One part of the point: its name, seconds per call alone, calls per point.
struct Part {
    name: String,
    seconds: f64,
    calls: usize,
}

impl Part {
    fn new(name: impl Into<String>, calls: usize, seconds: f64) -> Self {
        Part { name: name.into(), seconds, calls }
    }
}

/// How often the point runs each pass, from the data.
struct Counts {
    /// The training images, in file order (the rest validate).
    trained: Range<usize>,
    /// Training steps of one epoch.
    steps: usize,
    /// Evaluation chunks: the training file's, then the test file's.
    eval_chunks: usize,
}

impl Counts {
    fn of(data: &Dataset) -> Self {
        let trained = validation_split(data.train.count, VALIDATION).0;
        let steps = trained.len() / BATCH;
        let eval_chunks = data.train.count.div_ceil(EVAL_BATCH) + data.test.count.div_ceil(EVAL_BATCH);
        Counts { trained, steps, eval_chunks }
    }
}

/// The images at `rows`, filled as a batch, and the part that fills them.
fn filled(set: &LabeledImages, rows: &[u32], calls: usize, what: &str) -> (Vec<f32>, Part) {
    let (mut input, mut labels) = (vec![0.0; rows.len() * PIXELS], Vec::new());
    let seconds = seconds_per_call(reps(rows.len()), || fill_batch(set, rows, &mut input, &mut labels));
    (input, Part::new(format!("fill {} {what} images", rows.len()), calls, seconds))
}

/// The forward's parts over `rows` rows of the images `x`, run `passes`
/// times a point: the first layer (its zero pixels left out), a hidden
/// product and a `tanh` per layer.
fn forward_parts(x: &[f32], rows: usize, passes: usize) -> Vec<Part> {
    let (w1, w, bias, h) =
        (values(WIDTH * PIXELS, 0.05), values(WIDTH * WIDTH, 0.2), values(WIDTH, 0.1), values(rows * WIDTH, 1.0));
    let (mut z, mut a) = (vec![0.0; rows * WIDTH], vec![0.0; rows * WIDTH]);
    let (x, h_view) = (MatRef::row_major(x, rows, PIXELS).zeros_likely(), MatRef::row_major(&h, rows, WIDTH));
    let first =
        seconds_per_call(reps(rows) / 10, || matmul_bias(&mut z, &bias, x, MatRef::row_major(&w1, WIDTH, PIXELS).t()));
    let hidden =
        seconds_per_call(reps(rows), || matmul_bias(&mut z, &bias, h_view, MatRef::row_major(&w, WIDTH, WIDTH).t()));
    let tanh = seconds_per_call(reps(rows), || tanh_slice(black_box(&h), &mut a));
    vec![
        Part::new(format!("first layer x W^T + b, {rows} rows (zeros left out)"), passes, first),
        Part::new(format!("hidden x W^T + b, {rows} rows"), passes * (HIDDEN - 1), hidden),
        Part::new(format!("tanh of {rows} x {WIDTH}"), passes * HIDDEN, tanh),
    ]
}

/// The training step's parts, at one shard's shapes.
fn step_parts(train: &LabeledImages, counts: &Counts) -> Vec<Part> {
    let rows = epoch_order(counts.trained.clone(), true, 1, "shuffle/train", 0);
    let (input, fill) = filled(train, &rows[..BATCH], counts.steps, "shuffled");
    let x = MatRef::row_major(&input[..SHARD * PIXELS], SHARD, PIXELS).zeros_likely();
    let passes = SHARDS * counts.steps;
    let (w, h, dz) = (values(WIDTH * WIDTH, 0.2), values(SHARD * WIDTH, 1.0), values(SHARD * WIDTH, 0.01));
    let (mut g1, mut g, mut da) = (vec![0.0; WIDTH * PIXELS], vec![0.0; WIDTH * WIDTH], vec![0.0; SHARD * WIDTH]);
    let mut a = vec![0.0; SHARD * WIDTH];
    tanh_slice(&h, &mut a);
    let (h_view, dz_view) = (MatRef::row_major(&h, SHARD, WIDTH), MatRef::row_major(&dz, SHARD, WIDTH));
    let first_dw = seconds_per_call(reps(SHARD) / 10, || matmul(&mut g1, false, dz_view.t(), x));
    let hidden_dw = seconds_per_call(reps(SHARD), || matmul(&mut g, false, dz_view.t(), h_view));
    let dx = seconds_per_call(reps(SHARD), || matmul(&mut da, false, dz_view, MatRef::row_major(&w, WIDTH, WIDTH)));
    let tanh_backward = seconds_per_call(reps(SHARD), || Activation::Tanh.backward(&h, &a, &dz, &mut da));
    let mut parts = vec![fill];
    parts.extend(forward_parts(&input[..SHARD * PIXELS], SHARD, passes));
    parts.extend([
        Part::new("first layer dW = dz^T x (zeros left out)", passes, first_dw),
        Part::new("hidden dW = dz^T x", passes * (HIDDEN - 1), hidden_dw),
        Part::new("hidden dx = dz W", passes * (HIDDEN - 1), dx),
        Part::new(format!("tanh backward of {SHARD} x {WIDTH}"), passes * HIDDEN, tanh_backward),
    ]);
    parts.extend(update_parts(counts.steps));
    parts
}

/// A step's work on the whole parameter buffer: the shards' gradients
/// summed with their norm, and the SGD update.
fn update_parts(steps: usize) -> Vec<Part> {
    let model = Model::mlp(&sizes(), Activation::Tanh);
    let tensors: Vec<_> = model.tensors().into_iter().map(|t| t.range).collect();
    let mut params = model.params.clone();
    let (mut grads, other) = (values(params.len(), 0.01), values(params.len(), 0.02));
    let mut optimizer = Optimizer::new(OptimizerSettings::sgd(0.01));
    let sum = seconds_per_call(500, || {
        black_box(sum_into_and_norm(&mut grads, &[&other], &tensors));
    });
    let update = seconds_per_call(500, || optimizer.step(&mut params, &grads));
    vec![Part::new("sum the shards' gradients, and their norm", steps, sum), Part::new("SGD update", steps, update)]
}

/// The point's layer widths.
fn sizes() -> Vec<usize> {
    let mut sizes = vec![PIXELS];
    sizes.extend([WIDTH; HIDDEN]);
    sizes.push(10);
    sizes
}

/// The evaluation's parts, at one chunk's shapes.
fn eval_parts(train: &LabeledImages, counts: &Counts) -> Vec<Part> {
    let rows: Vec<u32> = (0..EVAL_BATCH as u32).collect();
    let (input, fill) = filled(train, &rows, counts.eval_chunks, "in-order");
    let mut parts = vec![fill];
    parts.extend(forward_parts(&input, EVAL_BATCH, counts.eval_chunks));
    parts
}

/// The point itself on one thread: an epoch of steps, then the evaluation.
fn whole_point(data: &Dataset, counts: &Counts) -> (f64, f64) {
    let mut model = Model::mlp(&sizes(), Activation::Tanh);
    let weight = Init::KaimingNormal { gain: Gain::Value(1.5), mode: Default::default() };
    model.initialise(&weight, &Init::Constant { value: 0.0 }, 1);
    let mut trainer = Trainer::new(model, OptimizerSettings::sgd(0.01), BATCH, 1);
    let order = epoch_order(counts.trained.clone(), true, 1, "shuffle/train", 0);
    let train_and_validation: Vec<u32> = (0..data.train.count as u32).collect();
    let test: Vec<u32> = (0..data.test.count as u32).collect();
    let start = Instant::now();
    order.chunks_exact(BATCH).for_each(|batch| {
        trainer.step(&data.train, batch);
    });
    let training = start.elapsed().as_secs_f64();
    let start = Instant::now();
    black_box(trainer.accuracy(&data.train, &train_and_validation));
    black_box(trainer.accuracy(&data.test, &test));
    (training, start.elapsed().as_secs_f64())
}

/// The parts' sum against the measured whole, then each part.
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
            "  {:<50} {:>9.2} us x {:>6} = {:>6.1} ms ({:>4.1} %)",
            p.name,
            p.seconds * 1e6,
            p.calls,
            total * 1e3,
            100.0 * total / measured
        );
    }
}

fn main() -> std::process::ExitCode {
    let root = std::env::var_os("INITSCOPE_DATA_DIR").map_or_else(default_data_root, Into::into);
    let data = match Dataset::load(DatasetName::Mnist, &root) {
        Ok(data) => data,
        Err(e) => {
            eprintln!("error: {}", initscope::error::one_line(&e));
            return std::process::ExitCode::FAILURE;
        }
    };
    let counts = Counts::of(&data);
    let (training, evaluation) = (0..3)
        .map(|_| whole_point(&data, &counts))
        .fold((f64::INFINITY, f64::INFINITY), |(t, e), (t2, e2)| (t.min(t2), e.min(e2)));
    println!("one point of the lockstep benchmark's width-64 group, one thread (best of 3):");
    let evaluated = data.train.count + data.test.count;
    print_parts(
        &format!("training, {} steps of {SHARDS} shards", counts.steps),
        &step_parts(&data.train, &counts),
        training,
    );
    print_parts(&format!("evaluation of {evaluated} images"), &eval_parts(&data.train, &counts), evaluation);
    std::process::ExitCode::SUCCESS
}
