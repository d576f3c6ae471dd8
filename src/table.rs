//! A CSV record read back by column name (with the csv crate): what the
//! charts and the report take from `probe/layers.csv`, `steps.csv` and the
//! other tables a run writes.

use anyhow::{anyhow, Context, Result};
use std::path::{Path, PathBuf};

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
            Err(e) => return Err(e).with_context(|| format!("{}: cannot read", path.display())),
        };
        let at = |e: csv::Error| {
            let line = e.position().map_or(String::new(), |p| format!(":{}", p.line()));
            anyhow!("{}{line}: {e}", path.display())
        };
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
