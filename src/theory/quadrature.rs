//! Gaussian expectations: E[f(z)] for z ~ N(0, 1), and E[f(z1, z2)] for a
//! pair of standard normals.
//!
//! Two rules. Gauss-Hermite (nodes at the roots of the Hermite polynomial
//! H_n, found by Newton's method on the orthonormal recurrence; Abramowitz
//! and Stegun 25.4.46) is the natural rule for smooth integrands and gives
//! the two-dimensional product rule. Activations with a kink or a jump at 0
//! (ReLU and its derivative, SELU's derivative) converge slowly under it,
//! so one-dimensional expectations use Gauss-Legendre on [-10, 0] and
//! [0, 10] separately (A&S 25.4.29), the normal density folded into the
//! weights: each half is smooth, and the mass beyond 10 is below 1e-23.

/// A quadrature rule for the standard normal: `E[f(z)] = sum w_i f(x_i)`.
#[derive(Clone, Debug)]
pub struct Gauss {
    /// Nodes, in z units.
    pub nodes: Vec<f64>,
    /// Weights, summing to 1.
    pub weights: Vec<f64>,
}

/// The number of nodes the theory uses: exact for polynomials of degree up
/// to 159, and within 1e-10 of the tanh and sigmoid moments it needs.
pub const NODES: usize = 80;

/// Gauss-Legendre nodes per half line of [`Gauss::split_legendre`].
pub const HALF_NODES: usize = 64;

/// Where [`Gauss::split_legendre`] stops integrating.
const HALF_WIDTH: f64 = 10.0;

impl Gauss {
    /// Gauss-Legendre with `n` nodes on each of [-10, 0] and [0, 10],
    /// weighted by the normal density: exact to rounding for integrands
    /// smooth on each side of 0.
    pub fn split_legendre(n: usize) -> Self {
        let (nodes, weights) = legendre(n);
        let density = |z: f64| (-0.5 * z * z).exp() / (2.0 * std::f64::consts::PI).sqrt();
        let half = HALF_WIDTH / 2.0;
        let mut pairs: Vec<(f64, f64)> = Vec::with_capacity(2 * n);
        for (x, w) in nodes.iter().zip(&weights) {
            // [-1, 1] onto [0, 10], then mirrored.
            let z = half * (x + 1.0);
            pairs.push((z, half * w * density(z)));
            pairs.push((-z, half * w * density(z)));
        }
        pairs.sort_by(|a, b| a.0.total_cmp(&b.0));
        Gauss { nodes: pairs.iter().map(|p| p.0).collect(), weights: pairs.iter().map(|p| p.1).collect() }
    }

    /// The Gauss-Hermite rule with `n` nodes (`n` even, at least 2).
    pub fn new(n: usize) -> Self {
        assert!(n >= 2 && n.is_multiple_of(2), "an even number of nodes");
        let half = n / 2;
        let mut roots: Vec<f64> = Vec::with_capacity(half);
        let mut weights = Vec::with_capacity(half);
        let nf = n as f64;
        for i in 0..half {
            // Starting guesses for the roots from the largest down
            // (asymptotic forms for the first ones, then extrapolation).
            let mut x = match i {
                0 => (2.0 * nf + 1.0).sqrt() - 1.855_75 * (2.0 * nf + 1.0).powf(-1.0 / 6.0),
                1 => roots[0] - 1.14 * nf.powf(0.426) / roots[0],
                2 => 1.86 * roots[1] - 0.86 * roots[0],
                3 => 1.91 * roots[2] - 0.91 * roots[1],
                _ => 2.0 * roots[i - 1] - roots[i - 2],
            };
            let mut derivative = 0.0;
            for _ in 0..100 {
                let (p, d) = orthonormal_hermite(n, x);
                derivative = d;
                let step = p / d;
                x -= step;
                if step.abs() <= 1e-15 * x.abs().max(1.0) {
                    break;
                }
            }
            roots.push(x);
            // Weight for exp(-x^2): 2 / psi_n'(x)^2 with the orthonormal psi.
            weights.push(2.0 / (derivative * derivative));
        }
        // exp(-x^2) with x = z / sqrt(2): nodes scale by sqrt(2), weights by 1/sqrt(pi).
        let scale = std::f64::consts::PI.sqrt();
        let mut nodes = Vec::with_capacity(n);
        let mut w = Vec::with_capacity(n);
        for (x, wt) in roots.iter().zip(&weights).rev() {
            nodes.push(-x * std::f64::consts::SQRT_2);
            w.push(wt / scale);
        }
        for (x, wt) in roots.iter().zip(&weights) {
            nodes.push(x * std::f64::consts::SQRT_2);
            w.push(wt / scale);
        }
        let nodes_sorted = {
            let mut pairs: Vec<(f64, f64)> = nodes.into_iter().zip(w).collect();
            pairs.sort_by(|a, b| a.0.total_cmp(&b.0));
            pairs
        };
        Gauss { nodes: nodes_sorted.iter().map(|p| p.0).collect(), weights: nodes_sorted.iter().map(|p| p.1).collect() }
    }

