//! Slopes against closed forms and the verdict's wording.

use super::*;

fn row(variant: &str, layer: &str, width: usize, step: usize, seed: u64, l1: f64) -> CoordRow {
    let (variant, layer, kind) = (variant.to_string(), layer.to_string(), "linear".to_string());
    CoordRow { variant, width, layer, kind, step, seed, l1, std: 0.0 }
}

/// l1 = c * width^p at every width, for two seeds whose mean is that.
fn power_law(variant: &str, layer: &str, step: usize, p: f64) -> Vec<CoordRow> {
    [128, 256, 512, 1024]
        .iter()
        .flat_map(|&w| {
            let mean = 0.3 * (w as f64).powf(p);
            [row(variant, layer, w, step, 0, mean * 0.9), row(variant, layer, w, step, 1, mean * 1.1)]
        })
        .collect()
}

#[test]
fn the_slope_of_a_power_law_is_its_exponent() {
    for p in [-0.5, 0.0, 0.25, 1.0] {
        let s = slopes(&power_law("v", "my_network.1", 1, p));
        assert_eq!(s.len(), 1);
        assert!((s[0].slope - p).abs() < 1e-12, "{p}: {}", s[0].slope);
    }
}

#[test]
fn the_verdict_names_the_worst_layer_and_the_first_step_it_leaves_the_bounds() {
    let mut rows = power_law("sp", "my_network.1", 1, 0.02);
    rows.extend(power_law("sp", "my_network.5", 1, 0.05));
    rows.extend(power_law("sp", "my_network.5", 2, 0.6));
    rows.extend(power_law("sp", "my_network.5", 3, 0.97));
    rows.extend(power_law("sp", "my_network.3", 3, -0.3));
    rows.extend(power_law("mup", "my_network.5", 3, 0.04));
    let s = slopes(&rows);
    let sp = verdict("sp", &s, 0.1);
    assert!(
        sp.starts_with("sp: fails: my_network.5's output grows as width^0.97 (at step 3; out of ±0.1 from step 2)"),
        "{sp}"
    );
    assert!(sp.ends_with("layers out of bounds: my_network.3, my_network.5"), "{sp}");
    assert_eq!(verdict("mup", &s, 0.1), "mup: passes: every slope within ±0.1 (largest |slope| 0.04)");
    assert_eq!(variants(&rows), vec!["sp", "mup"]);
}

#[test]
fn l1_and_std_are_the_mean_absolute_value_and_the_sample_deviation() {
    let (l1, std) = l1_and_std(&[1.0, -3.0, 2.0, 0.0]);
    assert_eq!(l1, 1.5);
    // mean 0; squares 1 + 9 + 4 + 0 = 14, over n - 1 = 3.
    assert!((std - (14.0f64 / 3.0).sqrt()).abs() < 1e-15);
}
