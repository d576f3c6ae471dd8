//! The multi-layer perceptron: Linear layers with a nonlinearity between
//! them (and, optionally, batch normalisation before it), all parameters in
//! one contiguous buffer.

use super::activation::Activation;
use super::batchnorm::BatchNorm;
use super::init::Init;
use super::linear::Linear;
use super::loss::softmax_cross_entropy_sum;
use crate::rng::Stream;

/// An MLP `sizes[0] -> sizes[1] -> ... -> sizes[last]` with `activation`
/// after every Linear but the last, and with batch normalisation between
/// each hidden Linear and its activation when `norms` is not empty. Layer
/// `l` is `my_network.{2l+1}` in the original PyTorch `nn.Sequential`
/// (index 0 is its Flatten), or `my_network.{3l+1}` with its batch norm at
/// `{3l+2}`.
#[derive(Clone, Debug)]
pub struct Mlp {
    /// Widths, input first, classes last.
    pub sizes: Vec<usize>,
    /// The Linear layers, in order.
    pub layers: Vec<Linear>,
    /// The hidden nonlinearity.
    pub activation: Activation,
    /// Every weight and bias, layer after layer (see [`Linear`]), each
    /// layer's batch-norm scale and shift after it.
    pub params: Vec<f32>,
    /// Batch normalisation after each hidden Linear (empty: none).
    pub norms: Vec<BatchNorm>,
    /// The batch norms' running means and variances (state, not parameters).
    pub running: Vec<f32>,
    /// Training batches the running statistics have seen.
    pub batches_tracked: u64,
}

impl Mlp {
    /// A model with all parameters zero; see [`Mlp::initialise`].
    pub fn new(sizes: &[usize], activation: Activation) -> Self {
        Self::with_batch_norm(sizes, activation, false)
    }

    /// A model, with batch normalisation after each hidden Linear when
    /// `batch_norm` (scale 1, shift 0, running mean 0 and variance 1).
    pub fn with_batch_norm(sizes: &[usize], activation: Activation, batch_norm: bool) -> Self {
        assert!(sizes.len() >= 2 && sizes.iter().all(|&s| s > 0), "bad sizes {sizes:?}");
        let mut offset = 0;
        let mut running = 0;
        let mut layers = Vec::new();
        let mut norms = Vec::new();
        let last = sizes.len() - 2;
        for (l, w) in sizes.windows(2).enumerate() {
            let layer = Linear { fan_in: w[0], fan_out: w[1], offset };
            offset += layer.num_params();
            layers.push(layer);
            if batch_norm && l < last {
                norms.push(BatchNorm { width: w[1], offset, running });
                offset += 2 * w[1];
                running += 2 * w[1];
            }
        }
        let mut params = vec![0.0; offset];
        let mut running_stats = vec![0.0; running];
        for bn in &norms {
            params[bn.gamma_range()].fill(1.0);
            running_stats[bn.running + bn.width..bn.running + 2 * bn.width].fill(1.0);
        }
        Mlp { sizes: sizes.to_vec(), layers, activation, params, norms, running: running_stats, batches_tracked: 0 }
    }

    /// Module index of layer `l`'s Linear in the PyTorch `nn.Sequential`.
    fn module_index(&self, l: usize) -> usize {
        if self.norms.is_empty() {
            2 * l + 1
        } else {
            3 * l + 1
        }
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
        let schemes = vec![(weight.clone(), bias.clone()); self.layers.len()];
        self.initialise_layers(&schemes, seed);
    }

    /// [`Mlp::initialise`] with a (weight, bias) scheme per layer.
    pub fn initialise_layers(&mut self, schemes: &[(Init, Init)], seed: u64) {
        self.initialise_layers_until(schemes, seed, &|| false);
    }

    /// As [`Mlp::initialise_layers`], asking `stop` as it goes (a wide
    /// orthogonal layer takes seconds): false, with the model only partly
    /// initialised, when `stop` said so.
    pub fn initialise_layers_until(&mut self, schemes: &[(Init, Init)], seed: u64, stop: &dyn Fn() -> bool) -> bool {
        assert_eq!(schemes.len(), self.layers.len(), "one scheme pair per layer");
        for (l, (layer, (weight, bias))) in self.layers.iter().zip(schemes).enumerate() {
            let (fi, fo) = (layer.fan_in, layer.fan_out);
            let mut stream = Stream::new(seed, "init/weight", l as u64);
            if !weight.fill_until(&mut self.params[layer.weight_range()], fi, fo, &mut stream, stop) {
                return false;
            }
            let mut stream = Stream::new(seed, "init/bias", l as u64);
            bias.fill(&mut self.params[layer.bias_range()], fi, fo, &mut stream);
        }
        true
    }

    /// PyTorch-style names and shapes of every tensor, in buffer order:
    /// `(name, shape, range in params)`.
    pub fn tensors(&self) -> Vec<(String, Vec<usize>, std::ops::Range<usize>)> {
        let mut out = Vec::with_capacity(4 * self.layers.len());
        for (l, layer) in self.layers.iter().enumerate() {
            let index = self.module_index(l);
            out.push((format!("my_network.{index}.weight"), vec![layer.fan_out, layer.fan_in], layer.weight_range()));
            out.push((format!("my_network.{index}.bias"), vec![layer.fan_out], layer.bias_range()));
            if let Some(bn) = self.norms.get(l) {
                out.push((format!("my_network.{}.weight", index + 1), vec![bn.width], bn.gamma_range()));
                out.push((format!("my_network.{}.bias", index + 1), vec![bn.width], bn.beta_range()));
            }
        }
        out
    }

