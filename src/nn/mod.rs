//! The network: layers as forward/backward pairs, the loss, the
//! initialisation schemes and the model, a sequence of typed layers.
//!
//! **Where a second backend plugs in** (none is built): the buffers and the
//! kernels each have one home. Every parameter lives in the model's one
//! flat buffer (`Model::params`, with each layer's ranges in it), every
//! activation and gradient of a step in its [`Workspace`] (allocated once
//! per variant), and the optimiser's state in buffers of the parameters'
//! length. Every dense product goes through [`matmul::matmul`] (the
//! Linear's forward and backward are its only callers in a step); the
//! other kernels are each layer kind's element-wise forward/backward pair
//! in its own file, dispatched by kind in `model/pass.rs`. A device
//! backend would own those three buffers and replace `matmul` and the
//! pass's per-kind arms; the trainer, the probe and the records see only
//! the model's buffers read back.

pub mod activation;
pub mod batchnorm;
pub mod init;
pub mod layer;
pub mod layernorm;
pub mod linear;
pub mod loss;
pub mod lsuv;
pub mod matmul;
pub mod model;
pub mod residual;
pub mod scalar;
pub mod stacked;
pub mod state_dict;
pub mod tanh;
pub mod torch_init;
pub mod truncated;

#[cfg(test)]
mod gradcheck;

pub use activation::Activation;
pub use init::{FanMode, Gain, Init};
pub use layer::{Layer, LayerInfo, LayerKind};
pub use linear::Linear;
pub use lsuv::lsuv;
pub use model::{BlockSlots, Model, Workspace};
pub use state_dict::{load_into, set_tensors};
