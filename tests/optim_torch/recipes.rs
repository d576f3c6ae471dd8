//! The training recipes held to PyTorch (`recipes.json`'s `training`, made
//! by `scripts/torch-recipes.py`): gradient clipping by norm and by value,
//! label smoothing, MSE to a one-hot and a centred target, and schedules
//! driving SGD's momentum and Adam's beta1, each 60 steps of the seed
//! network from PyTorch's initial weights within PyTorch's own spread; the
//! pre-clip gradient norms within float rounding, and clipping firing at
//! the same steps.

use super::*;
use initscope::nn::loss::Loss;
use initscope::optim::clip::ClipSettings;
use initscope::schedule::{RunSchedule, ScheduleSettings};

/// initscope's run of one recipe: the losses, pre-clip norms and clip flags.
fn recipe_run(recipe: &Value, data: &LabeledImages) -> (Vec<f64>, Vec<f64>, Vec<bool>) {
    let optimizer: OptimizerSettings = serde_json::from_value(recipe["optimizer"].clone()).unwrap();
    let clip: Option<ClipSettings> = serde_json::from_value(recipe["clip"].clone()).unwrap();
    let loss: Option<Loss> = serde_json::from_value(recipe["loss"].clone()).unwrap();
    let schedule = match &recipe["schedule"] {
        Value::Null => ScheduleSettings::constant(),
        table => {
            let mut table = table.clone();
            table["interval"] = Value::from("step");
            serde_json::from_value(table).unwrap()
        }
    };
    let batch = 128;
    let mut run = RunSchedule::start(&schedule, (optimizer.lr, &[]), (STEPS, 1), (0, 1)).unwrap();
    let mut trainer =
        Trainer::new(seed_model(false), optimizer, batch, 1).with_loss(loss.unwrap_or_default()).with_clip(clip);
    let (mut losses, mut norms, mut clipped) = (Vec::new(), Vec::new(), Vec::new());
    for k in 0..STEPS {
        trainer.set_scheduled(&run.values());
        let indices: Vec<u32> = ((k * batch) as u32..((k + 1) * batch) as u32).collect();
        losses.push(f64::from(trainer.compute_gradients(data, &indices)));
        norms.push(f64::from(trainer.clip_outcome().norm));
        clipped.push(trainer.clip_outcome().clipped);
        trainer.apply_update();
        run.after_step();
    }
    (losses, norms, clipped)
}

#[test]
fn recipes_follow_pytorch_step_for_step() {
    let json = torch_fixture_json("recipes.json");
    let training = &json["training"];
    assert_eq!(training["steps"].as_u64(), Some(STEPS as u64));
    let data = mnist();
    let mut failures = Vec::new();
    eprintln!("| recipe | initscope vs PyTorch f32, max rel. | PyTorch's own spread | grad norm, max rel. | clipped at the same steps |");
    eprintln!("|---|---|---|---|---|");
    for (name, recipe) in training["recipes"].as_object().unwrap() {
        let (ours, norms, clipped) = recipe_run(recipe, &data.train);
        let (f32s, others) = torch_runs(recipe, recipe, "");
        let (worst, spread, failure) = compare_with_torch(&ours, &f32s, &torch_spread(&f32s, &others));
        failures.extend(failure.map(|f| format!("{name}, {f}")));
        let (mut norm_gap, mut same) = (f64::NAN, String::from("-"));
        if !recipe["clip"].is_null() {
            let theirs = floats(&recipe["grad_norm"]);
            norm_gap = norms.iter().zip(&theirs).map(|(a, b)| relative(*a, *b)).fold(0.0, f64::max);
            // The norms follow the losses: the same bound as they have.
            let spread_at_end = torch_spread(&f32s, &others).last().copied().unwrap_or(0.0);
            if norm_gap > (10.0 * spread_at_end).max(1e-5) {
                failures.push(format!("{name}: gradient norm {norm_gap:.1e} from PyTorch's"));
            }
            let flags: Vec<bool> = recipe["clipped"].as_array().unwrap().iter().map(|v| v.as_bool().unwrap()).collect();
            let agree = flags.iter().zip(&clipped).filter(|(a, b)| a == b).count();
            same = format!("{agree}/{STEPS} ({} clipped)", flags.iter().filter(|&&f| f).count());
            if agree != STEPS {
                failures.push(format!("{name}: clipping fired at other steps than PyTorch's ({same})"));
            }
        }
        eprintln!("| {name} | {worst:.1e} | {spread:.1e} | {norm_gap:.1e} | {same} |");
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}
