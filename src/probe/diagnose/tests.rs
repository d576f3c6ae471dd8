//! Each verdict kind fires on a run made to show it, and none fires on a
//! healthy run: synthetic probe rows around a healthy baseline, one fault
//! at a time.

use super::*;

const STEPS: usize = 400;

/// A small ReLU network: two hidden layers of 6 and 5 units, 10 classes.
fn model() -> Model {
    Model::mlp(&[8, 6, 5, 10], Activation::Relu)
}

/// What a healthy run records: gradients of one size in every layer,
/// unit-scale signals, updates of 1e-3, no dead units, a falling loss and
/// every parameter changing every epoch.
struct Run {
    rows: Vec<LayerStatsRow>,
    losses: Vec<f32>,
    clipped: Vec<bool>,
    loss: Loss,
    changes: Vec<ChangeRow>,
}

impl Run {
    fn history(&self) -> StepHistory {
        StepHistory { losses: self.losses.clone(), clipped: self.clipped.clone(), loss: self.loss }
    }
}

fn healthy(steps: usize) -> Run {
    let rows = (0..steps)
        .flat_map(|step| {
            (1..=3).map(move |layer| LayerStatsRow {
                step,
                layer,
                gw_norm: 0.1 + 0.01 * ((step * 7 + layer) % 5) as f64,
                nonfinite: 0,
                dead_units: 0,
                pre_std: 1.0,
                update_ratio: 1e-3,
                ..LayerStatsRow::unmeasured(step, layer)
            })
        })
        .collect();
    let losses = (0..steps).map(|i| 2.3 * (-(i as f32) / 60.0).exp() + 0.001).collect();
    let changes = (1..=2)
        .flat_map(|epoch| (1..=3).map(move |layer| ChangeRow { epoch, layer, changed: 10, total: 10 }))
        .collect();
    Run { rows, losses, clipped: vec![false; steps], loss: Loss::default(), changes }
}

fn kinds(run: &Run) -> Vec<VerdictKind> {
    diagnose(&run.rows, &run.history(), &run.changes, &[], &model()).iter().map(|v| v.kind).collect()
}

fn messages(run: &Run) -> String {
    diagnose(&run.rows, &run.history(), &run.changes, &[], &model())
        .iter()
        .map(|v| v.message.clone())
        .collect::<Vec<_>>()
        .join("\n")
}

fn each_row(run: &mut Run, layer: usize, edit: impl Fn(&mut LayerStatsRow)) {
    run.rows.iter_mut().filter(|r| r.layer == layer).for_each(edit);
}

#[test]
fn a_healthy_run_gets_no_verdict() {
    for steps in [30, STEPS, 3000] {
        assert_eq!(kinds(&healthy(steps)), vec![], "{steps} steps: {}", messages(&healthy(steps)));
    }
}

#[test]
fn a_nonfinite_loss_is_named_with_its_step() {
    let mut run = healthy(STEPS);
    run.losses[200] = f32::NAN;
    assert_eq!(kinds(&run), vec![VerdictKind::NonfiniteLoss]);
    assert!(messages(&run).contains("NaN at step 200"), "{}", messages(&run));
}

#[test]
fn gradients_a_thousand_times_smaller_than_the_output_layers_vanish() {
    let mut run = healthy(STEPS);
    each_row(&mut run, 1, |r| r.gw_norm = 2e-4);
    assert_eq!(kinds(&run), vec![]); // 2e-3 of the output layer's: small, not vanished
    each_row(&mut run, 1, |r| r.gw_norm = 5e-5);
    assert_eq!(kinds(&run), vec![VerdictKind::VanishingGradients]);
    assert!(messages(&run).contains("layer 1 5.0e-5"), "{}", messages(&run));
}

/// Fashion-MNIST's N(0, 0.001) network: every unit of the last hidden layer
/// dead, so no gradient reaches any weight. Named as exactly zero, with its
/// cause, not as "vanishing" or "stalled".
#[test]
fn exactly_zero_gradients_are_named_with_their_cause() {
    let mut run = healthy(STEPS);
    for layer in 1..=3 {
        each_row(&mut run, layer, |r| {
            r.gw_norm = 0.0;
            r.update_ratio = 0.0;
        });
    }
    each_row(&mut run, 2, |r| r.dead_units = 5);
    let got = kinds(&run);
    assert_eq!(got, vec![VerdictKind::ZeroGradients, VerdictKind::DeadRelu], "{}", messages(&run));
    let text = messages(&run);
    assert!(text.contains("layer(s) 1, 2, 3 were exactly 0"), "{text}");
    assert!(text.contains("every unit of layer 2 outputs 0"), "{text}");
    // Zero in a few steps only (a sparse batch) is no verdict.
    let mut run = healthy(STEPS);
    run.rows.iter_mut().filter(|r| r.step % 10 == 0).for_each(|r| r.gw_norm = 0.0);
    assert_eq!(kinds(&run), vec![]);
}

#[test]
fn a_signal_that_shrinks_a_hundredfold_at_the_first_step_vanishes() {
    let mut run = healthy(STEPS);
    run.rows.iter_mut().filter(|r| r.step == 0 && r.layer == 2).for_each(|r| r.pre_std = 0.02);
    assert_eq!(kinds(&run), vec![]);
    run.rows.iter_mut().filter(|r| r.step == 0 && r.layer == 2).for_each(|r| r.pre_std = 0.005);
    assert_eq!(kinds(&run), vec![VerdictKind::VanishingSignal]);
}

