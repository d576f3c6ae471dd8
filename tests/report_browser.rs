//! The report in a real browser: headless Chromium loads `report.html`
//! from disk; the test fails on a blank page, a broken image or a script
//! error. It needs Debian's `chromium`, so it is ignored by a plain
//! `cargo test`; `.ci/run` installs Chromium and runs it with `--ignored`,
//! and there a missing browser is a failure, never a skip.

mod common;
use common::*;
use std::path::{Path, PathBuf};
use std::process::Command;

fn chromium() -> Option<PathBuf> {
    let candidates =
        [std::env::var("CHROMIUM").unwrap_or_default(), "/usr/bin/chromium".into(), "/usr/bin/chromium-browser".into()];
    candidates.into_iter().filter(|c| !c.is_empty()).map(PathBuf::from).find(|p| p.is_file())
}

fn headless(browser: &Path, profile: &Path, extra: &[&str], page: &Path) -> std::process::Output {
    Command::new(browser)
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--hide-scrollbars",
            "--virtual-time-budget=10000",
        ])
        .arg(format!("--user-data-dir={}", profile.display()))
        .args(extra)
        .arg(format!("file://{}", page.display()))
        .output()
        .expect("chromium runs")
}

/// Loads `page` and reads its self-check: the number of images, after
/// asserting that none is broken and no script failed.
fn self_check(browser: &Path, profile: &Path, page: &Path) -> u64 {
    let dom = headless(browser, profile, &["--dump-dom"], page);
    let dom_text = String::from_utf8_lossy(&dom.stdout);
    let attr = |name: &str| -> Option<u64> {
        let key = format!("{name}=\"");
        dom_text.split(&key).nth(1)?.split('"').next()?.parse().ok()
    };
    let images = attr("data-images").unwrap_or_else(|| panic!("the page's self-check did not run: {}", stderr(&dom)));
    assert_eq!(attr("data-broken-images"), Some(0), "broken images");
    assert_eq!(attr("data-errors"), Some(0), "script errors");
    images
}

#[test]
#[ignore = "needs Debian's chromium; .ci/run installs it and runs this with --ignored"]
fn a_sweep_report_loads_in_a_browser_with_its_phase_diagrams() {
    let browser = chromium().expect("Chromium is not installed (apt-get install chromium, as .ci/run does)");
    let tmp = tempfile::tempdir().unwrap();
    let data = synthetic_dir(tmp.path(), 600, 100, 10);
    let mut text = initscope::experiment::Experiment::seed_experiment().to_toml();
    text = text.replace("epochs = 15", "epochs = 1");
    text.push_str("\n[sweep]\n\"model.hidden\" = [[32], [32, 32], [32, 32, 32]]\n\"optimizer.lr\" = [0.01, 0.1]\n");
    let file = tmp.path().join("sweep.toml");
    std::fs::write(&file, text).unwrap();
    let out = tmp.path().join("sweep");
    let r = initscope(&[
        "sweep",
        file.to_str().unwrap(),
        "--quiet",
        "--dataset",
        data.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
    ]);
    assert!(r.status.success(), "{}", stderr(&r));
    let page = out.join("report.html");
    // One phase diagram per variant.
    assert_eq!(self_check(&browser, &tmp.path().join("profile"), &page), 2);
    let html = std::fs::read_to_string(&page).unwrap();
    assert_eq!(html.matches("<tr>").count(), 1 + 6 * 2, "a header and a row per point and variant");
}

#[test]
#[ignore = "needs Debian's chromium; .ci/run installs it and runs this with --ignored"]
fn a_learning_rate_transfer_report_loads_in_a_browser_with_its_chart_and_optima() {
    let browser = chromium().expect("Chromium is not installed (apt-get install chromium, as .ci/run does)");
    let tmp = tempfile::tempdir().unwrap();
    let data = synthetic_dir(tmp.path(), 600, 100, 10);
    let file = transfer_sweep_file(tmp.path(), &data);
    let out = tmp.path().join("sweep");
    let r = initscope(&["sweep", file.to_str().unwrap(), "--quiet", "--out", out.to_str().unwrap()]);
    assert!(r.status.success(), "{}", stderr(&r));
    let page = out.join("report.html");
    // The transfer chart and a phase diagram per variant.
    assert_eq!(self_check(&browser, &tmp.path().join("profile"), &page), 3);
    let dom = headless(&browser, &tmp.path().join("profile2"), &["--dump-dom"], &page);
    let dom = String::from_utf8_lossy(&dom.stdout);
    let optima =
        dom.split("<table id=\"optima\">").nth(1).expect("the table of optima").split("</table>").next().unwrap();
    assert_eq!(optima.matches("<tr>").count(), 1 + 3 * 2, "a header and a row per variant and width");
    assert!(dom.contains("alt=\"lr-transfer\""), "the transfer chart is on the page");
}

