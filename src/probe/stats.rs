//! Summary statistics and histograms of f32 tensors, in one pass each.

/// Moments and extremes of a tensor's finite values, plus counts of exact
/// zeros, saturated values and non-finite values.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Moments {
    /// Finite values seen.
    pub count: u64,
    /// Sum of the finite values.
    pub sum: f64,
    /// Sum of their squares.
    pub sum_sq: f64,
    /// Sum of their absolute values.
    pub sum_abs: f64,
    /// Smallest finite value (+inf when none).
    pub min: f64,
    /// Largest finite value (-inf when none).
    pub max: f64,
    /// Values exactly 0.0 (dead ReLU outputs).
    pub zeros: u64,
    /// NaN and infinite values, left out of everything else.
    pub nonfinite: u64,
}

/// Values per block summed in f32 before the block's sums join the f64
/// totals: short enough that f32 rounding stays below 1e-4 relative.
const BLOCK: usize = 1024;

impl Moments {
    /// Nothing seen yet.
    pub fn new() -> Self {
        Moments { min: f64::INFINITY, max: f64::NEG_INFINITY, ..Default::default() }
    }

    /// The statistics of `values`.
    pub fn of(values: &[f32]) -> Self {
        let mut m = Moments::new();
        m.add(values);
        m
    }

    /// Adds `values`. Each block is first summed on the fast path, which
    /// assumes every value finite and vectorises (8 independent lanes, no
    /// branches; AVX2 where the CPU has it); a block that turns out to hold
    /// a NaN or infinity is summed again on the careful path.
    pub fn add(&mut self, values: &[f32]) {
        #[cfg(target_arch = "x86_64")]
        if std::arch::is_x86_feature_detected!("avx2") {
            // SAFETY: the CPU supports AVX2, checked just above.
            unsafe { self.add_avx2(values) };
            return;
        }
        self.add_blocks(values);
    }

    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "avx2")]
    unsafe fn add_avx2(&mut self, values: &[f32]) {
        self.add_blocks(values);
    }

    #[inline(always)]
    fn add_blocks(&mut self, values: &[f32]) {
        for block in values.chunks(BLOCK) {
            let mut sum = [0.0f32; 8];
            let mut sq = [0.0f32; 8];
            let mut abs = [0.0f32; 8];
            let mut lo = [f32::INFINITY; 8];
            let mut hi = [f32::NEG_INFINITY; 8];
            let mut zeros = [0.0f32; 8];
            let mut bad = [0.0f32; 8];
            let lanes = block.chunks_exact(8);
            let tail = lanes.remainder();
            for chunk in lanes {
                for i in 0..8 {
                    let v = chunk[i];
                    sum[i] += v;
                    sq[i] += v * v;
                    abs[i] += v.abs();
                    lo[i] = if v < lo[i] { v } else { lo[i] };
                    hi[i] = if v > hi[i] { v } else { hi[i] };
                    zeros[i] += if v == 0.0 { 1.0 } else { 0.0 };
                    bad[i] += if v.abs() < f32::INFINITY { 0.0 } else { 1.0 };
                }
            }
            // A NaN or infinity, or a square beyond f32's range (exploding
            // values), sends the block to the careful f64 path.
            let overflow = sq.iter().any(|v| !v.is_finite());
            if overflow || bad.iter().sum::<f32>() > 0.0 || tail.iter().any(|v| !v.is_finite()) {
                self.add_careful(block);
                continue;
            }
            for (i, &v) in tail.iter().enumerate() {
                sum[i] += v;
                sq[i] += v * v;
                abs[i] += v.abs();
                lo[i] = lo[i].min(v);
                hi[i] = hi[i].max(v);
                zeros[i] += if v == 0.0 { 1.0 } else { 0.0 };
            }
            self.count += block.len() as u64;
            self.zeros += zeros.iter().sum::<f32>() as u64;
            self.sum += sum.iter().map(|&v| f64::from(v)).sum::<f64>();
            self.sum_sq += sq.iter().map(|&v| f64::from(v)).sum::<f64>();
            self.sum_abs += abs.iter().map(|&v| f64::from(v)).sum::<f64>();
            self.min = lo.iter().fold(self.min, |m, &v| m.min(f64::from(v)));
            self.max = hi.iter().fold(self.max, |m, &v| m.max(f64::from(v)));
        }
    }

    /// One value at a time, skipping non-finite values.
    fn add_careful(&mut self, block: &[f32]) {
        for &v in block {
            if !v.is_finite() {
                self.nonfinite += 1;
                continue;
            }
            let x = f64::from(v);
            self.count += 1;
            self.sum += x;
            self.sum_sq += x * x;
            self.sum_abs += x.abs();
            self.min = self.min.min(x);
            self.max = self.max.max(x);
            self.zeros += u64::from(v == 0.0);
        }
    }

    /// Mean of the finite values (0 when none).
    pub fn mean(&self) -> f64 {
        if self.count == 0 {
            0.0
        } else {
            self.sum / self.count as f64
        }
    }

    /// Population standard deviation of the finite values.
    pub fn std(&self) -> f64 {
        if self.count == 0 {
            return 0.0;
        }
        let mean = self.mean();
        (self.sum_sq / self.count as f64 - mean * mean).max(0.0).sqrt()
    }

    /// L2 norm of the finite values.
    pub fn norm(&self) -> f64 {
        self.sum_sq.sqrt()
    }

    /// Mean absolute value.
    pub fn mean_abs(&self) -> f64 {
        if self.count == 0 {
            0.0
        } else {
            self.sum_abs / self.count as f64
        }
    }

    /// Share of all values (finite or not) that are exactly zero.
    pub fn zero_fraction(&self) -> f64 {
        let all = self.count + self.nonfinite;
        if all == 0 {
            0.0
        } else {
            self.zeros as f64 / all as f64
        }
    }
}

