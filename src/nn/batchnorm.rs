//! Batch normalisation over a batch of feature vectors (Ioffe & Szegedy
//! 2015, Algorithm 1 and Sec. 3), as PyTorch's `nn.BatchNorm1d`: eps 1e-5,
//! running statistics with momentum 0.1, the running variance unbiased.

/// Added to the variance before the square root.
pub const EPS: f32 = 1e-5;
/// Weight of the newest batch in the running statistics.
pub const MOMENTUM: f32 = 0.1;

/// One batch-normalisation layer of `width` features: its scale (gamma) and
/// shift (beta) sit in the model's parameter buffer at `offset` and
/// `offset + width`; its running mean and variance in the model's running
/// buffer at `running` and `running + width`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BatchNorm {
    /// Features.
    pub width: usize,
    /// Offset of gamma (then beta) in the parameter buffer.
    pub offset: usize,
    /// Offset of the running mean (then variance) in the running buffer.
    pub running: usize,
}

impl BatchNorm {
    /// Range of gamma in the parameter buffer.
    pub fn gamma_range(&self) -> std::ops::Range<usize> {
        self.offset..self.offset + self.width
    }

    /// Range of beta in the parameter buffer.
    pub fn beta_range(&self) -> std::ops::Range<usize> {
        self.offset + self.width..self.offset + 2 * self.width
    }

    /// Training mode, for `batch` rows:
    /// - `z`: input `[batch, width]`
    /// - `y`: output `[batch, width]` = `gamma * xhat + beta`
    /// - `xhat`: `[batch, width]`, the normalised input, kept for backward
    /// - `stats`: `([width], [width])`, set to the batch's mean and biased
    ///   variance
    /// - `scratch`: at least `2 * width` values (no allocation per step)
    #[allow(clippy::too_many_arguments)] // the pass's buffers, each named
    pub fn forward_train(
        &self,
        params: &[f32],
        z: &[f32],
        y: &mut [f32],
        xhat: &mut [f32],
        stats: (&mut [f32], &mut [f32]),
        scratch: &mut [f64],
        batch: usize,
    ) {
        let (mean, var) = stats;
        let n = self.width;
        let (sum, sq) = scratch[..2 * n].split_at_mut(n);
        sum.fill(0.0);
        sq.fill(0.0);
        for row in z[..batch * n].chunks_exact(n) {
            for j in 0..n {
                sum[j] += f64::from(row[j]);
            }
        }
        for j in 0..n {
            mean[j] = (sum[j] / batch as f64) as f32;
        }
        for row in z[..batch * n].chunks_exact(n) {
            for j in 0..n {
                let d = f64::from(row[j] - mean[j]);
                sq[j] += d * d;
            }
        }
        for j in 0..n {
            var[j] = (sq[j] / batch as f64) as f32;
        }
        self.normalise(params, z, y, xhat, (mean, var), batch);
    }

    /// Evaluation mode: normalises with the running statistics.
    pub fn forward_eval(
        &self,
        params: &[f32],
        running: &[f32],
        z: &[f32],
        y: &mut [f32],
        xhat: &mut [f32],
        batch: usize,
    ) {
        let n = self.width;
        let mean = &running[self.running..self.running + n];
        let var = &running[self.running + n..self.running + 2 * n];
        self.normalise(params, z, y, xhat, (mean, var), batch);
    }

    fn normalise(
        &self,
        params: &[f32],
        z: &[f32],
        y: &mut [f32],
        xhat: &mut [f32],
        stats: (&[f32], &[f32]),
        batch: usize,
    ) {
        let n = self.width;
        let (mean, var) = stats;
        let gamma = &params[self.gamma_range()];
        let beta = &params[self.beta_range()];
        for ((zr, yr), xr) in z[..batch * n].chunks_exact(n).zip(y.chunks_exact_mut(n)).zip(xhat.chunks_exact_mut(n)) {
            for j in 0..n {
                xr[j] = (zr[j] - mean[j]) / (var[j] + EPS).sqrt();
                yr[j] = gamma[j] * xr[j] + beta[j];
            }
        }
    }

