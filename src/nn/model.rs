//! The model: a sequence of typed layers ([`Layer`]), every parameter in
//! one contiguous buffer and the batch norms' running statistics in
//! another, with the workspace one pass needs. Forward runs the layers in
//! order, each reading the output of the one before; backward runs them in
//! reverse, each turning dL/d(its output) into dL/d(its input).

use super::activation::Activation;
use super::batchnorm::BatchNorm;
use super::init::Init;
use super::layer::{Layer, LayerInfo, LayerKind};
use super::linear::Linear;
use super::scalar::{Scalar, ScalarOp, ScalarValue};
use crate::rng::Stream;

/// A named tensor's place in one of the model's buffers.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TensorSlot {
    /// Its PyTorch `state_dict` name (`my_network.1.weight`).
    pub name: String,
    /// Its shape, PyTorch's (`[out, in]` for a Linear's weight).
    pub shape: Vec<usize>,
    /// Its values' range in the buffer (`params` or `running`).
    pub range: std::ops::Range<usize>,
}

/// A residual block's places in a [`Model`]'s sequence.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct BlockSlots {
    /// The position of its closing addition.
    pub add: usize,
    /// The position whose output is the stream entering it (the skip).
    pub skip: usize,
    /// The position whose output is its branch's, alpha applied.
    pub branch: usize,
    /// Its branch multiplier, if it has one.
    pub alpha: Option<Scalar>,
}

/// A model `input_width -> ... -> classes`: [`Layer`]s in order, the last
/// a Linear giving the logits.
#[derive(Clone, Debug)]
pub struct Model {
    /// The layers, in order.
    pub layers: Vec<Layer>,
    /// Each layer's PyTorch module name, by position (see [`LayerInfo`]).
    names: Vec<String>,
    /// Features per input sample.
    pub input_width: usize,
    /// Every layer's parameters, layer after layer (see [`Linear`] and
    /// [`BatchNorm`] for their layout).
    pub params: Vec<f32>,
    /// The batch norms' running means and variances (state, not parameters).
    pub running: Vec<f32>,
    /// Training batches the running statistics have seen.
    pub batches_tracked: u64,
    /// The position in `layers` of each Linear.
    linear_positions: Vec<usize>,
}

impl Model {
    /// Linear layer `l` (from 0).
    pub fn linear(&self, l: usize) -> &Linear {
        match &self.layers[self.linear_positions[l]] {
            Layer::Linear(linear) => linear,
            _ => unreachable!("linear_positions holds Linear layers only"),
        }
    }

    /// The position in [`Model::layers`] of Linear `l`.
    pub fn linear_position(&self, l: usize) -> usize {
        self.linear_positions[l]
    }

