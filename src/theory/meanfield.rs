//! Mean-field signal propagation through a wide random network (Poole et
//! al. 2016, "Exponential expressivity in deep neural networks through
//! transient chaos"; Schoenholz et al. 2017, "Deep Information
//! Propagation"): the maps of one activation, with weights of variance
//! sigma_w^2 / fan_in and biases of variance sigma_b^2.

use super::quadrature::{Gauss, HALF_NODES, NODES};
use crate::nn::Activation;

/// The maps of the mean-field recursions for one activation.
pub struct MeanField {
    activation: Activation,
    /// One-dimensional expectations (split at the kinks at 0).
    gauss: Gauss,
    /// Two-dimensional expectations (the product rule).
    hermite: Gauss,
}

/// Where a network lies relative to the edge of chaos.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Regime {
    /// chi_1 < 1: nearby inputs converge, gradients vanish with depth.
    Ordered,
    /// chi_1 = 1 (within 2 %): signals and gradients survive to great depth.
    Critical,
    /// chi_1 > 1: nearby inputs decorrelate, gradients explode.
    Chaotic,
    /// Per-layer chi_1 on both sides of 1 (a network that is not uniform).
    Mixed,
}

impl Regime {
    /// The regime of a chi_1.
    pub fn of(chi1: f64) -> Self {
        if (chi1 - 1.0).abs() <= 0.02 {
            Regime::Critical
        } else if chi1 < 1.0 {
            Regime::Ordered
        } else {
            Regime::Chaotic
        }
    }
}

/// The fixed point of a uniform network and what follows from it.
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct FixedPoint {
    /// q*: the pre-activation variance every layer tends to (Poole Eq. 4).
    pub q_star: f64,
    /// chi_1 at q* (Poole Eq. 7; Schoenholz Eq. 5).
    pub chi1: f64,
    /// c*: the correlation two inputs tend to (1 in the ordered phase).
    pub c_star: f64,
    /// xi_q: layers over which the variance reaches q* (Schoenholz Eq. 7);
    /// infinite (`null` in JSON) at the edge of chaos.
    #[serde(with = "crate::nonfinite::infinite_as_null")]
    pub xi_q: f64,
    /// xi_c: layers over which correlations reach c* (Schoenholz Eq. 9);
    /// Schoenholz et al. find networks trainable to about 6 xi_c.
    #[serde(with = "crate::nonfinite::infinite_as_null")]
    pub xi_c: f64,
}

impl MeanField {
    /// The maps of `activation`.
    pub fn new(activation: Activation) -> Self {
        MeanField { activation, gauss: Gauss::split_legendre(HALF_NODES), hermite: Gauss::new(NODES) }
    }

    /// phi(z), phi'(z) and phi''(z) in f64 (PyTorch's definitions, as
    /// [`Activation::forward`]; a kink's Dirac part in phi'' multiplies
    /// phi(0) = 0 wherever it is used, so it is left out).
    pub fn phi(&self, z: f64) -> (f64, f64, f64) {
        use crate::nn::activation::{SELU_ALPHA, SELU_LAMBDA};
        let (lambda, alpha) = (f64::from(SELU_LAMBDA), f64::from(SELU_ALPHA));
        match self.activation {
            Activation::Relu => (z.max(0.0), if z > 0.0 { 1.0 } else { 0.0 }, 0.0),
            Activation::LeakyRelu { slope } => {
                let s = f64::from(slope);
                if z > 0.0 {
                    (z, 1.0, 0.0)
                } else {
                    (s * z, s, 0.0)
                }
            }
            Activation::Identity => (z, 1.0, 0.0),
            Activation::Tanh => {
                let t = z.tanh();
                (t, 1.0 - t * t, -2.0 * t * (1.0 - t * t))
            }
            Activation::Sigmoid => {
                let s = 1.0 / (1.0 + (-z).exp());
                (s, s * (1.0 - s), s * (1.0 - s) * (1.0 - 2.0 * s))
            }
            Activation::Gelu => {
                let density = (-0.5 * z * z).exp() / (2.0 * std::f64::consts::PI).sqrt();
                let cdf = 0.5 * libm::erfc(-z * std::f64::consts::FRAC_1_SQRT_2);
                (z * cdf, cdf + z * density, density * (2.0 - z * z))
            }
            Activation::Selu => {
                if z > 0.0 {
                    (lambda * z, lambda, 0.0)
                } else {
                    let e = lambda * alpha * z.exp();
                    (e - lambda * alpha, e, e)
                }
            }
        }
    }

