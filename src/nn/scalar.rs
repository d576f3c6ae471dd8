//! One scalar applied to every feature: a multiplier `y = a * x` (the
//! residual branch's alpha of SkipInit, ReZero and Fixup) or a shift
//! `y = x + b` (Fixup's scalar biases). The scalar is a parameter in the
//! model's buffer (trainable) or a constant of the layer (fixed).

/// Multiply by the scalar, or add it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ScalarOp {
    /// `y = a * x`.
    Multiply,
    /// `y = x + b`.
    Add,
}

/// Where the scalar's value lives.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum ScalarValue {
    /// A trainable parameter at this offset of the parameter buffer.
    Param(usize),
    /// A constant, never trained.
    Fixed(f32),
}

/// A scalar layer.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Scalar {
    /// What it does with the scalar.
    pub op: ScalarOp,
    /// The scalar.
    pub value: ScalarValue,
}

impl Scalar {
    /// Parameters in the model's buffer: 1 when trainable.
    pub fn num_params(&self) -> usize {
        usize::from(matches!(self.value, ScalarValue::Param(_)))
    }

    /// The scalar's current value.
    pub fn get(&self, params: &[f32]) -> f32 {
        match self.value {
            ScalarValue::Param(offset) => params[offset],
            ScalarValue::Fixed(v) => v,
        }
    }

    /// Forward over `x` `[batch * width]` into `y` (same length).
    pub fn forward(&self, params: &[f32], x: &[f32], y: &mut [f32]) {
        let s = self.get(params);
        let y = &mut y[..x.len()];
        match self.op {
            ScalarOp::Multiply => y.iter_mut().zip(x).for_each(|(y, &x)| *y = s * x),
            ScalarOp::Add => y.iter_mut().zip(x).for_each(|(y, &x)| *y = x + s),
        }
    }

    /// Backward in place over `d` = dL/dy `[batch * width]`, which becomes
    /// dL/dx (`a * dy` for a multiplier, `dy` for a shift); a trainable
    /// scalar's gradient (`sum(dy * x)`, or `sum(dy)`, summed in f64) goes
    /// into `grads`. `x` is the forward's input.
    pub fn backward(&self, params: &[f32], x: &[f32], d: &mut [f32], grads: &mut [f32]) {
        let s = self.get(params);
        let d = &mut d[..x.len()];
        let grad = match self.op {
            ScalarOp::Multiply => {
                let g: f64 = d.iter().zip(x).map(|(&d, &x)| f64::from(d) * f64::from(x)).sum();
                d.iter_mut().for_each(|d| *d *= s);
                g
            }
            ScalarOp::Add => d.iter().map(|&d| f64::from(d)).sum(),
        };
        if let ScalarValue::Param(offset) = self.value {
            grads[offset] = grad as f32;
        }
    }
}
