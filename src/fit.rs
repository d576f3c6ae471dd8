//! Fits to measured points: the least-squares slope that the coord check
//! (mean |x| against width, log-log) and the learning-rate transfer (best
//! lr against width, log2-log2) read their verdicts from.

/// The least-squares slope of y on x; `None` without two distinct x values.
pub fn least_squares_slope(points: &[(f64, f64)]) -> Option<f64> {
    let n = points.len() as f64;
    let (mx, my) = (points.iter().map(|p| p.0).sum::<f64>() / n, points.iter().map(|p| p.1).sum::<f64>() / n);
    let sxy: f64 = points.iter().map(|p| (p.0 - mx) * (p.1 - my)).sum();
    let sxx: f64 = points.iter().map(|p| (p.0 - mx).powi(2)).sum();
    (sxx > 0.0).then(|| sxy / sxx)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_slope_of_two_points_is_their_rise_over_run_and_one_point_has_none() {
        assert_eq!(least_squares_slope(&[(1.0, 2.0), (3.0, 8.0)]), Some(3.0));
        assert_eq!(least_squares_slope(&[(1.0, 2.0)]), None);
        assert_eq!(least_squares_slope(&[(2.0, 1.0), (2.0, 5.0)]), None, "no two distinct x");
    }
}
