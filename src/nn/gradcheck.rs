//! Finite-difference checks of every backward pass: each analytic gradient
//! is compared with the central difference `(f(x+h) - f(x-h)) / 2h` of a
//! scalar function of the layer's output, computed in f64 where the layer
//! allows it and otherwise with a step large enough for f32.

use super::activation::Activation;
use super::init::Init;
use super::layer::Layer;
use super::linear::Linear;
use super::loss::softmax_cross_entropy;
use super::model::{Model, Workspace};
use super::scalar::{Scalar, ScalarValue};
use crate::rng::Stream;

fn random(n: usize, scale: f32, stream: &mut Stream) -> Vec<f32> {
    (0..n).map(|_| scale * (2.0 * stream.unit_f32() - 1.0)).collect()
}

/// Relative error with a floor, so tiny gradients compare absolutely.
fn assert_close(analytic: f32, numeric: f64, what: &str) {
    let err = (f64::from(analytic) - numeric).abs() / numeric.abs().max(1e-2);
    assert!(err < 2e-3, "{what}: analytic {analytic} vs numeric {numeric} (rel err {err})");
}

/// `L = sum(r * (x W^T + b))` evaluated in f64.
fn linear_objective(layer: &Linear, params: &[f32], x: &[f32], r: &[f32], batch: usize) -> f64 {
    let mut z = vec![0.0f32; batch * layer.fan_out];
    layer.forward(params, x, &mut z, batch);
    z.iter().zip(r).map(|(&z, &r)| f64::from(z) * f64::from(r)).sum()
}

#[test]
#[allow(clippy::needless_range_loop)] // i indexes params and grads alike
fn linear_backward_matches_finite_differences() {
    let mut s = Stream::new(7, "gradcheck/linear", 0);
    let (batch, fan_in, fan_out) = (3, 5, 4);
    let layer = Linear { fan_in, fan_out, offset: 2 };
    let mut params = random(layer.offset + layer.num_params(), 1.0, &mut s);
    let mut x = random(batch * fan_in, 1.0, &mut s);
    let r = random(batch * fan_out, 1.0, &mut s);
    let mut grads = vec![0.0; params.len()];
    let mut dx = vec![0.0; x.len()];
    layer.backward(&params, &x, &r, &mut grads, Some(&mut dx), batch);
    let h = 1e-2f32; // the objective is linear in each parameter, so h can be large
    for i in layer.offset..params.len() {
        let keep = params[i];
        params[i] = keep + h;
        let plus = linear_objective(&layer, &params, &x, &r, batch);
        params[i] = keep - h;
        let minus = linear_objective(&layer, &params, &x, &r, batch);
        params[i] = keep;
        assert_close(grads[i], (plus - minus) / (2.0 * f64::from(h)), &format!("param {i}"));
    }
    for i in 0..x.len() {
        let keep = x[i];
        x[i] = keep + h;
        let plus = linear_objective(&layer, &params, &x, &r, batch);
        x[i] = keep - h;
        let minus = linear_objective(&layer, &params, &x, &r, batch);
        x[i] = keep;
        assert_close(dx[i], (plus - minus) / (2.0 * f64::from(h)), &format!("input {i}"));
    }
}

#[test]
fn activation_backward_matches_finite_differences() {
    for act in Activation::all() {
        let mut s = Stream::new(3, "gradcheck/activation", 0);
        // Keep away from ReLU's kink at 0, where the derivative is undefined.
        let z: Vec<f32> =
            random(64, 3.0, &mut s).into_iter().map(|v| if v.abs() < 0.1 { v + 0.3 } else { v }).collect();
        let da = random(z.len(), 1.0, &mut s);
        let mut a = vec![0.0; z.len()];
        act.forward(&z, &mut a);
        let mut dz = vec![0.0; z.len()];
        act.backward(&z, &a, &da, &mut dz);
        let h = 1e-3f32;
        for i in 0..z.len() {
            let (mut up, mut down) = ([0.0f32], [0.0f32]);
            act.forward(&[z[i] + h], &mut up);
            act.forward(&[z[i] - h], &mut down);
            let numeric = f64::from(da[i]) * (f64::from(up[0]) - f64::from(down[0])) / (2.0 * f64::from(h));
            let err = (f64::from(dz[i]) - numeric).abs();
            assert!(err < 2e-3, "{act:?} at z={}: analytic {} numeric {numeric}", z[i], dz[i]);
        }
    }
}

