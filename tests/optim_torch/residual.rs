//! The residual network held to PyTorch (`residual.json` and
//! `residual.safetensors`, made by `scripts/torch-fixtures.py
//! --residual-only` from the module defined there): its initial
//! `state_dict` under `rng = "torch"`, layer norm's forward and backward,
//! and 60 training steps per optimiser within PyTorch's own spread.

use super::*;
use initscope::nn::layernorm::LayerNorm;
use initscope::nn::residual::{Alpha, BlockOrder, BranchNorm, Residual, ResidualRule};

fn residual_json() -> Value {
    torch_fixture_json("residual.json")
}

/// The fixture's network as initscope builds it, drawn from PyTorch's seed.
fn residual_model(json: &Value) -> Model {
    let net = &json["network"];
    let blocks = Residual {
        blocks: net["blocks"].as_u64().unwrap() as usize,
        branch_layers: 2,
        norm: BranchNorm::LayerNorm,
        order: BlockOrder::Pre,
        alpha: Some(Alpha { init: net["alpha"].as_f64().unwrap() as f32, trainable: true }),
        scalar_biases: None,
        rule: ResidualRule::Standard,
    };
    let width = net["width"].as_u64().unwrap() as usize;
    let mut model = Model::residual(784, width, 10, Activation::Relu, &blocks);
    let schemes = vec![kaiming(); model.linear_count()];
    torch_init::initialise(&mut model, &schemes, net["seed"].as_u64().unwrap());
    model
}

/// Every initial tensor, named as PyTorch's module names it, bit for bit:
/// the Linears as PyTorch draws them, the norms' ones and zeros, alpha.
#[test]
fn a_residual_networks_initial_state_dict_is_pytorchs() {
    let json = residual_json();
    let t = torch_fixture_tensors("residual.safetensors");
    let model = residual_model(&json);
    let ours = model.tensors();
    let theirs: Vec<&String> = t.keys().filter(|k| k.starts_with("init/")).collect();
    assert_eq!(ours.len(), theirs.len(), "tensors: ours {:?}", ours.iter().map(|s| &s.name).collect::<Vec<_>>());
    for slot in &ours {
        let expected = &t[&format!("init/{}", slot.name)];
        let values = &model.params[slot.range.clone()];
        let differ = values.iter().zip(expected).filter(|(a, b)| a.to_bits() != b.to_bits()).count();
        assert_eq!(differ, 0, "{}: {differ} of {} values differ", slot.name, values.len());
    }
}

/// Layer norm against `nn.LayerNorm(37)` on 64 rows: output and every
/// gradient within 4 ulps of each tensor's scale (its row statistics are
/// summed in f64 here, in PyTorch's own float32 order there).
#[test]
fn layer_norm_matches_pytorch() {
    let t = torch_fixture_tensors("residual.safetensors");
    let (batch, width) = (64, 37);
    let ln = LayerNorm { width, offset: 0 };
    let params: Vec<f32> = t["ln/gamma"].iter().chain(&t["ln/beta"]).copied().collect();
    let (mut y, mut xhat, mut rstd) = (vec![0.0; batch * width], vec![0.0; batch * width], vec![0.0; batch]);
    ln.forward(&params, &t["ln/x"], &mut y, &mut xhat, &mut rstd, batch);
    let mut d = t["ln/dy"].clone();
    let mut grads = vec![0.0; 2 * width];
    ln.backward(&params, &xhat, &rstd, &mut d, &mut grads, &mut vec![0.0; 2 * width], batch);
    let checks = [
        ("output", worst_ulps(&y, &t["ln/y"])),
        ("input gradient", worst_ulps(&d, &t["ln/dx"])),
        ("gamma gradient", worst_ulps(&grads[..width], &t["ln/dgamma"])),
        ("beta gradient", worst_ulps(&grads[width..], &t["ln/dbeta"])),
    ];
    let report: Vec<String> = checks.iter().map(|(name, u)| format!("layer norm {name}: {u} ulp")).collect();
    eprintln!("{}", report.join("\n"));
    assert!(checks.iter().all(|c| c.1 <= 4.0), "{}", report.join("\n"));
}

/// 60 steps of the residual network (LayerNorm, trainable alpha) from
/// PyTorch's initial weights on images 0..7679 in order, per optimiser:
/// the losses within 10x PyTorch's own spread (its float64 run and its
/// float32 runs with layer 1's sums reordered), as the optimiser test.
#[test]
fn a_residual_network_trains_as_pytorchs_step_for_step() {
    let json = residual_json();
    let data = mnist();
    let mut failures = Vec::new();
    eprintln!("| residual, setting | initscope vs PyTorch f32, max rel. | PyTorch's own spread |");
    for (name, run) in json["settings"].as_object().unwrap() {
        let settings: OptimizerSettings = serde_json::from_value(run["optimizer"].clone()).unwrap();
        let mut trainer = Trainer::new(residual_model(&json), settings, 128, 1);
        let ours: Vec<f64> = (0..STEPS)
            .map(|k| {
                let indices: Vec<u32> = ((k * 128) as u32..((k + 1) * 128) as u32).collect();
                f64::from(trainer.step(&data.train, &indices))
            })
            .collect();
        let f32s = floats(&run["f32"])[..STEPS].to_vec();
        let others: Vec<Vec<f64>> = std::iter::once("f64".to_string())
            .chain((1..=4).map(|p| format!("permuted{p}")))
            .map(|key| floats(&run[&key])[..STEPS].to_vec())
            .collect();
        let (worst, spread, failure) = compare_with_torch(&ours, &f32s, &torch_spread(&f32s, &others));
        eprintln!("| {name} | {worst:.1e}{} | {spread:.1e} |", if failure.is_some() { " (over)" } else { "" });
        failures.extend(failure.map(|f| format!("residual {name}, {f}")));
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}
