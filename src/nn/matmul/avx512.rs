//! An AVX-512 kernel for [`super::matmul`]'s k-blocks, with `gemm`'s bits.
//!
//! `gemm` 0.18 on stable Rust has AVX2 (8-lane) kernels only, so on a CPU
//! with AVX-512 half of each FMA unit sits idle. This kernel computes the
//! same k-block product 16 lanes at a time, and sums every element in the
//! order of `gemm`'s general path (gemm-common 0.18, `microkernel!` and
//! `gemm_basic_generic`):
//!
//! ```text
//! acc = +0;  for p in 0..depth { acc = fma(lhs[i, p], rhs[p, j], acc) }
//! dst[i, j] = acc, or acc + dst[i, j] when accumulating
//! ```
//!
//! One accumulator per element, one FMA per term, in order of p: which
//! lanes or registers hold which element does not change a bit, so the
//! products equal `gemm`'s FMA path bit for bit (tested against it below
//! over shapes, strides and tails). [`general_path`] says when `gemm`
//! itself takes that path; its small-product, vector and `k <= 2` paths sum
//! in other orders and stay with `gemm`.
//!
//! Layout. Columns go in strips of up to 64 (`NV` zmm registers per row,
//! the last register masked); rows in tiles of `MR`, with `MR * NV <= 24`
//! accumulators in registers. A strip of `rhs` is read in place where
//! `rhs` is contiguous along n (a row of the strip is `NV` loads) and
//! packed `[depth][16 * NV]` otherwise (a transposed weight matrix, moved
//! 16 x 16 through registers). `lhs` is read in place (one broadcast per
//! row and term) when a row or a term is contiguous, packed otherwise.
//!
//! Zero terms. Where the caller marks an operand `zeros_likely`, a tile
//! may visit only the terms where its `lhs` rows are nonzero, or a strip
//! only the rows of `rhs` that are nonzero, with the same bits ([`sparse`]
//! says why and when).

use super::{MatRef, Start};
use std::arch::x86_64::*;
use std::cell::RefCell;

mod sparse;

/// Lanes of a zmm register.
const LANES: usize = 16;

/// The most floats a strip of `rhs` may span in memory to be read in
/// place: beyond it (a large matrix's rows, pages apart) its rows are
/// copied together first, so that each tile reads a contiguous block.
const IN_PLACE_SPAN: usize = 1 << 16;

/// A thread's buffers, reused from call to call.
#[derive(Default)]
struct Packs {
    /// A packed strip of `rhs`.
    rhs: Vec<f32>,
    /// Packed `lhs`, where it has no unit stride.
    lhs: Vec<f32>,
    /// The terms each row tile visits (see [`sparse`]).
    row_lists: sparse::RowLists,
    /// The terms every tile of a strip visits.
    strip_list: Vec<u32>,
}

thread_local! {
    static PACKS: RefCell<Packs> = RefCell::new(Packs::default());
}

/// Whether this CPU runs the kernel (AVX-512F; it implies FMA).
pub fn available() -> bool {
    is_x86_feature_detected!("avx512f") && is_x86_feature_detected!("fma")
}

/// Whether `gemm` 0.18 computes `dst[m x n] (row-major) (+)= lhs * rhs`,
/// `k` deep, on its general path, whose order this kernel reproduces.
///
/// `gemm` transposes the problem when the destination is row-major and
/// `n > 1` (its `do_transpose`); then its small-product path takes
/// `m * n <= 256` with both operands contiguous along k, `gevv` takes
/// `k <= 2`, and its vector paths take `m <= 1` (`n <= 1` is left to it
/// here as well).
pub fn general_path(m: usize, n: usize, k: usize, lhs: &MatRef, rhs: &MatRef) -> bool {
    let small = lhs.col_stride == 1 && rhs.row_stride == 1 && m * n <= 16 * 16;
    m > 1 && n > 1 && k > 2 && !small
}

/// How the kernel reads `lhs`: `lhs(r, p)` of a tile whose first row is at
/// the pointer.
#[derive(Clone, Copy)]
enum LhsLayout {
    /// `lhs(r, p) = ptr[r * stride + p]`: rows contiguous along k.
    Rows(usize),
    /// `lhs(r, p) = ptr[p * stride + r]`: a term's rows contiguous.
    Terms(usize),
}

