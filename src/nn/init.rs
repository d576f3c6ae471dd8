//! Initialisation schemes, with the semantics and gains of PyTorch's
//! `torch.nn.init`. Each scheme fills one tensor given its fans; the model
//! applies a weight scheme and a bias scheme to every Linear layer.

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

/// A gain: a number, or the name of the nonlinearity whose gain PyTorch's
/// `calculate_gain` gives (`linear`/`identity`/`sigmoid` 1, `tanh` 5/3,
/// `relu` sqrt(2), `selu` 3/4, `leaky_relu` sqrt(2 / (1 + 0.01^2))).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum Gain {
    /// An explicit number.
    Value(f64),
    /// A nonlinearity's name.
    Named(String),
}

impl Gain {
    /// The gain's value, or an error naming the unknown nonlinearity.
    pub fn value(&self) -> Result<f64, String> {
        match self {
            Gain::Value(v) => Ok(*v),
            Gain::Named(name) => match name.as_str() {
                "linear" | "identity" | "sigmoid" | "conv1d" | "conv2d" | "conv3d" => Ok(1.0),
                "tanh" => Ok(5.0 / 3.0),
                "relu" => Ok(std::f64::consts::SQRT_2),
                "selu" => Ok(0.75),
                "leaky_relu" => Ok((2.0 / (1.0 + 0.01f64 * 0.01)).sqrt()),
                other => Err(format!(
                    "unknown nonlinearity {other:?} for a gain (linear, identity, sigmoid, tanh, relu, leaky_relu, selu, or a number)"
                )),
            },
        }
    }
}

fn lsuv_tol() -> f64 {
    0.1
}

fn lsuv_max_iter() -> usize {
    10
}

fn relu_gain() -> Gain {
    Gain::Named("relu".into())
}

fn unit_gain() -> Gain {
    Gain::Value(1.0)
}

fn two() -> f64 {
    2.0
}

fn minus_two() -> f64 {
    -2.0
}

fn one() -> f64 {
    1.0
}

