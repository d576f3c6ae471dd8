//! Several models' input Linears on the same input, as one product each
//! way: the lockstep group's first layer (see the trainer's lockstep module).
//!
//! Members `m = 0..M` of a group that share a batch `x [batch, in]` each
//! have an input Linear `W_m [out_m, in]`, `b_m [out_m]`. Stacked, the
//! weights are one `[sum out_m, in]` matrix, so the forward is one wide
//! product `x W^T [batch, sum out_m]` and the weight gradient one tall
//! product `dZ^T x [sum out_m, in]`. A small network's first layer is its
//! largest, and a 64-wide product is a poor one; 8 members make it 512 wide.
//!
//! **Same bits as each Linear alone.** [`matmul`] sums each element over k
//! in the same blocks whatever m and n are, and `gemm`'s kernels
//! accumulate each element along k on its own, so element `(i, j)` of the
//! stacked product is the same sum in the same order as in member m's own
//! product (tested below, and on whole runs by the sweep tests). The bias
//! is the destination's starting value, as in [`Linear::forward`], and the
//! bias gradient the same row-by-row sum as in [`Linear::backward`].
//! That holds on `gemm`'s general path only: it computes small products
//! (`m * n <= 256` with both operands contiguous along k), vectors (`m` or
//! `n` of 1) and `k <= 2` in other orders. [`StackedLinear::same_bits`]
//! says when a member's own products take the general path; the group
//! stacks only such members.

use super::linear::Linear;
use super::matmul::{matmul, matmul_bias, MatRef};

/// The members' input Linears stacked: their weights and biases copied
/// into one matrix and one vector (refreshed every step, after the
/// updates, into the same buffers), shared by every shard of the step.
#[derive(Default)]
pub struct StackedLinear {
    /// Inputs per sample (every member's).
    pub fan_in: usize,
    /// Each member's outputs per sample.
    pub outs: Vec<usize>,
    /// `[sum outs, fan_in]`, member after member.
    weights: Vec<f32>,
    /// `[sum outs]`, member after member.
    biases: Vec<f32>,
}

/// One shard's buffers for the stacked products.
#[derive(Default)]
pub struct StackedScratch {
    /// `[batch, sum outs]`: the wide output, or the wide output gradient.
    wide: Vec<f32>,
    /// `[sum outs, fan_in]`: the stacked weight gradient.
    weight_grads: Vec<f32>,
}

impl StackedLinear {
    /// Stacks the input Linears `linears[m]`, whose parameters are in
    /// `params[m]`; `None` when their fan-ins differ.
    pub fn gather(linears: &[&Linear], params: &[&[f32]]) -> Option<Self> {
        let mut stacked = StackedLinear::default();
        stacked.gather_into(linears, params).then_some(stacked)
    }

    /// [`StackedLinear::gather`] into this one's buffers (a step's copy
    /// without a step's allocation); false when the fan-ins differ.
    pub fn gather_into(&mut self, linears: &[&Linear], params: &[&[f32]]) -> bool {
        let Some(first) = linears.first() else { return false };
        if linears.iter().any(|l| l.fan_in != first.fan_in) {
            return false;
        }
        self.fan_in = first.fan_in;
        self.outs.clear();
        self.outs.extend(linears.iter().map(|l| l.fan_out));
        self.weights.clear();
        self.biases.clear();
        for (l, p) in linears.iter().zip(params) {
            self.weights.extend_from_slice(&p[l.weight_range()]);
            self.biases.extend_from_slice(&p[l.bias_range()]);
        }
        true
    }

    /// Whether a member's own input-Linear products, `rows` at a time,
    /// take `gemm` 0.18's general path (`gemm_basic_generic`), whose
    /// element sums do not depend on m and n: then stacking it gives its
    /// own bits. The forward `x [rows, fan_in] W^T` is contiguous along k
    /// on both sides, so it must not be small (`rows * fan_out > 256`);
    /// no product may be a vector or have `k <= 2`.
    pub fn same_bits(rows: usize, linear: &Linear) -> bool {
        let (fan_in, fan_out) = (linear.fan_in, linear.fan_out);
        rows * fan_out > 16 * 16 && rows > 2 && fan_in > 2 && fan_out > 1 && rows > 1 && fan_in > 1
    }

    fn total_out(&self) -> usize {
        self.outs.iter().sum()
    }