/// `dst[m x n] = start + lhs[:, first..first+depth] * rhs[first..first+depth, :]`
/// with `gemm`'s general-path rounding (see the module doc).
///
/// # Safety
/// The views must fit their slices (`MatRef::fits`), `first + depth <= k`,
/// `dst.len() >= m * n`, a bias must hold `n` values, and [`available`]
/// must be true.
pub unsafe fn block(dst: &mut [f32], start: Start<'_>, lhs: MatRef, rhs: MatRef, first: usize, depth: usize) {
    PACKS.with(|packs| {
        let packs = &mut *packs.borrow_mut();
        let lhs_zeros = lhs.zeros_likely;
        let (a, layout) = if lhs.col_stride == 1 {
            (lhs.data.as_ptr().add(first), LhsLayout::Rows(lhs.row_stride))
        } else if lhs.row_stride == 1 {
            (lhs.data.as_ptr().add(first * lhs.col_stride), LhsLayout::Terms(lhs.col_stride))
        } else {
            pack_lhs(&mut packs.lhs, &lhs, first, depth);
            (packs.lhs.as_ptr(), LhsLayout::Terms(lhs.rows))
        };
        let lhs = Lhs { ptr: a, layout, rows: lhs.rows };
        let full_nv = rhs.cols.min(4 * LANES).div_ceil(LANES);
        let row_lists = match lhs_zeros {
            true => sparse::lhs_row_lists(&mut packs.row_lists, lhs, tile_rows(full_nv), depth),
            false => None,
        };
        let mut strip_lists = row_lists.is_none() && rhs.zeros_likely;
        let mut lhs_finite = None;
        let top = rhs.data.as_ptr().add(first * rhs.row_stride);
        let mut col = 0;
        while col < rhs.cols {
            let width = (rhs.cols - col).min(4 * LANES);
            let b = strip_of_rhs(&mut packs.rhs, &rhs, top, col, width, depth);
            let start = match start {
                Start::Bias(bias) => Start::Bias(&bias[col..]),
                other => other,
            };
            let mask = lane_mask(width);
            let terms = match &row_lists {
                Some(lists) if width.div_ceil(LANES) == full_nv && sparse::finite_strip(b, width, depth) => {
                    TileTerms::PerTile(lists)
                }
                _ if strip_lists => match sparse::strip_list(&mut packs.strip_list, b, width, depth) {
                    sparse::Density::Sparse if *lhs_finite.get_or_insert_with(|| sparse::finite_lhs(lhs, depth)) => {
                        TileTerms::Same(&packs.strip_list)
                    }
                    sparse::Density::Dense => {
                        strip_lists = false;
                        TileTerms::All
                    }
                    _ => TileTerms::All,
                },
                _ => TileTerms::All,
            };
            strip(Out { dst: dst.as_mut_ptr().add(col), dst_rs: rhs.cols, mask, start }, lhs, b, width, depth, terms);
            col += width;
        }
    });
}

/// The strip of `rhs` at columns `col..col + width` of the block starting
/// at `top`, in place or packed into `packed`.
unsafe fn strip_of_rhs(
    packed: &mut Vec<f32>,
    rhs: &MatRef,
    top: *const f32,
    col: usize,
    width: usize,
    depth: usize,
) -> Rhs {
    if rhs.col_stride == 1 && depth * rhs.row_stride <= IN_PLACE_SPAN {
        return Rhs { ptr: top.add(col), stride: rhs.row_stride };
    }
    let row_len = width.div_ceil(LANES) * LANES;
    packed.resize(depth * row_len, 0.0);
    if rhs.col_stride == 1 {
        for (p, row) in packed.chunks_exact_mut(row_len).enumerate() {
            row[..width].copy_from_slice(std::slice::from_raw_parts(top.add(col + p * rhs.row_stride), width));
        }
    } else {
        let from = top.add(col * rhs.col_stride);
        pack_transposed(packed, from, rhs.col_stride, rhs.row_stride, width, depth, row_len);
    }
    Rhs { ptr: packed.as_ptr(), stride: row_len }
}

/// The lane mask of a strip's last register.
fn lane_mask(width: usize) -> __mmask16 {
    match width % LANES {
        0 => 0xffff,
        tail => (1u16 << tail) - 1,
    }
}

/// Rows per tile for `nv` registers per row: `rows * nv <= 24`
/// accumulators, and at most 12 rows.
const fn tile_rows(nv: usize) -> usize {
    match nv {
        1 | 2 => 12,
        3 => 8,
        _ => 6,
    }
}

