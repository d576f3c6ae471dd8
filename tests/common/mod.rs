//! Small data sets the tests make for themselves.

#![allow(dead_code)]

use initscope::data::idx::{encode, gzip, IdxArray};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// Deterministic pseudo-random bytes (a 64-bit LCG), independent of the
/// library's generator.
pub struct Lcg(pub u64);

impl Lcg {
    pub fn next(&mut self) -> u32 {
        self.0 = self.0.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
        (self.0 >> 33) as u32
    }
}

/// Writes `count` images of `side x side` pixels in 10 easily separated
/// classes: class c lights a horizontal bar at row c and has noise
/// elsewhere. Labels cycle through 0..10.
pub fn synthetic(count: usize, side: usize, seed: u64) -> (IdxArray, IdxArray) {
    let mut rng = Lcg(seed);
    let mut pixels = Vec::with_capacity(count * side * side);
    let mut labels = Vec::with_capacity(count);
    for i in 0..count {
        let label = (i * 7 + (rng.next() as usize % 3)) % 10;
        labels.push(label as u8);
        for r in 0..side {
            for _ in 0..side {
                let noise = (rng.next() % 60) as u8;
                pixels.push(if r * 10 / side == label { 200 + noise / 2 } else { noise });
            }
        }
    }
    (IdxArray { dims: vec![count, side, side], data: pixels }, IdxArray { dims: vec![count], data: labels })
}

/// A directory with the four IDX files (gzip) of a synthetic data set.
pub fn synthetic_dir(root: &Path, train: usize, test: usize, side: usize) -> PathBuf {
    let dir = root.join("synthetic");
    std::fs::create_dir_all(&dir).unwrap();
    let (ti, tl) = synthetic(train, side, 1);
    let (si, sl) = synthetic(test, side, 2);
    for (name, array) in [
        ("train-images-idx3-ubyte.gz", ti),
        ("train-labels-idx1-ubyte.gz", tl),
        ("t10k-images-idx3-ubyte.gz", si),
        ("t10k-labels-idx1-ubyte.gz", sl),
    ] {
        std::fs::write(dir.join(name), gzip(&encode(&array))).unwrap();
    }
    dir
}

/// Runs the initscope binary.
pub fn initscope(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_initscope")).args(args).output().expect("the binary runs")
}

/// Standard error as text.
pub fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// A sweep of width against the learning rate: standard against muP,
/// Adam, 2 epochs of 4 steps each.
pub fn transfer_sweep_file(dir: &Path, data: &Path) -> PathBuf {
    let text = format!(
        r#"name = "transfer"
dataset = "{data}"
epochs = 2
steps_per_epoch = 4
batch_size = 50
log_every = 0
optimizer = {{ kind = "adam", lr = 0.01 }}
model = {{ width = 16, depth = 2 }}
probe = {{ every = 0, histogram_every = 0 }}

[[variants]]
name = "standard"
weight_init = {{ scheme = "pytorch_default" }}
bias_init = {{ scheme = "pytorch_default" }}

[[variants]]
name = "mup"
weight_init = {{ scheme = "pytorch_default" }}
bias_init = {{ scheme = "pytorch_default" }}
model = {{ width = 16, depth = 2, parametrisation = {{ name = "mup", base_width = 16 }} }}

[[sweep.zip]]
"model.width" = [16, 32, 64]
"variants.1.model.width" = [16, 32, 64]

[sweep]
"optimizer.lr" = [0.0001, 0.001, 0.01, 0.1]
"#,
        data = data.display(),
    );
    let file = dir.join("transfer.toml");
    std::fs::write(&file, text).unwrap();
    file
}

/// A sweep of 4 points (depth x learning rate) over two variants of
/// `width` units per hidden layer.
pub fn sweep_file(dir: &Path, data: &Path, epochs: usize, width: usize) -> PathBuf {
    let text = format!(
        r#"name = "small"
description = "a small sweep"
dataset = "{data}"
seed = 7
epochs = {epochs}
batch_size = 50
validation_fraction = 0.1
shuffle = true
log_every = 0

[model]
width = {width}
depth = 1
activation = "relu"

[optimizer]
lr = 0.1

[probe]
every = 5
histogram_every = 0

[[variants]]
name = "kaiming"
weight_init = {{ scheme = "kaiming_uniform" }}
bias_init = {{ scheme = "constant", value = 0.0 }}

[[variants]]
name = "xavier"
weight_init = {{ scheme = "xavier_uniform" }}
bias_init = {{ scheme = "constant", value = 0.0 }}

[sweep]
"model.depth" = [1, 3]
"optimizer.lr" = [0.05, 0.2]
"#,
        data = data.display(),
    );
    let file = dir.join("small.toml");
    std::fs::write(&file, text).unwrap();
    file
}

/// `sweep.csv` as rows of cells, without the `seconds` column.
pub fn table_without_seconds(dir: &Path) -> Vec<Vec<String>> {
    let mut reader = csv::Reader::from_path(dir.join("sweep.csv")).unwrap();
    let header = reader.headers().unwrap().clone();
    let seconds = header.iter().position(|h| h == "seconds").expect("a seconds column");
    let mut rows = vec![header.iter().map(String::from).collect::<Vec<_>>()];
    for record in reader.records() {
        rows.push(record.unwrap().iter().map(String::from).collect());
    }
    for row in &mut rows {
        row.remove(seconds);
    }
    rows
}

pub fn column(rows: &[Vec<String>], name: &str) -> Vec<String> {
    let c = rows[0].iter().position(|h| h == name).unwrap_or_else(|| panic!("no column {name}"));
    rows[1..].iter().map(|r| r[c].clone()).collect()
}

/// `initscope run` of the seed experiment for `epochs` on `data` into
/// `out`, quietly; panics with its standard error if it fails.
pub fn short_run(data: &Path, epochs: usize, out: &Path) {
    let epochs = epochs.to_string();
    let r = initscope(&[
        "run",
        "--quiet",
        "--epochs",
        &epochs,
        "--dataset",
        data.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
    ]);
    assert!(r.status.success(), "{}", stderr(&r));
}

/// A JSON file of the PyTorch-made fixtures (tests/fixtures/torch/).
pub fn torch_fixture_json(file: &str) -> serde_json::Value {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/torch").join(file);
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

/// Every tensor of a safetensors file of the PyTorch-made fixtures, by name.
pub fn torch_fixture_tensors(file: &str) -> std::collections::BTreeMap<String, Vec<f32>> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/torch").join(file);
    let all = initscope::tensorfile::load(&path).unwrap();
    all.into_iter().map(|(name, _, values)| (name, values)).collect()
}

/// The final weights of every run of a [`sweep_file`] sweep in `out`
/// (4 points x the kaiming and xavier variants), in order.
pub fn sweep_final_weights(out: &Path) -> Vec<Vec<u8>> {
    (1..=4)
        .flat_map(|p| ["kaiming", "xavier"].map(|v| out.join(format!("runs/p{p:04}/{v}/final.safetensors"))))
        .map(|f| std::fs::read(&f).unwrap_or_else(|e| panic!("{}: {e}", f.display())))
        .collect()
}

/// Waits until `path` exists, failing after `limit` (a process that hangs).
pub fn wait_for(path: &Path, limit: std::time::Duration) {
    let start = std::time::Instant::now();
    while !path.exists() {
        assert!(start.elapsed() < limit, "{} never appeared", path.display());
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
}
