//! Every learning-rate schedule's values against PyTorch's: the f64 that
//! `optimizer.param_groups[0]["lr"]` (and the momentum, or Adam's beta1)
//! holds before each of 400 steps, made by `scripts/torch-recipes.py`
//! (PyTorch 2.15). The comparison is of bits. Run with `--nocapture` for
//! the table.

mod common;
use common::*;

use initscope::optim::OptimizerSettings;
use initscope::schedule::{LrSchedule, ScheduleSettings};
use serde_json::Value;

fn floats(v: &Value) -> Vec<f64> {
    v.as_array().unwrap().iter().map(|x| x.as_f64().unwrap()).collect()
}

#[test]
fn every_schedule_keeps_pytorchs_values_bit_for_bit() {
    let fixture = torch_fixture_json("recipes.json");
    let steps = fixture["steps"].as_u64().unwrap() as usize;
    let schedules = fixture["schedules"].as_object().unwrap();
    assert!(schedules.len() >= 14, "the fixture covers every kind");
    println!("| schedule | steps | lr: equal bits | largest relative gap | momentum: equal bits |");
    println!("|---|---|---|---|---|");
    let mut failures = Vec::new();
    for (name, case) in schedules {
        let optimizer: OptimizerSettings = serde_json::from_value(case["optimizer"].clone()).unwrap();
        let settings: ScheduleSettings = serde_json::from_value(case["schedule"].clone()).unwrap();
        settings.validate("schedule", optimizer.lr).unwrap();
        let mut run = LrSchedule::new(&settings.effective_shape(), optimizer.lr, steps).unwrap();
        let (lrs, momenta) = (floats(&case["lr"]), floats(&case["momentum"]));
        let (mut equal_lr, mut equal_m, mut gap) = (0, 0, 0.0f64);
        for (k, (&lr, &m)) in lrs.iter().zip(&momenta).enumerate() {
            let ours_m = run.momentum().unwrap_or(if optimizer.kind == initscope::optim::OptimizerKind::Sgd {
                optimizer.momentum
            } else {
                optimizer.betas[0]
            });
            equal_lr += usize::from(run.lr().to_bits() == lr.to_bits());
            equal_m += usize::from(ours_m.to_bits() == m.to_bits());
            gap = gap.max((run.lr() - lr).abs() / lr.abs().max(f64::MIN_POSITIVE));
            if run.lr().to_bits() != lr.to_bits() && failures.len() < 5 {
                failures.push(format!("{name} step {k}: {} vs PyTorch's {lr}", run.lr()));
            }
            run.advance();
        }
        println!("| {name} | {steps} | {equal_lr}/{steps} | {gap:.1e} | {equal_m}/{steps} |");
        assert_eq!(equal_m, steps, "{name}: the momentum differs from PyTorch's");
    }
    assert!(failures.is_empty(), "{failures:#?}");
}
