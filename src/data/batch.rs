//! Splits and batches, as the original's PyTorch data loaders make them.

use super::LabeledImages;
use crate::rng::Stream;
use std::ops::Range;

/// The training and validation parts of a training file: the validation set
/// is the LAST `int(fraction * count)` images, not a random sample (as the
/// original's `SubsetRandomSampler` split).
pub fn validation_split(count: usize, fraction: f64) -> (Range<usize>, Range<usize>) {
    let n_valid = (fraction * count as f64) as usize;
    let n_train = count - n_valid.min(count);
    (0..n_train, n_train..count)
}

/// The order of `range` for one pass: shuffled by the stream
/// `(seed, purpose, epoch)` when `shuffle` is set, otherwise in file order.
pub fn epoch_order(range: Range<usize>, shuffle: bool, seed: u64, purpose: &str, epoch: u64) -> Vec<u32> {
    let mut order: Vec<u32> = range.map(|i| i as u32).collect();
    if shuffle {
        Stream::new(seed, purpose, epoch).shuffle(&mut order);
    }
    order
}

/// Copies the images at `indices` into `input` (`[indices.len(), pixels]`,
/// scaled to [0, 1] by /255 as torchvision's `ToTensor`) and their labels
/// into `labels`.
pub fn fill_batch(set: &LabeledImages, indices: &[u32], input: &mut [f32], labels: &mut Vec<u8>) {
    let n = set.pixels_per_image();
    labels.clear();
    for (k, (row, &i)) in input.chunks_exact_mut(n).zip(indices).enumerate() {
        if let Some(&ahead) = indices.get(k + PREFETCH_AHEAD) {
            prefetch(&set.pixels[ahead as usize * n..(ahead as usize + 1) * n]);
        }
        let i = i as usize;
        scale_pixels(&set.pixels[i * n..(i + 1) * n], row);
        labels.push(set.labels[i]);
    }
}

/// How many images ahead [`fill_batch`] asks for: a shuffled batch reads
/// images from all over the set, each a run of cache lines that the
/// hardware prefetcher does not see coming.
const PREFETCH_AHEAD: usize = 2;

/// Asks the CPU to bring `bytes` into its caches (a hint: no effect on
/// results).
fn prefetch(bytes: &[u8]) {
    #[cfg(target_arch = "x86_64")]
    for line in bytes.chunks(64) {
        // SAFETY: SSE is part of x86_64's baseline; a prefetch never faults.
        unsafe { std::arch::x86_64::_mm_prefetch::<{ std::arch::x86_64::_MM_HINT_T0 }>(line.as_ptr().cast()) };
    }
    #[cfg(not(target_arch = "x86_64"))]
    let _ = bytes;
}

/// `out[j] = pixels[j] / 255` in f32, correctly rounded (torchvision's
/// `ToTensor`), computed as `(pixels[j] * (1/255 in f64))` rounded to f32:
/// the same 256 values as the f32 division (tested on all of them), and a
/// multiplication the compiler vectorises, where f32 division is slow.
/// AVX-512 and baseline copies of one loop give the same bits.
fn scale_pixels(pixels: &[u8], out: &mut [f32]) {
    #[cfg(target_arch = "x86_64")]
    if std::arch::is_x86_feature_detected!("avx512f") {
        // SAFETY: the CPU has AVX-512F.
        unsafe { scale_pixels_avx512(pixels, out) };
        return;
    }
    scale_pixels_portable(pixels, out);
}

#[inline(always)]
fn scale_pixels_portable(pixels: &[u8], out: &mut [f32]) {
    for (x, &p) in out.iter_mut().zip(pixels) {
        *x = (f64::from(p) * (1.0 / 255.0)) as f32;
    }
}

/// [`scale_pixels_portable`] compiled for AVX-512F.
///
/// # Safety
/// The CPU must have AVX-512F.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f")]
unsafe fn scale_pixels_avx512(pixels: &[u8], out: &mut [f32]) {
    scale_pixels_portable(pixels, out);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seed_split_is_the_last_tenth() {
        assert_eq!(validation_split(60_000, 0.1), (0..54_000, 54_000..60_000));
        assert_eq!(validation_split(100, 0.0), (0..100, 100..100));
    }

    #[test]
    fn order_replays_per_epoch_and_keeps_every_index() {
        let a = epoch_order(10..50, true, 123, "shuffle/train", 3);
        assert_eq!(a, epoch_order(10..50, true, 123, "shuffle/train", 3));
        assert_ne!(a, epoch_order(10..50, true, 123, "shuffle/train", 4));
        let mut sorted = a.clone();
        sorted.sort_unstable();
        assert_eq!(sorted, (10..50).collect::<Vec<u32>>());
        assert_eq!(epoch_order(0..3, false, 1, "x", 0), vec![0, 1, 2]);
    }

    #[test]
    fn pixels_scale_as_the_f32_division_on_every_byte_and_path() {
        let bytes: Vec<u8> = (0..=255).collect();
        let mut out = vec![0.0f32; 256];
        scale_pixels(&bytes, &mut out);
        let mut portable = vec![0.0f32; 256];
        scale_pixels_portable(&bytes, &mut portable);
        for (p, (&x, &y)) in out.iter().zip(&portable).enumerate() {
            let want = p as f32 / 255.0;
            assert_eq!((x.to_bits(), y.to_bits()), (want.to_bits(), want.to_bits()), "pixel {p}");
        }
    }

    #[test]
    fn batch_scales_pixels_and_copies_labels() {
        let set = LabeledImages { count: 2, rows: 1, cols: 2, pixels: vec![0, 255, 51, 102], labels: vec![4, 7] };
        let mut input = vec![9.0; 4];
        let mut labels = Vec::new();
        fill_batch(&set, &[1, 0], &mut input, &mut labels);
        assert_eq!(input, vec![0.2, 0.4, 0.0, 1.0]);
        assert_eq!(labels, vec![7, 4]);
    }
}