/// Where a strip reads `lhs`: its first row, the layout, the row count.
#[derive(Clone, Copy)]
struct Lhs {
    ptr: *const f32,
    layout: LhsLayout,
    rows: usize,
}

/// Where a strip reads `rhs`: `rhs(p, j) = ptr[p * stride + j]`, either the
/// matrix itself (contiguous along n) or a packed copy of the strip.
#[derive(Clone, Copy)]
struct Rhs {
    ptr: *const f32,
    stride: usize,
}

/// Packs a strip of `rhs` that is not contiguous along n: `strip[p *
/// row_len + j] = first[j * col_stride + p * row_stride]` for `j < width`
/// (the padding up to `row_len` is never read unmasked). Where rows are
/// contiguous along k (a transposed weight matrix, the forward's case) it
/// moves 16 x 16 blocks through registers; elsewhere one element at a time.
unsafe fn pack_transposed(
    strip: &mut [f32],
    first: *const f32,
    col_stride: usize,
    row_stride: usize,
    width: usize,
    depth: usize,
    row_len: usize,
) {
    let (full_cols, full_depth) = if row_stride == 1 { (width / LANES * LANES, depth / LANES * LANES) } else { (0, 0) };
    for j in (0..full_cols).step_by(LANES) {
        for p in (0..full_depth).step_by(LANES) {
            transpose_16x16(
                first.add(j * col_stride + p),
                col_stride,
                strip.as_mut_ptr().add(p * row_len + j),
                row_len,
            );
        }
    }
    for j in 0..width {
        let from_p = if j < full_cols { full_depth } else { 0 };
        for p in from_p..depth {
            *strip.get_unchecked_mut(p * row_len + j) = *first.add(j * col_stride + p * row_stride);
        }
    }
}

/// `to[q * to_stride + r] = from[r * from_stride + q]` for a 16 x 16 block:
/// unpacks within 128-bit lanes, then two rounds of lane shuffles.
#[target_feature(enable = "avx512f")]
unsafe fn transpose_16x16(from: *const f32, from_stride: usize, to: *mut f32, to_stride: usize) {
    let r: [__m512; 16] = std::array::from_fn(|i| _mm512_loadu_ps(from.add(i * from_stride)));
    // t[2i] = rows 2i, 2i+1 interleaved by elements 0-1, t[2i+1] by 2-3 (per lane).
    let t: [__m512; 16] = std::array::from_fn(|i| {
        let (a, b) = (r[i / 2 * 2], r[i / 2 * 2 + 1]);
        if i % 2 == 0 {
            _mm512_unpacklo_ps(a, b)
        } else {
            _mm512_unpackhi_ps(a, b)
        }
    });
    // u[4g + e]: rows 4g..4g+4 at element e of each 128-bit lane.
    let u: [__m512; 16] = std::array::from_fn(|i| {
        let (g, e) = (i / 4, i % 4);
        let (a, b) = (_mm512_castps_pd(t[4 * g + e / 2]), _mm512_castps_pd(t[4 * g + e / 2 + 2]));
        _mm512_castpd_ps(if e % 2 == 0 { _mm512_unpacklo_pd(a, b) } else { _mm512_unpackhi_pd(a, b) })
    });
    // v[8h + c]: rows 8h..8h+8 of column c (lanes 0, 2) and of column c + 8 (lanes 1, 3).
    let v: [__m512; 16] = std::array::from_fn(|i| {
        let (h, c) = (i / 8, i % 8);
        let (a, b) = (u[8 * h + c % 4], u[8 * h + c % 4 + 4]);
        if c < 4 {
            _mm512_shuffle_f32x4::<0x88>(a, b)
        } else {
            _mm512_shuffle_f32x4::<0xdd>(a, b)
        }
    });
    for q in 0..16 {
        let (a, b) = (v[q % 8], v[q % 8 + 8]);
        let column = if q < 8 { _mm512_shuffle_f32x4::<0x88>(a, b) } else { _mm512_shuffle_f32x4::<0xdd>(a, b) };
        _mm512_storeu_ps(to.add(q * to_stride), column);
    }
}

