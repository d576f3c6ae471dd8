//! Skipping the terms of a product that are exact zeros, with the bits of
//! summing them all.
//!
//! MNIST's pixels are 81 % zeros, and the first layer's products read
//! them: the forward's `x W^T` (zeros in `lhs`: any of a 6-row tile's
//! images is nonzero at 44 % of the pixels) and the weight gradient's
//! `dz^T x` (zeros in `rhs`: a 64-pixel stretch of a row is blank 23 % of
//! the time). A tile that leaves those terms out does about half the first
//! layer's work, and the first layer holds 39 % of a 784-64^20-10 network's
//! multiply-adds and 70 % of the seed network's.
//!
//! **Why the bits do not change.** Every element is summed as
//! `acc = +0; acc = fma(a_p, b_p, acc)` in order of p (the module above).
//! A left-out term has `a_p = ±0` (or `b_p = ±0`) and the other factor
//! finite, so its product is an exact zero, and `fma` returns `acc`
//! unchanged, except that it turns an `acc` of `-0` into `+0` when the
//! product is `+0`. Every other term is the same `fma` in the same order,
//! and from a zero `acc` of either sign it gives the same value. So, step
//! by step, the sum without the zero terms equals the full one, or is `-0`
//! where the full one is `+0`: never the other way round, since `acc`
//! starts at `+0`, and `-0` arises only from a negative sum too small for
//! a subnormal (or from `-0` itself). The same then holds for `acc + dst`
//! and `acc + bias`. Hence a tile is summed again over every term when one
//! of its sums is `-0` (rare: it needs an underflow), and the factors
//! facing a left-out term are checked finite first (`0 * inf` is NaN);
//! where they are not, nothing is left out.
//!
//! Which views to look at the caller says (`MatRef::zeros_likely`: a
//! layer's input); the lists are built only where the first tile or strip
//! shows that enough terms would go.

use super::{Lhs, LhsLayout, Rhs, LANES};
use std::arch::x86_64::*;

/// Terms are left out only where at most this fraction of them remains:
/// building the lists and the indirect loop cost a little.
const WORTH_BELOW: f64 = 0.8;

/// The terms each row tile of a block visits: tile `t` visits
/// `terms[ends[t - 1]..ends[t]]` (the first from 0).
#[derive(Default)]
pub struct RowLists {
    terms: Vec<u32>,
    ends: Vec<usize>,
}

impl RowLists {
    /// The terms of row tile `t`, in increasing order.
    pub fn tile(&self, t: usize) -> &[u32] {
        let from = if t == 0 { 0 } else { self.ends[t - 1] };
        &self.terms[from..self.ends[t]]
    }
}

/// For an `lhs` read along rows, the terms of each tile of `rows` rows
/// where some row is nonzero, if the first tile's list shows it worth it
/// (else `None`: the block is summed over every term).
///
/// # Safety
/// `lhs` must point at `lhs.rows` rows of `depth` readable floats.
#[target_feature(enable = "avx512f")]
pub unsafe fn lhs_row_lists(lists: &mut RowLists, lhs: Lhs, rows: usize, depth: usize) -> Option<&RowLists> {
    let LhsLayout::Rows(stride) = lhs.layout else { return None };
    lists.terms.clear();
    lists.ends.clear();
    let mut first = 0;
    while first < lhs.rows {
        let count = rows.min(lhs.rows - first);
        nonzero_terms(&mut lists.terms, depth, |p, mask| {
            let mut any = _mm512_setzero_si512();
            for r in first..first + count {
                let x = _mm512_maskz_loadu_epi32(mask, lhs.ptr.add(r * stride + p) as *const i32);
                any = _mm512_or_si512(any, x);
            }
            any
        });
        lists.ends.push(lists.terms.len());
        if first == 0 && !worth(lists.terms.len(), depth) {
            return None;
        }
        first += count;
    }
    Some(lists)
}

/// Rows of a strip with a nonzero above which no further strip of the
/// block is looked at: the view is not holding zeros after all.
const DENSE_ABOVE: f64 = 0.97;

/// How many terms a list keeps, for its block.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Density {
    /// Few enough to leave the rest out.
    Sparse,
    /// Too many for this strip.
    Mixed,
    /// So many that no other strip of the block is worth a look.
    Dense,
}

/// The terms `p` where row `p` of a strip of `rhs` (`width` columns) has a
/// nonzero, into `list`, and what that says.
///
/// # Safety
/// `rhs` must hold `depth` rows of `width` readable floats.
#[target_feature(enable = "avx512f")]
pub unsafe fn strip_list(list: &mut Vec<u32>, rhs: Rhs, width: usize, depth: usize) -> Density {
    list.clear();
    let registers = width.div_ceil(LANES);
    let last = super::lane_mask(width);
    for p in 0..depth {
        let row = rhs.ptr.add(p * rhs.stride);
        let mut any = _mm512_setzero_si512();
        for v in 0..registers {
            let mask = if v + 1 == registers { last } else { 0xffff };
            any = _mm512_or_si512(any, _mm512_maskz_loadu_epi32(mask, row.add(v * LANES) as *const i32));
        }
        if _mm512_test_epi32_mask(any, _mm512_set1_epi32(i32::MAX)) != 0 {
            list.push(p as u32);
        }
    }
    match list.len() as f64 / depth as f64 {
        kept if kept <= WORTH_BELOW => Density::Sparse,
        kept if kept > DENSE_ABOVE => Density::Dense,
        _ => Density::Mixed,
    }
}

