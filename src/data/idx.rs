//! The IDX format of the MNIST files (LeCun et al.): a 4-byte magic
//! `0x00 0x00 <type> <ndims>`, then `ndims` big-endian u32 dimensions, then
//! the values. Only unsigned bytes (type 0x08) occur in these data sets.
//! Files may be gzip-compressed; the gzip magic `1f 8b` tells.

use flate2::read::GzDecoder;
use flate2::write::GzEncoder;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};

/// Everything that can be wrong with an IDX file; each names the file.
#[derive(Debug, thiserror::Error)]
pub enum IdxError {
    /// The file could not be opened or read.
    #[error("{path}: cannot read: {cause}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The cause, said in the message (not also as the error's source,
        /// which would say it twice in a chain of causes).
        cause: std::io::Error,
    },
    /// The gzip stream is corrupt or ends early.
    #[error("{path}: corrupt or truncated gzip data: {cause}")]
    Gzip {
        /// The file.
        path: PathBuf,
        /// The cause, said in the message (as for `Io`).
        cause: std::io::Error,
    },
    /// The header is not a valid IDX header.
    #[error("{path}: not an IDX file: {reason}")]
    Header {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        reason: String,
    },
    /// The data after the header is shorter or longer than its dimensions say.
    #[error("{path}: the header promises {expected} bytes of data but the file has {actual}")]
    Length {
        /// The file.
        path: PathBuf,
        /// Product of the dimensions.
        expected: usize,
        /// What is there.
        actual: usize,
    },
}

/// An IDX array of unsigned bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IdxArray {
    /// Dimensions, outermost first (e.g. `[60000, 28, 28]`).
    pub dims: Vec<usize>,
    /// The values, row-major.
    pub data: Vec<u8>,
}

const UBYTE: u8 = 0x08;

/// Reads a file whole, inflating it when it is gzip-compressed; the bytes
/// returned are the uncompressed content (the checksums are of these).
pub fn read_maybe_gz(path: &Path) -> Result<Vec<u8>, IdxError> {
    let raw = std::fs::read(path).map_err(|cause| IdxError::Io { path: path.into(), cause })?;
    read_maybe_gz_bytes(&raw).map_err(|cause| IdxError::Gzip { path: path.into(), cause })
}

/// Whether `bytes` start as a gzip stream does.
pub fn is_gzip(bytes: &[u8]) -> bool {
    bytes.starts_with(&[0x1f, 0x8b])
}

/// Inflates `bytes` when they are gzip-compressed, else returns them.
pub fn read_maybe_gz_bytes(bytes: &[u8]) -> std::io::Result<Vec<u8>> {
    if is_gzip(bytes) {
        let mut out = Vec::with_capacity(bytes.len() * 4);
        GzDecoder::new(bytes).read_to_end(&mut out)?;
        Ok(out)
    } else {
        Ok(bytes.to_vec())
    }
}

/// Parses the uncompressed bytes of an IDX file; `path` is for messages.
/// The values stay where they are read (the header is cut off the front):
/// a copy of MNIST's training images cost 60 ms in page faults.
pub fn parse(mut bytes: Vec<u8>, path: &Path) -> Result<IdxArray, IdxError> {
    let header = |reason: String| IdxError::Header { path: path.into(), reason };
    if bytes.len() < 4 {
        return Err(header(format!("{} bytes is too short for the 4-byte magic", bytes.len())));
    }
    if bytes[0] != 0 || bytes[1] != 0 {
        return Err(header(format!(
            "magic number {:02x}{:02x}{:02x}{:02x} does not start with 0000",
            bytes[0], bytes[1], bytes[2], bytes[3]
        )));
    }
    if bytes[2] != UBYTE {
        return Err(header(format!("element type 0x{:02x} is not unsigned byte (0x08)", bytes[2])));
    }
    let ndims = usize::from(bytes[3]);
    if ndims == 0 {
        return Err(header("zero dimensions".into()));
    }
    let data_start = 4 + 4 * ndims;
    if bytes.len() < data_start {
        return Err(header(format!("file ends inside the {ndims} dimensions")));
    }
    let dims: Vec<usize> =
        bytes[4..data_start].chunks_exact(4).map(|c| u32::from_be_bytes([c[0], c[1], c[2], c[3]]) as usize).collect();
    let expected = dims
        .iter()
        .try_fold(1usize, |acc, &d| acc.checked_mul(d))
        .ok_or_else(|| header(format!("dimensions {dims:?} overflow")))?;
    let actual = bytes.len() - data_start;
    if actual != expected {
        return Err(IdxError::Length { path: path.into(), expected, actual });
    }
    bytes.drain(..data_start);
    Ok(IdxArray { dims, data: bytes })
}

