//! CSV records, the one home of reading and writing them with the csv
//! crate: rows as serde structs ([`write_rows`], [`read_rows`]), and a
//! whole table read back by column name ([`Table`]) for the charts and the
//! report.

use crate::fsutil::write_atomic;
use anyhow::{anyhow, Result};
use serde::de::DeserializeOwned;
use serde::Serialize;
use std::path::{Path, PathBuf};

/// A csv error as an input error naming the file and, where known, the line.
pub fn csv_error(path: &Path, e: csv::Error) -> anyhow::Error {
    if let csv::ErrorKind::Io(io) = e.kind() {
        return crate::error::input(format!("{}: cannot read ({io})", path.display()));
    }
    let line = e.position().map_or(String::new(), |p| format!(":{}", p.line()));
    crate::error::input(format!("{}{line}: {e}", path.display()))
}

/// CSV text: the header `columns` (written even when there are no rows),
/// then `rows`. A struct's sequence field is written as its remaining
/// columns.
pub fn to_csv<T: Serialize>(columns: &[&str], rows: &[T]) -> Result<Vec<u8>> {
    let mut w = csv::WriterBuilder::new().has_headers(false).from_writer(Vec::new());
    w.write_record(columns)?;
    for row in rows {
        w.serialize(row)?;
    }
    w.into_inner().map_err(|e| anyhow!("cannot encode CSV: {e}"))
}

/// Writes [`to_csv`] to `path` atomically.
pub fn write_rows<T: Serialize>(path: &Path, columns: &[&str], rows: &[T]) -> Result<()> {
    write_atomic(path, &to_csv(columns, rows)?)
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

/// A CSV file of our own: a header and rows of fields.
pub struct Table {
    /// Column names.
    pub header: Vec<String>,
    /// Rows of fields, as text.
    pub rows: Vec<Vec<String>>,
    path: PathBuf,
}

impl Table {
    /// Reads `path` with the csv crate; a file that does not exist is
    /// `None`, a malformed one an error naming its line.
    pub fn read(path: &Path) -> Result<Option<Table>> {
        let mut reader = match csv::ReaderBuilder::new().flexible(true).from_path(path) {
            Ok(r) => r,
            Err(e) if matches!(e.kind(), csv::ErrorKind::Io(io) if io.kind() == std::io::ErrorKind::NotFound) => {
                return Ok(None)
            }
            Err(e) => return Err(csv_error(path, e)),
        };
        let at = |e: csv::Error| csv_error(path, e);
        let header = reader.headers().map_err(at)?.iter().map(String::from).collect();
        let rows = reader
            .records()
            .map(|r| r.map(|r| r.iter().map(String::from).collect()).map_err(at))
            .collect::<Result<_>>()?;
        Ok(Some(Table { header, rows, path: path.into() }))
    }

    /// Index of a column.
    pub fn column(&self, name: &str) -> Result<usize> {
        self.header.iter().position(|h| h == name).ok_or_else(|| anyhow!("{}: no column {name}", self.path.display()))
    }

    /// A column parsed as numbers (unparsable fields become NaN).
    pub fn numbers(&self, name: &str) -> Result<Vec<f64>> {
        let c = self.column(name)?;
        Ok(self.rows.iter().map(|r| r.get(c).and_then(|v| v.parse().ok()).unwrap_or(f64::NAN)).collect())
    }
}