    /// The Linear layers, in order.
    pub fn linears(&self) -> impl ExactSizeIterator<Item = &Linear> + '_ {
        (0..self.linear_positions.len()).map(|l| self.linear(l))
    }

    /// The number of Linear layers.
    pub fn linear_count(&self) -> usize {
        self.linear_positions.len()
    }

    /// The batch-norm layers, in order.
    pub fn batch_norms(&self) -> impl Iterator<Item = &BatchNorm> + '_ {
        self.layers.iter().filter_map(|l| match l {
            Layer::BatchNorm(bn) => Some(bn),
            _ => None,
        })
    }

    /// Whether any layer normalises over the batch: such a model needs the
    /// whole batch in one pass (its statistics are the batch's), and keeps
    /// running statistics.
    pub fn has_batch_norm(&self) -> bool {
        self.batch_norms().next().is_some()
    }

    /// Passes one batch may be split into, at most `wanted`: 1 with batch
    /// norm, whose statistics are the whole batch's.
    pub fn shards_per_batch(&self, wanted: usize) -> usize {
        if self.has_batch_norm() {
            1
        } else {
            wanted
        }
    }

    /// The first activation's kind (every hidden activation of an MLP).
    pub fn activation(&self) -> Option<Activation> {
        self.layers.iter().find_map(|l| match l {
            Layer::Activation(a) => Some(*a),
            _ => None,
        })
    }

    /// Every layer described ([`LayerInfo`]), in order.
    pub fn info(&self) -> Vec<LayerInfo> {
        let mut fan_in = self.input_width;
        let mut linears_seen = 0;
        let mut out = Vec::with_capacity(self.layers.len());
        for (position, layer) in self.layers.iter().enumerate() {
            linears_seen += usize::from(matches!(layer, Layer::Linear(_)));
            // A layer before the first Linear (its input multiplier) belongs to it.
            let linear = linears_seen.saturating_sub(1);
            let fan_out = layer.fan_out(fan_in);
            let torch_name = self.names[position].clone();
            out.push(LayerInfo { kind: layer.kind(), position, linear, fan_in, fan_out, torch_name });
            fan_in = fan_out;
        }
        out
    }

    /// The residual blocks, in order (none for a plain network).
    pub fn blocks(&self) -> Vec<BlockSlots> {
        let adds = self.layers.iter().enumerate().filter_map(|(p, l)| match l {
            Layer::Add(add) => Some((p, add.from)),
            _ => None,
        });
        adds.map(|(add, skip)| {
            // The alpha follows the branch's last Linear (a multiplier before a Linear is not it).
            let last_linear =
                (skip + 1..add).rev().find(|&p| matches!(self.layers[p], Layer::Linear(_))).unwrap_or(skip);
            let alpha = self.layers[last_linear + 1..add].iter().rev().find_map(|l| match l {
                Layer::Scalar(s) if s.op == ScalarOp::Multiply => Some(*s),
                _ => None,
            });
            BlockSlots { add, skip, branch: add - 1, alpha }
        })
        .collect()
    }

    /// Number of classes (width of the output).
    pub fn classes(&self) -> usize {
        self.linear(self.linear_count() - 1).fan_out
    }

    /// Draws every Linear's weights from `weight` and biases from `bias`.
    /// Linear `l`'s weights use stream `(seed, "init/weight", l)` and its
    /// biases `(seed, "init/bias", l)`, so the draws do not depend on the
    /// scheme of any other layer.
    pub fn initialise(&mut self, weight: &Init, bias: &Init, seed: u64) {
        let schemes = vec![(weight.clone(), bias.clone()); self.linear_count()];
        self.initialise_layers(&schemes, seed);
    }

    /// [`Model::initialise`] with a (weight, bias) scheme per Linear.
    pub fn initialise_layers(&mut self, schemes: &[(Init, Init)], seed: u64) {
        self.initialise_layers_until(schemes, seed, &|| false);
    }

    /// As [`Model::initialise_layers`], asking `stop` as it goes (a wide
    /// orthogonal layer takes seconds): false, with the model only partly
    /// initialised, when `stop` said so.
    pub fn initialise_layers_until(&mut self, schemes: &[(Init, Init)], seed: u64, stop: &dyn Fn() -> bool) -> bool {
        assert_eq!(schemes.len(), self.linear_count(), "one scheme pair per Linear");
        for (l, (weight, bias)) in schemes.iter().enumerate() {
            let layer = *self.linear(l);
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

    /// Multiplies Linear `l`'s weights by `factors[l]` (a residual rule's
    /// branch scaling, after drawing); a factor of 0 zeroes its biases too.
    pub fn scale_linears(&mut self, factors: &[f32]) {
        assert_eq!(factors.len(), self.linear_count(), "one factor per Linear");
        for (l, &f) in factors.iter().enumerate() {
            self.scale_linear(l, f, if f == 0.0 { 0.0 } else { 1.0 });
        }
    }

    /// Multiplies Linear `l`'s drawn weights by `weight` and biases by
    /// `bias` (a parametrisation's init factors; PyTorch's `weight.data *=
    /// factor`, one float32 product each); a factor of 0 sets +0.
    pub fn scale_linear(&mut self, l: usize, weight: f32, bias: f32) {
        let layer = *self.linear(l);
        for (range, f) in [(layer.weight_range(), weight), (layer.bias_range(), bias)] {
            if f == 0.0 {
                self.params[range].fill(0.0);
            } else if f != 1.0 {
                self.params[range].iter_mut().for_each(|w| *w *= f);
            }
        }
    }

    /// PyTorch-style names and shapes of every parameter tensor, in buffer
    /// order: `(name, shape, range in params)`.
    pub fn tensors(&self) -> Vec<TensorSlot> {
        let mut out = Vec::new();
        for (layer, info) in self.layers.iter().zip(self.info()) {
            let name = info.torch_name;
            match layer {
                Layer::Linear(l) => {
                    out.push(slot(format!("{name}.weight"), vec![l.fan_out, l.fan_in], l.weight_range()));
                    out.push(slot(format!("{name}.bias"), vec![l.fan_out], l.bias_range()));
                }
                Layer::BatchNorm(bn) => {
                    out.push(slot(format!("{name}.weight"), vec![bn.width], bn.gamma_range()));
                    out.push(slot(format!("{name}.bias"), vec![bn.width], bn.beta_range()));
                }
                Layer::LayerNorm(ln) => {
                    out.push(slot(format!("{name}.weight"), vec![ln.width], ln.gamma_range()));
                    out.push(slot(format!("{name}.bias"), vec![ln.width], ln.beta_range()));
                }
                Layer::Scalar(Scalar { value: ScalarValue::Param(offset), .. }) => {
                    out.push(slot(name, vec![1], *offset..offset + 1));
                }
                Layer::Activation(_) | Layer::Scalar(_) | Layer::Add(_) => {}
            }
        }
        out
    }

    /// PyTorch-style names of the batch norms' running statistics:
    /// `(name, shape, range in running)`.
    pub fn buffers(&self) -> Vec<TensorSlot> {
        let mut out = Vec::new();
        for (layer, info) in self.layers.iter().zip(self.info()) {
            if let Layer::BatchNorm(bn) = layer {
                let (r, n, name) = (bn.running, bn.width, info.torch_name);
                out.push(slot(format!("{name}.running_mean"), vec![n], r..r + n));
                out.push(slot(format!("{name}.running_var"), vec![n], r + n..r + 2 * n));
            }
        }
        out
    }

    /// Name of each batch norm's `num_batches_tracked` counter.
    pub fn counters(&self) -> Vec<String> {
        let infos = self.info().into_iter().filter(|i| i.kind == LayerKind::BatchNorm);
        infos.map(|i| format!("{}.num_batches_tracked", i.torch_name)).collect()
    }

    /// Moves the running statistics towards those of the last training
    /// forward pass in `ws` (`batch` rows), and counts the batch.
    pub fn update_running(&mut self, ws: &Workspace, batch: usize) {
        for (p, layer) in self.layers.iter().enumerate() {
            if let Layer::BatchNorm(bn) = layer {
                bn.update_running(&mut self.running, &ws.bn_mean[p], &ws.bn_var[p], batch);
            }
        }
        if self.has_batch_norm() {
            self.batches_tracked += 1;
        }
    }

    /// Sets the batches the running statistics have seen to `steps` (a
    /// model without batch norm keeps 0).
    pub fn set_batches_tracked(&mut self, steps: usize) {
        if self.has_batch_norm() {
            self.batches_tracked = steps as u64;
        }
    }

    /// The output of Linear `l` in the last pass: `z = x W^T + b`
    /// `[batch, fan_out]` (the buffer, `capacity` rows).
    pub fn pre<'a>(&self, ws: &'a Workspace, l: usize) -> &'a [f32] {
        &ws.outputs[self.linear_positions[l]]
    }

    /// The position of the activation that follows Linear `l`, through its
    /// norm and scalar shifts; `None` when Linear `l`'s output is not
    /// activated (the logits, a residual branch's end).
    pub fn post_position(&self, l: usize) -> Option<usize> {
        for p in self.linear_positions[l] + 1..self.layers.len() {
            match self.layers[p] {
                Layer::Activation(_) => return Some(p),
                Layer::BatchNorm(_) | Layer::LayerNorm(_) | Layer::Scalar(Scalar { op: ScalarOp::Add, .. }) => {}
                _ => return None,
            }
        }
        None
    }

    /// The output of that activation ([`Model::post_position`]) in the last
    /// pass, `[batch, fan_out]` (the buffer, `capacity` rows).
    pub fn post<'a>(&self, ws: &'a Workspace, l: usize) -> Option<&'a [f32]> {
        self.post_position(l).map(|p| &ws.outputs[p][..])
    }
}