/// How to draw one layer's weight (or bias) tensor. In settings:
/// `{ scheme = "kaiming_uniform", mode = "fan_in", gain = "relu" }` and so on.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "scheme", rename_all = "snake_case", deny_unknown_fields)]
pub enum Init {
    /// Kaiming/He uniform (He et al. 2015, Eq. 10 with a uniform draw):
    /// `U(-b, b)`, `b = gain * sqrt(3 / fan)`; with the ReLU gain this is
    /// `sqrt(6 / fan_in)`, as `kaiming_uniform_(nonlinearity='relu')`.
    KaimingUniform {
        /// fan_in or fan_out.
        #[serde(default)]
        mode: FanMode,
        /// The nonlinearity's gain.
        #[serde(default = "relu_gain")]
        gain: Gain,
    },
    /// Kaiming/He normal: `N(0, (gain / sqrt(fan))^2)` (He et al. 2015, Eq. 10).
    KaimingNormal {
        /// fan_in or fan_out.
        #[serde(default)]
        mode: FanMode,
        /// The nonlinearity's gain.
        #[serde(default = "relu_gain")]
        gain: Gain,
    },
    /// Glorot/Xavier uniform: `U(-b, b)`, `b = gain * sqrt(6 / (fan_in + fan_out))`
    /// (Glorot & Bengio 2010, Eq. 16, the "normalized initialization").
    XavierUniform {
        /// Gain.
        #[serde(default = "unit_gain")]
        gain: Gain,
    },
    /// Glorot/Xavier normal: `N(0, gain^2 * 2 / (fan_in + fan_out))`.
    XavierNormal {
        /// Gain.
        #[serde(default = "unit_gain")]
        gain: Gain,
    },
    /// LeCun uniform: `U(-b, b)`, `b = sqrt(3 / fan_in)` (LeCun et al. 1998,
    /// "Efficient BackProp", Sec. 4.6: unit variance for unit-variance inputs).
    LecunUniform,
    /// LeCun normal: `N(0, 1 / fan_in)` (the init SELU networks need).
    LecunNormal,
    /// `N(mean, std^2)`, as `normal_(mean, std)`.
    Normal {
        /// Mean.
        #[serde(default)]
        mean: f64,
        /// Standard deviation.
        std: f64,
    },
    /// `U(a, b)`, as `uniform_(a, b)`.
    Uniform {
        /// Lower bound.
        a: f64,
        /// Upper bound.
        b: f64,
    },
    /// `N(mean, std^2)` restricted to `[a, b]` (absolute bounds, as
    /// `trunc_normal_`), drawn by the inverse CDF as PyTorch draws it, so a
    /// narrow interval far in a tail costs no more than any other.
    TruncatedNormal {
        /// Mean.
        #[serde(default)]
        mean: f64,
        /// Standard deviation.
        #[serde(default = "one")]
        std: f64,
        /// Lower bound.
        #[serde(default = "minus_two")]
        a: f64,
        /// Upper bound.
        #[serde(default = "two")]
        b: f64,
    },
    /// A (semi-)orthogonal matrix times `gain` (Saxe et al. 2014): the Q of
    /// the QR decomposition of a standard normal matrix, signs fixed by R's
    /// diagonal, as `orthogonal_`.
    Orthogonal {
        /// Gain.
        #[serde(default = "unit_gain")]
        gain: Gain,
    },
    /// Every value equal to `value` (`constant_`; `zeros_` with 0).
    Constant {
        /// The value.
        #[serde(default)]
        value: f64,
    },
    /// Layer-sequential unit-variance init (Mishkin & Matas 2016, "All you
    /// need is a good init", Algorithm 1): orthogonal weights, then each
    /// layer in turn rescaled on one training batch until the variance of
    /// its output is within `tol` of 1, at most `max_iter` times. The
    /// rescaling needs data, so [`crate::nn::lsuv()`] does it after `fill`.
    Lsuv {
        /// Accepted distance of the output variance from 1.
        #[serde(default = "lsuv_tol")]
        tol: f64,
        /// Most rescalings per layer.
        #[serde(default = "lsuv_max_iter")]
        max_iter: usize,
    },
    /// Every weight and bias from a safetensors file with the original
    /// PyTorch module's names (`my_network.1.weight`, ...), e.g. exported
    /// from the notebook. As a weight scheme it sets the biases too.
    FromFile {
        /// The file.
        path: std::path::PathBuf,
    },
    /// PyTorch's default for `nn.Linear`, weights and biases alike:
    /// `U(-1/sqrt(fan_in), 1/sqrt(fan_in))` (its `kaiming_uniform_(a=sqrt(5))`).
    PytorchDefault,
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

