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
