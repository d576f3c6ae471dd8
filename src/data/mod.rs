//! Data: the IDX reader, the data sets and where to get them, splits and
//! batches. Pixels stay `u8` in memory and are scaled by 1/255 per batch.

pub mod batch;
pub mod fetch;
pub mod idx;
pub mod order;

use anyhow::{bail, Result};
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};

/// A data set initscope knows how to fetch and verify.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "kebab-case")]
pub enum DatasetName {
    /// LeCun, Cortes & Burges' handwritten digits.
    Mnist,
    /// Zalando's clothing images in MNIST's format (Xiao et al. 2017).
    FashionMnist,
}

impl DatasetName {
    /// The name used in paths and settings (`mnist`, `fashion-mnist`).
    pub fn as_str(self) -> &'static str {
        match self {
            DatasetName::Mnist => "mnist",
            DatasetName::FashionMnist => "fashion-mnist",
        }
    }
}

/// Where an experiment's data comes from: a data set initscope fetches and
/// verifies, or a directory holding the four IDX files (any image size),
/// read as they are. Written in settings as `"mnist"`, `"fashion-mnist"` or
/// a path.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(from = "String", into = "String")]
pub enum DataSource {
    /// A known data set under the data root.
    Known(DatasetName),
    /// A directory of IDX files.
    Dir(PathBuf),
}

impl From<String> for DataSource {
    fn from(s: String) -> Self {
        match s.as_str() {
            "mnist" => DataSource::Known(DatasetName::Mnist),
            "fashion-mnist" => DataSource::Known(DatasetName::FashionMnist),
            _ => DataSource::Dir(PathBuf::from(s)),
        }
    }
}

impl From<DataSource> for String {
    fn from(d: DataSource) -> String {
        match d {
            DataSource::Known(name) => name.as_str().to_string(),
            DataSource::Dir(path) => path.display().to_string(),
        }
    }
}

impl DataSource {
    /// Loads the data: fetching and verifying a known set under `root`, or
    /// reading a directory as it is.
    pub fn load(&self, root: &Path) -> Result<Dataset> {
        match self {
            DataSource::Known(name) => Dataset::load(*name, root),
            DataSource::Dir(dir) => {
                if !dir.is_dir() {
                    return Err(crate::error::input(format!("{}: data directory not found", dir.display())));
                }
                Dataset::read_dir(dir)
            }
        }
    }
}

/// Where data sets live when neither `--data-dir` nor `INITSCOPE_DATA_DIR`
/// says otherwise: the user's cache directory, `~/.cache/initscope` on Linux.
pub fn default_data_root() -> PathBuf {
    dirs::cache_dir().unwrap_or_else(|| PathBuf::from(".cache")).join("initscope")
}

/// Labelled images: `count` images of `rows x cols` bytes, one label each.
#[derive(Clone, Debug)]
pub struct LabeledImages {
    /// Number of images.
    pub count: usize,
    /// Height.
    pub rows: usize,
    /// Width.
    pub cols: usize,
    /// `count * rows * cols` pixels, row-major, 0 (background) to 255.
    pub pixels: Vec<u8>,
    /// `count` labels.
    pub labels: Vec<u8>,
}

impl LabeledImages {
    /// Pixels per image.
    pub fn pixels_per_image(&self) -> usize {
        self.rows * self.cols
    }

    /// E[x_i^2] over the pixels of the first `count` images, as the network
    /// sees them (scaled to [0, 1]): `sum p^2 / 255^2 / n`, the sum of
    /// squared bytes exact in integers (a sum in f64 in order took 6 % of a
    /// small network's sweep). Mean-field theory's input variance.
    pub fn second_moment(&self, count: usize) -> f64 {
        let n = count.min(self.count) * self.pixels_per_image();
        squared_bytes(&self.pixels[..n]) as f64 / (255.0 * 255.0) / n.max(1) as f64
    }

    /// Reads an image file and a label file and checks that they agree:
    /// 3-dimensional images, 1-dimensional labels, equal counts, labels
    /// below `classes`.
    pub fn read(images: &Path, labels: &Path, classes: usize) -> Result<Self> {
        let image_bytes = idx::read_maybe_gz(images)?;
        let label_bytes = idx::read_maybe_gz(labels)?;
        Self::from_bytes((images, image_bytes), (labels, label_bytes), classes)
    }

    /// As [`LabeledImages::read`], from the files' uncompressed contents
    /// (the paths name them in errors).
    pub fn from_bytes(images: (&Path, Vec<u8>), labels: (&Path, Vec<u8>), classes: usize) -> Result<Self> {
        Self::parse_checked(images, labels, classes).map_err(|e| match e.downcast::<idx::IdxError>() {
            Ok(idx) => idx.into(),
            Err(other) => crate::error::input(other),
        })
    }

    fn parse_checked(images: (&Path, Vec<u8>), labels: (&Path, Vec<u8>), classes: usize) -> Result<Self> {
        let img = idx::parse(images.1, images.0)?;
        let lab = idx::parse(labels.1, labels.0)?;
        let (images, labels) = (images.0, labels.0);
        if img.dims.len() != 3 {
            bail!("{}: images must have 3 dimensions (count, rows, cols), found {:?}", images.display(), img.dims);
        }
        if img.dims[1] == 0 || img.dims[2] == 0 {
            bail!(
                "{}: images of {}x{} pixels: each needs at least one row and one column",
                images.display(),
                img.dims[1],
                img.dims[2]
            );
        }
        if lab.dims.len() != 1 {
            bail!("{}: labels must have 1 dimension, found {:?}", labels.display(), lab.dims);
        }
        if img.dims[0] != lab.dims[0] {
            bail!("{}: {} labels for {} images in {}", labels.display(), lab.dims[0], img.dims[0], images.display());
        }
        if let Some((i, &bad)) = lab.data.iter().enumerate().find(|(_, &l)| usize::from(l) >= classes) {
            bail!("{}: label {bad} at index {i} is outside 0..{classes}", labels.display());
        }
        Ok(LabeledImages {
            count: img.dims[0],
            rows: img.dims[1],
            cols: img.dims[2],
            pixels: img.data,
            labels: lab.data,
        })
    }
}

