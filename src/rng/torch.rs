//! PyTorch's CPU generator, draw for draw: what `torch.manual_seed(seed)`
//! followed by `uniform_`, `normal_`, `randperm` and a `DataLoader`
//! iterator's base seed take from it and make of it.
//!
//! Followed from PyTorch 2.15's sources: `CPUGeneratorImpl.cpp` (`random()`
//! is one MT19937 word, `random64()` two, the first the high half),
//! `core/TransformationHelper.h` (`uniform_real`: the low 24 bits of one
//! word times 2^-24 for float32, the low 53 of `random64()` for float64),
//! `native/cpu/DistributionTemplates.h` (`uniform_kernel`, `normal_fill`,
//! `normal_kernel`), `core/DistributionsHelper.h` (`normal_distribution`
//! with its cached second sample) and `TensorFactories.cpp` (`randperm_cpu`).
//!
//! Bit-identity: the integer draws, `randperm` and `uniform_` are exact
//! integer or single-rounding arithmetic and match on every platform.
//! `normal_` of 16 or more contiguous float32 values is the Box-Muller
//! block PyTorch runs on x86 CPUs with AVX2 or AVX-512 (see
//! [`super::torch_normal`]), reproduced operation for operation in plain
//! float32, so it matches on every platform too. PyTorch itself differs on
//! x86 CPUs without AVX2 and on other architectures: its fallback rounds
//! `uniform_`'s product separately and calls the C library's `logf`,
//! `cosf` and `sinf`, which changes the last bits of about half the values
//! (see the README's "PyTorch's random numbers").

use super::mt19937::Mt19937;
use super::torch_normal::normal_fill_16;

/// The state of `torch.default_generator` (CPU), as far as initscope draws
/// from it.
#[derive(Clone, Debug)]
pub struct TorchGenerator {
    engine: Mt19937,
    /// The second Box-Muller sample that PyTorch's double
    /// `normal_distribution` keeps for its next call.
    next_double_normal: Option<f64>,
}

impl TorchGenerator {
    /// The generator right after `torch.manual_seed(seed)`.
    pub fn manual_seed(seed: u64) -> Self {
        TorchGenerator { engine: Mt19937::new(seed), next_double_normal: None }
    }

    /// `random()`: one 32-bit word.
    pub fn random(&mut self) -> u32 {
        self.engine.next_u32()
    }

    /// `random64()`: two words, the first the high half.
    pub fn random64(&mut self) -> u64 {
        let high = u64::from(self.random());
        (high << 32) | u64::from(self.random())
    }

    /// What a `DataLoader` iterator takes when it is created, with or
    /// without worker processes: `torch.empty((), dtype=torch.int64).random_()`,
    /// a `random64()` reduced to 63 bits.
    pub fn dataloader_base_seed(&mut self) -> i64 {
        (self.random64() & (u64::MAX >> 1)) as i64
    }

    /// One float32 of `uniform_(from, to)`: `x * (to - from) + from` in
    /// float32 with `x` the low 24 bits of a word times 2^-24, a value that
    /// rounds to `to` replaced by `from`. PyTorch's x86 builds compile
    /// `x * (to - from) + from` for AVX2 and AVX-512 with contraction on,
    /// so it is one fused multiply-add there (only the build for CPUs
    /// without AVX2 rounds twice); initscope fuses it too.
    fn uniform_f32(&mut self, from: f32, to: f32) -> f32 {
        let x = (self.random() & 0x00ff_ffff) as f32 * (1.0 / 16_777_216.0);
        let value = x.mul_add(to - from, from);
        if value == to {
            from
        } else {
            value
        }
    }

    /// `tensor.uniform_(from, to)` on a contiguous float32 tensor; the bounds
    /// are Python floats rounded to float32 first, as PyTorch does.
    pub fn fill_uniform(&mut self, out: &mut [f32], from: f64, to: f64) {
        let (from, to) = (from as f32, to as f32);
        out.iter_mut().for_each(|v| *v = self.uniform_f32(from, to));
    }

