//! Single-precision matrix products through the `gemm` crate, in a
//! summation order that depends on the shapes alone.
//!
//! A [`MatRef`] is a strided view (row and column strides), so a transpose
//! is a view with its strides swapped and costs nothing. [`matmul`] checks
//! every view against its slice before handing raw pointers to `gemm`.
//!
//! **Why the k-blocks.** `gemm` splits the inner (k) dimension into blocks
//! whose length it derives from the L1 cache's size and associativity, read
//! from `/sys/devices/system/cpu` at run time (gemm-common 0.18,
//! `cache::kernel_params`): 784-long sums are one block on a 48 KiB 12-way
//! L1d and two blocks of 392 on a 32 KiB 8-way one. Each block's partial
//! sums are added to the destination, so the blocking is part of the
//! rounding, and the same file gave other bits on another machine. The
//! crate never splits a k of 512 or less (its block is at least 512, or
//! the whole k for small products), so [`matmul`] hands it blocks of
//! [`K_BLOCK`] and accumulates them itself, in order: every sum is
//! `((a[0..512] + a[512..1024]) + ...)`, on every machine. What remains
//! machine-dependent is the instruction set `gemm` picks (see
//! [`numerics_fingerprint`]).
//!
//! **The AVX-512 kernel.** Where the CPU has AVX-512, the blocks that
//! `gemm` would sum on its general path go to initscope's own kernel
//! (`avx512.rs`), which sums each element in that path's order and so
//! gives its bits, at twice the lanes (`gemm` 0.18 has AVX2 kernels only
//! on stable Rust). In views marked [`MatRef::zeros_likely`] it leaves out
//! the terms that are exact zeros, with the same bits (`avx512/sparse.rs`).

use gemm::{gemm, Parallelism};

#[cfg(target_arch = "x86_64")]
mod avx512;

/// The length of the k-blocks every product is summed in: the longest
/// block `gemm` never splits further, whatever the caches.
pub const K_BLOCK: usize = 512;

/// What the bits of a product depend on beyond the shapes: the
/// architecture, the kernel family `gemm` dispatches to on this CPU (FMA
/// kernels and the scalar fallback round differently) and the k-block.
/// Runs whose fingerprints differ are not bit-identical; checkpoints and
/// summaries record it so that a resume can tell.
pub fn numerics_fingerprint() -> String {
    format!("{}-{}/k{K_BLOCK}", std::env::consts::ARCH, kernel_family())
}

/// The kernel family `gemm` 0.18 dispatches f32 products to (its
/// `init_gemm_fn`; the AVX-512 kernels need its `nightly` feature, which
/// initscope does not enable).
fn kernel_family() -> &'static str {
    #[cfg(any(target_arch = "x86", target_arch = "x86_64"))]
    {
        if std::arch::is_x86_feature_detected!("fma") {
            "fma"
        } else {
            "scalar"
        }
    }
    #[cfg(target_arch = "aarch64")]
    {
        if std::arch::is_aarch64_feature_detected!("neon") {
            "neon"
        } else {
            "scalar"
        }
    }
    #[cfg(not(any(target_arch = "x86", target_arch = "x86_64", target_arch = "aarch64")))]
    {
        "generic"
    }
}

/// A read-only strided view of a `rows x cols` f32 matrix inside a slice.
#[derive(Clone, Copy)]
pub struct MatRef<'a> {
    data: &'a [f32],
    rows: usize,
    cols: usize,
    row_stride: usize,
    col_stride: usize,
    /// Whether the view is likely to hold many exact zeros (a batch of
    /// images), so that the AVX-512 kernel looks for terms to leave out.
    zeros_likely: bool,
}

impl<'a> MatRef<'a> {
    /// A dense row-major `rows x cols` matrix stored at the start of `data`.
    pub fn row_major(data: &'a [f32], rows: usize, cols: usize) -> Self {
        MatRef { data, rows, cols, row_stride: cols, col_stride: 1, zeros_likely: false }
    }

    /// The same view, marked as likely to hold many exact zeros (a layer's
    /// input, which may be pixels): the AVX-512 kernel then leaves out the
    /// terms that are zeros where that pays, with the same bits (see
    /// `avx512/sparse.rs`). Costs a look at a few rows where it does not.
    pub fn zeros_likely(self) -> Self {
        MatRef { zeros_likely: true, ..self }
    }

    /// The transpose, as a view of the same memory.
    pub fn t(self) -> Self {
        MatRef { rows: self.cols, cols: self.rows, row_stride: self.col_stride, col_stride: self.row_stride, ..self }
    }

    fn fits(&self) -> bool {
        self.rows == 0
            || self.cols == 0
            || (self.rows - 1) * self.row_stride + (self.cols - 1) * self.col_stride < self.data.len()
    }
}

/// `dst[m x n] (row-major) = lhs[m x k] * rhs[k x n]`, or `dst += ...` when
/// `accumulate` is true. Runs on the calling thread only, and sums over k
/// in blocks of [`K_BLOCK`] in order, so the result depends on the shapes
/// alone: never on the thread count or the caches.
pub fn matmul(dst: &mut [f32], accumulate: bool, lhs: MatRef, rhs: MatRef) {
    product(dst, if accumulate { Start::Accumulate } else { Start::Overwrite }, lhs, rhs);
}