    /// PyTorch-style names of the batch norms' running statistics:
    /// `(name, shape, range in running)`.
    pub fn buffers(&self) -> Vec<(String, Vec<usize>, std::ops::Range<usize>)> {
        let mut out = Vec::with_capacity(2 * self.norms.len());
        for (l, bn) in self.norms.iter().enumerate() {
            let index = self.module_index(l) + 1;
            let (r, n) = (bn.running, bn.width);
            out.push((format!("my_network.{index}.running_mean"), vec![n], r..r + n));
            out.push((format!("my_network.{index}.running_var"), vec![n], r + n..r + 2 * n));
        }
        out
    }

    /// Name of each batch norm's `num_batches_tracked` counter.
    pub fn counters(&self) -> Vec<String> {
        (0..self.norms.len()).map(|l| format!("my_network.{}.num_batches_tracked", self.module_index(l) + 1)).collect()
    }

    /// Moves the running statistics towards those of the last training
    /// forward pass in `ws` (`batch` rows).
    pub fn update_running(&mut self, ws: &Workspace, batch: usize) {
        for (l, bn) in self.norms.iter().enumerate() {
            bn.update_running(&mut self.running, &ws.bn_mean[l], &ws.bn_var[l], batch);
        }
        if !self.norms.is_empty() {
            self.batches_tracked += 1;
        }
    }

    /// Forward pass in evaluation mode (batch norms use their running
    /// statistics) of `batch` samples already in `ws.input`; the logits end
    /// up in `ws.pre[last]`.
    pub fn forward(&self, ws: &mut Workspace, batch: usize) {
        self.forward_mode(ws, batch, false);
    }

    /// Forward pass in training mode (batch norms use the batch's statistics
    /// and keep them in `ws` for the backward pass and the running update).
    pub fn forward_train(&self, ws: &mut Workspace, batch: usize) {
        self.forward_mode(ws, batch, true);
    }

    fn forward_mode(&self, ws: &mut Workspace, batch: usize, train: bool) {
        assert!(batch <= ws.capacity, "batch {batch} > workspace {}", ws.capacity);
        let last = self.layers.len() - 1;
        for (l, layer) in self.layers.iter().enumerate() {
            let x: &[f32] = if l == 0 { &ws.input } else { &ws.post[l - 1] };
            layer.forward(&self.params, x, &mut ws.pre[l], batch);
            if l < last {
                let n = batch * layer.fan_out;
                if let Some(bn) = self.norms.get(l) {
                    let (z, y, xhat) = (&ws.pre[l], &mut ws.normed[l], &mut ws.xhat[l]);
                    if train {
                        let stats = (&mut ws.bn_mean[l][..], &mut ws.bn_var[l][..]);
                        bn.forward_train(&self.params, z, y, xhat, stats, &mut ws.bn_scratch, batch);
                    } else {
                        bn.forward_eval(&self.params, &self.running, z, y, xhat, batch);
                    }
                    self.activation.forward(&ws.normed[l][..n], &mut ws.post[l]);
                } else {
                    self.activation.forward(&ws.pre[l][..n], &mut ws.post[l]);
                }
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
        assert!(self.norms.is_empty() || batch == batch_size, "batch norm needs the whole batch in one pass");
        self.forward_train(ws, batch);
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
                match self.norms.get(l - 1) {
                    Some(bn) => {
                        let y = &ws.normed[l - 1][..n];
                        self.activation.backward(y, &ws.post[l - 1][..n], &ws.grad_post, &mut ws.grad_pre);
                        let (xhat, var) = (&ws.xhat[l - 1], &ws.bn_var[l - 1]);
                        bn.backward(&self.params, xhat, var, &mut ws.grad_pre, grads, &mut ws.bn_scratch, batch);
                    }
                    None => {
                        let z = &ws.pre[l - 1][..n];
                        self.activation.backward(z, &ws.post[l - 1][..n], &ws.grad_post, &mut ws.grad_pre);
                    }
                }
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
    /// Each batch norm's output `[batch, width]` (empty without batch norm).
    pub normed: Vec<Vec<f32>>,
    /// Each batch norm's normalised input `[batch, width]`.
    pub xhat: Vec<Vec<f32>>,
    /// Each batch norm's batch mean `[width]` (training mode).
    pub bn_mean: Vec<Vec<f32>>,
    /// Each batch norm's batch variance `[width]` (training mode).
    pub bn_var: Vec<Vec<f32>>,
    /// Per-feature sums of a batch-norm pass `[2 * widest]`.
    pub bn_scratch: Vec<f64>,
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
            normed: model.norms.iter().map(|bn| vec![0.0; capacity * bn.width]).collect(),
            xhat: model.norms.iter().map(|bn| vec![0.0; capacity * bn.width]).collect(),
            bn_mean: model.norms.iter().map(|bn| vec![0.0; bn.width]).collect(),
            bn_var: model.norms.iter().map(|bn| vec![0.0; bn.width]).collect(),
            bn_scratch: vec![0.0; if model.norms.is_empty() { 0 } else { 2 * widest }],
        }
    }
}
