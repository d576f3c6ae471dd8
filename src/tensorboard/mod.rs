//! A run's records as TensorBoard event files, so `tensorboard --logdir
//! RUN_DIR` shows each variant as a run: `tensorboard/<variant>/events.out.tfevents.*`,
//! rewritten from the records (CSV) alone, like the report.
//!
//! Scalars: `loss`, `optimizer/lr` and `optimizer/grad_norm` (before any
//! clipping) per step; `epoch/mean_loss`, `epoch/train_accuracy`,
//! `epoch/valid_accuracy` per epoch; per layer `layer<l>/weight_norm`,
//! `layer<l>/grad_norm`, `layer<l>/update_ratio`, `layer<l>/pre_std` and
//! (hidden layers) `layer<l>/post_std` at the probe's steps. Histograms:
//! `<kind>/layer<l>` (weights, weight gradients, pre- and post-activations)
//! at the probe's histogram steps.

pub mod events;

use crate::record::dir::SETTINGS;
use crate::record::read::{RunRecords, VariantRecords};
use crate::record::rows::{HistogramRow, LayerStatsRow};
use anyhow::Result;
use events::{EventFile, HistogramProto};
use std::path::{Path, PathBuf};

/// Writes the event files of every variant of the run in `dir`; returns
/// the files written.
pub fn export_run(dir: &Path) -> Result<Vec<PathBuf>> {
    let records = RunRecords::load(dir)?;
    let wall_time = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0.0, |d| d.as_secs_f64());
    let mut written = Vec::new();
    for v in &records.variants {
        let file = variant_events(v, wall_time);
        let out = dir.join("tensorboard").join(&v.name);
        std::fs::create_dir_all(&out)?;
        // One file per variant: an export replaces the last one.
        for old in std::fs::read_dir(&out)? {
            let old = old?.path();
            if old.file_name().is_some_and(|n| n.to_string_lossy().starts_with("events.out.tfevents.")) {
                std::fs::remove_file(old)?;
            }
        }
        let path = out.join(format!("events.out.tfevents.{}.initscope", wall_time as u64));
        crate::fsutil::write_atomic(&path, file.bytes())?;
        written.push(path);
    }
    Ok(written)
}

/// Exports a run directory, or every point of a sweep directory (one with
/// `sweep.toml` and `runs/`).
pub fn export(dir: &Path) -> Result<Vec<PathBuf>> {
    if !dir.join("sweep.toml").exists() {
        return export_run(dir);
    }
    let mut points: Vec<PathBuf> = std::fs::read_dir(dir.join("runs"))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.join(SETTINGS).exists())
        .collect();
    points.sort();
    let mut written = Vec::new();
    for point in points {
        written.extend(export_run(&point)?);
    }
    Ok(written)
}

fn variant_events(v: &VariantRecords, wall_time: f64) -> EventFile {
    let mut file = EventFile::new(wall_time);
    for (step, loss) in v.losses.iter().enumerate() {
        file.scalar("loss", step, *loss);
    }
    for row in &v.steps {
        file.scalar("optimizer/lr", row.step, row.lr);
        file.scalar("optimizer/grad_norm", row.step, f64::from(row.grad_norm));
    }
    for e in &v.epochs {
        file.scalar("epoch/mean_loss", e.epoch, e.mean_loss);
        file.scalar("epoch/train_accuracy", e.epoch, e.train_accuracy);
        file.scalar("epoch/valid_accuracy", e.epoch, e.valid_accuracy);
    }
    for row in v.layers.iter().flatten() {
        layer_scalars(&mut file, row);
    }
    for row in v.histograms.iter().flatten() {
        file.histogram(&format!("{}/layer{}", row.kind, row.layer), row.step, histogram(row));
    }
    file
}

fn layer_scalars(file: &mut EventFile, row: &LayerStatsRow) {
    let tag = |name: &str| format!("layer{}/{name}", row.layer);
    file.scalar(&tag("weight_norm"), row.step, row.w_norm);
    file.scalar(&tag("grad_norm"), row.step, row.gw_norm);
    file.scalar(&tag("update_ratio"), row.step, row.update_ratio);
    file.scalar(&tag("pre_std"), row.step, row.pre_std);
    file.scalar(&tag("post_std"), row.step, row.post_std);
}

/// A recorded histogram (equal bins from `min` to `max`) as TensorBoard's:
/// the right edge of each bin as its limit. The sum and sum of squares are
/// taken at the bins' centres (the records keep counts, not values).
fn histogram(row: &HistogramRow) -> HistogramProto {
    let bins = row.counts.len().max(1);
    let width = (row.max - row.min) / bins as f64;
    let centre = |i: usize| row.min + (i as f64 + 0.5) * width;
    let counts: Vec<f64> = row.counts.iter().map(|&c| c as f64).collect();
    HistogramProto {
        min: row.min,
        max: row.max,
        num: counts.iter().sum(),
        sum: counts.iter().enumerate().map(|(i, c)| c * centre(i)).sum(),
        sum_squares: counts.iter().enumerate().map(|(i, c)| c * centre(i).powi(2)).sum(),
        bucket_limit: (1..=bins).map(|i| row.min + i as f64 * width).collect(),
        bucket: counts,
    }
}