    /// Each member's column range in the wide matrices.
    fn columns(&self) -> impl Iterator<Item = std::ops::Range<usize>> + '_ {
        self.outs.iter().scan(0, |start, &n| {
            *start += n;
            Some(*start - n..*start)
        })
    }

    /// `z_m = x W_m^T + b_m` for every member: `x [batch, in]` -> each
    /// `outputs[m] [batch, out_m]`.
    pub fn forward(&self, x: &[f32], batch: usize, outputs: &mut [&mut [f32]], scratch: &mut StackedScratch) {
        let total = self.total_out();
        let wide = &mut scratch.wide;
        wide.resize(batch * total, 0.0);
        let w = MatRef::row_major(&self.weights, total, self.fan_in);
        matmul_bias(
            wide,
            &self.biases,
            MatRef::row_major(&x[..batch * self.fan_in], batch, self.fan_in).zeros_likely(),
            w.t(),
        );
        for (cols, out) in self.columns().zip(outputs.iter_mut()) {
            let n = cols.len();
            for (r, dst) in out[..batch * n].chunks_exact_mut(n).enumerate() {
                dst.copy_from_slice(&wide[r * total + cols.start..r * total + cols.end]);
            }
        }
    }

    /// `dW_m = dz_m^T x` and `db_m = sum over the batch of dz_m` for every
    /// member, given each `dzs[m] [batch, out_m]`, written into member m's
    /// gradient buffer `grads[m]` at `linears[m]`'s slots (overwriting).
    pub fn backward_weights(
        &self,
        x: &[f32],
        dzs: &[&[f32]],
        linears: &[&Linear],
        grads: &mut [&mut [f32]],
        batch: usize,
        scratch: &mut StackedScratch,
    ) {
        let total = self.total_out();
        let wide = &mut scratch.wide;
        wide.resize(batch * total, 0.0);
        for (cols, dz) in self.columns().zip(dzs) {
            let n = cols.len();
            for (r, src) in dz[..batch * n].chunks_exact(n).enumerate() {
                wide[r * total + cols.start..r * total + cols.end].copy_from_slice(src);
            }
        }
        let dw = &mut scratch.weight_grads;
        dw.resize(total * self.fan_in, 0.0);
        let dz_mat = MatRef::row_major(wide, batch, total);
        matmul(dw, false, dz_mat.t(), MatRef::row_major(&x[..batch * self.fan_in], batch, self.fan_in).zeros_likely());
        for (m, cols) in self.columns().enumerate() {
            let (linear, g) = (linears[m], &mut *grads[m]);
            g[linear.weight_range()].copy_from_slice(&dw[cols.start * self.fan_in..cols.end * self.fan_in]);
            let db = &mut g[linear.bias_range()];
            db.fill(0.0);
            for row in dzs[m][..batch * cols.len()].chunks_exact(cols.len()) {
                for (g, d) in db.iter_mut().zip(row) {
                    *g += d;
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Deterministic values of both signs and many magnitudes.
    fn values(n: usize, salt: u64) -> Vec<f32> {
        let mut state = salt.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
        (0..n)
            .map(|_| {
                state ^= state << 13;
                state ^= state >> 7;
                state ^= state << 17;
                ((state >> 40) as f32 / (1u64 << 24) as f32 - 0.5) * 3.0
            })
            .collect()
    }

    /// Every member's output and gradients, stacked, are bit-identical to
    /// its own Linear's, for fan-ins below, at and above the k-block and
    /// batches and widths that do not fill `gemm`'s tiles.
    #[test]
    fn stacked_products_give_each_linears_own_bits() {
        for (fan_in, outs, batch) in [
            (784, vec![64; 8], 64),
            (33, vec![16, 5, 40], 67),
            (512, vec![256, 256], 100),
            (1100, vec![3, 70, 9, 2], 131),
            (3, vec![86, 300], 3),
        ] {
            let alone = |&n: &usize| Linear { fan_in, fan_out: n, offset: 0 };
            assert!(outs.iter().all(|n| StackedLinear::same_bits(batch, &alone(n))), "{fan_in} {outs:?} {batch}");
            let linears: Vec<Linear> = outs.iter().map(|&fan_out| Linear { fan_in, fan_out, offset: 0 }).collect();
            let params: Vec<Vec<f32>> =
                linears.iter().enumerate().map(|(m, l)| values(l.num_params(), m as u64 + 1)).collect();
            let x = values(batch * fan_in, 99);
            let refs: Vec<&Linear> = linears.iter().collect();
            let param_refs: Vec<&[f32]> = params.iter().map(|p| p.as_slice()).collect();
            let stacked = StackedLinear::gather(&refs, &param_refs).unwrap();
            let mut scratch = StackedScratch::default();
            let mut outputs: Vec<Vec<f32>> = outs.iter().map(|&n| vec![0.0; batch * n]).collect();
            let mut out_refs: Vec<&mut [f32]> = outputs.iter_mut().map(|o| o.as_mut_slice()).collect();
            stacked.forward(&x, batch, &mut out_refs, &mut scratch);
            let dzs: Vec<Vec<f32>> = outs.iter().enumerate().map(|(m, &n)| values(batch * n, 50 + m as u64)).collect();
            let dz_refs: Vec<&[f32]> = dzs.iter().map(|d| d.as_slice()).collect();
            let mut grads: Vec<Vec<f32>> = linears.iter().map(|l| vec![0.0; l.num_params()]).collect();
            let mut grad_refs: Vec<&mut [f32]> = grads.iter_mut().map(|g| g.as_mut_slice()).collect();
            stacked.backward_weights(&x, &dz_refs, &refs, &mut grad_refs, batch, &mut scratch);
            for (m, linear) in linears.iter().enumerate() {
                let mut alone = vec![0.0; batch * linear.fan_out];
                linear.forward(&params[m], &x, &mut alone, batch);
                let bits = |v: &[f32]| v.iter().map(|f| f.to_bits()).collect::<Vec<_>>();
                assert_eq!(bits(&alone), bits(&outputs[m]), "forward of member {m} ({fan_in} -> {})", linear.fan_out);
                let mut own = vec![0.0; linear.num_params()];
                linear.backward(&params[m], &x, &dzs[m], &mut own, None, batch);
                assert_eq!(bits(&own), bits(&grads[m]), "gradient of member {m} ({fan_in} -> {})", linear.fan_out);
            }
        }
    }

    #[test]
    fn small_products_and_vectors_are_not_stacked() {
        let linear = |fan_in, fan_out| Linear { fan_in, fan_out, offset: 0 };
        assert!(!StackedLinear::same_bits(7, &linear(33, 16)));
        assert!(StackedLinear::same_bits(17, &linear(33, 16)));
        assert!(!StackedLinear::same_bits(64, &linear(784, 1)));
        assert!(!StackedLinear::same_bits(64, &linear(2, 64)));
        assert!(!StackedLinear::same_bits(2, &linear(784, 512)));
    }
}