#[test]
#[allow(clippy::needless_range_loop)] // i indexes logits and grads alike
fn softmax_cross_entropy_matches_finite_differences_and_closed_form() {
    let mut s = Stream::new(4, "gradcheck/loss", 0);
    let (batch, classes) = (4, 10);
    let mut logits = random(batch * classes, 4.0, &mut s);
    let labels = [3u8, 0, 9, 3];
    let mut grad = vec![0.0; logits.len()];
    let loss = softmax_cross_entropy(&logits, &labels, &mut grad, classes);
    // Closed form in f64.
    let reference = |logits: &[f32]| -> f64 {
        let mut total = 0.0;
        for (row, &y) in logits.chunks(classes).zip(&labels) {
            let lse = row.iter().map(|&v| f64::from(v).exp()).sum::<f64>().ln();
            total += lse - f64::from(row[usize::from(y)]);
        }
        total / batch as f64
    };
    assert!((f64::from(loss) - reference(&logits)).abs() < 1e-5);
    // Equal logits give ln(classes).
    let mut g = vec![0.0; classes];
    let flat = softmax_cross_entropy(&[0.5; 10], &[2], &mut g, classes);
    assert!((f64::from(flat) - 10f64.ln()).abs() < 1e-6);
    let h = 1e-3f32;
    for i in 0..logits.len() {
        let keep = logits[i];
        logits[i] = keep + h;
        let plus = reference(&logits);
        logits[i] = keep - h;
        let minus = reference(&logits);
        logits[i] = keep;
        assert_close(grad[i], (plus - minus) / (2.0 * f64::from(h)), &format!("logit {i}"));
    }
}

/// Compares every parameter's gradient of the model's mean loss on the
/// batch in `ws` with central differences of the loss (f32 losses: an
/// absolute tolerance of a few 1e-4).
#[allow(clippy::needless_range_loop)] // i indexes params and grads alike
fn check_model_gradient(model: &mut Model, ws: &mut Workspace, labels: &[u8], what: &str) {
    let mut grads = vec![0.0; model.params.len()];
    model.forward_backward(ws, labels, &mut grads);
    let mut scratch = vec![0.0; grads.len()];
    let h = 2e-3f32;
    for i in 0..model.params.len() {
        let keep = model.params[i];
        model.params[i] = keep + h;
        let plus = model.forward_backward(ws, labels, &mut scratch);
        model.params[i] = keep - h;
        let minus = model.forward_backward(ws, labels, &mut scratch);
        model.params[i] = keep;
        let numeric = (f64::from(plus) - f64::from(minus)) / (2.0 * f64::from(h));
        let err = (f64::from(grads[i]) - numeric).abs();
        assert!(err < 5e-4 + 1e-2 * numeric.abs(), "{what} param {i}: {} vs {numeric}", grads[i]);
    }
}

#[test]
fn whole_model_gradient_matches_finite_differences() {
    for act in [Activation::Relu, Activation::Tanh, Activation::Gelu, Activation::Selu] {
        let mut model = Model::mlp(&[6, 5, 4, 3], act);
        model.initialise(&Init::kaiming_relu(), &Init::Normal { mean: 0.0, std: 0.1 }, 11);
        let batch = 5;
        let mut ws = Workspace::new(&model, batch);
        let mut s = Stream::new(1, "gradcheck/mlp", 0);
        ws.input.copy_from_slice(&random(batch * 6, 1.0, &mut s));
        check_model_gradient(&mut model, &mut ws, &[0, 2, 1, 1, 0], &format!("{act:?}"));
    }
}