/// Bins per histogram.
pub const BINS: usize = 64;

/// A histogram of a tensor's finite values: [`BINS`] equal-width bins from
/// the smallest to the largest value; non-finite values counted apart.
#[derive(Clone, Debug, PartialEq)]
pub struct Histogram {
    /// Left edge of the first bin.
    pub min: f64,
    /// Right edge of the last bin.
    pub max: f64,
    /// Counts per bin (a value equal to `max` goes in the last bin; when
    /// `min == max` every value is in the first).
    pub counts: Vec<u64>,
    /// NaN and infinite values.
    pub nonfinite: u64,
}

impl Histogram {
    /// The histogram of `values`, given their [`Moments`] for the range.
    pub fn of(values: &[f32], moments: &Moments) -> Self {
        Self::of_parts(&[values], moments)
    }

    /// The histogram of several slices taken as one tensor, given the
    /// [`Moments`] of all of them together.
    pub fn of_parts(parts: &[&[f32]], moments: &Moments) -> Self {
        let mut counts = vec![0u64; BINS];
        let (min, max) = if moments.count == 0 { (0.0, 0.0) } else { (moments.min, moments.max) };
        let scale = if max > min { BINS as f64 / (max - min) } else { 0.0 };
        for &v in parts.iter().flat_map(|p| p.iter()).filter(|v| v.is_finite()) {
            let bin = ((f64::from(v) - min) * scale) as usize;
            counts[bin.min(BINS - 1)] += 1;
        }
        Histogram { min, max, counts, nonfinite: moments.nonfinite }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn moments_match_a_direct_computation() {
        let values: Vec<f32> = (0..5000).map(|i| ((i * 37 % 101) as f32 - 50.0) / 7.0).collect();
        let m = Moments::of(&values);
        let n = values.len() as f64;
        let mean = values.iter().map(|&v| f64::from(v)).sum::<f64>() / n;
        let var = values.iter().map(|&v| (f64::from(v) - mean).powi(2)).sum::<f64>() / n;
        assert!((m.mean() - mean).abs() < 1e-5);
        assert!((m.std() - var.sqrt()).abs() < 1e-4);
        assert_eq!(m.min, f64::from(-50.0f32 / 7.0));
        assert_eq!(m.max, f64::from(50.0f32 / 7.0));
        assert_eq!(m.zeros, values.iter().filter(|&&v| v == 0.0).count() as u64);
    }

    #[test]
    fn nonfinite_values_are_counted_apart() {
        let m = Moments::of(&[1.0, f32::NAN, 3.0, f32::INFINITY, 0.0]);
        assert_eq!((m.count, m.nonfinite, m.zeros), (3, 2, 1));
        assert_eq!((m.min, m.max, m.mean()), (0.0, 3.0, 4.0 / 3.0));
        let h = Histogram::of(&[1.0, f32::NAN, 3.0, f32::INFINITY, 0.0], &m);
        assert_eq!(h.counts.iter().sum::<u64>(), 3);
        assert_eq!((h.counts[0], h.counts[21], h.counts[63], h.nonfinite), (1, 1, 1, 2));
    }

    #[test]
    fn values_whose_squares_overflow_f32_are_summed_in_f64() {
        let mut values = vec![0.5f32; 20];
        values[3] = 1e20;
        values[7] = -1e20;
        let m = Moments::of(&values);
        assert_eq!((m.count, m.nonfinite), (20, 0));
        assert!((m.sum_sq / 2e40 - 1.0).abs() < 1e-6, "{}", m.sum_sq);
        assert!((m.max - 1e20).abs() < 1e14 && (m.min + 1e20).abs() < 1e14);
    }

    #[test]
    fn a_uniform_sample_fills_the_bins_evenly() {
        let values: Vec<f32> = (0..64_000).map(|i| i as f32).collect();
        let h = Histogram::of(&values, &Moments::of(&values));
        assert!(h.counts.iter().all(|&c| c == 1000), "{:?}", h.counts);
    }
}
