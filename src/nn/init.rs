//! Initialisation schemes, with the semantics of PyTorch's `torch.nn.init`.

use crate::rng::Stream;
use serde::{Deserialize, Serialize};

/// Which fan a variance-scaling scheme keeps constant (He et al. 2015, Sec. 2.2).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum FanMode {
    /// Preserve the variance of the forward activations.
    #[default]
    FanIn,
    /// Preserve the variance of the backward gradients.
    FanOut,
}

/// How to draw one layer's weight (or bias) tensor.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "scheme", rename_all = "snake_case", deny_unknown_fields)]
pub enum Init {
    /// Kaiming/He uniform (He et al. 2015, Eq. 10 with a uniform draw):
    /// `U(-b, b)`, `b = gain * sqrt(3 / fan)`; with the ReLU gain `sqrt(2)`
    /// this is `sqrt(6 / fan_in)`, as `kaiming_uniform_(nonlinearity='relu')`.
    KaimingUniform {
        /// fan_in or fan_out.
        #[serde(default)]
        mode: FanMode,
        /// The nonlinearity's gain; `sqrt(2)` for ReLU.
        #[serde(default = "relu_gain")]
        gain: f64,
    },
    /// `N(mean, std^2)`, as `normal_(mean, std)`.
    Normal {
        /// Mean.
        #[serde(default)]
        mean: f64,
        /// Standard deviation.
        std: f64,
    },
    /// Every value equal to `value` (`constant_`; zeros with 0).
    Constant {
        /// The value.
        #[serde(default)]
        value: f64,
    },
}

fn relu_gain() -> f64 {
    std::f64::consts::SQRT_2
}

impl Init {
    /// The seed experiment's "kaiming" scheme: uniform, fan_in, ReLU gain.
    pub fn kaiming_relu() -> Self {
        Init::KaimingUniform { mode: FanMode::FanIn, gain: relu_gain() }
    }

    /// Zeros.
    pub fn zeros() -> Self {
        Init::Constant { value: 0.0 }
    }

    /// Checks the scheme's numbers, naming the bad field.
    pub fn validate(&self) -> Result<(), String> {
        match *self {
            Init::KaimingUniform { gain, .. } if !(gain.is_finite() && gain > 0.0) => {
                Err(format!("gain must be a positive number, got {gain}"))
            }
            Init::Normal { mean, std } if !(mean.is_finite() && std.is_finite() && std >= 0.0) => {
                Err(format!("normal needs a finite mean and std >= 0, got mean {mean}, std {std}"))
            }
            Init::Constant { value } if !value.is_finite() => {
                Err(format!("constant value must be finite, got {value}"))
            }
            _ => Ok(()),
        }
    }

    /// Fills `out`, a tensor with the given fans, from `stream`.
    pub fn fill(&self, out: &mut [f32], fan_in: usize, fan_out: usize, stream: &mut Stream) {
        match *self {
            Init::KaimingUniform { mode, gain } => {
                let fan = match mode {
                    FanMode::FanIn => fan_in,
                    FanMode::FanOut => fan_out,
                };
                let bound = gain * (3.0 / fan as f64).sqrt();
                out.iter_mut().for_each(|w| *w = (bound * (2.0 * stream.unit_f64() - 1.0)) as f32);
            }
            Init::Normal { mean, std } => {
                out.iter_mut().for_each(|w| *w = (mean + std * stream.standard_normal()) as f32);
            }
            Init::Constant { value } => out.fill(value as f32),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn moments(v: &[f32]) -> (f64, f64) {
        let n = v.len() as f64;
        let mean = v.iter().map(|&x| f64::from(x)).sum::<f64>() / n;
        let var = v.iter().map(|&x| (f64::from(x) - mean).powi(2)).sum::<f64>() / n;
        (mean, var.sqrt())
    }

    #[test]
    fn kaiming_uniform_has_its_bound_and_std() {
        let (fan_in, fan_out) = (784, 512);
        let mut w = vec![0.0; fan_in * fan_out];
        Init::kaiming_relu().fill(&mut w, fan_in, fan_out, &mut Stream::new(1, "t", 0));
        let bound = (6.0f64 / 784.0).sqrt();
        let max = w.iter().fold(0.0f32, |m, &x| m.max(x.abs()));
        assert!(f64::from(max) <= bound && f64::from(max) > 0.999 * bound);
        // U(-b, b) has std b / sqrt(3) = sqrt(2 / fan_in).
        let (mean, std) = moments(&w);
        assert!(mean.abs() < 1e-3);
        assert!((std / (2.0f64 / 784.0).sqrt() - 1.0).abs() < 0.005, "std {std}");
    }

    #[test]
    fn normal_has_its_mean_and_std() {
        let mut w = vec![0.0; 400_000];
        Init::Normal { mean: 0.5, std: 0.001 }.fill(&mut w, 1, 1, &mut Stream::new(1, "t", 0));
        let (mean, std) = moments(&w);
        assert!((mean - 0.5).abs() < 1e-5, "mean {mean}");
        assert!((std / 0.001 - 1.0).abs() < 0.005, "std {std}");
    }

    #[test]
    fn bad_numbers_are_rejected() {
        assert!(Init::Normal { mean: 0.0, std: -1.0 }.validate().is_err());
        assert!(Init::KaimingUniform { mode: FanMode::FanIn, gain: 0.0 }.validate().is_err());
        assert!(Init::kaiming_relu().validate().is_ok());
    }
}