    /// The scheme's name as settings write it (`kaiming_uniform`, ...).
    pub fn name(&self) -> &'static str {
        match self {
            Init::KaimingUniform { .. } => "kaiming_uniform",
            Init::KaimingNormal { .. } => "kaiming_normal",
            Init::XavierUniform { .. } => "xavier_uniform",
            Init::XavierNormal { .. } => "xavier_normal",
            Init::LecunUniform => "lecun_uniform",
            Init::LecunNormal => "lecun_normal",
            Init::Normal { .. } => "normal",
            Init::Uniform { .. } => "uniform",
            Init::TruncatedNormal { .. } => "truncated_normal",
            Init::Orthogonal { .. } => "orthogonal",
            Init::Constant { .. } => "constant",
            Init::Lsuv { .. } => "lsuv",
            Init::FromFile { .. } => "from_file",
            Init::PytorchDefault => "pytorch_default",
        }
    }

    /// Checks the scheme's numbers, naming the bad field.
    pub fn validate(&self) -> Result<(), String> {
        let positive = |name: &str, v: f64| {
            if v.is_finite() && v > 0.0 {
                Ok(())
            } else {
                Err(format!("{name} must be a positive number, got {v}"))
            }
        };
        let finite =
            |name: &str, v: f64| if v.is_finite() { Ok(()) } else { Err(format!("{name} must be finite, got {v}")) };
        match self {
            Init::KaimingUniform { gain, .. }
            | Init::KaimingNormal { gain, .. }
            | Init::XavierUniform { gain }
            | Init::XavierNormal { gain }
            | Init::Orthogonal { gain } => positive("gain", gain.value()?),
            Init::Normal { mean, std } => {
                finite("mean", *mean)?;
                if std.is_finite() && *std >= 0.0 {
                    Ok(())
                } else {
                    Err(format!("std must be a number >= 0, got {std}"))
                }
            }
            Init::Uniform { a, b } => {
                finite("a", *a)?;
                finite("b", *b)?;
                if a < b {
                    Ok(())
                } else {
                    Err(format!("uniform needs a < b, got a = {a}, b = {b}"))
                }
            }
            Init::TruncatedNormal { mean, std, a, b } => {
                finite("mean", *mean)?;
                positive("std", *std)?;
                if !(a < b && a.is_finite() && b.is_finite()) {
                    return Err(format!("truncated_normal needs finite a < b, got a = {a}, b = {b}"));
                }
                // Beyond this the normal's CDF underflows in f64: nothing to draw from.
                let far = super::truncated::MAX_STANDARD_DISTANCE;
                if *b < mean - far * std || *a > mean + far * std {
                    return Err(format!("truncated_normal: [{a}, {b}] lies more than {far} std from the mean {mean}"));
                }
                Ok(())
            }
            Init::Constant { value } => finite("value", *value),
            Init::Lsuv { tol, max_iter } => {
                if !(tol.is_finite() && *tol > 0.0 && *tol < 1.0) {
                    return Err(format!("tol must be in (0, 1), got {tol}"));
                }
                if *max_iter == 0 {
                    return Err("max_iter must be at least 1".into());
                }
                Ok(())
            }
            Init::FromFile { path } => {
                if path.is_file() {
                    Ok(())
                } else {
                    Err(format!("{}: no such file", path.display()))
                }
            }
            Init::LecunUniform | Init::LecunNormal | Init::PytorchDefault => Ok(()),
        }
    }

    /// The variance of the values this scheme draws for a layer with these
    /// fans, for schemes whose draws have mean zero: what mean-field theory
    /// needs (sigma_w^2 = fan_in x this; sigma_b^2 = this for a bias). `Err`
    /// says why the theory does not cover the scheme.
    pub fn zero_mean_variance(&self, fan_in: usize, fan_out: usize) -> Result<f64, String> {
        let (fi, fo) = (fan_in as f64, fan_out as f64);
        let fan = |mode: &FanMode| match mode {
            FanMode::FanIn => fi,
            FanMode::FanOut => fo,
        };
        let nonzero_mean = |mean: f64| Err(format!("its mean {mean} is not zero (the theory assumes zero-mean draws)"));
        match self {
            Init::KaimingUniform { mode, gain } | Init::KaimingNormal { mode, gain } => {
                Ok(gain.value()?.powi(2) / fan(mode))
            }
            Init::XavierUniform { gain } | Init::XavierNormal { gain } => Ok(gain.value()?.powi(2) * 2.0 / (fi + fo)),
            Init::LecunUniform | Init::LecunNormal => Ok(1.0 / fi),
            Init::PytorchDefault => Ok(1.0 / (3.0 * fi)),
            Init::Normal { mean, std } if *mean == 0.0 => Ok(std * std),
            Init::Uniform { a, b } if a + b == 0.0 => Ok((b - a).powi(2) / 12.0),
            Init::Constant { value } if *value == 0.0 => Ok(0.0),
            Init::Normal { mean, .. } => nonzero_mean(*mean),
            Init::Uniform { a, b } => nonzero_mean((a + b) / 2.0),
            Init::Constant { value } => nonzero_mean(*value),
            Init::TruncatedNormal { mean, std, a, b } => {
                let (mean, variance) = super::truncated::moments(*mean, *std, *a, *b);
                if mean.abs() > 1e-12 * std {
                    return nonzero_mean(mean);
                }
                Ok(variance)
            }
            // Rows (or columns) of unit norm: each entry has 1 / max(fan_in, fan_out).
            Init::Orthogonal { gain } => Ok(gain.value()?.powi(2) / fi.max(fo)),
            Init::Lsuv { .. } => Err("LSUV rescales each layer on data; its variance is known only after".into()),
            Init::FromFile { .. } => Err("weights from a file have no formula".into()),
        }
    }

    /// Fills `out`, a `[fan_out, fan_in]` weight matrix (or a bias of
    /// `fan_out` values with the layer's fans), from `stream`.
    pub fn fill(&self, out: &mut [f32], fan_in: usize, fan_out: usize, stream: &mut Stream) {
        self.fill_until(out, fan_in, fan_out, stream, &|| false);
    }

    /// As [`Init::fill`], asking `stop` as it goes where filling takes long
    /// (the orthogonal schemes, cubic in the width): returns false, with
    /// `out` unfinished, when `stop` said so.
    pub fn fill_until(
        &self,
        out: &mut [f32],
        fan_in: usize,
        fan_out: usize,
        stream: &mut Stream,
        stop: &dyn Fn() -> bool,
    ) -> bool {
        let fan = |mode: &FanMode| match mode {
            FanMode::FanIn => fan_in,
            FanMode::FanOut => fan_out,
        } as f64;
        let gain = |g: &Gain| g.value().expect("validated before use");
        let uniform = |bound: f64, out: &mut [f32], stream: &mut Stream| {
            out.iter_mut().for_each(|w| *w = (bound * (2.0 * stream.unit_f64() - 1.0)) as f32)
        };
        let normal = |mean: f64, std: f64, out: &mut [f32], stream: &mut Stream| {
            out.iter_mut().for_each(|w| *w = (mean + std * stream.standard_normal()) as f32)
        };
        let (fi, fo) = (fan_in as f64, fan_out as f64);
        match self {
            Init::KaimingUniform { mode, gain: g } => uniform(gain(g) * (3.0 / fan(mode)).sqrt(), out, stream),
            Init::KaimingNormal { mode, gain: g } => normal(0.0, gain(g) / fan(mode).sqrt(), out, stream),
            Init::XavierUniform { gain: g } => uniform(gain(g) * (6.0 / (fi + fo)).sqrt(), out, stream),
            Init::XavierNormal { gain: g } => normal(0.0, gain(g) * (2.0 / (fi + fo)).sqrt(), out, stream),
            Init::LecunUniform => uniform((3.0 / fi).sqrt(), out, stream),
            Init::LecunNormal => normal(0.0, 1.0 / fi.sqrt(), out, stream),
            Init::Normal { mean, std } => normal(*mean, *std, out, stream),
            Init::Uniform { a, b } => {
                out.iter_mut().for_each(|w| *w = (a + (b - a) * stream.unit_f64()) as f32);
            }
            Init::TruncatedNormal { mean, std, a, b } => super::truncated::fill(out, *mean, *std, *a, *b, stream),
            Init::Orthogonal { gain: g } => {
                return orthogonal(out, fan_out, out.len() / fan_out.max(1), gain(g), stream, stop)
            }
            Init::Constant { value } => out.fill(*value as f32),
            // The orthogonal start; the data-driven rescaling follows later.
            Init::Lsuv { .. } => return orthogonal(out, fan_out, out.len() / fan_out.max(1), 1.0, stream, stop),
            // Filled from the file by the model as a whole.
            Init::FromFile { .. } => out.fill(0.0),
            Init::PytorchDefault => uniform(1.0 / fi.sqrt(), out, stream),
        }
        true
    }
}

