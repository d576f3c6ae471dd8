//! Learning-rate transfer across widths, as Tensor Programs V (Yang et al.
//! 2022, arXiv 2203.03466, Fig. 1) measures it: in a sweep of the width
//! against the learning rate, each width's best rate (the grid point of least
//! training loss) and how far it moves per doubling of the width. Under
//! PyTorch's standard parametrisation with Adam it moves left by about an
//! octave per doubling; under muP it should stay put.

/// One measured cell of the sweep: a variant at one width and learning rate.
#[derive(Clone, Debug, PartialEq)]
pub struct Cell {
    /// The variant's name in the experiment.
    pub group: String,
    /// The network's width.
    pub width: f64,
    /// The learning rate.
    pub lr: f64,
    /// The training loss of each finished seed (NaN: that seed diverged).
    pub losses: Vec<f64>,
}

impl Cell {
    /// The mean loss over seeds; `None` when a seed diverged or none finished.
    pub fn mean_loss(&self) -> Option<f64> {
        let finite = !self.losses.is_empty() && self.losses.iter().all(|l| l.is_finite());
        finite.then(|| self.losses.iter().sum::<f64>() / self.losses.len() as f64)
    }
}

/// One width's best learning rate.
#[derive(Clone, Debug, PartialEq)]
pub struct Optimum {
    /// The width.
    pub width: f64,
    /// The grid's learning rate of least mean loss.
    pub lr: f64,
    /// That loss.
    pub loss: f64,
    /// The optimum is the smallest or largest rate tried at this width: the
    /// true optimum may lie beyond the grid.
    pub at_edge: bool,
}

/// One width's curve: the width and its cells' (learning rate, mean loss or
/// `None` if diverged), by ascending rate.
pub type WidthCurve = (f64, Vec<(f64, Option<f64>)>);

/// One variant's transfer: its curves, its optima and their drift.
#[derive(Clone, Debug, PartialEq)]
pub struct Transfer {
    /// The variant's name.
    pub group: String,
    /// Per width (ascending), its curve.
    pub curves: Vec<WidthCurve>,
    /// Per width with a finite cell, its optimum.
    pub optima: Vec<Optimum>,
    /// The least-squares slope of log2(best lr) on log2(width): octaves the
    /// optimum moves per doubling (negative: left, to smaller rates). `None`
    /// with fewer than two optima.
    pub octaves_per_doubling: Option<f64>,
}

/// Every variant's transfer, in the order the variants first appear in `cells`.
pub fn transfers(cells: &[Cell]) -> Vec<Transfer> {
    let mut groups: Vec<&str> = Vec::new();
    for c in cells {
        if !groups.contains(&c.group.as_str()) {
            groups.push(&c.group);
        }
    }
    groups.into_iter().map(|g| transfer(g, cells.iter().filter(|c| c.group == g))).collect()
}

fn transfer<'a>(group: &str, cells: impl Iterator<Item = &'a Cell>) -> Transfer {
    let mut curves: Vec<WidthCurve> = Vec::new();
    for c in cells {
        match curves.iter_mut().find(|(w, _)| *w == c.width) {
            Some((_, curve)) => curve.push((c.lr, c.mean_loss())),
            None => curves.push((c.width, vec![(c.lr, c.mean_loss())])),
        }
    }
    curves.sort_by(|a, b| a.0.total_cmp(&b.0));
    curves.iter_mut().for_each(|(_, curve)| curve.sort_by(|a, b| a.0.total_cmp(&b.0)));
    let optima: Vec<Optimum> = curves.iter().filter_map(|(w, curve)| optimum(*w, curve)).collect();
    let octaves_per_doubling =
        crate::fit::least_squares_slope(&optima.iter().map(|o| (o.width.log2(), o.lr.log2())).collect::<Vec<_>>());
    Transfer { group: group.to_string(), curves, optima, octaves_per_doubling }
}

/// The cell of least loss on one width's curve (the first of equals).
fn optimum(width: f64, curve: &[(f64, Option<f64>)]) -> Option<Optimum> {
    let (i, lr, loss) = curve.iter().enumerate().filter_map(|(i, &(lr, loss))| loss.map(|l| (i, lr, l))).fold(
        None,
        |best: Option<(usize, f64, f64)>, c| match best {
            Some(b) if b.2 <= c.2 => Some(b),
            _ => Some(c),
        },
    )?;
    Some(Optimum { width, lr, loss, at_edge: i == 0 || i + 1 == curve.len() })
}

