//! The order-to-chaos phase diagram of an activation (Poole et al. 2016,
//! Fig. 2; Schoenholz et al. 2017, Fig. 1): chi_1 at the fixed point over a
//! grid of weight variance sigma_w^2 and bias variance sigma_b^2. Computed
//! here; `plot::phase` draws it.

use super::meanfield::MeanField;
use crate::nn::Activation;

/// The sigma_w^2 across the diagram.
pub fn weight_variances() -> Vec<f64> {
    (1..=20).map(|i| 0.25 * i as f64).collect()
}

/// The sigma_b^2 up the diagram.
pub const BIAS_VARIANCES: [f64; 8] = [0.0, 0.05, 0.1, 0.2, 0.3, 0.5, 0.75, 1.0];

/// Per sigma_b^2, the critical sigma_w^2 (none when there is none in range).
pub type CriticalLine = Vec<(f64, Option<f64>)>;

/// chi_1 over the grid of one activation, with its edge of chaos.
#[derive(Clone, Debug)]
pub struct PhaseDiagram {
    /// The activation.
    pub activation: Activation,
    /// sigma_w^2 across ([`weight_variances`]).
    pub weight_variances: Vec<f64>,
    /// sigma_b^2 up ([`BIAS_VARIANCES`]).
    pub bias_variances: Vec<f64>,
    /// chi_1 per (sigma_b^2 row, sigma_w^2 column); infinite where the
    /// variance has no fixed point (it explodes).
    pub chi1: Vec<Vec<f64>>,
    /// The critical sigma_w^2 of each sigma_b^2 (chi_1 = 1).
    pub critical: CriticalLine,
}

/// The phase diagram of `activation`.
pub fn phase_diagram(activation: Activation) -> PhaseDiagram {
    let field = MeanField::new(activation);
    let weights = weight_variances();
    let chi1 = BIAS_VARIANCES.iter().map(|&b| weights.iter().map(|&w| field.chi1_at(w, b)).collect()).collect();
    let critical = BIAS_VARIANCES.iter().map(|&b| (b, field.critical_weight_variance(b))).collect();
    PhaseDiagram { activation, weight_variances: weights, bias_variances: BIAS_VARIANCES.to_vec(), chi1, critical }
}
