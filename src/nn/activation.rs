//! Element-wise nonlinearities, each a forward/backward pair, with
//! PyTorch's definitions.

use serde::{Deserialize, Serialize};

/// A nonlinearity applied after each hidden Linear layer. In settings:
/// `"relu"`, `"tanh"`, `"sigmoid"`, `"gelu"`, `"selu"`, `"identity"`, or
/// `{ leaky_relu = { slope = 0.01 } }`.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
pub enum Activation {
    /// `max(0, z)`.
    Relu,
    /// `z` for `z > 0`, `slope * z` otherwise.
    LeakyRelu {
        /// The negative slope (PyTorch's default is 0.01).
        slope: f32,
    },
    /// `tanh(z)`.
    Tanh,
    /// `1 / (1 + exp(-z))`.
    Sigmoid,
    /// `z * Phi(z)` with the normal CDF `Phi` (Hendrycks & Gimpel 2016;
    /// PyTorch's exact `gelu`, not the tanh approximation).
    Gelu,
    /// `lambda * z` for `z > 0`, `lambda * alpha * (exp(z) - 1)` otherwise
    /// (Klambauer et al. 2017, Eq. 2, with their alpha and lambda).
    Selu,
    /// `z` (a linear network).
    Identity,
}

/// SELU's alpha (Klambauer et al. 2017, Eq. 14).
pub const SELU_ALPHA: f32 = 1.673_263_2;
/// SELU's lambda (Klambauer et al. 2017, Eq. 14).
pub const SELU_LAMBDA: f32 = 1.050_701;

const FRAC_1_SQRT_2: f32 = std::f32::consts::FRAC_1_SQRT_2;
/// 1 / sqrt(2 pi), the normal density at 0.
const FRAC_1_SQRT_2PI: f32 = 0.398_942_3;

impl Activation {
    /// `a = f(z)` element-wise; `z` and `a` have the same length.
    pub fn forward(self, z: &[f32], a: &mut [f32]) {
        let a = &mut a[..z.len()];
        let each = |f: &dyn Fn(f32) -> f32, a: &mut [f32]| a.iter_mut().zip(z).for_each(|(a, &z)| *a = f(z));
        match self {
            Activation::Relu => a.iter_mut().zip(z).for_each(|(a, &z)| *a = z.max(0.0)),
            Activation::LeakyRelu { slope } => each(&|z| if z > 0.0 { z } else { slope * z }, a),
            Activation::Tanh => super::tanh::tanh_slice(z, a),
            Activation::Sigmoid => each(&|z| 1.0 / (1.0 + (-z).exp()), a),
            Activation::Gelu => each(&|z| 0.5 * z * (1.0 + libm::erff(z * FRAC_1_SQRT_2)), a),
            Activation::Selu => {
                each(&|z| if z > 0.0 { SELU_LAMBDA * z } else { SELU_LAMBDA * SELU_ALPHA * (z.exp() - 1.0) }, a)
            }
            Activation::Identity => a.copy_from_slice(z),
        }
    }

    /// `dz = da * f'(z)` element-wise, from the saved input `z` and output
    /// `a = f(z)` (ReLU: `a > 0`; tanh: `1 - a^2`; sigmoid: `a (1 - a)`;
    /// GELU: `Phi(z) + z phi(z)`; SELU: `lambda` or `a + lambda alpha`).
    pub fn backward(self, z: &[f32], a: &[f32], da: &[f32], dz: &mut [f32]) {
        let n = a.len();
        let (z, da, dz) = (&z[..n], &da[..n], &mut dz[..n]);
        let each = |f: &dyn Fn(f32, f32) -> f32, dz: &mut [f32]| {
            for i in 0..n {
                dz[i] = da[i] * f(z[i], a[i]);
            }
        };
        match self {
            Activation::Relu => dz.iter_mut().zip(a.iter().zip(da)).for_each(|(dz, (&a, &da))| {
                *dz = if a > 0.0 { da } else { 0.0 };
            }),
            Activation::LeakyRelu { slope } => each(&|z, _| if z > 0.0 { 1.0 } else { slope }, dz),
            Activation::Tanh => each(&|_, a| 1.0 - a * a, dz),
            Activation::Sigmoid => each(&|_, a| a * (1.0 - a), dz),
            Activation::Gelu => each(
                &|z, _| 0.5 * (1.0 + libm::erff(z * FRAC_1_SQRT_2)) + z * FRAC_1_SQRT_2PI * (-0.5 * z * z).exp(),
                dz,
            ),
            Activation::Selu => each(&|z, a| if z > 0.0 { SELU_LAMBDA } else { a + SELU_LAMBDA * SELU_ALPHA }, dz),
            Activation::Identity => dz.copy_from_slice(da),
        }
    }

    /// Every kind, with PyTorch's default leaky slope (for tests and the
    /// catalogue).
    pub fn all() -> [Activation; 7] {
        [
            Activation::Relu,
            Activation::LeakyRelu { slope: 0.01 },
            Activation::Tanh,
            Activation::Sigmoid,
            Activation::Gelu,
            Activation::Selu,
            Activation::Identity,
        ]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Values against closed forms computed independently (PyTorch gives
    /// the same: `F.gelu(1.) = 0.8413`, `F.selu(-1.) = -1.1113`).
    #[test]
    fn known_values() {
        let at = |act: Activation, z: f32| {
            let mut a = [0.0];
            act.forward(&[z], &mut a);
            a[0]
        };
        assert_eq!(at(Activation::Relu, -2.0), 0.0);
        assert!((at(Activation::LeakyRelu { slope: 0.01 }, -2.0) + 0.02).abs() < 1e-7);
        assert!((at(Activation::Gelu, 1.0) - 0.841_344_7).abs() < 1e-6);
        assert!((at(Activation::Gelu, -1.0) + 0.158_655_3).abs() < 1e-6);
        assert!((at(Activation::Selu, -1.0) + 1.111_330_7).abs() < 1e-6);
        assert!((at(Activation::Selu, 2.0) - 2.101_402).abs() < 1e-6);
        assert!((at(Activation::Sigmoid, 0.0) - 0.5).abs() < 1e-7);
    }

    #[test]
    fn settings_spell_them_as_documented() {
        #[derive(Deserialize)]
        struct S {
            a: Activation,
        }
        let parse = |t: &str| toml::from_str::<S>(t).map(|s| s.a);
        assert_eq!(parse("a = \"gelu\"").unwrap(), Activation::Gelu);
        assert_eq!(parse("a = { leaky_relu = { slope = 0.2 } }").unwrap(), Activation::LeakyRelu { slope: 0.2 });
        assert!(parse("a = \"swish\"").is_err());
    }
}