impl Transfer {
    /// What the optima say, in one sentence: for example "standard: the best
    /// learning rate moves -0.90 octaves per doubling of width (log2 lr -7,
    /// -8, -9 at widths 128, 256, 512)".
    pub fn statement(&self) -> String {
        let list = |f: &dyn Fn(&Optimum) -> String| self.optima.iter().map(f).collect::<Vec<_>>().join(", ");
        let lrs = list(&|o| format!("{}{}", short(o.lr.log2()), if o.at_edge { "*" } else { "" }));
        let widths = list(&|o| short(o.width));
        let edge = if self.optima.iter().any(|o| o.at_edge) {
            "; * marks an optimum at the grid's edge, which may lie beyond it"
        } else {
            ""
        };
        match self.octaves_per_doubling {
            Some(s) => format!(
                "{}: the best learning rate moves {s:+.2} octaves per doubling of width (log2 lr {lrs} at widths {widths}{edge})",
                self.group
            ),
            None => format!("{}: fewer than two widths have a finite optimum (log2 lr {lrs} at widths {widths})", self.group),
        }
    }
}

/// `v` as a whole number when it is one, else to two decimals.
fn short(v: f64) -> String {
    if (v - v.round()).abs() < 1e-9 {
        format!("{}", v.round())
    } else {
        format!("{v:.2}")
    }
}

/// `lr-optima.csv`: one row per variant and width: its best learning rate,
/// log2 of it, the loss there, whether it is at the grid's edge, and the
/// variant's fitted drift per doubling.
pub fn optima_csv(transfers: &[Transfer]) -> String {
    let mut out = String::from("group,width,best_lr,best_log2_lr,loss,at_edge,octaves_per_doubling\n");
    for t in transfers {
        let drift = t.octaves_per_doubling.map_or(String::new(), |s| format!("{s}"));
        for o in &t.optima {
            let row = format!("{},{},{},{},{},{},{drift}\n", t.group, o.width, o.lr, o.lr.log2(), o.loss, o.at_edge);
            out.push_str(&row);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Cells whose loss is a parabola in log2 lr with its vertex at
    /// `c - k * log2(width)`: the optimum moves `-k` octaves per doubling.
    fn parabolic(group: &str, k: f64, c: f64) -> Vec<Cell> {
        let mut cells = Vec::new();
        for w in [64.0, 128.0, 256.0, 512.0f64] {
            for e in -12..=0 {
                let x = f64::from(e);
                let vertex = c - k * w.log2();
                let loss = 0.1 + (x - vertex).powi(2);
                cells.push(Cell { group: group.into(), width: w, lr: x.exp2(), losses: vec![loss, loss + 0.01] });
            }
        }
        cells
    }

    #[test]
    fn the_optimum_of_each_width_and_its_drift_per_doubling_are_found() {
        let mut cells = parabolic("standard", 1.0, 0.0);
        cells.extend(parabolic("mup", 0.0, -5.0));
        let t = transfers(&cells);
        assert_eq!(t.len(), 2);
        let logs: Vec<f64> = t[0].optima.iter().map(|o| o.lr.log2()).collect();
        assert_eq!(logs, [-6.0, -7.0, -8.0, -9.0]);
        assert!((t[0].octaves_per_doubling.unwrap() + 1.0).abs() < 1e-12);
        assert!(t[1].optima.iter().all(|o| o.lr.log2() == -5.0 && !o.at_edge));
        assert_eq!(t[1].octaves_per_doubling, Some(0.0));
        assert!(t[0].statement().contains("-1.00 octaves per doubling"), "{}", t[0].statement());
        assert!(t[0].statement().contains("log2 lr -6, -7, -8, -9 at widths 64, 128, 256, 512"));
        let csv = optima_csv(&t);
        assert_eq!(csv.lines().count(), 1 + 8);
        assert!(csv.contains("\nstandard,64,0.015625,-6,0.105"), "{csv}");
        assert!(csv.lines().nth(1).unwrap().ends_with(",false,-1"), "{csv}");
    }

    #[test]
    fn diverged_cells_are_never_optima_and_edges_are_flagged() {
        let lrs = [0.01, 0.1, 1.0];
        let cell = |lr: f64, losses: Vec<f64>| Cell { group: "sp".into(), width: 64.0, lr, losses };
        // The largest rate would be best but one of its seeds diverged.
        let cells = vec![cell(lrs[0], vec![0.5]), cell(lrs[1], vec![0.3]), cell(lrs[2], vec![0.1, f64::NAN])];
        let t = &transfers(&cells)[0];
        assert_eq!(t.curves[0].1[2], (1.0, None));
        assert_eq!(t.optima, [Optimum { width: 64.0, lr: 0.1, loss: 0.3, at_edge: false }]);
        assert_eq!(t.octaves_per_doubling, None);
        assert!(t.statement().contains("fewer than two widths"));
        // Best at the smallest rate: flagged, and said so.
        let cells = vec![cell(lrs[0], vec![0.1]), cell(lrs[1], vec![0.3]), cell(lrs[2], vec![0.5])];
        let mut two = cells.clone();
        two.extend(cells.into_iter().map(|c| Cell { width: 128.0, ..c }));
        let t = &transfers(&two)[0];
        assert!(t.optima.iter().all(|o| o.at_edge && o.lr == 0.01));
        assert!(
            t.statement().contains("-6.64* at widths 64, 128; * marks an optimum at the grid's edge"),
            "{}",
            t.statement()
        );
    }
}