/// Packs `lhs[:, start..start+depth]` term-major, `[depth][rows]`, for the
/// [`LhsLayout::Terms`] reading (lhs views with no unit stride).
unsafe fn pack_lhs(out: &mut Vec<f32>, lhs: &MatRef, start: usize, depth: usize) {
    out.clear();
    out.resize(depth * lhs.rows, 0.0);
    let src = lhs.data.as_ptr();
    for p in 0..depth {
        for r in 0..lhs.rows {
            out[p * lhs.rows + r] = *src.add(r * lhs.row_stride + (start + p) * lhs.col_stride);
        }
    }
}

/// Which terms the tiles of a strip visit: all, each row tile its own list
/// (zeros in `lhs`), or one list for every tile (zero rows of `rhs`).
#[derive(Clone, Copy)]
enum TileTerms<'a> {
    All,
    PerTile(&'a sparse::RowLists),
    Same(&'a [u32]),
}

/// One column strip over every row: tiles of [`tile_rows`] rows, the
/// register shape chosen by the strip's width.
#[target_feature(enable = "avx512f,fma")]
unsafe fn strip(out: Out<'_>, lhs: Lhs, rhs: Rhs, width: usize, depth: usize, terms: TileTerms<'_>) {
    match width.div_ceil(LANES) {
        1 => rows::<1, 12>(out, lhs, rhs, depth, terms),
        2 => rows::<2, 12>(out, lhs, rhs, depth, terms),
        3 => rows::<3, 8>(out, lhs, rhs, depth, terms),
        _ => rows::<4, 6>(out, lhs, rhs, depth, terms),
    }
}

/// Where a tile's results go: the destination's first element, its row
/// stride, the last register's lane mask, and what the sums are added to
/// (a bias pointer at the strip's first column).
#[derive(Clone, Copy)]
struct Out<'a> {
    dst: *mut f32,
    dst_rs: usize,
    mask: __mmask16,
    start: Start<'a>,
}

/// The rows of one strip, `MR` at a time, the last tile shorter.
#[target_feature(enable = "avx512f,fma")]
unsafe fn rows<const NV: usize, const MR: usize>(out: Out<'_>, lhs: Lhs, rhs: Rhs, depth: usize, terms: TileTerms<'_>) {
    const { assert!(MR == tile_rows(NV), "the row lists are built for tile_rows(NV) rows a tile") };
    let (a, layout, m) = (lhs.ptr, lhs.layout, lhs.rows);
    let mut row = 0;
    while row < m {
        let count = MR.min(m - row);
        let a_tile = match layout {
            LhsLayout::Rows(stride) => a.add(row * stride),
            LhsLayout::Terms(_) => a.add(row),
        };
        let out = Out { dst: out.dst.add(row * out.dst_rs), ..out };
        let only = match terms {
            TileTerms::All => None,
            TileTerms::PerTile(lists) => Some(lists.tile(row / MR)),
            TileTerms::Same(list) => Some(list),
        };
        macro_rules! tile_of {
            ($($rows:literal)*) => {
                match count {
                    $($rows => tile::<NV, $rows>(out, a_tile, layout, rhs, depth, only),)*
                    _ => unreachable!("a tile has 1 to 12 rows"),
                }
            };
        }
        tile_of!(1 2 3 4 5 6 7 8 9 10 11 12);
        row += count;
    }
}

/// One `R x 16 NV` tile: `R * NV` accumulators summed along k, then
/// stored (see the module doc for the order). With `only`, the terms not
/// listed are zeros and left out, unless a sum comes out `-0` (see
/// [`sparse`]): then every term is summed.
#[inline]
#[target_feature(enable = "avx512f,fma")]
unsafe fn tile<const NV: usize, const R: usize>(
    out: Out<'_>,
    a: *const f32,
    layout: LhsLayout,
    rhs: Rhs,
    depth: usize,
    only: Option<&[u32]>,
) {
    if R * NV > 24 {
        return; // instantiated but never called: `rows` keeps R <= 24 / NV
    }
    let mut acc = [[_mm512_setzero_ps(); NV]; R];
    if let Some(list) = only {
        sum_terms(&mut acc, a, layout, rhs, out.mask, list.iter().map(|&p| p as usize));
        if !sparse::any_negative_zero(&acc, out.mask) {
            return store(out, &acc);
        }
        acc = [[_mm512_setzero_ps(); NV]; R];
    }
    sum_terms(&mut acc, a, layout, rhs, out.mask, 0..depth);
    store(out, &acc);
}

