//! One pass through a [`Model`]: the forward and backward of its layers in
//! sequence, over a [`Workspace`] allocated once.

use super::{Layer, Model};
use crate::nn::loss::Loss;

/// Every buffer one forward/backward pass needs, for up to `capacity`
/// samples, allocated once and reused by every step.
#[derive(Clone)]
pub struct Workspace {
    /// Most samples per pass.
    pub capacity: usize,
    /// The batch's input `[batch, input_width]`.
    pub input: Vec<f32>,
    /// Each layer's output width per sample, by position.
    pub widths: Vec<usize>,
    /// Each layer's output `[batch, fan_out]`, by position; the input of
    /// the layer after it.
    pub outputs: Vec<Vec<f32>>,
    /// dL/d(output) of the layer being differentiated `[batch, widest]`.
    pub grad: Vec<f32>,
    /// dL/d(input) of that layer `[batch, widest]` (swapped with `grad`).
    pub grad_below: Vec<f32>,
    /// Each norm's normalised input `[batch, width]`, by position (empty
    /// for other layers).
    pub xhat: Vec<Vec<f32>>,
    /// Each batch norm's batch mean `[width]` (training mode), by position.
    pub bn_mean: Vec<Vec<f32>>,
    /// Each batch norm's batch variance `[width]` (training mode), by position.
    pub bn_var: Vec<Vec<f32>>,
    /// Each layer norm's per-row `1 / sqrt(var + eps)` `[batch]`, by position.
    pub ln_rstd: Vec<Vec<f32>>,
    /// dL/d(output) of each skip source `[batch, width]`, by position, as
    /// the residual additions above it hand it down in backward (empty for
    /// layers no skip starts from).
    pub skip_grad: Vec<Vec<f32>>,
    /// Per-feature sums of a norm's pass `[2 * widest]`.
    pub norm_scratch: Vec<f64>,
}

impl Workspace {
    /// Buffers for `model` and up to `capacity` samples per pass.
    pub fn new(model: &Model, capacity: usize) -> Self {
        let infos = model.info();
        let widest = infos.iter().map(|i| i.fan_out).max().unwrap_or(0);
        let sized =
            |f: &dyn Fn(&Layer) -> usize| -> Vec<Vec<f32>> { model.layers.iter().map(|l| vec![0.0; f(l)]).collect() };
        let bn_width = |layer: &Layer| match layer {
            Layer::BatchNorm(bn) => bn.width,
            _ => 0,
        };
        let mut skip_grad: Vec<Vec<f32>> = vec![Vec::new(); model.layers.len()];
        for layer in &model.layers {
            if let Layer::Add(add) = layer {
                skip_grad[add.from] = vec![0.0; capacity * infos[add.from].fan_out];
            }
        }
        let has_norm = model.layers.iter().any(|l| matches!(l, Layer::BatchNorm(_) | Layer::LayerNorm(_)));
        Workspace {
            capacity,
            input: vec![0.0; capacity * model.input_width],
            widths: infos.iter().map(|i| i.fan_out).collect(),
            outputs: infos.iter().map(|i| vec![0.0; capacity * i.fan_out]).collect(),
            grad: vec![0.0; capacity * widest],
            grad_below: vec![0.0; capacity * widest],
            xhat: sized(&|l| match l {
                Layer::BatchNorm(bn) => capacity * bn.width,
                Layer::LayerNorm(ln) => capacity * ln.width,
                _ => 0,
            }),
            bn_mean: sized(&bn_width),
            bn_var: sized(&bn_width),
            ln_rstd: sized(&|l| if matches!(l, Layer::LayerNorm(_)) { capacity } else { 0 }),
            skip_grad,
            norm_scratch: vec![0.0; if has_norm { 2 * widest } else { 0 }],
        }
    }
}

impl Model {
    /// Forward pass in evaluation mode (batch norms use their running
    /// statistics) of `batch` samples already in `ws.input`; the logits end
    /// up in the last layer's output ([`Model::logits`]).
    pub fn forward(&self, ws: &mut Workspace, batch: usize) {
        self.forward_mode(ws, batch, false);
    }

    /// Forward pass in training mode (batch norms use the batch's statistics
    /// and keep them in `ws` for the backward pass and the running update).
    pub fn forward_train(&self, ws: &mut Workspace, batch: usize) {
        self.forward_mode(ws, batch, true);
    }

    fn forward_mode(&self, ws: &mut Workspace, batch: usize, train: bool) {
        self.forward_from(ws, batch, train, 0);
    }

