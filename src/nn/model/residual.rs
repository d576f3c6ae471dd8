//! The residual network as a [`Model`]: an input Linear to the residual
//! width, the blocks of [`Residual`] (see `nn::residual` for the orders and
//! rules), an output Linear. Its layers are named as the PyTorch module
//! `input`, `blocks.<b>.{norm,act,fc,bias}<k>`, `blocks.<b>.alpha`,
//! `final_norm`, `output` would name them, in the order that module
//! registers them, so its `state_dict` loads into ours and back.

use super::build::Builder;
use super::Model;
use crate::nn::activation::Activation;
use crate::nn::residual::{BlockOrder, BranchNorm, Residual};
use crate::nn::scalar::ScalarOp;

impl Model {
    /// The residual network `input_width -> width -> L blocks -> classes`
    /// with `activation` in its branches; every Linear zero until
    /// initialised, norms at scale 1 and shift 0, alpha at its init.
    pub fn residual(input_width: usize, width: usize, classes: usize, activation: Activation, net: &Residual) -> Self {
        Self::residual_multiplied((input_width, width, classes), activation, net, &[])
    }

    /// [`Model::residual`] with Linear `l`'s input multiplied by
    /// `multipliers[l]` (unsaid: 1), as a fixed scalar layer named
    /// `<linear>.multiplier` before it.
    pub fn residual_multiplied(
        (input_width, width, classes): (usize, usize, usize),
        activation: Activation,
        net: &Residual,
        multipliers: &[f32],
    ) -> Self {
        assert!(input_width > 0 && width > 0 && classes > 0 && net.blocks > 0, "bad residual network");
        let mut b = Builder::new(input_width).with_multipliers(multipliers);
        b.linear(width, "input".into());
        if net.order == BlockOrder::Post {
            b.activation(activation, "input_act".into());
        }
        for block in 0..net.blocks {
            add_block(&mut b, net, activation, &format!("blocks.{block}"));
        }
        if net.order == BlockOrder::Pre {
            norm(&mut b, net.norm, "final_norm".into());
            b.activation(activation, "final_act".into());
        }
        b.linear(classes, "output".into());
        b.finish()
    }
}

fn norm(b: &mut Builder, norm: BranchNorm, name: String) {
    match norm {
        BranchNorm::None => {}
        BranchNorm::BatchNorm => b.batch_norm(name),
        BranchNorm::LayerNorm => b.layer_norm(name),
    }
}

/// One block `x + alpha * F(x)` (pre) or `f(x + alpha * F(x))` (post).
fn add_block(b: &mut Builder, net: &Residual, activation: Activation, name: &str) {
    let skip = b.next_position() - 1;
    let biases = net.scalar_biases();
    let bias = |b: &mut Builder, tag: String| {
        if biases {
            b.scalar(ScalarOp::Add, 0.0, true, format!("{name}.bias{tag}"));
        }
    };
    let width = b.width();
    for k in 1..=net.branch_layers {
        let last = k == net.branch_layers;
        if net.order == BlockOrder::Pre {
            norm(b, net.norm, format!("{name}.norm{k}"));
            bias(b, format!("{k}b"));
            b.activation(activation, format!("{name}.act{k}"));
        }
        bias(b, format!("{k}a"));
        b.linear(width, format!("{name}.fc{k}"));
        if net.order == BlockOrder::Post {
            norm(b, net.norm, format!("{name}.norm{k}"));
            if !last {
                bias(b, format!("{k}b"));
                b.activation(activation, format!("{name}.act{k}"));
            }
        }
    }
    let alpha = net.alpha();
    if alpha.trainable || alpha.init != 1.0 {
        b.scalar(ScalarOp::Multiply, alpha.init, alpha.trainable, format!("{name}.alpha"));
    }
    bias(b, "_out".into());
    b.add(skip, format!("{name}.add"));
    if net.order == BlockOrder::Post {
        b.activation(activation, format!("{name}.act_out"));
    }
}