/// `dst[i, j] = bias[j] + (lhs * rhs)[i, j]`: a Linear layer's forward,
/// with the bits of filling each row of `dst` with `bias` and calling
/// [`matmul`] with `accumulate` (the kernel adds the bias as it stores,
/// instead of a pass that copies it into every row first).
pub fn matmul_bias(dst: &mut [f32], bias: &[f32], lhs: MatRef, rhs: MatRef) {
    assert!(bias.len() >= rhs.cols, "bias shorter than a row");
    product(dst, Start::Bias(&bias[..rhs.cols]), lhs, rhs);
}

/// What a product's sums are added to as they are stored: nothing
/// (`dst = acc`), `dst` itself (`dst = acc + dst`), or a bias per column
/// (`dst[i, j] = acc + bias[j]`, `bias` holding the product's `n`).
#[derive(Clone, Copy)]
enum Start<'a> {
    Overwrite,
    Accumulate,
    Bias(&'a [f32]),
}

/// [`matmul`] and [`matmul_bias`]: `dst = start + lhs * rhs`, k-block
/// after k-block, the first block from `start`, the others adding to `dst`.
fn product(dst: &mut [f32], start: Start, lhs: MatRef, rhs: MatRef) {
    let (m, k, n) = (lhs.rows, lhs.cols, rhs.cols);
    assert_eq!(rhs.rows, k, "inner dimensions differ");
    assert!(dst.len() >= m * n, "destination too small");
    assert!(lhs.fits() && rhs.fits(), "view outside its slice");
    if m == 0 || n == 0 {
        return;
    }
    if k == 0 {
        match start {
            Start::Overwrite => dst[..m * n].fill(0.0),
            Start::Accumulate => {}
            Start::Bias(bias) => dst[..m * n].chunks_exact_mut(n).for_each(|row| row.copy_from_slice(bias)),
        }
        return;
    }
    for first in (0..k).step_by(K_BLOCK) {
        let depth = K_BLOCK.min(k - first);
        let start = if first == 0 { start } else { Start::Accumulate };
        // SAFETY: the block's views lie inside the checked views (columns
        // first..first+depth of lhs, rows first..first+depth of rhs).
        unsafe { block(dst, start, lhs, rhs, first, depth) };
    }
}

/// One k-block of [`product`], on the AVX-512 kernel where the CPU has it
/// and `gemm` would take its general path (same bits, twice the lanes),
/// on `gemm` otherwise.
///
/// # Safety
/// As [`gemm_block`].
unsafe fn block(dst: &mut [f32], start: Start, lhs: MatRef, rhs: MatRef, first: usize, depth: usize) {
    #[cfg(target_arch = "x86_64")]
    if avx512::available() && avx512::general_path(lhs.rows, rhs.cols, depth, &lhs, &rhs) {
        return avx512::block(dst, start, lhs, rhs, first, depth);
    }
    if let Start::Bias(bias) = start {
        dst[..lhs.rows * rhs.cols].chunks_exact_mut(rhs.cols).for_each(|row| row.copy_from_slice(bias));
    }
    gemm_block(dst, !matches!(start, Start::Overwrite), lhs, rhs, first, depth)
}

/// One k-block of [`matmul`]: `dst (+)= lhs[:, start..start+depth] *
/// rhs[start..start+depth, :]`, with `depth <= K_BLOCK` so that `gemm`
/// sums it in one pass.
///
/// # Safety
/// The views must have been checked with `fits`, `start + depth <= k`.
unsafe fn gemm_block(dst: &mut [f32], accumulate: bool, lhs: MatRef, rhs: MatRef, start: usize, depth: usize) {
    let (m, n) = (lhs.rows, rhs.cols);
    gemm(
        m,
        n,
        depth,
        dst.as_mut_ptr(),
        1,
        n as isize,
        accumulate,
        lhs.data.as_ptr().add(start * lhs.col_stride),
        lhs.col_stride as isize,
        lhs.row_stride as isize,
        rhs.data.as_ptr().add(start * rhs.row_stride),
        rhs.col_stride as isize,
        rhs.row_stride as isize,
        1.0,
        1.0,
        false,
        false,
        false,
        Parallelism::None,
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    fn naive(
        m: usize,
        n: usize,
        k: usize,
        a: impl Fn(usize, usize) -> f32,
        b: impl Fn(usize, usize) -> f32,
    ) -> Vec<f32> {
        let mut out = vec![0.0; m * n];
        for i in 0..m {
            for j in 0..n {
                out[i * n + j] = (0..k).map(|p| a(i, p) as f64 * b(p, j) as f64).sum::<f64>() as f32;
            }
        }
        out
    }

    #[test]
    fn matches_naive_product_with_transposes() {
        let (m, n, k) = (7, 5, 13);
        let a: Vec<f32> = (0..m * k).map(|i| ((i * 37 % 11) as f32 - 5.0) / 3.0).collect();
        let bt: Vec<f32> = (0..n * k).map(|i| ((i * 17 % 7) as f32 - 3.0) / 2.0).collect(); // [n, k]
        let mut dst = vec![0.0; m * n];
        matmul(&mut dst, false, MatRef::row_major(&a, m, k), MatRef::row_major(&bt, n, k).t());
        let expected = naive(m, n, k, |i, p| a[i * k + p], |p, j| bt[j * k + p]);
        for (x, y) in dst.iter().zip(&expected) {
            assert!((x - y).abs() < 1e-4, "{x} vs {y}");
        }
        matmul(&mut dst, true, MatRef::row_major(&a, m, k), MatRef::row_major(&bt, n, k).t());
        for (x, y) in dst.iter().zip(&expected) {
            assert!((x - 2.0 * y).abs() < 2e-4);
        }
    }
}