fn slot(name: String, shape: Vec<usize>, range: std::ops::Range<usize>) -> TensorSlot {
    TensorSlot { name, shape, range }
}

mod build;
mod pass;
mod residual;
pub use pass::Workspace;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_layers_of_an_mlp_are_described_with_the_original_modules_names() {
        let model = Model::mlp_with_batch_norm(&[784, 512, 256, 10], Activation::Relu, true);
        let info = model.info();
        let kinds: Vec<LayerKind> = info.iter().map(|i| i.kind).collect();
        use LayerKind::{Activation as A, BatchNorm as B, Linear as L};
        assert_eq!(kinds, [L, B, A, L, B, A, L]);
        // nn.Sequential(Flatten, Linear, BatchNorm1d, ReLU, ...): index 0 is Flatten.
        let names: Vec<&str> = info.iter().map(|i| i.torch_name.as_str()).collect();
        assert_eq!(names[0], "my_network.1");
        assert_eq!(names[4], "my_network.5");
        assert_eq!(info.iter().map(|i| i.linear).collect::<Vec<_>>(), [0, 0, 0, 1, 1, 1, 2]);
        assert_eq!((info[3].fan_in, info[3].fan_out, info[6].fan_out), (512, 256, 10));
        assert_eq!(model.counters(), ["my_network.2.num_batches_tracked", "my_network.5.num_batches_tracked"]);
        let plain = Model::mlp(&[784, 512, 10], Activation::Tanh);
        let tensors: Vec<String> = plain.tensors().into_iter().map(|t| t.name).collect();
        assert_eq!(tensors, ["my_network.1.weight", "my_network.1.bias", "my_network.3.weight", "my_network.3.bias"]);
        assert_eq!((plain.linear_count(), plain.shards_per_batch(4), model.shards_per_batch(4)), (2, 4, 1));
        assert_eq!(plain.params.len(), 784 * 512 + 512 + 512 * 10 + 10);
    }
}
