//! Tensor files (safetensors): named tensors to and from disk, knowing
//! nothing of models or runs. Everything else that saves weights, optimiser
//! state or probe snapshots goes through here.

use crate::fsutil::write_atomic;
use anyhow::{Context, Result};
use safetensors::tensor::{Dtype, TensorView};
use std::path::Path;

/// A tensor read back from a file as f32: `(name, shape, values)`.
pub type NamedTensor = (String, Vec<usize>, Vec<f32>);

/// The values of a tensor to write.
pub enum Values<'a> {
    /// 32-bit floats (parameters, statistics, optimiser state).
    F32(&'a [f32]),
    /// 64-bit integers (PyTorch's batch-norm `num_batches_tracked`).
    I64(&'a [i64]),
}

/// Writes `(name, shape, values)` tensors to `path` atomically.
pub fn save(path: &Path, tensors: &[(String, Vec<usize>, Values)]) -> Result<()> {
    let bytes: Vec<(Dtype, Vec<u8>)> = tensors
        .iter()
        .map(|(_, _, values)| match values {
            Values::F32(v) => (Dtype::F32, v.iter().flat_map(|x| x.to_le_bytes()).collect()),
            Values::I64(v) => (Dtype::I64, v.iter().flat_map(|x| x.to_le_bytes()).collect()),
        })
        .collect();
    let views: Vec<(String, TensorView)> = tensors
        .iter()
        .zip(&bytes)
        .map(|((name, shape, _), (dtype, data))| {
            (name.clone(), TensorView::new(*dtype, shape.clone(), data).expect("shape matches data"))
        })
        .collect();
    let out = safetensors::serialize(views, &None).context("cannot encode safetensors")?;
    write_atomic(path, &out)
}

/// Saves one f32 vector as a file with a single tensor `name`.
pub fn save_vector(name: &str, values: &[f32], path: &Path) -> Result<()> {
    save(path, &[(name.to_string(), vec![values.len()], Values::F32(values))])
}

/// Reads back the single vector of [`save_vector`] (or every tensor of a
/// file, concatenated in name order).
pub fn load_vector(path: &Path) -> Result<Vec<f32>> {
    Ok(load(path)?.into_iter().flat_map(|t| t.2).collect())
}

/// Reads every tensor of a safetensors file as f32, sorted by name.
/// Floating-point tensors of any width (f64, f16, bf16, as PyTorch may
/// save them) and integer tensors are converted; f64 rounds to nearest,
/// the others are exact. A dtype with no f32 meaning is an error that
/// names the tensor and its dtype.
pub fn load(path: &Path) -> Result<Vec<NamedTensor>> {
    let bytes = std::fs::read(path).with_context(|| format!("{}: cannot read", path.display()))?;
    let st = safetensors::SafeTensors::deserialize(&bytes)
        .map_err(|e| crate::error::input(format!("{}: not a safetensors file ({e})", path.display())))?;
    let mut out = Vec::new();
    for (name, view) in st.tensors() {
        let values = to_f32(view.dtype(), view.data()).ok_or_else(|| {
            crate::error::input(format!(
                "{}: tensor {name} has dtype {:?}, which cannot be read as numbers",
                path.display(),
                view.dtype()
            ))
        })?;
        out.push((name, view.shape().to_vec(), values));
    }
    out.sort_by(|a, b| a.0.cmp(&b.0));
    Ok(out)
}

/// Little-endian `data` of `dtype` as f32, or `None` for a dtype that is
/// not a plain number (booleans, 8-bit floats).
fn to_f32(dtype: Dtype, data: &[u8]) -> Option<Vec<f32>> {
    fn each<const N: usize>(data: &[u8], f: impl Fn([u8; N]) -> f32) -> Vec<f32> {
        data.chunks_exact(N).map(|c| f(c.try_into().expect("chunks of N"))).collect()
    }
    Some(match dtype {
        Dtype::F32 => each(data, f32::from_le_bytes),
        Dtype::F64 => each(data, |b| f64::from_le_bytes(b) as f32),
        Dtype::F16 => each(data, |b| half::f16::from_le_bytes(b).to_f32()),
        Dtype::BF16 => each(data, |b| half::bf16::from_le_bytes(b).to_f32()),
        Dtype::I64 => each(data, |b| i64::from_le_bytes(b) as f32),
        Dtype::I32 => each(data, |b| i32::from_le_bytes(b) as f32),
        Dtype::I16 => each(data, |b| f32::from(i16::from_le_bytes(b))),
        Dtype::I8 => each(data, |b: [u8; 1]| f32::from(b[0] as i8)),
        Dtype::U8 => each(data, |b: [u8; 1]| f32::from(b[0])),
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A file as PyTorch writes it with other dtypes: each tensor reads
    /// back as the f32 nearest to its value.
    #[test]
    fn other_float_widths_are_converted() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("t.safetensors");
        let f64s: Vec<u8> = [0.1f64, -2.5].iter().flat_map(|x| x.to_le_bytes()).collect();
        let f16s: Vec<u8> = [0.333f32, -1.0].iter().flat_map(|&x| half::f16::from_f32(x).to_le_bytes()).collect();
        let bf16s: Vec<u8> = [3.0f32, 1e-3].iter().flat_map(|&x| half::bf16::from_f32(x).to_le_bytes()).collect();
        let bools = [1u8, 0];
        let views = vec![
            ("a".to_string(), TensorView::new(Dtype::F64, vec![2], &f64s).unwrap()),
            ("b".to_string(), TensorView::new(Dtype::F16, vec![2], &f16s).unwrap()),
            ("c".to_string(), TensorView::new(Dtype::BF16, vec![2], &bf16s).unwrap()),
        ];
        std::fs::write(&path, safetensors::serialize(views.clone(), &None).unwrap()).unwrap();
        let t = load(&path).unwrap();
        assert_eq!(t[0].2, vec![0.1f32, -2.5]);
        assert_eq!(t[1].2, vec![half::f16::from_f32(0.333).to_f32(), -1.0]);
        assert!((t[1].2[0] - 0.333).abs() < 1e-3);
        assert_eq!(t[2].2, vec![3.0, half::bf16::from_f32(1e-3).to_f32()]);
        let mut with_bool = views;
        with_bool.push(("d".to_string(), TensorView::new(Dtype::BOOL, vec![2], &bools).unwrap()));
        std::fs::write(&path, safetensors::serialize(with_bool, &None).unwrap()).unwrap();
        let err = load(&path).unwrap_err().to_string();
        assert!(err.contains("tensor d has dtype BOOL"), "{err}");
    }
}
