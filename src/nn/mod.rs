//! The network: layers as forward/backward pairs, the loss, the
//! initialisation schemes and the model, a sequence of typed layers.

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
pub mod state_dict;
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