    /// `tensor.normal_(mean, std)` on a contiguous float32 tensor. With 16
    /// or more values: every value first gets a uniform, then each block of
    /// 16 becomes 8 Box-Muller pairs (value j with j + 8); a length that is
    /// not a multiple of 16 redraws the last 16 uniforms and transforms them
    /// again. Fewer than 16: one double Box-Muller sample per value.
    pub fn fill_normal(&mut self, out: &mut [f32], mean: f64, std: f64) {
        if out.len() < 16 {
            out.iter_mut().for_each(|v| *v = self.normal_f64(mean, std) as f32);
            return;
        }
        let (mean, std) = (mean as f32, std as f32);
        out.iter_mut().for_each(|v| *v = self.uniform_f32(0.0, 1.0));
        for block in out.chunks_exact_mut(16) {
            normal_fill_16(block, mean, std);
        }
        if !out.len().is_multiple_of(16) {
            let tail = out.len() - 16;
            out[tail..].iter_mut().for_each(|v| *v = self.uniform_f32(0.0, 1.0));
            normal_fill_16(&mut out[tail..], mean, std);
        }
    }

    /// One sample of PyTorch's `normal_distribution<double>`: Box-Muller on
    /// two 53-bit uniforms, the sine half kept for the next call.
    fn normal_f64(&mut self, mean: f64, std: f64) -> f64 {
        if let Some(z) = self.next_double_normal.take() {
            return z * std + mean;
        }
        let u1 = self.uniform_f64();
        let u2 = self.uniform_f64();
        let radius = (-2.0 * (-u2).ln_1p()).sqrt();
        let theta = 2.0 * std::f64::consts::PI * u1;
        self.next_double_normal = Some(radius * theta.sin());
        radius * theta.cos() * std + mean
    }

    /// A float64 in [0, 1): the low 53 bits of `random64()` times 2^-53.
    fn uniform_f64(&mut self) -> f64 {
        (self.random64() & ((1 << 53) - 1)) as f64 * (1.0 / (1u64 << 53) as f64)
    }

    /// `torch.randperm(n)` for n below 2^32 / 20: the identity, then for
    /// each i < n - 1 a swap of i with i + `random() % (n - i)`.
    pub fn randperm(&mut self, n: usize) -> Vec<u32> {
        assert!(n < (u32::MAX / 20) as usize, "randperm beyond 2^32 / 20 takes PyTorch's other branch");
        let mut perm: Vec<u32> = (0..n as u32).collect();
        for i in 0..n.saturating_sub(1) {
            let z = self.random() as usize % (n - i);
            perm.swap(i, i + z);
        }
        perm
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn random64_puts_the_first_word_high() {
        // After torch.manual_seed(123), `torch.empty(1, dtype=torch.int64).random_()`
        // gives 0x324bcdfeb6843d6d: the words 0xb24bcdfe, 0xb6843d6d with the top bit cleared.
        let mut g = TorchGenerator::manual_seed(123);
        assert_eq!(g.dataloader_base_seed(), 0x324b_cdfe_b684_3d6d);
    }

    #[test]
    fn uniform_is_the_low_24_bits() {
        // torch.manual_seed(123); torch.empty(2).uniform_(0, 1)
        let mut g = TorchGenerator::manual_seed(123);
        let mut out = [0.0f32; 2];
        g.fill_uniform(&mut out, 0.0, 1.0);
        assert_eq!(out, [0.296_111_94, 0.516_562_3]);
    }

    #[test]
    fn randperm_of_ten() {
        // torch.manual_seed(123); torch.randperm(10)
        let mut g = TorchGenerator::manual_seed(123);
        assert_eq!(g.randperm(10), vec![2, 0, 8, 1, 3, 7, 4, 9, 5, 6]);
    }

    #[test]
    fn normal_blocks_keep_their_length_and_moments() {
        let mut g = TorchGenerator::manual_seed(7);
        let mut out = vec![0.0f32; 100_003];
        g.fill_normal(&mut out, 1.0, 2.0);
        let n = out.len() as f64;
        let mean = out.iter().map(|&v| f64::from(v)).sum::<f64>() / n;
        let var = out.iter().map(|&v| (f64::from(v) - mean).powi(2)).sum::<f64>() / n;
        assert!((mean - 1.0).abs() < 0.03 && (var - 4.0).abs() < 0.08, "mean {mean} var {var}");
    }
}