#[test]
#[ignore = "needs Debian's chromium; .ci/run installs it and runs this with --ignored"]
fn report_loads_in_a_browser_with_every_image_and_no_error() {
    let browser = chromium().expect("Chromium is not installed (apt-get install chromium, as .ci/run does)");
    let tmp = tempfile::tempdir().unwrap();
    let data = synthetic_dir(tmp.path(), 1500, 200, 10);
    let out = tmp.path().join("run");
    short_run(&data, 2, &out);
    let page = out.join("report.html");
    assert!(page.is_file());

    let images = self_check(&browser, &tmp.path().join("profile1"), &page);
    assert!(images >= 10, "only {images} images on the page");

    let shot = tmp.path().join("shot.png");
    let s = headless(
        &browser,
        &tmp.path().join("profile2"),
        &[&format!("--screenshot={}", shot.display()), "--window-size=1280,1600"],
        &page,
    );
    assert!(shot.is_file(), "no screenshot: {}", stderr(&s));
    let decoder = png::Decoder::new(std::fs::File::open(&shot).unwrap());
    let mut reader = decoder.read_info().unwrap();
    let mut buf = vec![0; reader.output_buffer_size()];
    let info = reader.next_frame(&mut buf).unwrap();
    let bytes = &buf[..info.buffer_size()];
    let channels = info.color_type.samples();
    let pixels = bytes.len() / channels;
    let non_white = bytes.chunks(channels).filter(|p| p[..3].iter().any(|&c| c < 200)).count();
    let share = non_white as f64 / pixels as f64;
    // A blank page is all white; charts, text and tables darken a few percent of it.
    assert!(share > 0.01, "the screenshot is nearly blank ({:.3}% non-white)", 100.0 * share);
    std::fs::copy(&shot, std::env::temp_dir().join("initscope-report-screenshot.png")).ok();
}

#[test]
#[ignore = "needs Debian's chromium; .ci/run installs it and runs this with --ignored"]
fn the_reports_curves_are_interactive() {
    let browser = chromium().expect("Chromium is not installed (apt-get install chromium, as .ci/run does)");
    let tmp = tempfile::tempdir().unwrap();
    // 3 epochs of 84 steps: more than 200 recorded steps, so the probe's
    // curves are drawn smoothed as the static charts are.
    let data = synthetic_dir(tmp.path(), 12_000, 200, 10);
    let out = tmp.path().join("run");
    short_run(&data, 3, &out);
    // With #selftest the page dumps every axis's drawn labels in both
    // scales, then hovers over, hides a series of and switches to log
    // scale the first chart, and writes what it saw on <body>.
    let page = format!("{}#selftest", out.join("report.html").display());
    let dom = headless(&browser, &tmp.path().join("profile"), &["--dump-dom"], Path::new(&page));
    let text = String::from_utf8_lossy(&dom.stdout);
    let attr = |name: &str| -> Option<String> {
        let key = format!("{name}=\"");
        Some(text.split(&key).nth(1)?.split('"').next()?.to_string())
    };
    assert_eq!(attr("data-errors").as_deref(), Some("0"), "script errors");
    // Loss and accuracy, then gradient flow and update ratio per variant.
    assert_eq!(attr("data-curves").as_deref(), Some("6"), "charts drawn");
    // Each of the 4 probe charts: 5 layers, raw and running median.
    assert_eq!(attr("data-median-series").as_deref(), Some("20"), "smoothed probe series");
    let hover = attr("data-hover-value").expect("the hover read-out");
    assert!(hover.parse::<f64>().is_ok_and(|v| v > 0.0), "hovering shows {hover:?}, not a loss");
    assert_eq!(attr("data-hidden-show").as_deref(), Some("false"), "the clicked series is still shown");
    assert_eq!(attr("data-other-show").as_deref(), Some("true"), "another series was hidden too");
    assert_eq!(attr("data-log-distr").as_deref(), Some("3"), "the log switch did not switch");
    let dump = text.split("<pre id=\"tick-dump\">").nth(1).and_then(|t| t.split("</pre>").next());
    let axes: serde_json::Value = serde_json::from_str(dump.expect("the tick dump")).unwrap();
    check_drawn_ticks(axes.as_array().unwrap());
}

/// The labels drawn on every interactive axis follow the rules that
/// `tests/charts.rs` holds the SVGs to (at least three, numbers, distinct
/// neighbours), and each is exactly what initscope's formatter writes for
/// its value: `log_label` on a log axis, `tick_label` at the ticks' step
/// on a linear one (so no tick below 1e-3 reads "0").
fn check_drawn_ticks(axes: &[serde_json::Value]) {
    use initscope::plot::ticks::{log_label, tick_label};
    assert_eq!(axes.len(), 6 * 2 * 2, "6 charts x 2 axes x 2 scales");
    for axis in axes {
        let name = format!("{} {} (log {})", axis["chart"], axis["axis"], axis["log"]);
        let ticks: Vec<(f64, String)> = axis["ticks"]
            .as_array()
            .unwrap()
            .iter()
            .map(|t| (t[0].as_f64().unwrap(), t[1].as_str().unwrap().to_string()))
            .collect();
        assert!(ticks.len() >= 3, "{name}: only the ticks {ticks:?}");
        let log = axis["log"].as_bool().unwrap();
        let step = ticks.windows(2).map(|w| w[1].0 - w[0].0).fold(f64::INFINITY, f64::min);
        for (value, label) in &ticks {
            let number: f64 = label.parse().unwrap_or_else(|_| panic!("{name}: {label:?} is not a number"));
            assert!(number.is_finite() && (!log || number > 0.0), "{name}: {label:?} at {value}");
            let expected = if log { log_label(*value) } else { tick_label(*value, step) };
            assert_eq!(label, &expected, "{name}: the tick at {value} reads {label:?}, initscope writes {expected:?}");
        }
        for pair in ticks.windows(2) {
            assert_ne!(pair[0].1, pair[1].1, "{name}: neighbouring ticks are equal: {ticks:?}");
        }
    }
}
