//! The one tick formatter of every chart's numeric axes: as many
//! significant digits as the axis's tick step needs for neighbouring ticks
//! to differ, no trailing `.0` on whole numbers, plain decimals from 1e-3 to
//! 1e4 and `1e-5` style beyond.

use plotters::coord::ranged1d::{KeyPointHint, NoDefaultFormatting, Ranged, ValueFormatter};

/// A "nice" step (1, 2 or 5 times a power of ten) not above `span / count`,
/// about what plotters picks when asked for `count` labels.
pub fn nice_step(span: f64, count: usize) -> f64 {
    let raw = (span / count.max(1) as f64).abs();
    if !raw.is_finite() || raw == 0.0 {
        return 1.0;
    }
    let power = 10f64.powf(raw.log10().floor());
    [5.0, 2.0, 1.0].into_iter().map(|m| m * power).find(|s| *s <= raw).unwrap_or(power)
}

/// `v` written with enough digits for ticks `step` apart.
pub fn tick_label(v: f64, step: f64) -> String {
    if !v.is_finite() {
        return format!("{v}");
    }
    // Snap away rounding noise (0.30000000000000004, -0.0).
    let step = step.abs().max(f64::MIN_POSITIVE);
    let digits = (-step.log10().floor()).clamp(0.0, 17.0) as usize;
    // Round to the step's digits first, so 0.0009999999999999998 is 0.001.
    let v: f64 = format!("{v:.digits$}").parse().unwrap_or(v);
    if v == 0.0 || v.abs() < step * 1e-9 {
        return "0".into();
    }
    let magnitude = v.abs();
    if (1e-3..1e4).contains(&magnitude) {
        return trim(&format!("{v:.digits$}"));
    }
    // Scientific: the mantissa carries the digits the step needs.
    let exponent = magnitude.log10().floor();
    let digits = (exponent - step.log10().floor()).clamp(0.0, 15.0) as usize;
    let text = format!("{v:.digits$e}");
    let (mantissa, exp) = text.split_once('e').expect("an exponent form");
    format!("{}e{exp}", trim(mantissa))
}

/// Drops trailing zeros after a decimal point, and the point itself.
fn trim(text: &str) -> String {
    if text.contains('.') {
        text.trim_end_matches('0').trim_end_matches('.').to_string()
    } else {
        text.to_string()
    }
}

/// An axis whose ticks initscope chooses, so that there are always at
/// least three inside the range (plotters' own choice can leave one or two
/// on a narrow range). Linear: multiples of a 1-2-5 step, about `count`
/// when there is room. Logarithmic: the powers of ten inside, then their 2x
/// and 5x multiples, then every 1x to 9x, as the range needs.
#[derive(Clone, Debug)]
pub struct NiceAxis {
    lo: f64,
    hi: f64,
    /// The ticks, ascending.
    pub ticks: Vec<f64>,
    /// The linear step (unused on a log axis).
    pub step: f64,
    /// Logarithmic.
    pub log: bool,
}

impl NiceAxis {
    /// A linear axis over `lo..hi` (an empty range is widened) with about `count` ticks.
    pub fn new(lo: f64, hi: f64, count: usize) -> Self {
        let (lo, hi) =
            if hi > lo { (lo, hi) } else { (lo - 0.5 * lo.abs().max(1e-12), hi + 0.5 * hi.abs().max(1e-12)) };
        let mut step = nice_step(hi - lo, count.max(3));
        let ticks = |step: f64| -> Vec<f64> {
            let first = (lo / step).ceil() as i64;
            let last = (hi / step).floor() as i64;
            (first..=last).map(|i| i as f64 * step).collect()
        };
        // A smaller 1-2-5 step until three ticks fit.
        while ticks(step).len() < 3 {
            let mantissa = step / 10f64.powf(step.log10().floor());
            step /= if mantissa.round() == 5.0 { 2.5 } else { 2.0 };
        }
        NiceAxis { lo, hi, ticks: ticks(step), step, log: false }
    }

    /// A logarithmic axis over `lo..hi` (made positive and non-empty).
    pub fn log(lo: f64, hi: f64) -> Self {
        let lo = if lo > 0.0 && lo.is_finite() { lo } else { 1e-12 };
        let hi = if hi > lo && hi.is_finite() { hi } else { lo * 10.0 };
        let mut ticks = Vec::new();
        for multiples in [&[1.0][..], &[1.0, 2.0, 5.0], &[1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 8.0, 9.0]] {
            ticks = (lo.log10().floor() as i32..=hi.log10().ceil() as i32)
                .flat_map(|e| multiples.iter().map(move |m| m * 10f64.powi(e)))
                .filter(|t| (lo..=hi).contains(t))
                .collect();
            if ticks.len() >= 3 {
                break;
            }
        }
        NiceAxis { lo, hi, ticks, step: 0.0, log: true }
    }
}

