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

/// The experiment `scripts/torch-mup.py` checks: the model 784-w-w-10 as
/// `parametrisation` builds it, PyTorch's default init, its optimiser.
fn coord_experiment(parametrisation: &str, optimizer: &str, lr: f64, batch: usize) -> Experiment {
    let p = if parametrisation == "mup" { "parametrisation = { name = \"mup\", base_width = 64 }\n" } else { "" };
    let text = format!(
        "rng = \"torch\"\nbatch_size = {batch}\noptimizer = {{ kind = \"{optimizer}\", lr = {lr} }}\n[model]\nwidth = 64\ndepth = 2\n{p}\
         [[variants]]\nname = \"{parametrisation}\"\nweight_init = {{ scheme = \"pytorch_default\" }}\nbias_init = {{ scheme = \"pytorch_default\" }}\n"
    );
    Experiment::from_toml(&text, std::path::Path::new("coord.toml")).unwrap()
}

#[test]
fn the_coord_check_gives_mups_own_numbers() {
    use initscope::coord_check::{coord_rows, CoordSettings};
    let json = torch_fixture_json("mup.json");
    let coord = &json["coord"];
    let (steps, seeds, batch) =
        (coord["steps"].as_u64().unwrap(), coord["seeds"].as_u64().unwrap(), coord["batch"].as_u64().unwrap());
    let data = mnist();
    let mut worst_all = 0.0f64;
    for run in coord["runs"].as_array().unwrap() {
        let (p, opt) = (run["parametrisation"].as_str().unwrap(), run["optimizer"].as_str().unwrap());
        let exp = coord_experiment(p, opt, run["lr"].as_f64().unwrap(), batch as usize);
        let theirs = run["rows"].as_array().unwrap();
        let mut widths: Vec<usize> = theirs.iter().map(|r| r["width"].as_u64().unwrap() as usize).collect();
        widths.dedup();
        let settings = CoordSettings { widths, steps: steps as usize, seeds: seeds as usize, tolerance: 0.1 };
        let ours = coord_rows(&exp, &data, &settings, &mut |_| {}).unwrap();
        // Worst relative difference at the first step (the initial weights,
        // identical bits: summation order only) and at the later ones.
        let (mut worst, mut worst_init) = (0.0f64, 0.0f64);
        let mut compared = 0;
        for t in theirs.iter().filter(|r| r["module"] != "my_network.0") {
            let key = (
                t["width"].as_u64().unwrap() as usize,
                t["module"].as_str().unwrap(),
                t["t"].as_u64().unwrap() as usize,
                t["seed"].as_u64().unwrap(),
            );
            let mine = ours.iter().find(|r| (r.width, r.layer.as_str(), r.step, r.seed) == key);
            let mine = mine.unwrap_or_else(|| panic!("{p} {opt}: no row for {key:?}"));
            let gap = relative(mine.l1, t["l1"].as_f64().unwrap());
            if key.2 == 1 {
                worst_init = worst_init.max(gap);
            }
            worst = worst.max(gap);
            compared += 1;
        }
        assert_eq!(compared, ours.len(), "{p} {opt}: one of our rows for each of mup's");
        eprintln!("coord check, {p} {opt}: {compared} values, largest relative difference to mup's {worst:.1e} ({worst_init:.1e} at step 1)");
        worst_all = worst_all.max(worst);
        assert!(worst_init < 1e-5, "{p} {opt}: at initialisation {worst_init:.1e} from mup's");
    }
    // After the first update, float rounding only, but Adam's step divides
    // by sqrt(v): for a gradient near zero a last-bit difference moves the
    // weight by up to the whole lr, so its later steps get a wider bound.
    assert!(worst_all < 1e-3, "largest relative difference {worst_all:.1e}");
}
