//! Single-precision matrix products through the `gemm` crate.
//!
//! A [`MatRef`] is a strided view (row and column strides), so a transpose
//! is a view with its strides swapped and costs nothing. [`matmul`] checks
//! every view against its slice before handing raw pointers to `gemm`.

use gemm::{gemm, Parallelism};

/// A read-only strided view of a `rows x cols` f32 matrix inside a slice.
#[derive(Clone, Copy)]
pub struct MatRef<'a> {
    data: &'a [f32],
    rows: usize,
    cols: usize,
    row_stride: usize,
    col_stride: usize,
}

impl<'a> MatRef<'a> {
    /// A dense row-major `rows x cols` matrix stored at the start of `data`.
    pub fn row_major(data: &'a [f32], rows: usize, cols: usize) -> Self {
        MatRef { data, rows, cols, row_stride: cols, col_stride: 1 }
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
/// `accumulate` is true. Runs on the calling thread only, so the result
/// depends on the shapes alone, never on the thread count.
pub fn matmul(dst: &mut [f32], accumulate: bool, lhs: MatRef, rhs: MatRef) {
    let (m, k, n) = (lhs.rows, lhs.cols, rhs.cols);
    assert_eq!(rhs.rows, k, "inner dimensions differ");
    assert!(dst.len() >= m * n, "destination too small");
    assert!(lhs.fits() && rhs.fits(), "view outside its slice");
    if m == 0 || n == 0 {
        return;
    }
    // SAFETY: every index gemm touches is inside the slices, checked above;
    // dst is borrowed mutably, so it cannot alias lhs or rhs.
    unsafe {
        gemm(
            m,
            n,
            k,
            dst.as_mut_ptr(),
            1,
            n as isize,
            accumulate,
            lhs.data.as_ptr(),
            lhs.col_stride as isize,
            lhs.row_stride as isize,
            rhs.data.as_ptr(),
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