/// Adds the products of `terms` (in order) to a tile's sums.
#[inline(always)]
unsafe fn sum_terms<const NV: usize, const R: usize>(
    acc: &mut [[__m512; NV]; R],
    a: *const f32,
    layout: LhsLayout,
    rhs: Rhs,
    mask: __mmask16,
    terms: impl Iterator<Item = usize>,
) {
    match layout {
        LhsLayout::Rows(stride) => {
            let rows: [*const f32; R] = std::array::from_fn(|r| a.add(r * stride));
            for p in terms {
                let bv = load_row::<NV>(rhs, p, mask);
                for (sums, row) in acc.iter_mut().zip(&rows) {
                    add_products(sums, *row.add(p), &bv);
                }
            }
        }
        LhsLayout::Terms(stride) => {
            for p in terms {
                let bv = load_row::<NV>(rhs, p, mask);
                let ap = a.add(p * stride);
                for (r, sums) in acc.iter_mut().enumerate() {
                    add_products(sums, *ap.add(r), &bv);
                }
            }
        }
    }
}

/// One term of a tile row: `sums[v] = fma(a, b[v], sums[v])`.
#[inline]
#[target_feature(enable = "avx512f,fma")]
unsafe fn add_products<const NV: usize>(sums: &mut [__m512; NV], a: f32, b: &[__m512; NV]) {
    let a = _mm512_set1_ps(a);
    for (sum, &b) in sums.iter_mut().zip(b) {
        *sum = _mm512_fmadd_ps(a, b, *sum);
    }
}

/// Row `p` of a strip of `rhs` in `NV` registers, the last one masked
/// (its lanes past the strip read as zero).
#[inline]
#[target_feature(enable = "avx512f,fma")]
unsafe fn load_row<const NV: usize>(rhs: Rhs, p: usize, mask: __mmask16) -> [__m512; NV] {
    let row = rhs.ptr.add(p * rhs.stride);
    std::array::from_fn(|v| {
        if v + 1 == NV {
            _mm512_maskz_loadu_ps(mask, row.add(v * LANES))
        } else {
            _mm512_loadu_ps(row.add(v * LANES))
        }
    })
}

