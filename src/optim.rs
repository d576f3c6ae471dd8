//! Optimisers. Each owns its state and updates a parameter buffer in place
//! from a gradient buffer of the same layout.

use serde::{Deserialize, Serialize};

/// Plain stochastic gradient descent, `p <- p - lr * g`, as PyTorch's
/// `torch.optim.SGD(params, lr)` with no momentum or weight decay.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Sgd {
    /// Learning rate.
    pub lr: f64,
}

impl Sgd {
    /// One update of every parameter.
    pub fn step(&mut self, params: &mut [f32], grads: &[f32]) {
        assert_eq!(params.len(), grads.len(), "parameter and gradient buffers differ");
        let lr = self.lr as f32;
        params.iter_mut().zip(grads).for_each(|(p, &g)| *p -= lr * g);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sgd_moves_against_the_gradient() {
        let mut p = vec![1.0, -2.0];
        Sgd { lr: 0.5 }.step(&mut p, &[2.0, -4.0]);
        assert_eq!(p, vec![0.0, 0.0]);
    }
}
