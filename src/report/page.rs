//! The report page: what it shows, gathered from run records into plain
//! values, and rendered by the askama template `templates/report.html`
//! (which escapes every value it inserts).

use crate::plot::curves::mean_sd;
use crate::plot::Written;
use crate::record::read::RunRecords;
use crate::record::Environment;
use crate::train::VariantSummary;
use askama::Template;
use base64::Engine as _;

/// One report page: a run's, or a comparison of several.
#[derive(Template)]
#[template(path = "report.html")]
pub struct ReportPage {
    /// The page title after "initscope: ".
    pub title: String,
    /// The top heading.
    pub heading: String,
    /// The run directories shown.
    pub dirs: Vec<String>,
    /// One line per verdict (or per variant without one).
    pub verdicts: Vec<VerdictLine>,
    /// The summary table's rows, formatted.
    pub summary: Vec<Vec<String>>,
    /// Per variant run with several seeds: mean and spread.
    pub seeds: Vec<SeedRow>,
    /// Headed groups of charts.
    pub sections: Vec<Section>,
    /// `(heading, settings file)` per run.
    pub settings: Vec<(String, String)>,
    /// The machine the run used (a single run's report).
    pub environment: Option<Environment>,
    /// The interactive curves' holders (ids), in order; empty: none.
    pub curve_ids: Vec<String>,
    /// Their data as JSON (see [`super::interactive`]).
    pub curves_json: String,
    /// uPlot's script and style, inlined when there are curves.
    pub uplot_js: &'static str,
    /// See `uplot_js`.
    pub uplot_css: &'static str,
}

/// A verdict as the page shows it.
pub struct VerdictLine {
    /// `verdict` (a failure) or `ok` (none measured).
    pub class: &'static str,
    /// The variant (`run/variant` in a comparison).
    pub name: String,
    /// The evidence.
    pub text: String,
}

/// A variant over its seeds: mean and standard deviation of train, valid
/// and test accuracy and of the final loss.
pub struct SeedRow {
    /// The variant as written in the experiment.
    pub name: String,
    /// How many seeds.
    pub seeds: usize,
    /// `(mean, sd)` formatted, per column.
    pub spreads: Vec<(String, String)>,
}

/// Charts under one heading (none: no heading).
pub struct Section {
    /// The heading, or empty.
    pub heading: String,
    /// The charts.
    pub figures: Vec<Figure>,
}

/// A chart inlined as a data URL.
pub struct Figure {
    /// Its name, shown as caption and alt text.
    pub name: String,
    /// `image/svg+xml` or `image/png`.
    pub mime: &'static str,
    /// The image, base64-encoded.
    pub data_base64: String,
}

impl Figure {
    /// A drawn chart as a figure (its SVG).
    pub fn of(w: &Written) -> Self {
        Figure {
            name: w.name.clone(),
            mime: "image/svg+xml",
            data_base64: base64::engine::general_purpose::STANDARD.encode(&w.svg),
        }
    }

    /// A drawn chart as its PNG: for pictures of many pixels (the example
    /// digits), whose SVG is a rectangle per pixel and 30 times larger.
    pub fn png(w: &Written) -> anyhow::Result<Self> {
        let bytes = std::fs::read(&w.png)?;
        Ok(Figure {
            name: w.name.clone(),
            mime: "image/png",
            data_base64: base64::engine::general_purpose::STANDARD.encode(bytes),
        })
    }
}

/// `run/variant` when there are several runs, else the variant.
fn label(runs: &[(String, &RunRecords)], run: &str, variant: &str) -> String {
    if runs.len() > 1 {
        format!("{run}/{variant}")
    } else {
        variant.to_string()
    }
}

/// Every variant's verdicts, a divergence first, or that none was measured.
pub fn verdict_lines(runs: &[(String, &RunRecords)]) -> Vec<VerdictLine> {
    let mut out = Vec::new();
    for (run, r) in runs {
        for v in &r.summary.variants {
            let name = label(runs, run, &v.name);
            if let Some(step) = v.diverged_at {
                let text = format!("diverged at step {step} (the loss became non-finite; training stopped)");
                out.push(VerdictLine { class: "verdict", name: name.clone(), text });
            }
            if v.verdicts.is_empty() && v.diverged_at.is_none() {
                let text = "none of the failure conditions was measured.".to_string();
                out.push(VerdictLine { class: "ok", name: name.clone(), text });
            }
            for verdict in &v.verdicts {
                out.push(VerdictLine { class: "verdict", name: name.clone(), text: verdict.message.clone() });
            }
        }
    }
    out
}

/// The summary table: accuracies, losses, steps and seconds per variant.
pub fn summary_rows(runs: &[(String, &RunRecords)]) -> Vec<Vec<String>> {
    let mut rows = Vec::new();
    for (run, r) in runs {
        for v in &r.summary.variants {
            let diverged = v.diverged_at.map_or(String::new(), |s| format!(" (diverged at step {s})"));
            rows.push(vec![
                label(runs, run, &v.name),
                format!("{:.2}", v.train.percent()),
                format!("{:.2}", v.valid.percent()),
                format!("{:.2}", v.test.percent()),
                format!("{:.4}", v.initial_loss),
                format!("{:.5}", v.final_loss),
                format!("{}{diverged}", v.steps),
                format!("{:.1}", v.seconds),
                format!("{} ({})", v.seed, v.rng.as_str()),
            ]);
        }
    }
    rows
}

/// Variants run with several seeds, with the mean and spread of each result.
pub fn seed_rows(runs: &[(String, &RunRecords)]) -> Vec<SeedRow> {
    let mut groups: Vec<(String, Vec<&VariantSummary>)> = Vec::new();
    for (_, r) in runs {
        for v in &r.summary.variants {
            let group = if v.group.is_empty() { v.name.clone() } else { v.group.clone() };
            match groups.iter_mut().find(|g| g.0 == group) {
                Some(g) => g.1.push(v),
                None => groups.push((group, vec![v])),
            }
        }
    }
    groups.retain(|g| g.1.len() > 1);
    let spread = |members: &[&VariantSummary], f: &dyn Fn(&VariantSummary) -> f64, decimals: usize| {
        let (m, sd) = mean_sd(&members.iter().map(|v| f(v)).collect::<Vec<_>>());
        (format!("{m:.decimals$}"), format!("{sd:.decimals$}"))
    };
    groups
        .into_iter()
        .map(|(name, members)| SeedRow {
            name,
            seeds: members.len(),
            spreads: vec![
                spread(&members, &|v| v.train.percent(), 2),
                spread(&members, &|v| v.valid.percent(), 2),
                spread(&members, &|v| v.test.percent(), 2),
                spread(&members, &|v| v.final_loss, 5),
            ],
        })
        .collect()
}