/// Writes a tile's sums: `acc`, `acc + dst` or `acc + bias`, the last
/// register masked.
#[inline]
#[target_feature(enable = "avx512f,fma")]
unsafe fn store<const NV: usize, const R: usize>(out: Out<'_>, acc: &[[__m512; NV]; R]) {
    for (r, row) in acc.iter().enumerate() {
        for (v, &sum) in row.iter().enumerate() {
            let mask = if v + 1 == NV { out.mask } else { 0xffff };
            let at = out.dst.add(r * out.dst_rs + v * LANES);
            let value = match out.start {
                Start::Overwrite => sum,
                Start::Accumulate => _mm512_add_ps(sum, _mm512_maskz_loadu_ps(mask, at)),
                Start::Bias(bias) => _mm512_add_ps(sum, _mm512_maskz_loadu_ps(mask, bias.as_ptr().add(v * LANES))),
            };
            _mm512_mask_storeu_ps(at, mask, value);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::{gemm_block, MatRef, K_BLOCK};
    use super::*;

    /// A generator of test values: mixed magnitudes and signs, with exact
    /// zeros of both signs, so that rounding and the sign of zero show.
    struct Values(u64);

    impl Values {
        fn next(&mut self) -> f32 {
            self.0 = self.0.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
            let bits = (self.0 >> 33) as u32;
            match bits % 16 {
                0 => 0.0,
                1 => -0.0,
                _ => ((bits >> 4) as f32 / (1u32 << 27) as f32 - 0.5) * [1.0, 3e-3, 7e2][(bits % 3) as usize],
            }
        }

        fn vec(&mut self, len: usize) -> Vec<f32> {
            (0..len).map(|_| self.next()).collect()
        }
    }

    /// `dst (+)= lhs * rhs` through `gemm` alone, k-block by k-block as
    /// `matmul` hands them out.
    fn by_gemm(dst: &mut [f32], accumulate: bool, lhs: MatRef, rhs: MatRef) {
        for start in (0..lhs.cols).step_by(K_BLOCK) {
            let depth = K_BLOCK.min(lhs.cols - start);
            unsafe { gemm_block(dst, accumulate || start > 0, lhs, rhs, start, depth) };
        }
    }

    /// The kernel alone, the first block from `start`.
    fn by_kernel(dst: &mut [f32], start: Start<'_>, lhs: MatRef, rhs: MatRef) {
        for first in (0..lhs.cols).step_by(K_BLOCK) {
            let depth = K_BLOCK.min(lhs.cols - first);
            assert!(general_path(lhs.rows, rhs.cols, depth, &lhs, &rhs));
            let start = if first == 0 { start } else { Start::Accumulate };
            unsafe { block(dst, start, lhs, rhs, first, depth) };
        }
    }

    /// The views of one operand: row-major, transposed, and strided with
    /// no unit stride (every other element of a wider row-major matrix).
    fn views(data: &[f32], rows: usize, cols: usize, which: usize) -> MatRef<'_> {
        match which {
            0 => MatRef::row_major(data, rows, cols),
            1 => MatRef::row_major(data, cols, rows).t(),
            _ => MatRef { data, rows, cols, row_stride: 2 * cols + 1, col_stride: 2, zeros_likely: false },
        }
    }

    #[test]
    fn equals_gemm_general_path_bit_for_bit() {
        if !available() {
            eprintln!("no AVX-512 on this CPU: the kernel is not used, nothing to compare");
            return;
        }
        let mut values = Values(7);
        let shapes = [
            (2, 130, 3),
            (3, 17, 5),
            (12, 64, 64),
            (13, 65, 100),
            (128, 64, 784),
            (64, 784, 128),
            (128, 784, 64),
            (25, 10, 64),
            (7, 48, 1030),
            (31, 33, 512),
            (6, 200, 513),
            (40, 2, 9),
        ];
        for (m, n, k) in shapes {
            for (lhs_view, rhs_view) in [(0, 0), (0, 1), (1, 0), (1, 1), (2, 0), (0, 2), (2, 2)] {
                let a = values.vec(m * (2 * k + 1) + k * (2 * m + 1));
                let b = values.vec(k * (2 * n + 1) + n * (2 * k + 1));
                let (lhs, rhs) = (views(&a, m, k, lhs_view), views(&b, k, n, rhs_view));
                if !(0..k).step_by(K_BLOCK).all(|s| general_path(m, n, K_BLOCK.min(k - s), &lhs, &rhs)) {
                    continue;
                }
                let (bias, before) = (values.vec(n), values.vec(m * n));
                assert_kernel_equals_gemm(
                    lhs,
                    rhs,
                    &bias,
                    &before,
                    &format!("{m}x{n}x{k}, views {lhs_view}/{rhs_view}"),
                );
            }
        }
    }

    /// `dst = start + lhs * rhs` by the kernel against `gemm`, bit for bit,
    /// for the three starts (overwrite, accumulate onto `before`, `bias`).
    fn assert_kernel_equals_gemm(lhs: MatRef, rhs: MatRef, bias: &[f32], before: &[f32], what: &str) {
        let n = rhs.cols;
        for mode in 0..3 {
            let (mut want, mut got) = (before.to_vec(), before.to_vec());
            let start = [Start::Overwrite, Start::Accumulate, Start::Bias(bias)][mode];
            if mode == 2 {
                want.chunks_exact_mut(n).for_each(|row| row.copy_from_slice(bias));
            }
            by_gemm(&mut want, mode > 0, lhs, rhs);
            by_kernel(&mut got, start, lhs, rhs);
            let differ = want.iter().zip(&got).position(|(x, y)| x.to_bits() != y.to_bits());
            assert_eq!(
                differ,
                None,
                "{what}, start {mode}: gemm {want:?} kernel {got:?}",
                want = differ.map(|i| want[i]),
                got = differ.map(|i| got[i])
            );
        }
    }

    /// [`assert_kernel_equals_gemm`] with a bias of `-0`s and a destination
    /// holding zeros of both signs, so that the sign of a zero sum shows.
    fn assert_sparse_equals_gemm(lhs: MatRef, rhs: MatRef, what: &str) {
        let before: Vec<f32> = (0..lhs.rows * rhs.cols).map(|i| [0.5, -0.0, 0.0][i % 3]).collect();
        assert_kernel_equals_gemm(lhs, rhs, &vec![-0.0; rhs.cols], &before, what);
    }

    /// Images' worth of zeros: each value is zero (of either sign) with
    /// probability 9/10, and whole rows are zero with probability 1/2.
    fn mostly_zeros(values: &mut Values, rows: usize, cols: usize) -> Vec<f32> {
        let mut out = values.vec(rows * cols);
        for row in out.chunks_exact_mut(cols) {
            let blank = (values.0 >> 40).is_multiple_of(2);
            for x in row.iter_mut() {
                if blank || !values.next().to_bits().is_multiple_of(10) {
                    *x = if (values.0 >> 40).is_multiple_of(3) { -0.0 } else { 0.0 };
                }
            }
        }
        out
    }

    /// Whether `x` holds both `m x k` and `k x n` row-major.
    fn lhs_fits(x: &[f32], m: usize, k: usize, n: usize) -> bool {
        x.len() >= m * k && x.len() >= k * n
    }

    #[test]
    fn leaving_zero_terms_out_keeps_gemm_bits() {
        if !available() {
            eprintln!("no AVX-512 on this CPU: the kernel is not used, nothing to compare");
            return;
        }
        let mut values = Values(11);
        // The first layer's forward (zeros in lhs) and weight gradient
        // (zero rows in rhs), with edges, two k-blocks and a narrow strip.
        for (m, n, k) in [(64, 64, 784), (13, 40, 100), (1000, 10, 64), (64, 784, 64), (10, 100, 37)] {
            let x = mostly_zeros(&mut values, m.max(k), k.max(n));
            let dense = values.vec(k * n.max(m));
            assert!(lhs_fits(&x, m, k, n) && dense.len() >= k * m.max(n));
            let (lhs, rhs) = (MatRef::row_major(&x, m, k).zeros_likely(), MatRef::row_major(&dense, n, k).t());
            assert_sparse_equals_gemm(lhs, rhs, &format!("{m}x{n}x{k}, zeros in lhs"));
            let (lhs, rhs) = (MatRef::row_major(&dense, k, m).t(), MatRef::row_major(&x, k, n).zeros_likely());
            assert_sparse_equals_gemm(lhs, rhs, &format!("{m}x{n}x{k}, zeros in rhs"));
            // Infinities and NaNs facing zero terms must make NaNs, as in gemm.
            let mut bad = dense.clone();
            bad[3] = f32::INFINITY;
            bad[k + 5] = f32::NAN;
            let (lhs, rhs) = (MatRef::row_major(&x, m, k).zeros_likely(), MatRef::row_major(&bad, n, k).t());
            assert_sparse_equals_gemm(lhs, rhs, &format!("{m}x{n}x{k}, zeros in lhs, inf and NaN in rhs"));
            let (lhs, rhs) = (MatRef::row_major(&bad, k, m).t(), MatRef::row_major(&x, k, n).zeros_likely());
            assert_sparse_equals_gemm(lhs, rhs, &format!("{m}x{n}x{k}, zeros in rhs, inf and NaN in lhs"));
        }
    }

    #[test]
    fn a_sum_underflowing_to_negative_zero_is_summed_again() {
        if !available() {
            eprintln!("no AVX-512 on this CPU: the kernel is not used, nothing to compare");
            return;
        }
        // Term 0 gives 1e-30 * -1e-30, which rounds to -0; every later term
        // is 0 * 1 = +0, which gemm adds (making +0) and a list leaves out.
        let (m, n, k) = (12, 16, 64);
        let mut x = vec![0.0; m * k];
        x[0] = 1e-30;
        let mut w = vec![1.0; k * n];
        w[0] = -1e-30;
        let (lhs, rhs) = (MatRef::row_major(&x, m, k).zeros_likely(), MatRef::row_major(&w, k, n));
        assert_sparse_equals_gemm(lhs, rhs, "underflow, zeros in lhs");
        let (lhs, rhs) = (MatRef::row_major(&w, n, k).t(), MatRef::row_major(&x, m, k).t().zeros_likely());
        assert_sparse_equals_gemm(lhs, rhs, "underflow, zeros in rhs");
    }

    #[test]
    fn general_path_leaves_gemm_its_other_paths() {
        let a = vec![0.0; 64 * 64];
        let (lhs, rhs) = (MatRef::row_major(&a, 16, 16), MatRef::row_major(&a, 16, 16));
        assert!(!general_path(16, 16, 16, &lhs, &rhs.t()), "small, both contiguous along k");
        assert!(general_path(16, 16, 16, &lhs, &rhs), "small, rhs along n");
        assert!(!general_path(16, 16, 2, &lhs, &rhs), "k <= 2");
        assert!(!general_path(1, 16, 16, &lhs, &rhs) && !general_path(16, 1, 16, &lhs, &rhs), "vectors");
    }
}
