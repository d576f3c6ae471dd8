//! A CSV record read back by column name: what the charts and the report
//! take from `probe/layers.csv`, `steps.csv` and the other tables a run
//! writes.

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
    /// Reads `path`; a file that does not exist is `None`.
    pub fn read(path: &Path) -> Result<Option<Table>> {
        let text = match std::fs::read_to_string(path) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(e).with_context(|| format!("{}: cannot read", path.display())),
        };
        let mut lines = text.lines();
        let header: Vec<String> = lines.next().unwrap_or("").split(',').map(String::from).collect();
        let rows = lines.map(|l| l.split(',').map(String::from).collect()).collect();
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
