//! `cargo bench --bench speed [-- THREADS]`: everything `initscope bench`
//! measures, with the machine's practical peak taken from OpenBLAS (a
//! 2048^3 single-precision product through `cblas_sgemm`), and a table of
//! the seed step's own products through initscope's matmul and
//! through OpenBLAS, one thread each, so a slow product shows which
//! library is to blame.
//!
//! Needs Debian's `libopenblas-dev` (`.ci/run` installs it); only this
//! benchmark links it.

use cblas_sys::{cblas_sgemm, CBLAS_LAYOUT, CBLAS_TRANSPOSE};
use initscope::bench::{seconds_per_call, Peak};
use initscope::nn::matmul::{matmul, MatRef};
use std::os::raw::c_int;

#[link(name = "openblas")]
extern "C" {
    /// OpenBLAS's own call (not part of CBLAS): threads for later calls.
    fn openblas_set_num_threads(threads: c_int);
}

/// The seed network's widths and the rows of one training shard.
const SIZES: [usize; 6] = [784, 512, 256, 128, 64, 10];
const SHARD_ROWS: usize = 64;

/// A row-major operand for OpenBLAS: `rows x cols`, stored transposed
/// (`cols x rows`) when `transposed`.
struct Operand<'a> {
    data: &'a [f32],
    rows: usize,
    cols: usize,
    transposed: bool,
}

impl Operand<'_> {
    fn trans(&self) -> CBLAS_TRANSPOSE {
        if self.transposed {
            CBLAS_TRANSPOSE::CblasTrans
        } else {
            CBLAS_TRANSPOSE::CblasNoTrans
        }
    }

    /// Leading dimension of the stored matrix.
    fn ld(&self) -> c_int {
        (if self.transposed { self.rows } else { self.cols }) as c_int
    }

    /// The same matrix as a view for initscope's matmul.
    fn view(&self) -> MatRef<'_> {
        if self.transposed {
            MatRef::row_major(self.data, self.cols, self.rows).t()
        } else {
            MatRef::row_major(self.data, self.rows, self.cols)
        }
    }
}

/// `dst = a * b` through OpenBLAS.
fn openblas(dst: &mut [f32], a: &Operand, b: &Operand) {
    let (m, k, n) = (a.rows, a.cols, b.cols);
    assert!(b.rows == k && dst.len() >= m * n && a.data.len() >= m * k && b.data.len() >= k * n);
    // SAFETY: the sizes were checked above; dst does not alias a or b.
    unsafe {
        cblas_sgemm(
            CBLAS_LAYOUT::CblasRowMajor,
            a.trans(),
            b.trans(),
            m as c_int,
            n as c_int,
            k as c_int,
            1.0,
            a.data.as_ptr(),
            a.ld(),
            b.data.as_ptr(),
            b.ld(),
            0.0,
            dst.as_mut_ptr(),
            n as c_int,
        )
    }
}

fn filled(len: usize, value: f32) -> Vec<f32> {
    (0..len).map(|i| value * (1.0 + (i % 7) as f32 / 7.0)).collect()
}

/// GFLOP/s of a 2048^3 product through OpenBLAS on `threads` threads.
fn openblas_peak(threads: usize) -> f64 {
    let n = 2048;
    let (a, b) = (filled(n * n, 0.5), filled(n * n, 0.25));
    let mut c = vec![0.0f32; n * n];
    // SAFETY: a plain setter of OpenBLAS's thread count.
    unsafe { openblas_set_num_threads(threads as c_int) };
    let a = Operand { data: &a, rows: n, cols: n, transposed: false };
    let b = Operand { data: &b, rows: n, cols: n, transposed: false };
    openblas(&mut c, &a, &b);
    let t = seconds_per_call(1, || openblas(&mut c, &a, &b));
    2.0 * (n * n * n) as f64 / t / 1e9
}

/// Each product of one shard's training step, timed through both
/// libraries on one thread.
fn product_table() {
    // SAFETY: as above.
    unsafe { openblas_set_num_threads(1) };
    println!("the step's products for one shard of {SHARD_ROWS} rows, one thread, GFLOP/s (microseconds):");
    println!("{:<28} {:>16} {:>16}", "product", "initscope", "OpenBLAS");
    let rows = SHARD_ROWS;
    let (mut gemm_total, mut blas_total) = (0.0, 0.0);
    for (l, w) in SIZES.windows(2).enumerate() {
        let (fan_in, fan_out) = (w[0], w[1]);
        let x = filled(rows * fan_in, 0.5);
        let weights = filled(fan_out * fan_in, 0.05);
        let dz = filled(rows * fan_out, 0.01);
        // (name, lhs, rhs, destination length): forward z = x W^T,
        // weight gradient dW = dz^T x, input gradient dx = dz W.
        let mut products = vec![
            (
                format!("layer {} forward x W^T", l + 1),
                Operand { data: &x, rows, cols: fan_in, transposed: false },
                Operand { data: &weights, rows: fan_in, cols: fan_out, transposed: true },
            ),
            (
                format!("layer {} dW = dz^T x", l + 1),
                Operand { data: &dz, rows: fan_out, cols: rows, transposed: true },
                Operand { data: &x, rows, cols: fan_in, transposed: false },
            ),
        ];
        if l > 0 {
            products.push((
                format!("layer {} dx = dz W", l + 1),
                Operand { data: &dz, rows, cols: fan_out, transposed: false },
                Operand { data: &weights, rows: fan_out, cols: fan_in, transposed: false },
            ));
        }
        for (name, a, b) in &products {
            let mut dst = vec![0.0f32; a.rows * b.cols];
            let flops = 2.0 * (a.rows * a.cols * b.cols) as f64;
            let calls = (2e8 / flops).ceil() as usize;
            let t_gemm = seconds_per_call(calls, || matmul(&mut dst, false, a.view(), b.view()));
            let t_blas = seconds_per_call(calls, || openblas(&mut dst, a, b));
            gemm_total += t_gemm;
            blas_total += t_blas;
            let cell = |t: f64| format!("{:.1} ({:.0})", flops / t / 1e9, t * 1e6);
            println!("{name:<28} {:>16} {:>16}", cell(t_gemm), cell(t_blas));
        }
    }
    let flops = initscope::bench::step_flops_per_sample(&SIZES) * rows as f64;
    let cell = |t: f64| format!("{:.1} ({:.0})", flops / t / 1e9, t * 1e6);
    println!("{:<28} {:>16} {:>16}", "all of a shard's products", cell(gemm_total), cell(blas_total));
}

fn main() -> anyhow::Result<()> {
    // `cargo bench` passes `--bench`; a number among the arguments is the thread count.
    let threads = std::env::args()
        .skip(1)
        .find_map(|a| a.parse::<usize>().ok())
        .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()))
        .max(1);
    let peak_1t = openblas_peak(1);
    println!("(a) 2048^3 product, OpenBLAS, 1 thread: {peak_1t:.1} GFLOP/s");
    let peak = openblas_peak(threads);
    println!("(a) 2048^3 product, OpenBLAS, {threads} threads: {peak:.1} GFLOP/s");
    let peak = Peak { source: format!("OpenBLAS 2048^3, {threads} threads"), gflops: peak };
    let report = initscope::bench::run(threads, Some(peak), &mut |line| println!("{line}"))?;
    product_table();
    report.summary_lines().iter().for_each(|line| println!("{line}"));
    Ok(())
}