/// Reads and parses an IDX file, compressed or not.
pub fn read(path: &Path) -> Result<IdxArray, IdxError> {
    parse(read_maybe_gz(path)?, path)
}

/// The uncompressed IDX encoding of an array.
pub fn encode(array: &IdxArray) -> Vec<u8> {
    let mut out = Vec::with_capacity(4 + 4 * array.dims.len() + array.data.len());
    out.extend_from_slice(&[0, 0, UBYTE, array.dims.len() as u8]);
    for &d in &array.dims {
        out.extend_from_slice(&(d as u32).to_be_bytes());
    }
    out.extend_from_slice(&array.data);
    out
}

/// Gzip-compresses bytes (used to store converted files as `.gz`).
pub fn gzip(bytes: &[u8]) -> Vec<u8> {
    let mut enc = GzEncoder::new(Vec::new(), flate2::Compression::default());
    enc.write_all(bytes).expect("writing to a Vec cannot fail");
    enc.finish().expect("writing to a Vec cannot fail")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> IdxArray {
        IdxArray { dims: vec![3, 2, 2], data: (0..12).collect() }
    }

    #[test]
    fn round_trips_plain_and_gzip() {
        let dir = tempfile::tempdir().unwrap();
        let bytes = encode(&sample());
        let plain = dir.path().join("a-idx3-ubyte");
        std::fs::write(&plain, &bytes).unwrap();
        assert_eq!(read(&plain).unwrap(), sample());
        let gz = dir.path().join("a-idx3-ubyte.gz");
        std::fs::write(&gz, gzip(&bytes)).unwrap();
        assert_eq!(read(&gz).unwrap(), sample());
    }

    fn one_line_error(bytes: &[u8], name: &str) -> String {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(name);
        std::fs::write(&path, bytes).unwrap();
        let message = read(&path).unwrap_err().to_string();
        assert!(!message.contains('\n'), "not one line: {message}");
        assert!(message.contains(name), "does not name the file: {message}");
        message
    }

    /// A truncated gzip file's error, in a chain of causes as the command
    /// line prints it, says its cause once.
    #[test]
    fn a_corrupt_gzip_file_says_its_cause_once() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("a-idx3-ubyte.gz");
        let whole = gzip(&encode(&sample()));
        std::fs::write(&path, &whole[..whole.len() / 2]).unwrap();
        let err = read(&path).unwrap_err();
        let IdxError::Gzip { cause, .. } = &err else { panic!("not a gzip error: {err}") };
        let cause = cause.to_string();
        let line = crate::error::one_line(&anyhow::Error::from(err).context("loading mnist"));
        assert_eq!(line.matches(&cause).count(), 1, "{line}");
        assert!(line.starts_with("loading mnist: ") && line.contains("a-idx3-ubyte.gz"), "{line}");
    }

    #[test]
    fn truncated_data_is_a_length_error() {
        let bytes = encode(&sample());
        let m = one_line_error(&bytes[..bytes.len() - 3], "short-idx3-ubyte");
        assert!(m.contains("promises 12 bytes") && m.contains("has 9"), "{m}");
    }

    #[test]
    fn truncated_gzip_is_a_gzip_error() {
        let gz = gzip(&encode(&sample()));
        let m = one_line_error(&gz[..gz.len() / 2], "cut.gz");
        assert!(m.contains("truncated gzip"), "{m}");
    }

    #[test]
    fn corrupt_headers_are_rejected() {
        let mut bytes = encode(&sample());
        bytes[0] = 0x12;
        assert!(one_line_error(&bytes, "magic").contains("magic number 1200"));
        let mut bytes = encode(&sample());
        bytes[2] = 0x0d;
        assert!(one_line_error(&bytes, "float").contains("element type 0x0d"));
        assert!(one_line_error(&[0, 0, 8, 3, 0, 0], "cut-header").contains("inside the 3 dimensions"));
        assert!(one_line_error(&[0, 0], "tiny").contains("too short"));
    }
}
