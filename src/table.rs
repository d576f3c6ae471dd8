//! CSV records, the one home of reading and writing them with the csv
//! crate: rows as serde structs ([`write_rows`], [`read_rows`]), and
//! records that grow every step built row by row ([`CsvBuffer`]).

use crate::fsutil::write_atomic;
use anyhow::Result;
use serde::de::DeserializeOwned;
use serde::Serialize;
use std::path::Path;

/// A csv error as an input error naming the file and, where known, the line.
pub fn csv_error(path: &Path, e: csv::Error) -> anyhow::Error {
    if let csv::ErrorKind::Io(io) = e.kind() {
        return crate::error::input(format!("{}: cannot read ({io})", path.display()));
    }
    let line = e.position().map_or(String::new(), |p| format!(":{}", p.line()));
    crate::error::input(format!("{}{line}: {e}", path.display()))
}

/// Writes the header `columns` (even when there are no rows), then `rows`,
/// to `path` atomically. A struct's sequence field is written as its
/// remaining columns.
pub fn write_rows<T: Serialize>(path: &Path, columns: &[&str], rows: &[T]) -> Result<()> {
    let mut buffer = CsvBuffer::new(columns);
    rows.iter().for_each(|row| buffer.push(row));
    buffer.write(path)
}

/// CSV text built row by row in memory (each row encoded once, as it
/// arrives) and written whole, atomically, as often as needed: the records
/// that grow every step.
pub struct CsvBuffer {
    writer: csv::Writer<Vec<u8>>,
    rows: usize,
}

impl CsvBuffer {
    /// An empty record with the header `columns`.
    pub fn new<S: AsRef<[u8]>>(columns: &[S]) -> Self {
        let mut writer = csv::WriterBuilder::new().has_headers(false).from_writer(Vec::new());
        writer.write_record(columns).expect("writing to memory cannot fail");
        CsvBuffer { writer, rows: 0 }
    }

    /// Appends `row`. Rows of numbers and names always encode, and memory
    /// cannot refuse a write.
    pub fn push<T: Serialize>(&mut self, row: &T) {
        self.writer.serialize(row).expect("a record row always encodes");
        self.rows += 1;
    }

    /// Rows appended so far.
    pub fn rows(&self) -> usize {
        self.rows
    }

    /// Writes the text so far to `path` atomically.
    pub fn write(&mut self, path: &Path) -> Result<()> {
        self.writer.flush()?;
        write_atomic(path, self.writer.get_ref())
    }
}

/// Reads the rows of a CSV record after its header, by position (so a
/// struct whose last field is a sequence takes the remaining columns). An
/// unreadable file or a malformed row is an input error naming the file and
/// the line.
pub fn read_rows<T: DeserializeOwned>(path: &Path) -> Result<Vec<T>> {
    let mut reader = csv::Reader::from_path(path).map_err(|e| csv_error(path, e))?;
    reader
        .records()
        .map(|record| {
            let record = record.map_err(|e| csv_error(path, e))?;
            record.deserialize(None).map_err(|e| csv_error(path, e))
        })
        .collect()
}