    /// The forward pass from the layer at position `first` on, the layers
    /// below it having left their outputs in `ws`.
    fn forward_from(&self, ws: &mut Workspace, batch: usize, train: bool, first: usize) {
        assert!(batch <= ws.capacity, "batch {batch} > workspace {}", ws.capacity);
        for (p, layer) in self.layers.iter().enumerate().skip(first) {
            let (before, after) = ws.outputs.split_at_mut(p);
            let x: &[f32] = if p == 0 { &ws.input } else { &before[p - 1] };
            let y = &mut after[0];
            match layer {
                // x [batch, in] -> z [batch, out]
                Layer::Linear(linear) => linear.forward(&self.params, x, y, batch),
                // z [batch, width] -> gamma * xhat + beta [batch, width]
                Layer::BatchNorm(bn) if train => {
                    let stats = (&mut ws.bn_mean[p][..], &mut ws.bn_var[p][..]);
                    bn.forward_train(&self.params, x, y, &mut ws.xhat[p], stats, &mut ws.norm_scratch, batch);
                }
                Layer::BatchNorm(bn) => bn.forward_eval(&self.params, &self.running, x, y, &mut ws.xhat[p], batch),
                // x [batch, width] -> gamma * xhat + beta [batch, width], per row
                Layer::LayerNorm(ln) => ln.forward(&self.params, x, y, &mut ws.xhat[p], &mut ws.ln_rstd[p], batch),
                // z [batch, n] -> f(z) [batch, n]
                Layer::Activation(activation) => activation.forward(&x[..batch * ws.widths[p]], y),
                // x [batch, n] -> a * x or x + b [batch, n]
                Layer::Scalar(scalar) => scalar.forward(&self.params, &x[..batch * ws.widths[p]], y),
                // skip [batch, n], x [batch, n] -> skip + x [batch, n]
                Layer::Add(add) => add.forward(&before[add.from], &x[..batch * ws.widths[p]], y),
            }
        }
    }