    /// Backward in place: `d` holds dL/dy `[batch, width]` and becomes
    /// dL/dz; dL/dgamma = sum(dy * xhat) and dL/dbeta = sum(dy) go into
    /// `grads`. With batch statistics (Ioffe & Szegedy 2015, Sec. 3):
    /// `dz = gamma / sqrt(var + eps) * (dy - mean(dy) - xhat * mean(dy * xhat))`.
    /// `scratch` holds at least `2 * width` values.
    #[allow(clippy::too_many_arguments)] // the pass's buffers, each named
    pub fn backward(
        &self,
        params: &[f32],
        xhat: &[f32],
        var: &[f32],
        d: &mut [f32],
        grads: &mut [f32],
        scratch: &mut [f64],
        batch: usize,
    ) {
        let n = self.width;
        let (sum_dy, sum_dy_x) = scratch[..2 * n].split_at_mut(n);
        sum_dy.fill(0.0);
        sum_dy_x.fill(0.0);
        for (dr, xr) in d[..batch * n].chunks_exact(n).zip(xhat.chunks_exact(n)) {
            for j in 0..n {
                sum_dy[j] += f64::from(dr[j]);
                sum_dy_x[j] += f64::from(dr[j] * xr[j]);
            }
        }
        let gamma = &params[self.gamma_range()];
        for j in 0..n {
            grads[self.offset + j] = sum_dy_x[j] as f32;
            grads[self.offset + n + j] = sum_dy[j] as f32;
        }
        // The per-feature factors, in place of the sums.
        let b = batch as f64;
        for j in 0..n {
            sum_dy[j] /= b;
            sum_dy_x[j] /= b;
        }
        for (dr, xr) in d[..batch * n].chunks_exact_mut(n).zip(xhat.chunks_exact(n)) {
            for j in 0..n {
                let scale = gamma[j] / (var[j] + EPS).sqrt();
                dr[j] = scale * (dr[j] - sum_dy[j] as f32 - xr[j] * sum_dy_x[j] as f32);
            }
        }
    }

    /// Moves the running statistics towards a batch's: `r = (1 - m) r + m b`,
    /// with the batch variance made unbiased (`* batch / (batch - 1)`).
    pub fn update_running(&self, running: &mut [f32], mean: &[f32], var: &[f32], batch: usize) {
        let n = self.width;
        let unbias = if batch > 1 { batch as f32 / (batch - 1) as f32 } else { 1.0 };
        for j in 0..n {
            let rm = &mut running[self.running + j];
            *rm = (1.0 - MOMENTUM) * *rm + MOMENTUM * mean[j];
            let rv = &mut running[self.running + n + j];
            *rv = (1.0 - MOMENTUM) * *rv + MOMENTUM * var[j] * unbias;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn normalises_the_batch_and_tracks_running_statistics() {
        let bn = BatchNorm { width: 2, offset: 0, running: 0 };
        let params = [2.0, 1.0, 0.5, -1.0]; // gamma, beta
        let z = [1.0, 10.0, 3.0, 10.0, 5.0, 40.0];
        let (mut y, mut xhat, mut mean, mut var) = ([0.0; 6], [0.0; 6], [0.0; 2], [0.0; 2]);
        bn.forward_train(&params, &z, &mut y, &mut xhat, (&mut mean, &mut var), &mut [0.0; 4], 3);
        assert_eq!(mean, [3.0, 20.0]);
        assert!((var[0] - 8.0 / 3.0).abs() < 1e-6 && (var[1] - 200.0).abs() < 1e-4);
        // Feature 0: xhat = (-2, 0, 2) / sqrt(8/3 + eps); y = 2 xhat + 0.5.
        let s = 1.0 / (8.0f32 / 3.0 + EPS).sqrt();
        assert!((y[0] - (2.0 * -2.0 * s + 0.5)).abs() < 1e-5 && (y[2] - 0.5).abs() < 1e-6);
        let mut running = [0.0, 0.0, 1.0, 1.0];
        bn.update_running(&mut running, &mean, &var, 3);
        // Unbiased variance of feature 0: 4; running = 0.9 * 1 + 0.1 * 4.
        assert!((running[0] - 0.3).abs() < 1e-6 && (running[2] - 1.3).abs() < 1e-5, "{running:?}");
    }
}
