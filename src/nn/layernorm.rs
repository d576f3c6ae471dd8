//! Layer normalisation over each sample's features (Ba, Kiros & Hinton
//! 2016, arXiv 1607.06450, Eq. 4), as PyTorch's `nn.LayerNorm(width)`: eps
//! 1e-5 inside the square root, the biased variance, an element-wise scale
//! and shift. Unlike batch norm it looks at one sample at a time, so it has
//! no running statistics and a batch may be split into shards.

/// Added to the variance before the square root (PyTorch's default).
pub const EPS: f64 = 1e-5;

/// One layer-normalisation layer of `width` features: its scale (gamma,
/// init 1) and shift (beta, init 0) sit in the model's parameter buffer at
/// `offset` and `offset + width`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LayerNorm {
    /// Features per sample.
    pub width: usize,
    /// Offset of gamma (then beta) in the parameter buffer.
    pub offset: usize,
}

impl LayerNorm {
    /// Range of gamma in the parameter buffer.
    pub fn gamma_range(&self) -> std::ops::Range<usize> {
        self.offset..self.offset + self.width
    }

    /// Range of beta in the parameter buffer.
    pub fn beta_range(&self) -> std::ops::Range<usize> {
        self.offset + self.width..self.offset + 2 * self.width
    }

    /// Forward for `batch` rows; the row statistics are summed in f64.
    /// - `x`: input `[batch, width]`
    /// - `y`: output `[batch, width]` = `gamma * xhat + beta`
    /// - `xhat`: `[batch, width]`, `(x - mean) * rstd`, kept for backward
    /// - `rstd`: `[batch]`, each row's `1 / sqrt(var + eps)`, kept for backward
    pub fn forward(&self, params: &[f32], x: &[f32], y: &mut [f32], xhat: &mut [f32], rstd: &mut [f32], batch: usize) {
        let n = self.width;
        let gamma = &params[self.gamma_range()];
        let beta = &params[self.beta_range()];
        let rows = x[..batch * n].chunks_exact(n).zip(y.chunks_exact_mut(n)).zip(xhat.chunks_exact_mut(n));
        for (((xr, yr), hr), r) in rows.zip(rstd.iter_mut()) {
            let mean = xr.iter().map(|&v| f64::from(v)).sum::<f64>() / n as f64;
            let var = xr.iter().map(|&v| (f64::from(v) - mean).powi(2)).sum::<f64>() / n as f64;
            let inv = 1.0 / (var + EPS).sqrt();
            *r = inv as f32;
            for j in 0..n {
                hr[j] = ((f64::from(xr[j]) - mean) * inv) as f32;
                yr[j] = gamma[j] * hr[j] + beta[j];
            }
        }
    }

    /// Backward in place: `d` holds dL/dy `[batch, width]` and becomes
    /// dL/dx; dL/dgamma = sum over rows of `dy * xhat` and dL/dbeta = sum of
    /// `dy` go into `grads` (overwriting them). Per row, with `g = dy * gamma`:
    /// `dx = rstd * (g - mean(g) - xhat * mean(g * xhat))` (the batch-norm
    /// formula with the roles of rows and features exchanged).
    /// `scratch` holds at least `2 * width` values.
    #[allow(clippy::too_many_arguments)] // the pass's buffers, each named
    pub fn backward(
        &self,
        params: &[f32],
        xhat: &[f32],
        rstd: &[f32],
        d: &mut [f32],
        grads: &mut [f32],
        scratch: &mut [f64],
        batch: usize,
    ) {
        let n = self.width;
        let gamma = &params[self.gamma_range()];
        let (dgamma, dbeta) = scratch[..2 * n].split_at_mut(n);
        dgamma.fill(0.0);
        dbeta.fill(0.0);
        for ((dr, hr), &r) in d[..batch * n].chunks_exact_mut(n).zip(xhat.chunks_exact(n)).zip(rstd) {
            let (mut mean_g, mut mean_gx) = (0.0f64, 0.0f64);
            for j in 0..n {
                dgamma[j] += f64::from(dr[j]) * f64::from(hr[j]);
                dbeta[j] += f64::from(dr[j]);
                let g = f64::from(dr[j]) * f64::from(gamma[j]);
                mean_g += g;
                mean_gx += g * f64::from(hr[j]);
            }
            mean_g /= n as f64;
            mean_gx /= n as f64;
            for j in 0..n {
                let g = f64::from(dr[j]) * f64::from(gamma[j]);
                dr[j] = (f64::from(r) * (g - mean_g - f64::from(hr[j]) * mean_gx)) as f32;
            }
        }
        for j in 0..n {
            grads[self.offset + j] = dgamma[j] as f32;
            grads[self.offset + n + j] = dbeta[j] as f32;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn normalises_each_row_to_mean_zero_and_variance_one_then_scales_and_shifts() {
        let ln = LayerNorm { width: 4, offset: 0 };
        let params = [2.0, 2.0, 2.0, 2.0, 0.5, 0.5, 0.5, 0.5]; // gamma, beta
        let x = [1.0, 2.0, 3.0, 4.0, -10.0, 0.0, 10.0, 20.0];
        let (mut y, mut xhat, mut rstd) = ([0.0; 8], [0.0; 8], [0.0; 2]);
        ln.forward(&params, &x, &mut y, &mut xhat, &mut rstd, 2);
        // Row 0: mean 2.5, biased variance 1.25.
        let r0 = 1.0 / (1.25f64 + EPS).sqrt();
        assert!((f64::from(rstd[0]) - r0).abs() < 1e-6);
        assert!((f64::from(y[0]) - (2.0 * -1.5 * r0 + 0.5)).abs() < 1e-5);
        for row in xhat.chunks(4) {
            let mean: f32 = row.iter().sum::<f32>() / 4.0;
            let var: f32 = row.iter().map(|v| v * v).sum::<f32>() / 4.0;
            assert!(mean.abs() < 1e-6 && (var - 1.0).abs() < 1e-4, "{row:?}");
        }
    }
}