/// Whether every value of a strip of `rhs` is finite.
///
/// # Safety
/// As [`strip_list`].
#[target_feature(enable = "avx512f")]
pub unsafe fn finite_strip(rhs: Rhs, width: usize, depth: usize) -> bool {
    let registers = width.div_ceil(LANES);
    let last = super::lane_mask(width);
    let mut largest = [_mm512_setzero_si512(); 4];
    for p in 0..depth {
        let row = rhs.ptr.add(p * rhs.stride);
        for (v, largest) in largest.iter_mut().enumerate().take(registers) {
            let mask = if v + 1 == registers { last } else { 0xffff };
            *largest = max_magnitude(*largest, _mm512_maskz_loadu_epi32(mask, row.add(v * LANES) as *const i32));
        }
    }
    all_finite(&largest)
}

/// Whether every value a tile of `lhs` may read is finite (its `rows`
/// rows or terms, `depth` long, in place or packed).
///
/// # Safety
/// `lhs` must point at its rows (or terms) of `depth` readable floats.
#[target_feature(enable = "avx512f")]
pub unsafe fn finite_lhs(lhs: Lhs, depth: usize) -> bool {
    let (runs, len, stride) = match lhs.layout {
        LhsLayout::Rows(stride) => (lhs.rows, depth, stride),
        LhsLayout::Terms(stride) => (depth, lhs.rows, stride),
    };
    let mut largest = [_mm512_setzero_si512(); 4];
    for run in 0..runs {
        let at = lhs.ptr.add(run * stride);
        for (n, i) in (0..len).step_by(LANES).enumerate() {
            let mask = if len - i >= LANES { 0xffff } else { (1u16 << (len - i)) - 1 };
            largest[n % 4] = max_magnitude(largest[n % 4], _mm512_maskz_loadu_epi32(mask, at.add(i) as *const i32));
        }
    }
    all_finite(&largest)
}

/// The larger of `largest` and the magnitude bits of `values`, lane by
/// lane (as unsigned integers, ordered as the magnitudes are).
#[inline]
#[target_feature(enable = "avx512f")]
fn max_magnitude(largest: __m512i, values: __m512i) -> __m512i {
    _mm512_max_epu32(largest, _mm512_and_si512(values, _mm512_set1_epi32(i32::MAX)))
}

/// Whether all magnitude bits are below the infinities' (`0x7f80_0000`).
#[inline]
#[target_feature(enable = "avx512f")]
fn all_finite(largest: &[__m512i; 4]) -> bool {
    let max = largest.iter().fold(_mm512_setzero_si512(), |a, &b| _mm512_max_epu32(a, b));
    _mm512_cmpge_epu32_mask(max, _mm512_set1_epi32(0x7f80_0000)) == 0
}

/// Whether a tile's sums hold a `-0` in a lane it stores (see the module
/// doc: then it is summed again over every term).
#[inline]
#[target_feature(enable = "avx512f")]
pub fn any_negative_zero<const NV: usize, const R: usize>(acc: &[[__m512; NV]; R], mask: __mmask16) -> bool {
    let negative_zero = _mm512_set1_epi32(i32::MIN);
    acc.iter().any(|row| {
        row.iter().enumerate().any(|(v, &sum)| {
            let lanes = if v + 1 == NV { mask } else { 0xffff };
            _mm512_mask_cmpeq_epi32_mask(lanes, _mm512_castps_si512(sum), negative_zero) != 0
        })
    })
}

/// Appends to `list` the `p < depth` where `bits(p0, mask)` (the OR of the
/// values at terms `p0..p0 + 16`, lanes past `depth` masked off) is
/// nonzero ignoring the sign bit.
#[inline]
#[target_feature(enable = "avx512f")]
unsafe fn nonzero_terms(list: &mut Vec<u32>, depth: usize, mut bits: impl FnMut(usize, __mmask16) -> __m512i) {
    let steps = _mm512_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15);
    for p in (0..depth).step_by(LANES) {
        let mask = if depth - p >= LANES { 0xffff } else { (1u16 << (depth - p)) - 1 };
        let nonzero = _mm512_test_epi32_mask(bits(p, mask), _mm512_set1_epi32(i32::MAX));
        let len = list.len();
        list.reserve(LANES);
        let indices = _mm512_add_epi32(steps, _mm512_set1_epi32(p as i32));
        // Compressed in a register and stored whole into the reserved
        // capacity (the lanes past the count are not kept): the store form
        // of the compress is microcoded, 3x slower.
        let kept = _mm512_maskz_compress_epi32(nonzero, indices);
        _mm512_storeu_si512(list.as_mut_ptr().add(len) as *mut __m512i, kept);
        list.set_len(len + nonzero.count_ones() as usize);
    }
}

/// Whether leaving all but `kept` of `depth` terms out is worth it.
fn worth(kept: usize, depth: usize) -> bool {
    (kept as f64) <= WORTH_BELOW * depth as f64
}
