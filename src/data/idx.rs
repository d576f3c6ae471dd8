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
    #[error("{path}: cannot read: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The cause.
        source: std::io::Error,
    },
    /// The gzip stream is corrupt or ends early.
    #[error("{path}: corrupt or truncated gzip data: {source}")]
    Gzip {
        /// The file.
        path: PathBuf,
        /// The cause.
        source: std::io::Error,
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
    let raw = std::fs::read(path).map_err(|source| IdxError::Io { path: path.into(), source })?;
    read_maybe_gz_bytes(&raw).map_err(|source| IdxError::Gzip { path: path.into(), source })
}

/// [`read_maybe_gz`], handing the uncompressed content to `observe` piece
/// by piece, in order, on a second thread while the rest is inflated (for
/// a checksum: the md5 of MNIST's training images takes about as long as
/// inflating them, so the two together take about as long as one).
pub fn read_maybe_gz_observed(path: &Path, observe: impl FnMut(&[u8]) + Send) -> Result<Vec<u8>, IdxError> {
    const PIECE: usize = 1 << 20;
    let raw = std::fs::read(path).map_err(|source| IdxError::Io { path: path.into(), source })?;
    if !raw.starts_with(&[0x1f, 0x8b]) {
        let mut observe = observe;
        observe(&raw);
        return Ok(raw);
    }
    let (pieces, received) = std::sync::mpsc::sync_channel::<Vec<u8>>(8);
    let capacity = raw.len() * 4;
    std::thread::scope(|scope| {
        let collector = scope.spawn(move || {
            let (mut observe, mut content) = (observe, Vec::with_capacity(capacity));
            for piece in received {
                observe(&piece);
                content.extend_from_slice(&piece);
            }
            content
        });
        let mut decoder = GzDecoder::new(raw.as_slice());
        let inflated = (|| loop {
            let mut piece = Vec::with_capacity(PIECE);
            (&mut decoder).take(PIECE as u64).read_to_end(&mut piece)?;
            if piece.is_empty() || pieces.send(piece).is_err() {
                return Ok(());
            }
        })();
        drop(pieces);
        let content = collector.join().expect("the observer of a data file panicked");
        inflated.map(|()| content).map_err(|source| IdxError::Gzip { path: path.into(), source })
    })
}

/// Inflates `bytes` when they are gzip-compressed, else returns them.
pub fn read_maybe_gz_bytes(bytes: &[u8]) -> std::io::Result<Vec<u8>> {
    if bytes.starts_with(&[0x1f, 0x8b]) {
        let mut out = Vec::with_capacity(bytes.len() * 4);
        GzDecoder::new(bytes).read_to_end(&mut out)?;
        Ok(out)
    } else {
        Ok(bytes.to_vec())
    }
}

/// Parses the uncompressed bytes of an IDX file; `path` is for messages.
pub fn parse(bytes: &[u8], path: &Path) -> Result<IdxArray, IdxError> {
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
    Ok(IdxArray { dims, data: bytes[data_start..].to_vec() })
}

/// Reads and parses an IDX file, compressed or not.
pub fn read(path: &Path) -> Result<IdxArray, IdxError> {
    parse(&read_maybe_gz(path)?, path)
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
    fn an_observer_sees_the_whole_content_in_order_and_a_cut_stream_is_a_gzip_error() {
        let dir = tempfile::tempdir().unwrap();
        let content: Vec<u8> = (0..3_000_000u32).map(|i| (i.wrapping_mul(2_654_435_761) >> 27) as u8).collect();
        let gz = dir.path().join("big.gz");
        std::fs::write(&gz, gzip(&content)).unwrap();
        let (mut seen, mut pieces) = (Vec::new(), 0);
        let read = read_maybe_gz_observed(&gz, |piece| {
            seen.extend_from_slice(piece);
            pieces += 1;
        });
        assert_eq!(read.unwrap(), content);
        assert_eq!((seen == content, pieces), (true, 3), "three pieces of a megabyte");
        let plain = dir.path().join("plain");
        std::fs::write(&plain, &content[..100]).unwrap();
        let mut seen = Vec::new();
        assert_eq!(read_maybe_gz_observed(&plain, |p| seen.extend_from_slice(p)).unwrap(), &content[..100]);
        assert_eq!(seen, &content[..100]);
        let cut = std::fs::read(&gz).unwrap();
        std::fs::write(&gz, &cut[..cut.len() / 2]).unwrap();
        let message = read_maybe_gz_observed(&gz, |_| {}).unwrap_err().to_string();
        assert!(message.contains("big.gz") && message.contains("truncated gzip"), "{message}");
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
