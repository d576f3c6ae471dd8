//! The multi-layer perceptron: Linear layers with a nonlinearity between
//! them, all parameters in one contiguous buffer.

use super::activation::Activation;
use super::init::Init;
use super::linear::Linear;
use super::loss::softmax_cross_entropy_sum;
use crate::rng::Stream;

/// An MLP `sizes[0] -> sizes[1] -> ... -> sizes[last]` with `activation`
/// after every Linear but the last. Layer `l` is `my_network.{2l+1}` in the
/// original PyTorch `nn.Sequential` (index 0 is its Flatten).
#[derive(Clone, Debug)]
pub struct Mlp {
    /// Widths, input first, classes last.
    pub sizes: Vec<usize>,
    /// The Linear layers, in order.
    pub layers: Vec<Linear>,
    /// The hidden nonlinearity.
    pub activation: Activation,
    /// Every weight and bias, layer after layer (see [`Linear`]).
    pub params: Vec<f32>,
}

impl Mlp {
    /// A model with all parameters zero; see [`Mlp::initialise`].
    pub fn new(sizes: &[usize], activation: Activation) -> Self {
        assert!(sizes.len() >= 2 && sizes.iter().all(|&s| s > 0), "bad sizes {sizes:?}");
        let mut offset = 0;
        let layers: Vec<Linear> = sizes
            .windows(2)
            .map(|w| {
                let layer = Linear { fan_in: w[0], fan_out: w[1], offset };
                offset += layer.num_params();
                layer
            })
            .collect();
        Mlp { sizes: sizes.to_vec(), layers, activation, params: vec![0.0; offset] }
    }

    /// Number of classes (width of the output).
    pub fn classes(&self) -> usize {
        *self.sizes.last().expect("sizes is never empty")
    }

    /// Draws every layer's weights from `weight` and biases from `bias`.
    /// Layer `l`'s weights use stream `(seed, "init/weight", l)` and its biases
    /// `(seed, "init/bias", l)`, so the draws do not depend on the scheme
    /// of any other layer.
    pub fn initialise(&mut self, weight: &Init, bias: &Init, seed: u64) {
        for (l, layer) in self.layers.iter().enumerate() {
            let (fi, fo) = (layer.fan_in, layer.fan_out);
            let mut stream = Stream::new(seed, "init/weight", l as u64);
            weight.fill(&mut self.params[layer.weight_range()], fi, fo, &mut stream);
            let mut stream = Stream::new(seed, "init/bias", l as u64);
            bias.fill(&mut self.params[layer.bias_range()], fi, fo, &mut stream);
        }
    }

    /// PyTorch-style names and shapes of every tensor, in buffer order:
    /// `(name, shape, range in params)`.
    pub fn tensors(&self) -> Vec<(String, Vec<usize>, std::ops::Range<usize>)> {
        let mut out = Vec::with_capacity(2 * self.layers.len());
        for (l, layer) in self.layers.iter().enumerate() {
            let index = 2 * l + 1;
            out.push((format!("my_network.{index}.weight"), vec![layer.fan_out, layer.fan_in], layer.weight_range()));
            out.push((format!("my_network.{index}.bias"), vec![layer.fan_out], layer.bias_range()));
        }
        out
    }

    /// Forward pass of `batch` samples already in `ws.input`; the logits end
    /// up in `ws.pre[last]`.
    pub fn forward(&self, ws: &mut Workspace, batch: usize) {
        assert!(batch <= ws.capacity, "batch {batch} > workspace {}", ws.capacity);
        let last = self.layers.len() - 1;
        for (l, layer) in self.layers.iter().enumerate() {
            let x: &[f32] = if l == 0 { &ws.input } else { &ws.post[l - 1] };
            layer.forward(&self.params, x, &mut ws.pre[l], batch);
            if l < last {
                let n = batch * layer.fan_out;
                self.activation.forward(&ws.pre[l][..n], &mut ws.post[l]);
            }
        }
    }

    /// The logits of the last [`Mlp::forward`]: `[batch, classes]`.
    pub fn logits<'a>(&self, ws: &'a Workspace, batch: usize) -> &'a [f32] {
        &ws.pre[self.layers.len() - 1][..batch * self.classes()]
    }

    /// Forward, loss and backward for `labels.len()` samples in `ws.input`:
    /// writes dL/dparams into `grads` (same layout as `params`) and returns
    /// the mean cross-entropy loss.
    pub fn forward_backward(&self, ws: &mut Workspace, labels: &[u8], grads: &mut [f32]) -> f32 {
        let rows = labels.len();
        (self.forward_backward_part(ws, labels, grads, rows) / rows as f64) as f32
    }

    /// [`Mlp::forward_backward`] for a shard of `labels.len()` samples of a
    /// batch of `batch`: the gradients are this shard's share of the
    /// batch's mean-loss gradient (shards' gradients sum to the batch's),
    /// and the return value is the shard's loss SUM.
    pub fn forward_backward_part(
        &self,
        ws: &mut Workspace,
        labels: &[u8],
        grads: &mut [f32],
        batch_size: usize,
    ) -> f64 {
        let batch = labels.len();
        self.forward(ws, batch);
        let last = self.layers.len() - 1;
        let classes = self.classes();
        let loss = softmax_cross_entropy_sum(
            &ws.pre[last][..batch * classes],
            labels,
            &mut ws.grad_pre[..batch * classes],
            classes,
            batch_size,
        );
        for l in (0..self.layers.len()).rev() {
            let layer = &self.layers[l];
            let x: &[f32] = if l == 0 { &ws.input } else { &ws.post[l - 1] };
            let dx = if l == 0 { None } else { Some(&mut ws.grad_post[..]) };
            layer.backward(&self.params, x, &ws.grad_pre, grads, dx, batch);
            if l > 0 {
                let n = batch * layer.fan_in;
                self.activation.backward(&ws.pre[l - 1][..n], &ws.post[l - 1][..n], &ws.grad_post, &mut ws.grad_pre);
            }
        }
        loss
    }
}

/// Every buffer one forward/backward pass needs, for up to `capacity`
/// samples, allocated once and reused by every step.
pub struct Workspace {
    /// Most samples per pass.
    pub capacity: usize,
    /// The batch's input `[batch, sizes[0]]`.
    pub input: Vec<f32>,
    /// Each layer's pre-activation output `z = x W^T + b` `[batch, fan_out]`.
    pub pre: Vec<Vec<f32>>,
    /// Each hidden layer's activation `f(z)` `[batch, fan_out]`.
    pub post: Vec<Vec<f32>>,
    /// Scratch for dL/dz of the current layer `[batch, widest]`.
    pub grad_pre: Vec<f32>,
    /// Scratch for dL/da of the layer below `[batch, widest]`.
    pub grad_post: Vec<f32>,
}

impl Workspace {
    /// Buffers for `model` and up to `capacity` samples per pass.
    pub fn new(model: &Mlp, capacity: usize) -> Self {
        let widest = model.sizes[1..].iter().copied().max().unwrap_or(0);
        let outs = &model.sizes[1..];
        Workspace {
            capacity,
            input: vec![0.0; capacity * model.sizes[0]],
            pre: outs.iter().map(|&w| vec![0.0; capacity * w]).collect(),
            post: outs[..outs.len() - 1].iter().map(|&w| vec![0.0; capacity * w]).collect(),
            grad_pre: vec![0.0; capacity * widest],
            grad_post: vec![0.0; capacity * widest],
        }
    }
}