/// `sum of p^2` over `bytes`, exact; in AVX-512 registers where the CPU
/// has them (integers: the same sum at any width).
fn squared_bytes(bytes: &[u8]) -> u64 {
    #[inline(always)]
    fn portable(bytes: &[u8]) -> u64 {
        // 2^16 squares of at most 255^2 fit in a u32.
        let chunk = |c: &[u8]| c.iter().map(|&p| u32::from(p) * u32::from(p)).sum::<u32>() as u64;
        bytes.chunks(1 << 16).map(chunk).sum()
    }
    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "avx512f,avx512bw")]
    unsafe fn avx512(bytes: &[u8]) -> u64 {
        portable(bytes)
    }
    #[cfg(target_arch = "x86_64")]
    if std::arch::is_x86_feature_detected!("avx512f") && std::arch::is_x86_feature_detected!("avx512bw") {
        // SAFETY: the CPU has AVX-512F and BW.
        return unsafe { avx512(bytes) };
    }
    portable(bytes)
}

/// A data set's training and test parts, as in its files.
#[derive(Clone, Debug)]
pub struct Dataset {
    /// The training file (60,000 images for MNIST), before any validation split.
    pub train: LabeledImages,
    /// The test file (10,000 images).
    pub test: LabeledImages,
    /// [`Dataset::train_second_moment`]s already taken, by image count:
    /// every point of a sweep asks for the same one (7 ms of a
    /// 784-64^20-10 point's 0.5 s each time).
    moments: crate::memo::Memo<usize, f64>,
}

/// Number of classes of every data set initscope knows.
pub const CLASSES: usize = 10;

impl Dataset {
    /// A data set of these parts.
    pub fn new(train: LabeledImages, test: LabeledImages) -> Self {
        Dataset { train, test, moments: crate::memo::Memo::new() }
    }

    /// [`LabeledImages::second_moment`] of the first `count` training
    /// images, computed once per count.
    pub fn train_second_moment(&self, count: usize) -> f64 {
        self.moments.get_or_insert_with(count, || self.train.second_moment(count))
    }

    /// Reads the four standard files from `dir` (compressed or not).
    pub fn read_dir(dir: &Path) -> Result<Self> {
        let find = |stem: &str| {
            fetch::existing_file(dir, stem)
                .ok_or_else(|| crate::error::input(format!("{}: no {stem} or {stem}.gz", dir.display())))
        };
        Ok(Dataset::new(
            LabeledImages::read(&find("train-images-idx3-ubyte")?, &find("train-labels-idx1-ubyte")?, CLASSES)?,
            LabeledImages::read(&find("t10k-images-idx3-ubyte")?, &find("t10k-labels-idx1-ubyte")?, CLASSES)?,
        ))
    }

    /// Fetches `name` into `root/<name>` if needed, verifies it, and reads
    /// it (each file's content is read once, for its checksum and its
    /// values, and moved into the images, not copied).
    pub fn load(name: DatasetName, root: &Path) -> Result<Self> {
        let [train_images, train_labels, test_images, test_labels]: [fetch::VerifiedFile; 4] =
            fetch::ensure(name, root)?.try_into().expect("ensure returns the four files");
        let pair = |(images, image_bytes): fetch::VerifiedFile, (labels, label_bytes): fetch::VerifiedFile| {
            LabeledImages::from_bytes((&images, image_bytes), (&labels, label_bytes), CLASSES)
        };
        Ok(Dataset::new(pair(train_images, train_labels)?, pair(test_images, test_labels)?))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn images(pixels: Vec<u8>) -> LabeledImages {
        LabeledImages { count: pixels.len() / 4, rows: 2, cols: 2, labels: vec![0; pixels.len() / 4], pixels }
    }

    /// The moment from the exact integer sum: 0.5 for half black, half
    /// white, and within f64 rounding of the sum in floating point on odd
    /// bytes.
    #[test]
    fn second_moment_is_the_mean_of_squared_scaled_pixels() {
        assert_eq!(images(vec![0, 255, 255, 0, 0, 0, 255, 255]).second_moment(2), 0.5);
        let pixels: Vec<u8> = (0..400_000u32).map(|i| (i.wrapping_mul(2654435761) >> 24) as u8).collect();
        let in_float = pixels.iter().map(|&p| (f64::from(p) / 255.0).powi(2)).sum::<f64>() / pixels.len() as f64;
        let exact = images(pixels).second_moment(100_000);
        assert!((exact - in_float).abs() < 1e-12 * exact, "{exact} vs {in_float}");
        assert_eq!(images(vec![255; 8]).second_moment(1), 1.0, "only the first `count` images");
    }

    /// A data set gives each count's moment, the same taken again.
    #[test]
    fn a_data_sets_moments_are_its_training_images_by_count() {
        let data = Dataset::new(images(vec![255, 255, 255, 255, 0, 0, 0, 0]), images(vec![0; 4]));
        for _ in 0..2 {
            assert_eq!(data.train_second_moment(1), 1.0);
            assert_eq!(data.train_second_moment(2), 0.5);
        }
        assert_eq!(data.clone().train_second_moment(2), 0.5);
    }
}