    /// The logits of the last [`Model::forward`]: `[batch, classes]`.
    pub fn logits<'a>(&self, ws: &'a Workspace, batch: usize) -> &'a [f32] {
        &ws.outputs[self.layers.len() - 1][..batch * self.classes()]
    }

    /// Forward, loss and backward for `labels.len()` samples in `ws.input`:
    /// writes dL/dparams into `grads` (same layout as `params`) and returns
    /// the mean cross-entropy loss.
    pub fn forward_backward(&self, ws: &mut Workspace, labels: &[u8], grads: &mut [f32]) -> f32 {
        let rows = labels.len();
        (self.forward_backward_part(ws, labels, grads, rows, &Loss::default()) / rows as f64) as f32
    }

    /// [`Model::forward_backward`] on `loss` for a shard of `labels.len()`
    /// samples of a batch of `batch_size`: the gradients are this shard's share of the
    /// batch's mean-loss gradient (shards' gradients sum to the batch's),
    /// and the return value is the shard's loss SUM.
    pub fn forward_backward_part(
        &self,
        ws: &mut Workspace,
        labels: &[u8],
        grads: &mut [f32],
        batch_size: usize,
        loss: &Loss,
    ) -> f64 {
        self.training_pass_from(ws, labels, grads, batch_size, loss, 0)
    }

    /// The training forward from the layer at `first`, the loss, and the
    /// backward down to `first`; returns the shard's loss sum.
    fn training_pass_from(
        &self,
        ws: &mut Workspace,
        labels: &[u8],
        grads: &mut [f32],
        batch_size: usize,
        loss: &Loss,
        first: usize,
    ) -> f64 {
        let batch = labels.len();
        assert!(!self.has_batch_norm() || batch == batch_size, "batch norm needs the whole batch in one pass");
        self.forward_from(ws, batch, true, first);
        let classes = self.classes();
        let logits = &ws.outputs[self.layers.len() - 1][..batch * classes];
        let loss = loss.sum(logits, labels, &mut ws.grad[..batch * classes], classes, batch_size);
        self.backward_above(ws, grads, batch, first);
        loss
    }

    /// The first layer when it is a Linear reading the input: a lockstep
    /// group computes it for several models at once (see
    /// the trainer's lockstep module).
    pub fn input_linear(&self) -> Option<&crate::nn::Linear> {
        match self.layers.first() {
            Some(Layer::Linear(linear)) => Some(linear),
            _ => None,
        }
    }

    /// [`Model::forward_backward_part`] above the input Linear, whose
    /// output the caller has put in `ws.outputs[0]` (training mode): the
    /// forward from layer 1, the loss, and the backward down to layer 1.
    /// Afterwards `ws.grad` holds dL/d(the input Linear's output) `[batch,
    /// fan_out]` and `grads` every parameter gradient but the input
    /// Linear's. Returns the shard's loss sum.
    pub fn forward_backward_above_input(
        &self,
        ws: &mut Workspace,
        labels: &[u8],
        grads: &mut [f32],
        batch_size: usize,
        loss: &Loss,
    ) -> f64 {
        let loss = self.training_pass_from(ws, labels, grads, batch_size, loss, 1);
        add_skip_grad(ws, 0, labels.len() * ws.widths[0]);
        loss
    }

    /// J^T v for the map from the output of the layer at `position` to the
    /// logits, at the inputs of the last training forward pass in `ws`
    /// (`batch` rows; `v` `[batch, classes]`): the backward pass from
    /// dL/dlogits = `v`, stopped at that output. Parameter gradients go
    /// into `grads` (scratch). Returns `[batch, width]`. Without batch
    /// norm the rows are independent, one Jacobian per sample.
    pub fn vector_jacobian<'a>(
        &self,
        ws: &'a mut Workspace,
        v: &[f32],
        grads: &mut [f32],
        batch: usize,
        position: usize,
    ) -> &'a [f32] {
        ws.grad[..v.len()].copy_from_slice(v);
        self.backward_above(ws, grads, batch, position + 1);
        let n = batch * ws.widths[position];
        add_skip_grad(ws, position, n);
        &ws.grad[..n]
    }

    /// Backward through the layers at positions `lowest..`, last first.
    fn backward_above(&self, ws: &mut Workspace, grads: &mut [f32], batch: usize, lowest: usize) {
        for (p, layer) in self.layers.iter().enumerate().skip(lowest).rev() {
            let n = batch * ws.widths[p];
            add_skip_grad(ws, p, n);
            let x: &[f32] = if p == 0 { &ws.input } else { &ws.outputs[p - 1] };
            match layer {
                // dz [batch, out] -> dW, db; dx [batch, in] (none for the first)
                Layer::Linear(linear) => {
                    let dx = if p == 0 { None } else { Some(&mut ws.grad_below[..]) };
                    linear.backward(&self.params, x, &ws.grad, grads, dx, batch);
                    std::mem::swap(&mut ws.grad, &mut ws.grad_below);
                }
                // dy [batch, width] -> dz [batch, width], in place; dgamma, dbeta
                Layer::BatchNorm(bn) => {
                    let (xhat, var) = (&ws.xhat[p], &ws.bn_var[p]);
                    bn.backward(&self.params, xhat, var, &mut ws.grad, grads, &mut ws.norm_scratch, batch);
                }
                // dy [batch, width] -> dx [batch, width], in place; dgamma, dbeta
                Layer::LayerNorm(ln) => {
                    let (xhat, rstd) = (&ws.xhat[p], &ws.ln_rstd[p]);
                    ln.backward(&self.params, xhat, rstd, &mut ws.grad, grads, &mut ws.norm_scratch, batch);
                }
                // dy [batch, n] -> dx = a * dy or dy [batch, n], in place; da or db
                Layer::Scalar(scalar) => scalar.backward(&self.params, &x[..n], &mut ws.grad, grads),
                // dy [batch, n] -> d(branch) = dy, in place; d(skip) += dy, handed down
                Layer::Add(add) => {
                    let skip = &mut ws.skip_grad[add.from][..n];
                    skip.iter_mut().zip(&ws.grad[..n]).for_each(|(s, g)| *s += g);
                }
                // da [batch, n] -> dz = da * f'(z) [batch, n]
                Layer::Activation(activation) => {
                    activation.backward(&x[..n], &ws.outputs[p][..n], &ws.grad, &mut ws.grad_below);
                    std::mem::swap(&mut ws.grad, &mut ws.grad_below);
                }
            }
        }
    }
}

/// What the additions above handed down to the output of the layer at `p`
/// joins dL/d(that output) in `ws.grad` (and is cleared for the next pass).
fn add_skip_grad(ws: &mut Workspace, p: usize, n: usize) {
    if !ws.skip_grad[p].is_empty() {
        ws.grad[..n].iter_mut().zip(&mut ws.skip_grad[p][..n]).for_each(|(g, s)| {
            *g += *s;
            *s = 0.0;
        });
    }
}
