//! Every chart of a short run, read back from its SVG: each numeric axis
//! has at least three ticks, neighbouring tick labels differ and grow along
//! the axis, every label parses as a number, and none is wider than the
//! chart.

mod common;
use common::*;
use std::collections::BTreeMap;

/// A `<text>` element: position, anchoring and content.
struct Label {
    x: f64,
    y: f64,
    anchor: String,
    dy: String,
    size: f64,
    text: String,
}

fn attribute(tag: &str, name: &str) -> Option<String> {
    let key = format!(" {name}=\"");
    let start = tag.find(&key)? + key.len();
    Some(tag[start..].split('"').next()?.to_string())
}

fn labels(svg: &str) -> Vec<Label> {
    let flat = svg.replace('\n', " ");
    flat.split("<text")
        .skip(1)
        .filter_map(|chunk| {
            let (tag, rest) = chunk.split_once('>')?;
            let text = rest.split("</text>").next()?.trim().to_string();
            Some(Label {
                x: attribute(tag, "x")?.parse().ok()?,
                y: attribute(tag, "y")?.parse().ok()?,
                anchor: attribute(tag, "text-anchor").unwrap_or_default(),
                dy: attribute(tag, "dy").unwrap_or_default(),
                size: attribute(tag, "font-size")?.parse().ok()?,
                text: text.replace("&#45;", "-").replace("&amp;", "&"),
            })
        })
        .collect()
}

/// Tick labels of the axes of one SVG, as runs along each axis: x-axis
/// labels (centred, below a line) grouped by their row, y-axis labels
/// (right-aligned, centred on a line) by their column; a run ends where the
/// values turn back (the next panel's axis starts).
fn axes(all: &[Label]) -> Vec<(String, Vec<String>)> {
    let mut rows: BTreeMap<String, Vec<&Label>> = BTreeMap::new();
    for l in all {
        let key = if l.anchor == "middle" && l.dy == "0.76em" {
            format!("x axis at y={}", l.y)
        } else if l.anchor == "end" && l.dy == "0.5ex" {
            format!("y axis at x={}", l.x)
        } else {
            continue;
        };
        rows.entry(key).or_default().push(l);
    }
    let mut out = Vec::new();
    for (key, mut group) in rows {
        if key.starts_with('x') {
            group.sort_by(|a, b| a.x.total_cmp(&b.x));
        } else {
            group.sort_by(|a, b| b.y.total_cmp(&a.y));
        }
        // Titles and captions share rows with nothing numeric.
        if group.iter().filter(|l| l.text.parse::<f64>().is_ok()).count() < 2 {
            continue;
        }
        // A run keeps one direction (the confusion matrix's true labels
        // run downwards); equal neighbours stay in it, to be caught.
        let mut run: Vec<String> = Vec::new();
        let (mut last, mut direction) = (f64::NAN, 0.0);
        for l in group {
            let value = l.text.parse::<f64>().unwrap_or(f64::NAN);
            let step = (value - last).signum();
            if value != last && direction != 0.0 && step != direction {
                out.push((key.clone(), std::mem::take(&mut run)));
                direction = 0.0;
            } else if value != last && !run.is_empty() {
                direction = step;
            }
            last = value;
            run.push(l.text.clone());
        }
        out.push((key, run));
    }
    out
}

#[test]
fn every_chart_has_readable_numeric_axes() {
    let tmp = tempfile::tempdir().unwrap();
    let data = synthetic_dir(tmp.path(), 1200, 200, 10);
    let out = tmp.path().join("run");
    short_run(&data, 3, &out);
    let mut checked = 0;
    for entry in std::fs::read_dir(out.join("plots")).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_none_or(|e| e != "svg") {
            continue;
        }
        let svg = std::fs::read_to_string(&path).unwrap();
        let width: f64 = attribute(&svg[svg.find("<svg").unwrap()..], "width").unwrap().parse().unwrap();
        let name = path.file_name().unwrap().to_string_lossy().to_string();
        let all = labels(&svg);
        for l in &all {
            let wide = l.text.chars().count() as f64 * l.size * 0.6;
            assert!(wide < width, "{name}: label {:?} is wider than the chart", l.text);
        }
        let axes = axes(&all);
        assert!(!axes.is_empty() || name.contains("examples"), "{name}: no numeric axis found");
        for (axis, ticks) in axes {
            assert!(ticks.len() >= 3, "{name}, {axis}: only the ticks {ticks:?}");
            for t in &ticks {
                assert!(t.parse::<f64>().is_ok_and(f64::is_finite), "{name}, {axis}: {t:?} is not a number");
            }
            for pair in ticks.windows(2) {
                assert_ne!(pair[0], pair[1], "{name}, {axis}: neighbouring ticks are equal: {ticks:?}");
            }
        }
        checked += 1;
    }
    assert!(checked >= 20, "only {checked} charts");
}