/// Fills `out` (`rows x cols`, row-major) with a (semi-)orthogonal matrix
/// times `gain`: rows orthonormal when rows <= cols, columns otherwise.
/// Gram-Schmidt (modified, twice for stability) on the rows of a standard
/// normal matrix, in f64; the QR of PyTorch's `orthogonal_` gives the same
/// distribution (the Haar measure).
fn orthogonal(
    out: &mut [f32],
    rows: usize,
    cols: usize,
    gain: f64,
    stream: &mut Stream,
    stop: &dyn Fn() -> bool,
) -> bool {
    let (n, m) = if rows <= cols { (rows, cols) } else { (cols, rows) };
    // n vectors of length m, orthonormalised.
    let mut q: Vec<Vec<f64>> = (0..n).map(|_| (0..m).map(|_| stream.standard_normal()).collect()).collect();
    for i in 0..n {
        if i % 16 == 0 && stop() {
            return false;
        }
        for _ in 0..2 {
            for j in 0..i {
                let dot: f64 = q[i].iter().zip(&q[j]).map(|(a, b)| a * b).sum();
                let (head, tail) = q.split_at_mut(i);
                tail[0].iter_mut().zip(&head[j]).for_each(|(a, b)| *a -= dot * b);
            }
        }
        let norm = q[i].iter().map(|a| a * a).sum::<f64>().sqrt();
        q[i].iter_mut().for_each(|a| *a /= norm);
    }
    for r in 0..rows {
        for c in 0..cols {
            let v = if rows <= cols { q[r][c] } else { q[c][r] };
            out[r * cols + c] = (gain * v) as f32;
        }
    }
    true
}

