//! LSUV's data-driven rescaling, the second half of its initialisation.

use super::model::{Model, Workspace};

/// LSUV's second half (Mishkin & Matas 2016, Algorithm 1): for each layer
/// in order, forward the batch in `ws` (`batch` rows), measure the variance
/// of the layer's output `z = x W^T + b`, and divide the layer's weights by
/// its square root, until the variance is within `tol` of 1 or `max_iter`
/// rescalings were made. Returns each layer's final output variance.
pub fn lsuv(model: &mut Model, ws: &mut Workspace, batch: usize, tol: f64, max_iter: usize) -> Vec<f64> {
    let mut variances = Vec::with_capacity(model.linear_count());
    for l in 0..model.linear_count() {
        let layer = *model.linear(l);
        let mut variance = f64::NAN;
        for _ in 0..=max_iter {
            model.forward_train(ws, batch);
            let z = &model.pre(ws, l)[..batch * layer.fan_out];
            let n = z.len() as f64;
            let mean = z.iter().map(|&v| f64::from(v)).sum::<f64>() / n;
            variance = z.iter().map(|&v| (f64::from(v) - mean).powi(2)).sum::<f64>() / n;
            if (variance - 1.0).abs() < tol || !(variance > 0.0 && variance.is_finite()) {
                break;
            }
            let scale = (1.0 / variance.sqrt()) as f32;
            model.params[layer.weight_range()].iter_mut().for_each(|w| *w *= scale);
        }
        variances.push(variance);
    }
    variances
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::nn::{Activation, Init};
    use crate::rng::Stream;

    /// After LSUV every layer's output variance on the batch is within the
    /// tolerance of 1, whatever the scale of the input.
    #[test]
    fn every_layer_ends_with_unit_output_variance() {
        let mut model = Model::mlp(&[40, 64, 32, 16, 10], Activation::Tanh);
        model.initialise(&Init::Lsuv { tol: 0.05, max_iter: 20 }, &Init::zeros(), 3);
        let batch = 100;
        let mut ws = Workspace::new(&model, batch);
        let mut s = Stream::new(1, "lsuv-test", 0);
        ws.input.iter_mut().for_each(|x| *x = 7.0 * s.standard_normal() as f32);
        let variances = lsuv(&mut model, &mut ws, batch, 0.05, 20);
        assert_eq!(variances.len(), 4);
        assert!(variances.iter().all(|v| (v - 1.0).abs() < 0.05), "{variances:?}");
        // The orthogonal start: rows of the first layer were orthogonal, and
        // rescaling keeps them so (W W^T a multiple of I).
        let w = &model.params[model.linear(1).weight_range()];
        let dot: f64 = (0..64).map(|k| f64::from(w[k]) * f64::from(w[64 + k])).sum();
        assert!(dot.abs() < 1e-5, "{dot}");
    }
}