/// Batch norm in training mode: every parameter's gradient (Linear weights,
/// biases, and the norms' scales and shifts) through the batch statistics.
#[test]
fn batch_norm_model_gradient_matches_finite_differences() {
    let mut model = Model::mlp_with_batch_norm(&[6, 5, 4, 3], Activation::Tanh, true);
    model.initialise(&Init::kaiming_relu(), &Init::Normal { mean: 0.0, std: 0.1 }, 5);
    // Scales and shifts away from 1 and 0, so their gradients are generic.
    let norms: Vec<crate::nn::batchnorm::BatchNorm> = model.batch_norms().copied().collect();
    let mut s = Stream::new(2, "gradcheck/bn", 0);
    for bn in &norms {
        for i in bn.gamma_range().chain(bn.beta_range()) {
            model.params[i] += 0.5 * (2.0 * s.unit_f32() - 1.0);
        }
    }
    let batch = 8;
    let mut ws = Workspace::new(&model, batch);
    ws.input.copy_from_slice(&random(batch * 6, 1.0, &mut s));
    check_model_gradient(&mut model, &mut ws, &[0, 2, 1, 1, 0, 2, 2, 1], "batch norm");
}

/// Residual networks in every arrangement: the skips' gradients, layer
/// norm's, the trainable alphas' and Fixup's scalar biases', all through
/// the whole model.
#[test]
fn residual_model_gradient_matches_finite_differences() {
    use super::residual::{Alpha, BlockOrder, BranchNorm, Residual, ResidualRule};
    let mut s = Stream::new(9, "gradcheck/residual", 0);
    for (order, norm, branch_layers, biases) in [
        (BlockOrder::Pre, BranchNorm::LayerNorm, 2, false),
        (BlockOrder::Post, BranchNorm::LayerNorm, 1, true),
        (BlockOrder::Pre, BranchNorm::None, 1, true),
        (BlockOrder::Post, BranchNorm::BatchNorm, 2, false),
    ] {
        let net = Residual {
            blocks: 2,
            branch_layers,
            norm,
            order,
            alpha: Some(Alpha { init: 0.7, trainable: true }),
            scalar_biases: Some(biases),
            rule: ResidualRule::Standard,
        };
        let mut model = Model::residual(6, 5, 3, Activation::Tanh, &net);
        model.initialise(&Init::kaiming_relu(), &Init::Normal { mean: 0.0, std: 0.1 }, 3);
        // Norm scales, shifts and scalars away from their inits.
        for layer in model.layers.clone() {
            let range = match layer {
                Layer::LayerNorm(ln) => ln.offset..ln.offset + 2 * ln.width,
                Layer::BatchNorm(bn) => bn.offset..bn.offset + 2 * bn.width,
                Layer::Scalar(Scalar { value: ScalarValue::Param(o), .. }) => o..o + 1,
                _ => 0..0,
            };
            range.for_each(|i| model.params[i] += 0.4 * (2.0 * s.unit_f32() - 1.0));
        }
        let batch = 6;
        let mut ws = Workspace::new(&model, batch);
        ws.input.copy_from_slice(&random(batch * 6, 1.0, &mut s));
        let what = format!("{order:?} {norm:?} m={branch_layers} biases={biases}");
        check_model_gradient(&mut model, &mut ws, &[0, 2, 1, 1, 0, 2], &what);
    }
}