#[cfg(test)]
mod tests {
    use super::*;

    fn moments(v: &[f32]) -> (f64, f64, f64) {
        let n = v.len() as f64;
        let mean = v.iter().map(|&x| f64::from(x)).sum::<f64>() / n;
        let var = v.iter().map(|&x| (f64::from(x) - mean).powi(2)).sum::<f64>() / n;
        let max = v.iter().fold(0.0f64, |m, &x| m.max(f64::from(x).abs()));
        (mean, var.sqrt(), max)
    }

    fn draw(init: &Init, fan_in: usize, fan_out: usize) -> Vec<f32> {
        let mut w = vec![0.0; fan_in * fan_out];
        init.fill(&mut w, fan_in, fan_out, &mut Stream::new(1, "t", 0));
        w
    }

    /// Every scheme's empirical standard deviation (and bound, where it has
    /// one) against its formula, on a 512 x 784 matrix (401,408 values: the
    /// standard error of a std estimate is about 0.1 %).
    #[test]
    fn every_scheme_matches_its_formula() {
        let (fi, fo) = (784usize, 512usize);
        let (fif, fof) = (fi as f64, fo as f64);
        let relu = || Gain::Named("relu".into());
        let cases: Vec<(Init, f64, Option<f64>)> = vec![
            (Init::kaiming_relu(), (2.0 / fif).sqrt(), Some((6.0 / fif).sqrt())),
            (
                Init::KaimingUniform { mode: FanMode::FanOut, gain: relu() },
                (2.0 / fof).sqrt(),
                Some((6.0 / fof).sqrt()),
            ),
            (Init::KaimingNormal { mode: FanMode::FanIn, gain: relu() }, (2.0 / fif).sqrt(), None),
            (
                Init::XavierUniform { gain: Gain::Value(1.0) },
                (2.0 / (fif + fof)).sqrt(),
                Some((6.0 / (fif + fof)).sqrt()),
            ),
            (Init::XavierNormal { gain: Gain::Named("tanh".into()) }, 5.0 / 3.0 * (2.0 / (fif + fof)).sqrt(), None),
            (Init::LecunUniform, (1.0 / fif).sqrt(), Some((3.0 / fif).sqrt())),
            (Init::LecunNormal, (1.0 / fif).sqrt(), None),
            (Init::Normal { mean: 0.0, std: 0.001 }, 0.001, None),
            (Init::Uniform { a: -0.5, b: 0.5 }, 1.0 / 12f64.sqrt(), Some(0.5)),
            // N(0, 1) cut at +-1: variance 1 - 2 phi(1) / (2 Phi(1) - 1) = 0.29112.
            (Init::TruncatedNormal { mean: 0.0, std: 1.0, a: -1.0, b: 1.0 }, 0.29112f64.sqrt(), Some(1.0)),
            (Init::PytorchDefault, 1.0 / (3.0 * fif).sqrt(), Some(1.0 / fif.sqrt())),
        ];
        for (init, std, bound) in cases {
            init.validate().unwrap();
            let w = draw(&init, fi, fo);
            let (mean, got, max) = moments(&w);
            assert!(mean.abs() < 0.01 * std.max(1e-3) + 5.0 * std / (w.len() as f64).sqrt(), "{init:?}: mean {mean}");
            assert!((got / std - 1.0).abs() < 0.005, "{init:?}: std {got}, formula {std}");
            if let Some(b) = bound {
                assert!(max <= b + 1e-7 && max > 0.99 * b, "{init:?}: max |w| {max}, bound {b}");
            }
        }
    }

