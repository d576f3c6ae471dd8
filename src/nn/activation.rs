//! Element-wise nonlinearities, each a forward/backward pair.

use serde::{Deserialize, Serialize};

/// A nonlinearity applied after each hidden Linear layer.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Activation {
    /// `max(0, z)`.
    Relu,
    /// `tanh(z)`.
    Tanh,
    /// `1 / (1 + exp(-z))`.
    Sigmoid,
    /// `z` (a linear network).
    Identity,
}

impl Activation {
    /// `a = f(z)` element-wise; `z` and `a` have the same length.
    pub fn forward(self, z: &[f32], a: &mut [f32]) {
        let a = &mut a[..z.len()];
        match self {
            Activation::Relu => a.iter_mut().zip(z).for_each(|(a, &z)| *a = z.max(0.0)),
            Activation::Tanh => a.iter_mut().zip(z).for_each(|(a, &z)| *a = z.tanh()),
            Activation::Sigmoid => a.iter_mut().zip(z).for_each(|(a, &z)| *a = 1.0 / (1.0 + (-z).exp())),
            Activation::Identity => a.copy_from_slice(z),
        }
    }

    /// `dz = da * f'(z)` element-wise, with `f'` computed from the saved
    /// output `a = f(z)` (ReLU: `a > 0`; tanh: `1 - a^2`; sigmoid: `a (1 - a)`).
    pub fn backward(self, a: &[f32], da: &[f32], dz: &mut [f32]) {
        let dz = &mut dz[..a.len()];
        let da = &da[..a.len()];
        let it = dz.iter_mut().zip(a.iter().zip(da));
        match self {
            Activation::Relu => it.for_each(|(dz, (&a, &da))| *dz = if a > 0.0 { da } else { 0.0 }),
            Activation::Tanh => it.for_each(|(dz, (&a, &da))| *dz = da * (1.0 - a * a)),
            Activation::Sigmoid => it.for_each(|(dz, (&a, &da))| *dz = da * a * (1.0 - a)),
            Activation::Identity => dz.copy_from_slice(da),
        }
    }
}