#[test]
fn updates_below_a_millionth_of_the_weights_stall() {
    let mut run = healthy(STEPS);
    each_row(&mut run, 1, |r| r.update_ratio = 2e-6);
    assert_eq!(kinds(&run), vec![]);
    each_row(&mut run, 1, |r| r.update_ratio = 1e-8);
    assert_eq!(kinds(&run), vec![VerdictKind::StalledUpdates]);
    assert!(messages(&run).contains("layer 1 1.0e-8"), "{}", messages(&run));
}

#[test]
fn a_huge_or_nonfinite_gradient_explodes() {
    let mut run = healthy(STEPS);
    run.rows.iter_mut().filter(|r| r.step == 50 && r.layer == 2).for_each(|r| r.gw_norm = 900.0);
    assert_eq!(kinds(&run), vec![]);
    run.rows.iter_mut().filter(|r| r.step == 50 && r.layer == 2).for_each(|r| r.gw_norm = 2e3);
    assert_eq!(kinds(&run), vec![VerdictKind::ExplodingGradients]);
    let mut run = healthy(STEPS);
    run.rows.iter_mut().filter(|r| r.step == 70 && r.layer == 3).for_each(|r| r.nonfinite = 4);
    assert_eq!(kinds(&run), vec![VerdictKind::ExplodingGradients]);
    assert!(messages(&run).contains("4 non-finite values at step 70"), "{}", messages(&run));
}

#[test]
fn layers_that_keep_every_parameter_are_named() {
    let mut run = healthy(STEPS);
    run.changes.iter_mut().filter(|c| c.layer == 1 && c.epoch == 1).for_each(|c| c.changed = 0);
    assert_eq!(kinds(&run), vec![], "one epoch unchanged, the next changed");
    run.changes.iter_mut().filter(|c| c.layer == 1).for_each(|c| c.changed = 0);
    assert_eq!(kinds(&run), vec![VerdictKind::ParametersUnchanged]);
    run.changes.iter_mut().for_each(|c| c.changed = 0);
    assert!(messages(&run).contains("the optimiser is not updating this model"), "{}", messages(&run));
}

/// A plateau is found in a run of any length from 20 steps, and the
/// shortest plateau scales with the run (half of it, up to 1000 steps).
#[test]
fn a_flat_loss_is_found_in_short_and_long_runs() {
    for steps in [20, 60, STEPS, 3000] {
        let mut run = healthy(steps);
        run.losses = (0..steps).map(|i| 2.3013 + 0.004 * ((i % 7) as f32 - 3.0) / 3.0).collect();
        assert_eq!(kinds(&run), vec![VerdictKind::FlatLoss], "{steps} steps");
        assert!(messages(&run).contains("ln 10 = 2.3026"), "{}", messages(&run));
    }
    // Too short to tell a plateau from a pause.
    let mut run = healthy(15);
    run.losses = vec![2.3; 15];
    assert_eq!(kinds(&run), vec![]);
    // A plateau over less than half of a 400-step run, then learning, is a pause.
    let mut run = healthy(STEPS);
    run.losses = (0..STEPS).map(|i| if i < 150 { 2.3 } else { 2.3 * (-((i - 150) as f32) / 40.0).exp() }).collect();
    assert_eq!(kinds(&run), vec![]);
    // Converged near zero is not flat in the failing sense.
    let mut run = healthy(STEPS);
    run.losses = vec![0.001; STEPS];
    assert_eq!(kinds(&run), vec![]);
    // Under MSE the level to name is the best constant output's, (C - 1) / C^2.
    let mut run = healthy(STEPS);
    run.loss = Loss::Mse { target: crate::nn::loss::MseTarget::Centered };
    run.losses = vec![0.0901; STEPS];
    assert_eq!(kinds(&run), vec![VerdictKind::FlatLoss]);
    assert!(messages(&run).contains("(C - 1) / C^2 = 0.0900"), "{}", messages(&run));
}

/// Clipping on most steps is named with its share; on fewer it is a guard.
#[test]
fn clipping_on_most_steps_is_named() {
    let mut run = healthy(STEPS);
    run.clipped = (0..STEPS).map(|i| i % 5 < 2).collect(); // 40%
    assert_eq!(kinds(&run), vec![]);
    run.clipped = (0..STEPS).map(|i| i % 5 < 3).collect(); // 60%
    assert_eq!(kinds(&run), vec![VerdictKind::ClippedMostSteps]);
    assert!(messages(&run).contains("240 of 400 steps (60%; 60% of the last tenth)"), "{}", messages(&run));
}

#[test]
fn mostly_dead_relu_layers_are_named() {
    let mut run = healthy(STEPS);
    each_row(&mut run, 1, |r| r.dead_units = 3); // half of 6: not most
    assert_eq!(kinds(&run), vec![]);
    each_row(&mut run, 1, |r| r.dead_units = 4);
    assert_eq!(kinds(&run), vec![VerdictKind::DeadRelu]);
    assert!(messages(&run).contains("67% of layer 1's 6 units"), "{}", messages(&run));
}

#[test]
fn long_runs_of_layers_are_collapsed() {
    assert_eq!(layer_runs(&[1, 2, 3]), "1, 2, 3");
    assert_eq!(layer_runs(&(1..=1001).collect::<Vec<_>>()), "1-1001");
    assert_eq!(layer_runs(&[2, 5, 6, 7, 8, 9, 12]), "2, 5-9, 12");
}
