//! The records do not change under refactoring: short runs of every preset
//! (one epoch on a small synthetic data set) and of the `depth-sweep`
//! sweep preset, each record file's md5 held to the list committed in
//! `tests/fixtures/records.md5` before a change of structure. The records
//! are the run's files (steps, epochs, probe CSVs, weights, predictions,
//! theory, the resolved settings) and `summary.json` without its seconds
//! and environment; `sweep.csv` without its seconds column. Charts, logs,
//! timings and exports are not records; the data set's path (a temporary
//! directory) reads `DATA` in the settings.
//!
//! The fingerprints are those of numerics `x86_64-fma/k512` (see
//! `tests/numerics.rs`). After a change that is meant to change records,
//! `INITSCOPE_BLESS=1 cargo test --release --test records` rewrites the
//! file; the diff then shows which records moved.

mod common;
use common::*;
use std::path::{Path, PathBuf};

/// The committed fingerprints.
const FIXTURE: &str = "tests/fixtures/records.md5";

fn md5_hex(bytes: &[u8]) -> String {
    use md5::{Digest, Md5};
    Md5::digest(bytes).iter().map(|b| format!("{b:02x}")).collect()
}

/// Every file under `dir`, relative to it, sorted.
fn files(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for entry in std::fs::read_dir(&d).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                stack.push(path);
            } else {
                out.push(path.strip_prefix(dir).unwrap().to_path_buf());
            }
        }
    }
    out.sort();
    out
}

/// Whether `path` (relative to its run or sweep directory) is a record.
fn is_record(path: &Path) -> bool {
    let name = path.file_name().unwrap().to_string_lossy();
    let skipped = ["log.txt", "timings.csv", "report.html", "lock.json"];
    let derived = ["plots", "tensorboard"];
    !path.components().any(|c| derived.iter().any(|d| c.as_os_str() == *d)) && !skipped.contains(&name.as_ref())
}

/// `summary.json` without what varies from run to run (seconds) or from
/// machine to machine (the environment).
fn summary_without_seconds(bytes: &[u8]) -> Vec<u8> {
    fn strip(v: &mut serde_json::Value) {
        match v {
            serde_json::Value::Object(map) => {
                map.remove("seconds");
                map.remove("environment");
                map.values_mut().for_each(strip);
            }
            serde_json::Value::Array(items) => items.iter_mut().for_each(strip),
            _ => {}
        }
    }
    let mut value: serde_json::Value = serde_json::from_slice(bytes).unwrap();
    strip(&mut value);
    serde_json::to_vec_pretty(&value).unwrap()
}

/// `sweep.csv` without its seconds column.
fn table_bytes(dir: &Path) -> Vec<u8> {
    table_without_seconds(dir).iter().map(|row| row.join(",") + "\n").collect::<String>().into_bytes()
}

/// `<label>/<path> <md5>` for every record under `dir`; `data`, the data
/// set's directory, is `DATA` in the resolved settings.
fn fingerprints(label: &str, dir: &Path, data: &str) -> Vec<String> {
    files(dir)
        .into_iter()
        .filter(|p| is_record(p))
        .map(|p| {
            let bytes = std::fs::read(dir.join(&p)).unwrap();
            let name = p.file_name().unwrap().to_string_lossy();
            let bytes = match name.as_ref() {
                "summary.json" => summary_without_seconds(&bytes),
                "sweep.csv" => table_bytes(dir),
                "experiment.toml" | "sweep.toml" => {
                    String::from_utf8(bytes).unwrap().replace(data, "DATA").into_bytes()
                }
                _ => bytes,
            };
            format!("{label}/{} {}", p.display(), md5_hex(&bytes))
        })
        .collect()
}

#[test]
fn every_presets_records_match_the_committed_fingerprints() {
    let tmp = tempfile::tempdir().unwrap();
    let data = synthetic_dir(tmp.path(), 600, 100, 28);
    let data = data.to_str().unwrap();
    let short = ["--quiet", "--epochs", "1", "--dataset", data, "--threads", "2"];
    let mut lines = Vec::new();
    for (preset, _) in initscope::presets::PRESETS {
        let out = tmp.path().join(preset);
        let r = initscope(&[&["run", preset, "--out", out.to_str().unwrap()], &short[..]].concat());
        assert!(r.status.success(), "{preset}: {}", stderr(&r));
        lines.extend(fingerprints(preset, &out, data));
    }
    let sweep = tmp.path().join("depth-sweep");
    let r = initscope(&[&["sweep", "depth-sweep", "--out", sweep.to_str().unwrap()], &short[..]].concat());
    assert!(r.status.success(), "depth-sweep: {}", stderr(&r));
    lines.extend(fingerprints("depth-sweep", &sweep, data));
    let ours = lines.join("\n") + "\n";

    let numerics = initscope::nn::matmul::numerics_fingerprint();
    assert_eq!(numerics, "x86_64-fma/k512", "the committed fingerprints are those of numerics x86_64-fma/k512");
    let fixture = Path::new(env!("CARGO_MANIFEST_DIR")).join(FIXTURE);
    if std::env::var_os("INITSCOPE_BLESS").is_some() {
        std::fs::write(&fixture, &ours).unwrap();
    }
    let committed = std::fs::read_to_string(&fixture).unwrap_or_default();
    let differ: Vec<String> = ours
        .lines()
        .filter(|l| !committed.lines().any(|c| c == *l))
        .chain(committed.lines().filter(|c| !ours.lines().any(|l| l == *c)))
        .map(String::from)
        .collect();
    assert!(
        differ.is_empty(),
        "records differ from {FIXTURE} (ours, then the committed lines):\n{}",
        differ.join("\n")
    );
    assert!(lines.len() > 100, "too few records were fingerprinted: {}", lines.len());
}
