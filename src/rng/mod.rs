//! Seeded, portable random streams.
//!
//! By default ([`RngKind::Chacha`]) every random draw in initscope comes
//! from a ChaCha8 stream chosen by
//! `(seed, purpose, index)`: the seed picks the key, and a 64-bit hash of the
//! purpose and index picks ChaCha's stream number. Streams are independent,
//! so any one of them (say, the shuffle of epoch 7) can be replayed without
//! drawing the others first, and adding a new purpose never shifts the old.
//! ChaCha is specified bit for bit, and the conversions below use only
//! integer arithmetic and `libm`, so the numbers are the same on every
//! platform. With [`RngKind::Torch`] the initial weights and the batch
//! orders are instead drawn as PyTorch draws them ([`torch`]).

pub mod mt19937;
pub mod torch;
pub mod torch_normal;

use rand_chacha::ChaCha8Rng;
use rand_core::{RngCore, SeedableRng};
use serde::{Deserialize, Serialize};

/// Which generator a run's initial weights and batch orders come from
/// (`rng` in an experiment file, `--rng` on the command line).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "snake_case")]
pub enum RngKind {
    /// initscope's own per-purpose ChaCha8 streams (see the module
    /// documentation): any epoch replays alone.
    #[default]
    Chacha,
    /// PyTorch's CPU generator (MT19937) after `torch.manual_seed(seed)`,
    /// drawn as the notebook draws it: the same seed gives the same
    /// initial weights and the same batches as PyTorch.
    Torch,
}

impl RngKind {
    /// The name settings use (`chacha`, `torch`).
    pub fn as_str(self) -> &'static str {
        match self {
            RngKind::Chacha => "chacha",
            RngKind::Torch => "torch",
        }
    }
}

/// A random stream for one purpose; see the module documentation.
pub struct Stream {
    rng: ChaCha8Rng,
}

/// FNV-1a over the purpose's bytes and the index: a fixed, documented hash,
/// unlike `std`'s `DefaultHasher`, whose output may change between releases.
fn stream_id(purpose: &str, index: u64) -> u64 {
    const PRIME: u64 = 0x0000_0100_0000_01b3;
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for byte in purpose.bytes().chain(index.to_le_bytes()) {
        hash ^= u64::from(byte);
        hash = hash.wrapping_mul(PRIME);
    }
    hash
}

impl Stream {
    /// The stream for `purpose` (e.g. `"shuffle/train"`) and `index` (e.g. the epoch).
    pub fn new(seed: u64, purpose: &str, index: u64) -> Self {
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        rng.set_stream(stream_id(purpose, index));
        Stream { rng }
    }

    /// A uniform `u32`.
    pub fn next_u32(&mut self) -> u32 {
        self.rng.next_u32()
    }

    /// A uniform `f64` in [0, 1) with 53 random bits.
    pub fn unit_f64(&mut self) -> f64 {
        (self.rng.next_u64() >> 11) as f64 * (1.0 / (1u64 << 53) as f64)
    }

    /// A uniform `f32` in [0, 1) with 24 random bits.
    pub fn unit_f32(&mut self) -> f32 {
        (self.rng.next_u32() >> 8) as f32 * (1.0 / (1u32 << 24) as f32)
    }

    /// A uniform integer in `0..bound` without modulo bias (Lemire 2019,
    /// "Fast Random Integer Generation in an Interval", Algorithm 3).
    pub fn below(&mut self, bound: u32) -> u32 {
        assert!(bound > 0, "below(0) has no valid result");
        let threshold = bound.wrapping_neg() % bound;
        loop {
            let product = u64::from(self.next_u32()) * u64::from(bound);
            if (product as u32) >= threshold {
                return (product >> 32) as u32;
            }
        }
    }

    /// A standard normal draw by the Box-Muller transform (Box & Muller 1958),
    /// using the cosine branch only so that each call consumes exactly two
    /// 64-bit words (simple to replay).
    pub fn standard_normal(&mut self) -> f64 {
        let u1 = 1.0 - self.unit_f64(); // (0, 1]: ln is finite
        let u2 = self.unit_f64();
        libm::sqrt(-2.0 * libm::log(u1)) * libm::cos(2.0 * std::f64::consts::PI * u2)
    }

    /// Shuffles `items` in place by the Fisher-Yates algorithm.
    pub fn shuffle<T>(&mut self, items: &mut [T]) {
        for i in (1..items.len()).rev() {
            let j = self.below((i + 1) as u32) as usize;
            items.swap(i, j);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn streams_replay_and_differ() {
        let a: Vec<u32> = (0..4).map(|_| Stream::new(1, "x", 3).next_u32()).collect();
        assert!(a.windows(2).all(|w| w[0] == w[1]));
        let mut s = Stream::new(1, "x", 3);
        let mut t = Stream::new(1, "x", 4);
        assert_ne!(s.next_u32(), t.next_u32());
    }

    #[test]
    fn normal_has_unit_moments() {
        let mut s = Stream::new(5, "normal", 0);
        let n = 200_000;
        let xs: Vec<f64> = (0..n).map(|_| s.standard_normal()).collect();
        let mean = xs.iter().sum::<f64>() / n as f64;
        let var = xs.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / n as f64;
        // Standard errors: 1/sqrt(n) = 0.0022 for the mean, sqrt(2/n) = 0.0032 for the variance.
        assert!(mean.abs() < 0.01, "mean {mean}");
        assert!((var - 1.0).abs() < 0.015, "variance {var}");
    }

    #[test]
    fn below_is_uniform_and_shuffle_is_a_permutation() {
        let mut s = Stream::new(2, "below", 0);
        let mut counts = [0u32; 3];
        for _ in 0..30_000 {
            counts[s.below(3) as usize] += 1;
        }
        // Expected 10,000 each with sd about 82.
        assert!(counts.iter().all(|&c| (9_600..10_400).contains(&c)), "{counts:?}");
        let mut v: Vec<u32> = (0..100).collect();
        s.shuffle(&mut v);
        assert_ne!(v, (0..100).collect::<Vec<_>>());
        v.sort_unstable();
        assert_eq!(v, (0..100).collect::<Vec<_>>());
    }
}