/// Layer norm alone, in f64 against its definition: dL/dx and dL/dgamma,
/// dL/dbeta of `L = sum(r * y)` by central differences.
#[test]
#[allow(clippy::needless_range_loop)] // i indexes params and grads alike
fn layer_norm_backward_matches_finite_differences() {
    use super::layernorm::LayerNorm;
    let mut s = Stream::new(5, "gradcheck/layernorm", 0);
    let (batch, width) = (3, 7);
    let ln = LayerNorm { width, offset: 1 };
    let mut params = random(1 + 2 * width, 1.0, &mut s);
    let mut x = random(batch * width, 2.0, &mut s);
    let r = random(batch * width, 1.0, &mut s);
    let objective = |params: &[f32], x: &[f32]| -> f64 {
        let (mut y, mut xhat, mut rstd) = (vec![0.0; x.len()], vec![0.0; x.len()], vec![0.0; batch]);
        ln.forward(params, x, &mut y, &mut xhat, &mut rstd, batch);
        y.iter().zip(&r).map(|(&y, &r)| f64::from(y) * f64::from(r)).sum()
    };
    let (mut y, mut xhat, mut rstd) = (vec![0.0; x.len()], vec![0.0; x.len()], vec![0.0; batch]);
    ln.forward(&params, &x, &mut y, &mut xhat, &mut rstd, batch);
    let mut d = r.clone();
    let mut grads = vec![0.0; params.len()];
    ln.backward(&params, &xhat, &rstd, &mut d, &mut grads, &mut vec![0.0; 2 * width], batch);
    let h = 1e-3f32;
    for i in 1..params.len() {
        let keep = params[i];
        params[i] = keep + h;
        let plus = objective(&params, &x);
        params[i] = keep - h;
        let minus = objective(&params, &x);
        params[i] = keep;
        assert_close(grads[i], (plus - minus) / (2.0 * f64::from(h)), &format!("param {i}"));
    }
    for i in 0..x.len() {
        let keep = x[i];
        x[i] = keep + h;
        let plus = objective(&params, &x);
        x[i] = keep - h;
        let minus = objective(&params, &x);
        x[i] = keep;
        assert_close(d[i], (plus - minus) / (2.0 * f64::from(h)), &format!("input {i}"));
    }
}

/// The vector-Jacobian product from the first layer's output to the logits
/// against central differences of `<v, logits>` in the first Linear's
/// biases: d<v, logits>/d b_j is the column sum of J^T v over the batch.
#[test]
fn the_vector_jacobian_product_matches_finite_differences() {
    use super::residual::{Alpha, BlockOrder, BranchNorm, Residual, ResidualRule};
    let net = Residual {
        blocks: 2,
        branch_layers: 2,
        norm: BranchNorm::LayerNorm,
        order: BlockOrder::Pre,
        alpha: Some(Alpha { init: 0.6, trainable: true }),
        scalar_biases: None,
        rule: ResidualRule::Standard,
    };
    for mut model in [Model::mlp(&[6, 5, 4, 3], Activation::Tanh), Model::residual(6, 5, 3, Activation::Gelu, &net)] {
        model.initialise(&Init::kaiming_relu(), &Init::Normal { mean: 0.0, std: 0.1 }, 4);
        let batch = 4;
        let mut ws = Workspace::new(&model, batch);
        let mut s = Stream::new(8, "gradcheck/vjp", 0);
        ws.input.copy_from_slice(&random(batch * 6, 1.0, &mut s));
        let v = random(batch * 3, 1.0, &mut s);
        let objective = |model: &Model, ws: &mut Workspace| -> f64 {
            model.forward_train(ws, batch);
            model.logits(ws, batch).iter().zip(&v).map(|(&l, &v)| f64::from(l) * f64::from(v)).sum()
        };
        objective(&model, &mut ws);
        let mut grads = vec![0.0; model.params.len()];
        let g = model.vector_jacobian(&mut ws, &v, &mut grads, batch, 0).to_vec();
        let bias = model.linear(0).bias_range();
        let h = 1e-3f32;
        for (j, i) in bias.enumerate() {
            let keep = model.params[i];
            model.params[i] = keep + h;
            let plus = objective(&model, &mut ws);
            model.params[i] = keep - h;
            let minus = objective(&model, &mut ws);
            model.params[i] = keep;
            let column: f32 = g.chunks(5).map(|row| row[j]).sum();
            assert_close(column, (plus - minus) / (2.0 * f64::from(h)), &format!("unit {j}"));
        }
    }
}
