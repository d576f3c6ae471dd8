//! A model's parameters as PyTorch's `state_dict` names them
//! (`my_network.1.weight`, batch norm's running statistics and
//! `num_batches_tracked`), to and from safetensors files: the notebook loads
//! what initscope saves, and initscope starts from what the notebook saved.

use super::model::{Model, TensorSlot};
use crate::error::input;
use crate::tensorfile::{self, NamedTensor, Values};
use anyhow::Result;
use std::path::Path;

/// Saves `model` as safetensors under the original PyTorch module's names,
/// loadable by `load_state_dict`.
pub fn save(model: &Model, path: &Path) -> Result<()> {
    let counter = [model.batches_tracked as i64];
    let mut tensors = Vec::new();
    for TensorSlot { name, shape, range } in model.tensors() {
        tensors.push((name, shape, Values::F32(&model.params[range])));
    }
    for TensorSlot { name, shape, range } in model.buffers() {
        tensors.push((name, shape, Values::F32(&model.running[range])));
    }
    for name in model.counters() {
        tensors.push((name, Vec::new(), Values::I64(&counter)));
    }
    tensorfile::save(path, &tensors)
}

/// Copies every weight and bias from a safetensors file with the PyTorch
/// names into `model`, checking each tensor's shape.
pub fn load_into(model: &mut Model, path: &Path) -> Result<()> {
    set_tensors(model, &tensorfile::load(path)?, &path.display().to_string())
}

/// Copies named tensors (parameters and batch-norm running statistics)
/// into `model`, checking each shape; `source` names them in errors.
pub fn set_tensors(model: &mut Model, tensors: &[NamedTensor], source: &str) -> Result<()> {
    let find = |name: &str, shape: &[usize]| -> Result<&[f32]> {
        let (_, found_shape, values) =
            tensors.iter().find(|t| t.0 == name).ok_or_else(|| input(format!("{source}: no tensor {name}")))?;
        if found_shape != shape {
            return Err(input(format!("{source}: {name} has shape {found_shape:?}, the model needs {shape:?}")));
        }
        Ok(values)
    };
    for TensorSlot { name, shape, range } in model.tensors() {
        let values = find(&name, &shape)?.to_vec();
        model.params[range].copy_from_slice(&values);
    }
    for TensorSlot { name, shape, range } in model.buffers() {
        let values = find(&name, &shape)?.to_vec();
        model.running[range].copy_from_slice(&values);
    }
    Ok(())
}