    /// E[f(z)], z ~ N(0, 1).
    pub fn expect(&self, f: impl Fn(f64) -> f64) -> f64 {
        self.nodes.iter().zip(&self.weights).map(|(&z, &w)| w * f(z)).sum()
    }

    /// E[f(z1, z2)] for independent standard normals z1, z2 (the product rule).
    pub fn expect2(&self, f: impl Fn(f64, f64) -> f64) -> f64 {
        let mut sum = 0.0;
        for (&z1, &w1) in self.nodes.iter().zip(&self.weights) {
            for (&z2, &w2) in self.nodes.iter().zip(&self.weights) {
                sum += w1 * w2 * f(z1, z2);
            }
        }
        sum
    }
}

/// Gauss-Legendre nodes and weights on [-1, 1]: the roots of P_n by Newton's
/// method from cos(pi (i + 3/4) / (n + 1/2)), weights 2 / ((1 - x^2) P_n'(x)^2).
fn legendre(n: usize) -> (Vec<f64>, Vec<f64>) {
    let mut nodes = Vec::with_capacity(n);
    let mut weights = Vec::with_capacity(n);
    for i in 0..n {
        let mut x = (std::f64::consts::PI * (i as f64 + 0.75) / (n as f64 + 0.5)).cos();
        let mut derivative = 1.0;
        for _ in 0..100 {
            // P_j by (j) P_j = (2j - 1) x P_{j-1} - (j - 1) P_{j-2}.
            let (mut p0, mut p1) = (1.0, x);
            for j in 2..=n {
                let jf = j as f64;
                let p2 = ((2.0 * jf - 1.0) * x * p1 - (jf - 1.0) * p0) / jf;
                p0 = p1;
                p1 = p2;
            }
            derivative = n as f64 * (x * p1 - p0) / (x * x - 1.0);
            let step = p1 / derivative;
            x -= step;
            if step.abs() < 1e-16 {
                break;
            }
        }
        nodes.push(x);
        weights.push(2.0 / ((1.0 - x * x) * derivative * derivative));
    }
    (nodes, weights)
}

/// The orthonormal Hermite function's polynomial part psi_n(x) (for the
/// weight exp(-x^2)) and its derivative, by the three-term recurrence
/// psi_j = x sqrt(2/j) psi_{j-1} - sqrt((j-1)/j) psi_{j-2}, which stays in
/// range for large n where H_n itself overflows.
fn orthonormal_hermite(n: usize, x: f64) -> (f64, f64) {
    let mut previous = 0.0;
    let mut current = std::f64::consts::PI.powf(-0.25);
    for j in 1..=n {
        let jf = j as f64;
        let next = x * (2.0 / jf).sqrt() * current - ((jf - 1.0) / jf).sqrt() * previous;
        previous = current;
        current = next;
    }
    // psi_n' = sqrt(2n) psi_{n-1}.
    (current, (2.0 * n as f64).sqrt() * previous)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn moments_of_the_normal_are_exact() {
        let g = Gauss::new(NODES);
        assert!((g.expect(|_| 1.0) - 1.0).abs() < 1e-13);
        assert!(g.expect(|z| z).abs() < 1e-13);
        assert!((g.expect(|z| z * z) - 1.0).abs() < 1e-12);
        assert!((g.expect(|z| z.powi(4)) - 3.0).abs() < 1e-11);
        assert!((g.expect(|z| z.powi(8)) - 105.0).abs() < 1e-8);
        // E[cos z] = exp(-1/2), a smooth non-polynomial.
        assert!((g.expect(f64::cos) - (-0.5f64).exp()).abs() < 1e-13);
    }

    #[test]
    fn a_kink_or_a_jump_at_zero_integrates_exactly_with_the_split_rule() {
        let g = Gauss::split_legendre(HALF_NODES);
        assert!((g.expect(|z| z.max(0.0).powi(2)) - 0.5).abs() < 1e-13);
        assert!((g.expect(|z| if z > 0.0 { 1.0 } else { 0.0 }) - 0.5).abs() < 1e-13);
        // E[exp(2z) 1{z < 0}] = exp(2) Phi(-2).
        let expected = 2f64.exp() * 0.5 * libm::erfc(2.0 * std::f64::consts::FRAC_1_SQRT_2);
        assert!((g.expect(|z| if z < 0.0 { (2.0 * z).exp() } else { 0.0 }) - expected).abs() < 1e-13);
        assert!((g.expect(|z| z.powi(4)) - 3.0).abs() < 1e-12);
    }

    #[test]
    fn the_product_rule_integrates_correlated_pairs() {
        let g = Gauss::new(NODES);
        let c: f64 = 0.3;
        // E[u1 u2] = c for u2 = c z1 + sqrt(1 - c^2) z2.
        let e = g.expect2(|z1, z2| z1 * (c * z1 + (1.0 - c * c).sqrt() * z2));
        assert!((e - c).abs() < 1e-12);
    }
}