    /// E[phi(sqrt(q) z)^2]: the post-activation second moment of a layer
    /// whose pre-activations have variance q.
    pub fn post_second_moment(&self, q: f64) -> f64 {
        let s = q.max(0.0).sqrt();
        self.gauss.expect(|z| self.phi(s * z).0.powi(2))
    }

    /// E[phi'(sqrt(q) z)^2]: chi_1 / sigma_w^2 (Poole Eq. 7).
    pub fn derivative_moment(&self, q: f64) -> f64 {
        // At q = 0, the limit from above (ReLU's 1/2, not phi'(0) = 0).
        let s = q.max(1e-300).sqrt();
        self.gauss.expect(|z| self.phi(s * z).1.powi(2))
    }

    /// The variance map q -> sigma_w^2 E[phi(sqrt(q) z)^2] + sigma_b^2
    /// (Poole Eq. 3).
    pub fn variance_map(&self, q: f64, sigma_w2: f64, sigma_b2: f64) -> f64 {
        sigma_w2 * self.post_second_moment(q) + sigma_b2
    }

    /// The correlation map of two inputs with variances q* and correlation c
    /// (Poole Eq. 5, Schoenholz Eq. 3), and chi_c = sigma_w^2 E[phi'(u1) phi'(u2)].
    fn correlation_map(&self, q: f64, c: f64, sigma_w2: f64, sigma_b2: f64) -> (f64, f64) {
        let s = q.sqrt();
        let r = (1.0 - c * c).max(0.0).sqrt();
        let (mut phis, mut derivatives) = (0.0, 0.0);
        let h = &self.hermite;
        for (&z1, &w1) in h.nodes.iter().zip(&h.weights) {
            let (a1, d1, _) = self.phi(s * z1);
            for (&z2, &w2) in h.nodes.iter().zip(&h.weights) {
                let (a2, d2, _) = self.phi(s * (c * z1 + r * z2));
                phis += w1 * w2 * a1 * a2;
                derivatives += w1 * w2 * d1 * d2;
            }
        }
        ((sigma_w2 * phis + sigma_b2) / q, sigma_w2 * derivatives)
    }

    /// The fixed point of a uniform network, or `None` when the variance
    /// grows without bound (e.g. ReLU with sigma_w^2 > 2 and a bias). With
    /// no bias the variance may die away: q* is then (about) 0 and chi_1 is
    /// its limit there.
    pub fn fixed_point(&self, sigma_w2: f64, sigma_b2: f64) -> Option<FixedPoint> {
        let q = self.q_star(sigma_w2, sigma_b2)?;
        let chi1 = sigma_w2 * self.derivative_moment(q);
        let s = q.sqrt();
        let curvature = sigma_w2
            * self.gauss.expect(|z| {
                let (a, _, dd) = self.phi(s * z);
                dd * a
            });
        // A depth scale -1 / ln(x) is infinite at x = 1; rounding must not
        // turn an exactly critical network (Kaiming with ReLU) into a huge
        // negative one, nor into a chaotic one.
        let scale = |x: f64| if (x - 1.0).abs() < 1e-9 { f64::INFINITY } else { -1.0 / x.ln() };
        let xi_q = scale(chi1 + curvature);
        let ordered = chi1 < 1.0 + 1e-9;
        let c_star = if ordered { 1.0 } else { self.correlation_fixed_point(q, sigma_w2, sigma_b2) };
        let chi_c = if ordered { chi1 } else { self.correlation_map(q, c_star, sigma_w2, sigma_b2).1 };
        Some(FixedPoint { q_star: q, chi1, c_star, xi_q, xi_c: scale(chi_c) })
    }