/// Every mesh labels a `NiceAxis` with its own formatter: the digits its
/// step needs ([`tick_label`]), or [`log_label`] on a log axis.
impl ValueFormatter<f64> for NiceAxis {
    fn format_ext(&self, value: &f64) -> String {
        if self.log {
            log_label(*value)
        } else {
            tick_label(*value, self.step)
        }
    }
}

impl Ranged for NiceAxis {
    type FormatOption = NoDefaultFormatting;
    type ValueType = f64;

    fn map(&self, value: &f64, limit: (i32, i32)) -> i32 {
        let t = if self.log {
            (value.max(self.lo * 1e-6).ln() - self.lo.ln()) / (self.hi.ln() - self.lo.ln())
        } else {
            (value - self.lo) / (self.hi - self.lo)
        };
        (limit.0 as f64 + t * (limit.1 - limit.0) as f64).round() as i32
    }

    fn key_points<Hint: KeyPointHint>(&self, hint: Hint) -> Vec<f64> {
        if hint.weight().allow_light_points() {
            return Vec::new();
        }
        self.ticks.clone()
    }

    fn range(&self) -> std::ops::Range<f64> {
        self.lo..self.hi
    }
}

/// A label on a logarithmic axis: the power of ten below `v` sets the digits
/// (`0.002`, `30`, `1e-5`).
pub fn log_label(v: f64) -> String {
    significant(v, 1)
}

/// `v` to `digits` significant digits in the ticks' style: a value written
/// beside a chart (a grid value, a cell, a caption), `0.001`, `1.75`,
/// `97.13`, `2.5e5`.
pub fn significant(v: f64, digits: i32) -> String {
    if v == 0.0 || !v.is_finite() {
        return tick_label(v, 1.0);
    }
    tick_label(v, 10f64.powf(v.abs().log10().floor() - f64::from(digits - 1)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ticks_say_just_enough() {
        assert_eq!(tick_label(6000.0, 1000.0), "6000");
        assert_eq!(tick_label(2.0, 1.0), "2");
        assert_eq!(tick_label(10.0, 5.0), "10");
        assert_eq!(tick_label(-0.05, 0.01), "-0.05");
        assert_eq!(tick_label(0.30000000000000004, 0.1), "0.3");
        assert_eq!(tick_label(-1e-18, 0.1), "0");
        assert_eq!(tick_label(2.5e-5, 5e-6), "2.5e-5");
        assert_eq!(tick_label(1e-5, 1e-5), "1e-5");
        assert_eq!(tick_label(1.2e5, 1e4), "1.2e5");
        // Neighbours differ: -0.0012, -0.0010, ... with a step of 2e-4.
        let labels: Vec<String> = (0..5).map(|i| tick_label(-0.0012 + 2e-4 * i as f64, 2e-4)).collect();
        assert_eq!(labels, ["-0.0012", "-0.001", "-8e-4", "-6e-4", "-4e-4"]);
    }

    #[test]
    fn a_nice_axis_has_three_ticks_at_least() {
        for (lo, hi) in [(-6e-10, 4.9e-10), (0.5, 1.5), (-0.0041, 0.0043), (0.0, 6315.0), (3.0, 3.0), (97.9, 98.4)] {
            let axis = NiceAxis::new(lo, hi, 6);
            assert!(axis.ticks.len() >= 3, "{lo}..{hi}: {:?}", axis.ticks);
            assert!(axis.ticks.len() <= 15, "{lo}..{hi}: {:?}", axis.ticks);
            let labels: Vec<String> = axis.ticks.iter().map(|t| axis.format_ext(t)).collect();
            assert!(labels.windows(2).all(|w| w[0] != w[1]), "{labels:?}");
        }
    }

    #[test]
    fn a_log_axis_has_three_ticks_at_least() {
        for (lo, hi) in [(0.05, 2.0), (0.4, 0.9), (1e-12, 1.0), (0.15, 0.97)] {
            let axis = NiceAxis::log(lo, hi);
            assert!(axis.ticks.len() >= 3, "{lo}..{hi}: {:?}", axis.ticks);
            let labels: Vec<String> = axis.ticks.iter().map(|t| log_label(*t)).collect();
            assert!(labels.windows(2).all(|w| w[0] != w[1]), "{labels:?}");
        }
    }

    #[test]
    fn significant_digits_are_exact_for_grid_values() {
        for (v, text) in [
            (0.001, "0.001"),
            (30.0, "30"),
            (1.75, "1.75"),
            (0.05, "0.05"),
            (1e-5, "1e-5"),
            (2.5e5, "2.5e5"),
            (97.126, "97.13"),
            (0.0, "0"),
        ] {
            assert_eq!(significant(v, 4), text, "{v}");
        }
        assert_eq!(significant(0.4873, 2), "0.49");
        assert_eq!(significant(1.53e-11, 2), "1.5e-11");
    }

    #[test]
    fn nice_steps_are_one_two_five() {
        assert_eq!(nice_step(10.0, 5), 2.0);
        assert_eq!(nice_step(0.003, 3), 0.001);
        assert!((nice_step(7.0, 3) - 2.0).abs() < 1e-12);
    }
}