    #[test]
    fn gains_follow_pytorch() {
        let g = |name: &str| Gain::Named(name.into()).value().unwrap();
        assert_eq!(g("linear"), 1.0);
        assert_eq!(g("sigmoid"), 1.0);
        assert!((g("tanh") - 5.0 / 3.0).abs() < 1e-15);
        assert!((g("relu") - 2f64.sqrt()).abs() < 1e-15);
        assert!((g("leaky_relu") - (2.0 / 1.0001f64).sqrt()).abs() < 1e-15);
        assert_eq!(g("selu"), 0.75);
        assert!(Gain::Named("swish".into()).value().is_err());
    }

    #[test]
    fn orthogonal_rows_are_orthonormal() {
        for (rows, cols) in [(64, 128), (128, 64), (50, 50)] {
            let gain = 1.5;
            let w = draw(&Init::Orthogonal { gain: Gain::Value(gain) }, cols, rows);
            // W W^T = gain^2 I when rows <= cols; W^T W = gain^2 I otherwise.
            let (n, stride, along) = if rows <= cols { (rows, cols, 1) } else { (cols, 1, cols) };
            let len = if rows <= cols { cols } else { rows };
            for i in 0..n {
                for j in 0..n {
                    let dot: f64 = (0..len)
                        .map(|k| {
                            let (a, b) = if rows <= cols {
                                (w[i * stride + k * along], w[j * stride + k * along])
                            } else {
                                (w[k * cols + i], w[k * cols + j])
                            };
                            f64::from(a) * f64::from(b)
                        })
                        .sum();
                    let expected = if i == j { gain * gain } else { 0.0 };
                    assert!((dot - expected).abs() < 1e-5, "{rows}x{cols}: ({i},{j}) = {dot}");
                }
            }
        }
    }

    #[test]
    fn bad_numbers_are_rejected() {
        assert!(Init::Normal { mean: 0.0, std: -1.0 }.validate().is_err());
        assert!(Init::KaimingUniform { mode: FanMode::FanIn, gain: Gain::Value(0.0) }.validate().is_err());
        assert!(Init::Uniform { a: 1.0, b: 0.0 }.validate().is_err());
        assert!(Init::TruncatedNormal { mean: 0.0, std: 1.0, a: 40.0, b: 41.0 }.validate().is_err());
        assert!(Init::TruncatedNormal { mean: 0.0, std: 1.0, a: 5.9, b: 6.0 }.validate().is_ok());
        assert!(Init::kaiming_relu().validate().is_ok());
    }
}
