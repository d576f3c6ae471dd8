//! The input-output Jacobian's gain at the first step: how much the
//! backward pass amplifies a random error on its way from the logits to
//! the first layer's output, `E|J^T v|^2 / E|v|^2` for `v ~ N(0, I)` (the
//! mean squared singular value of `J` times `classes / width`; Pennington,
//! Schoenholz & Ganguli 2017 study its whole spectrum). Mean-field theory
//! predicts it as the product of the layers' chi (theory's
//! `jacobian_gain`); written as `probe/jacobian.csv` beside it.

use crate::rng::Stream;
use crate::train::Trainer;

/// Random vectors per sample.
pub const DRAWS: usize = 4;

/// The gain measured on the last training batch's activations in
/// `trainer` (one Jacobian per sample), from `DRAWS` draws of `v` per
/// sample from `seed`'s stream; `None` with batch norm, whose Jacobian
/// couples the samples.
pub fn jacobian_gain(trainer: &Trainer, seed: u64) -> Option<f64> {
    let model = trainer.model();
    if model.has_batch_norm() {
        return None;
    }
    let classes = model.classes();
    let mut stream = Stream::new(seed, "probe/jacobian", 0);
    let mut grads = vec![0.0; model.params.len()];
    let (mut out, mut into) = (0.0f64, 0.0f64);
    for (ws, rows) in trainer.batch_activations() {
        let mut ws = ws.clone();
        for _ in 0..DRAWS {
            let v: Vec<f32> = (0..rows * classes).map(|_| stream.standard_normal() as f32).collect();
            into += v.iter().map(|&x| f64::from(x).powi(2)).sum::<f64>();
            let g = model.vector_jacobian(&mut ws, &v, &mut grads, rows, 0);
            out += g.iter().map(|&x| f64::from(x).powi(2)).sum::<f64>();
        }
    }
    (into > 0.0).then(|| out / into)
}
