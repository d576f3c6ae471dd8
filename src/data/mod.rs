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

/// A data set's training and test parts, as in its files.
#[derive(Clone, Debug)]
pub struct Dataset {
    /// The training file (60,000 images for MNIST), before any validation split.
    pub train: LabeledImages,
    /// The test file (10,000 images).
    pub test: LabeledImages,
}

/// Number of classes of every data set initscope knows.
pub const CLASSES: usize = 10;

impl Dataset {
    /// Reads the four standard files from `dir` (compressed or not).
    pub fn read_dir(dir: &Path) -> Result<Self> {
        let find = |stem: &str| {
            fetch::existing_file(dir, stem)
                .ok_or_else(|| crate::error::input(format!("{}: no {stem} or {stem}.gz", dir.display())))
        };
        Ok(Dataset {
            train: LabeledImages::read(&find("train-images-idx3-ubyte")?, &find("train-labels-idx1-ubyte")?, CLASSES)?,
            test: LabeledImages::read(&find("t10k-images-idx3-ubyte")?, &find("t10k-labels-idx1-ubyte")?, CLASSES)?,
        })
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
        Ok(Dataset { train: pair(train_images, train_labels)?, test: pair(test_images, test_labels)? })
    }
}
