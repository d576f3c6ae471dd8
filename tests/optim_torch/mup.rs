//! `parametrisation = { name = "mup" }` held to Microsoft's `mup` package
//! (`mup.json`, made by `scripts/torch-mup.py`): 784-w-w-10 with a
//! `MuReadout` and `set_base_shapes` from base width 64, at widths 128 and
//! 256. Under `rng = "torch"` the initial state_dict is `mup`'s bit for bit
//! (md5 of every tensor); 60 steps of MuSGD (momentum, coupled weight
//! decay), MuAdam and MuAdamW (weight decay 0.1) on MNIST stay within
//! PyTorch's own spread, as the other optimiser fixtures do.

use super::*;
use initscope::experiment::Experiment;
use initscope::spec::{DataShape, RunSpec};

/// The run an experiment file with the fixture's model, optimiser and
/// parametrisation resolves to.
fn mup_spec(width: usize, optimizer: &Value) -> RunSpec {
    let optimizer: OptimizerSettings = serde_json::from_value(optimizer.clone()).unwrap();
    let mut text = format!(
        "rng = \"torch\"\nseed = 7\n[model]\nwidth = {width}\ndepth = 2\nparametrisation = {{ name = \"mup\", base_width = 64 }}\n"
    );
    text += "[[variants]]\nname = \"mup\"\nweight_init = { scheme = \"pytorch_default\" }\nbias_init = { scheme = \"pytorch_default\" }\n";
    let mut exp = Experiment::from_toml(&text, std::path::Path::new("mup.toml")).unwrap();
    exp.optimizer = optimizer;
    let unit = &exp.runs()[0];
    RunSpec::resolve(&exp, unit, DataShape { input_width: 784, classes: 10 })
}

fn md5_hex(values: &[f32]) -> String {
    use md5::{Digest, Md5};
    let bytes: Vec<u8> = values.iter().flat_map(|v| v.to_le_bytes()).collect();
    Md5::digest(&bytes).iter().map(|b| format!("{b:02x}")).collect()
}

#[test]
fn mup_initial_weights_are_the_packages_bit_for_bit() {
    let json = torch_fixture_json("mup.json");
    for (width, tensors) in json["init"].as_object().unwrap() {
        let spec = mup_spec(width.parse().unwrap(), &serde_json::json!({"kind": "sgd", "lr": 0.1}));
        let (model, _) = spec.drawn_model(&|| false).unwrap();
        let ours = model.tensors();
        assert_eq!(ours.len(), tensors.as_object().unwrap().len(), "width {width}: tensors");
        for slot in ours {
            let theirs = &tensors[&slot.name];
            let values = &model.params[slot.range.clone()];
            assert_eq!(
                md5_hex(values),
                theirs["md5"].as_str().unwrap(),
                "width {width}, {}: ours start {:?}, mup's {}",
                slot.name,
                &values[..4],
                theirs["first"]
            );
        }
    }
}

/// initscope's losses for one fixture run, the model and optimiser from
/// the resolved run.
fn mup_losses(run: &Value, data: &LabeledImages, steps: usize, batch: usize) -> Vec<f64> {
    let spec = mup_spec(run["width"].as_u64().unwrap() as usize, &run["optimizer"]);
    let (model, _) = spec.drawn_model(&|| false).unwrap();
    let optimizer = spec.optimizer(&model);
    let mut trainer = Trainer::with_optimizer(model, optimizer, batch, 1);
    (0..steps)
        .map(|k| {
            let indices: Vec<u32> = ((k * batch) as u32..((k + 1) * batch) as u32).collect();
            f64::from(trainer.step(data, &indices))
        })
        .collect()
}

#[test]
fn mup_training_follows_the_package_step_for_step() {
    let json = torch_fixture_json("mup.json");
    let (steps, batch) = (json["steps"].as_u64().unwrap() as usize, json["batch"].as_u64().unwrap() as usize);
    assert_eq!(steps, STEPS);
    let data = mnist();
    let mut failures = Vec::new();
    eprintln!("| mup optimiser, width | initscope vs mup f32, max rel. | PyTorch's own spread | final loss |");
    eprintln!("|---|---|---|---|");
    for (name, run) in json["training"].as_object().unwrap() {
        let ours = mup_losses(run, &data.train, steps, batch);
        let (f32s, others) = torch_runs(run, run, "");
        let (worst, spread, failure) = compare_with_torch(&ours, &f32s, &torch_spread(&f32s, &others));
        failures.extend(failure.map(|f| format!("{name}, {f}")));
        eprintln!("| {name} | {worst:.1e} | {spread:.1e} | {:.4} |", ours[steps - 1]);
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}
