//! Image charts: a grid of test images with their predictions, and the
//! confusion matrix.

use super::{Figure, FAMILY};
use anyhow::Result;
use plotters::coord::Shift;
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};

/// A 3x5 grid of test images, black digit on white, each titled
/// `P: <predicted> | T: <true>`.
pub struct ExamplesChart {
    /// Title.
    pub title: String,
    /// Image height and width.
    pub rows: usize,
    /// See `rows`.
    pub cols: usize,
    /// `(pixels, true label, predicted label)`.
    pub images: Vec<(Vec<u8>, u8, u8)>,
}

impl Figure for ExamplesChart {
    fn size(&self) -> (u32, u32) {
        (900, 620)
    }

    fn draw<DB: DrawingBackend>(&self, root: &DrawingArea<DB, Shift>) -> Result<()>
    where
        DB::ErrorType: 'static,
    {
        root.fill(&WHITE)?;
        let root = root.titled(&self.title, (FAMILY, 22))?;
        for (cell, (pixels, truth, predicted)) in root.split_evenly((3, 5)).iter().zip(&self.images) {
            let colour = if truth == predicted { BLACK } else { RED };
            let cell = cell.titled(&format!("P: {predicted} | T: {truth}"), (FAMILY, 16).into_font().color(&colour))?;
            let (w, h) = cell.dim_in_pixel();
            let scale = (w.min(h) as usize / self.cols.max(self.rows).max(1)).max(1) as i32;
            let x0 = (w as i32 - scale * self.cols as i32) / 2;
            let y0 = (h as i32 - scale * self.rows as i32) / 2;
            for r in 0..self.rows {
                for c in 0..self.cols {
                    let v = 255 - pixels[r * self.cols + c];
                    let (x, y) = (x0 + c as i32 * scale, y0 + r as i32 * scale);
                    cell.draw(&Rectangle::new([(x, y), (x + scale, y + scale)], RGBColor(v, v, v).filled()))?;
                }
            }
        }
        Ok(())
    }
}

/// Counts of (true, predicted) pairs: rows true, columns predicted.
pub fn confusion(pairs: &[(u8, u8)], classes: usize) -> Vec<Vec<u64>> {
    let mut m = vec![vec![0u64; classes]; classes];
    for &(t, p) in pairs {
        if usize::from(t) < classes && usize::from(p) < classes {
            m[usize::from(t)][usize::from(p)] += 1;
        }
    }
    m
}

/// The confusion matrix: counts written in the cells, each cell shaded by
/// its share of its row (the true class).
pub struct ConfusionChart {
    /// Title.
    pub title: String,
    /// `matrix[true][predicted]`.
    pub matrix: Vec<Vec<u64>>,
}

impl Figure for ConfusionChart {
    fn size(&self) -> (u32, u32) {
        (700, 680)
    }

    fn draw<DB: DrawingBackend>(&self, root: &DrawingArea<DB, Shift>) -> Result<()>
    where
        DB::ErrorType: 'static,
    {
        root.fill(&WHITE)?;
        let n = self.matrix.len();
        let mut chart = ChartBuilder::on(root)
            .caption(&self.title, (FAMILY, 22))
            .margin(12)
            .x_label_area_size(50)
            .y_label_area_size(50)
            // A discrete range includes its end: 0..n-1 has n segments.
            .build_cartesian_2d((0..n.max(1) - 1).into_segmented(), (0..n.max(1) - 1).into_segmented())?;
        chart
            .configure_mesh()
            .disable_mesh()
            .x_desc("Predicted label")
            .y_desc("True label")
            .x_labels(n)
            .y_labels(n)
            .label_style((FAMILY, 14))
            .x_label_formatter(&|v| match v {
                SegmentValue::CenterOf(i) if *i < n => i.to_string(),
                _ => String::new(),
            })
            .y_label_formatter(&|v| match v {
                SegmentValue::CenterOf(i) if *i < n => (n - 1 - i).to_string(),
                _ => String::new(),
            })
            .draw()?;
        for (t, row) in self.matrix.iter().enumerate() {
            let total = row.iter().sum::<u64>().max(1) as f64;
            for (p, &count) in row.iter().enumerate() {
                let share = count as f64 / total;
                // White to dark blue by the row share.
                let fill = RGBColor(
                    (247.0 - 239.0 * share) as u8,
                    (251.0 - 203.0 * share) as u8,
                    (255.0 - 148.0 * share) as u8,
                );
                let y = n - 1 - t;
                chart.draw_series(std::iter::once(Rectangle::new(
                    [
                        (SegmentValue::Exact(p), SegmentValue::Exact(y)),
                        (SegmentValue::Exact(p + 1), SegmentValue::Exact(y + 1)),
                    ],
                    fill.filled(),
                )))?;
                let text_colour = if share > 0.5 { WHITE } else { BLACK };
                chart.draw_series(std::iter::once(Text::new(
                    count.to_string(),
                    (SegmentValue::CenterOf(p), SegmentValue::CenterOf(y)),
                    (FAMILY, 13).into_font().color(&text_colour).pos(Pos::new(HPos::Center, VPos::Center)),
                )))?;
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn confusion_counts_pairs_by_true_row() {
        let m = confusion(&[(0, 0), (0, 1), (1, 1), (1, 1)], 2);
        assert_eq!(m, vec![vec![1, 1], vec![0, 2]]);
    }
}