    /// q*: the fixed point the variance map reaches from q = 1 (`None`
    /// when it grows without bound; 0 when the variance dies away). The map
    /// is increasing, so the iteration from 1 moves monotonically to the
    /// nearest root of map(q) - q on its side, found here by bracketing and
    /// bisection (iterating would take millions of steps near the edge).
    pub fn q_star(&self, sigma_w2: f64, sigma_b2: f64) -> Option<f64> {
        let h = |q: f64| self.variance_map(q, sigma_w2, sigma_b2) - q;
        let at_one = h(1.0);
        if at_one.abs() <= 1e-13 {
            return Some(1.0);
        }
        let (mut lo, mut hi) = if at_one > 0.0 {
            let mut hi = 2.0;
            while h(hi) >= 0.0 {
                hi *= 2.0;
                if hi > 1e200 {
                    return None;
                }
            }
            (hi / 2.0, hi)
        } else {
            let mut lo = 0.5;
            while h(lo) <= 0.0 {
                lo /= 2.0;
                if lo < 1e-200 {
                    return Some(0.0);
                }
            }
            (lo, lo * 2.0)
        };
        // h(lo) > 0 > h(hi).
        for _ in 0..200 {
            let mid = 0.5 * (lo + hi);
            if h(mid) > 0.0 {
                lo = mid;
            } else {
                hi = mid;
            }
            if hi - lo <= 1e-15 * hi {
                break;
            }
        }
        Some(0.5 * (lo + hi))
    }

    /// The stable correlation below 1 of the chaotic phase.
    fn correlation_fixed_point(&self, q: f64, sigma_w2: f64, sigma_b2: f64) -> f64 {
        let mut c = 0.0;
        for _ in 0..10_000 {
            let next = self.correlation_map(q, c, sigma_w2, sigma_b2).0.clamp(-1.0, 1.0);
            if (next - c).abs() < 1e-12 {
                return next;
            }
            c = next;
        }
        c
    }

    /// chi_1 at the fixed point as a function of sigma_w^2 (infinite when
    /// the variance grows without bound).
    pub fn chi1_at(&self, sigma_w2: f64, sigma_b2: f64) -> f64 {
        self.q_star(sigma_w2, sigma_b2).map_or(f64::INFINITY, |q| sigma_w2 * self.derivative_moment(q))
    }

    /// The critical weight variance: the sigma_w^2 where chi_1 = 1 at the
    /// fixed point (the edge of chaos, Poole Fig. 2, Schoenholz Fig. 1), by
    /// bisection on log sigma_w^2 in [1e-2, 1e3] until the midpoint no
    /// longer moves; `None` if there is none there (a linear network with
    /// bias, say).
    ///
    /// Every point of a sweep over the weights' scale asks for the same
    /// value (about 3,000 quadratures), so it is kept per activation and
    /// sigma_b^2 for the rest of the process: the same arguments give the
    /// same bits either way.
    pub fn critical_weight_variance(&self, sigma_b2: f64) -> Option<f64> {
        static KNOWN: crate::memo::Memo<(Activation, u64), Option<f64>> = crate::memo::Memo::new();
        KNOWN.get_or_insert_with((self.activation, sigma_b2.to_bits()), || {
            self.bisect_critical_weight_variance(sigma_b2)
        })
    }

    /// [`MeanField::critical_weight_variance`], computed.
    fn bisect_critical_weight_variance(&self, sigma_b2: f64) -> Option<f64> {
        let (mut lo, mut hi) = (1e-2f64.ln(), 1e3f64.ln());
        let above = |x: f64| self.chi1_at(x.exp(), sigma_b2) > 1.0;
        if above(lo) || !above(hi) {
            return None;
        }
        for _ in 0..80 {
            let mid = 0.5 * (lo + hi);
            if mid == lo || mid == hi {
                break; // every later step would leave lo and hi as they are
            }
            if above(mid) {
                hi = mid;
            } else {
                lo = mid;
            }
        }
        Some((0.5 * (lo + hi)).exp())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// What is kept is what is computed, per activation and sigma_b^2.
    #[test]
    fn the_critical_weight_variance_kept_is_the_one_computed() {
        for activation in [Activation::Tanh, Activation::Relu] {
            let field = MeanField::new(activation);
            for sigma_b2 in [0.0, 0.05] {
                let computed = field.bisect_critical_weight_variance(sigma_b2).map(f64::to_bits);
                for _ in 0..2 {
                    assert_eq!(field.critical_weight_variance(sigma_b2).map(f64::to_bits), computed);
                }
            }
        }
        let (tanh, relu) = (MeanField::new(Activation::Tanh), MeanField::new(Activation::Relu));
        assert_ne!(tanh.critical_weight_variance(0.05), relu.critical_weight_variance(0.05));
    }
}
