//! The fully connected layer `y = x W^T + b`, with weights `[out, in]` as in
//! PyTorch's `nn.Linear`.

use super::matmul::{matmul, matmul_bias, MatRef};

/// One fully connected layer: its shape and where its parameters sit in the
/// model's single parameter buffer (`fan_out * fan_in` weights, row-major
/// `[out, in]`, then `fan_out` biases).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Linear {
    /// Inputs per sample.
    pub fan_in: usize,
    /// Outputs per sample.
    pub fan_out: usize,
    /// Offset of the weights in the parameter buffer.
    pub offset: usize,
}

impl Linear {
    /// Weights plus biases.
    pub fn num_params(&self) -> usize {
        self.fan_out * self.fan_in + self.fan_out
    }

    /// Range of the weights in the parameter buffer.
    pub fn weight_range(&self) -> std::ops::Range<usize> {
        self.offset..self.offset + self.fan_out * self.fan_in
    }

    /// Range of the biases in the parameter buffer.
    pub fn bias_range(&self) -> std::ops::Range<usize> {
        let start = self.offset + self.fan_out * self.fan_in;
        start..start + self.fan_out
    }

    /// Forward pass for `batch` samples.
    ///
    /// - `params`: the model's parameter buffer (W `[out, in]`, b `[out]` inside)
    /// - `x`: input `[batch, in]`
    /// - `z`: output `[batch, out]`, overwritten with `x W^T + b`
    pub fn forward(&self, params: &[f32], x: &[f32], z: &mut [f32], batch: usize) {
        let (n_in, n_out) = (self.fan_in, self.fan_out);
        let bias = &params[self.bias_range()];
        let w = MatRef::row_major(&params[self.weight_range()], n_out, n_in);
        matmul_bias(
            &mut z[..batch * n_out],
            bias,
            MatRef::row_major(&x[..batch * n_in], batch, n_in).zeros_likely(),
            w.t(),
        );
    }

    /// Backward pass for `batch` samples, given `dz = dL/dz` `[batch, out]`.
    ///
    /// - writes `dW = dz^T x` `[out, in]` and `db = sum over the batch of dz`
    ///   `[out]` into this layer's slots of `grads` (overwriting them);
    /// - writes `dx = dz W` `[batch, in]` into `dx` when it is given (the
    ///   first layer needs no input gradient).
    pub fn backward(
        &self,
        params: &[f32],
        x: &[f32],
        dz: &[f32],
        grads: &mut [f32],
        dx: Option<&mut [f32]>,
        batch: usize,
    ) {
        let (n_in, n_out) = (self.fan_in, self.fan_out);
        let dz = &dz[..batch * n_out];
        let dz_mat = MatRef::row_major(dz, batch, n_out);
        matmul(
            &mut grads[self.weight_range()],
            false,
            dz_mat.t(),
            MatRef::row_major(&x[..batch * n_in], batch, n_in).zeros_likely(),
        );
        let db = &mut grads[self.bias_range()];
        db.fill(0.0);
        for row in dz.chunks_exact(n_out) {
            for (g, d) in db.iter_mut().zip(row) {
                *g += d;
            }
        }
        if let Some(dx) = dx {
            let w = MatRef::row_major(&params[self.weight_range()], n_out, n_in);
            matmul(&mut dx[..batch * n_in], false, dz_mat, w);
        }
    }
}
