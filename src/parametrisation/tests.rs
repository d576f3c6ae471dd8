//! The rules against their formulas, worked by hand from `mup` 1.0.0's
//! source for 784-256-256-10 at base width 64 (width multiplier 4).

use super::*;

fn mlp_shapes(hidden: &[usize], base: usize) -> Vec<LinearShape> {
    let mut dims = vec![Dim::FIXED];
    dims.extend(hidden.iter().map(|&h| Dim::hidden(h, base)));
    dims.push(Dim::FIXED);
    let last = dims.len() - 2;
    (0..=last).map(|l| LinearShape { fan_in: dims[l], out: dims[l + 1], readout: l == last }).collect()
}

fn settings(name: ParametrisationName) -> Parametrisation {
    Parametrisation { name, base_width: 64, output_multiplier: 1.0, decoupled_wd: false }
}

#[test]
fn every_parametrisation_is_the_standard_one_at_the_base_width() {
    let shapes = mlp_shapes(&[64, 64], 64);
    for name in [
        ParametrisationName::Standard,
        ParametrisationName::Ntk,
        ParametrisationName::Mup,
        ParametrisationName::MeanField,
    ] {
        for kind in [OptimizerKind::Sgd, OptimizerKind::Adam] {
            assert!(settings(name).scales(&shapes, kind).iter().all(|s| *s == LayerScale::IDENTITY), "{name:?}");
        }
    }
}

#[test]
fn mup_under_sgd_follows_musgd_and_set_base_shapes() {
    let s = settings(ParametrisationName::Mup).scales(&mlp_shapes(&[256, 256], 64), OptimizerKind::Sgd);
    // Input layer: weight [w, 784] and bias [w] are vector-like: lr x 4.
    assert_eq!((s[0].weight_lr, s[0].bias_lr, s[0].bias_init, s[0].multiplier), (4.0, 4.0, 1.0, 1.0));
    // Hidden: matrix-like weight, ratio (4 / 4) = 1; bias vector-like; bias x sqrt(4).
    assert_eq!((s[1].weight_lr, s[1].bias_lr, s[1].weight_init, s[1].bias_init), (1.0, 4.0, 1.0, 2.0));
    // Readout: weight [10, w] vector-like (lr x 4), bias fixed; both drawn x 2, input x 1/4.
    assert_eq!(
        (s[2].weight_lr, s[2].bias_lr, s[2].weight_init, s[2].bias_init, s[2].multiplier),
        (4.0, 1.0, 2.0, 2.0, 0.25)
    );
    // Coupled weight decay: lr * wd stays.
    assert_eq!((s[0].weight_wd, s[1].bias_wd, s[2].bias_wd), (0.25, 0.25, 1.0));
}

#[test]
fn mup_under_adam_divides_only_the_hidden_weights_lr() {
    let s = settings(ParametrisationName::Mup).scales(&mlp_shapes(&[256, 256], 64), OptimizerKind::Adamw);
    let lrs: Vec<(f64, f64)> = s.iter().map(|s| (s.weight_lr, s.bias_lr)).collect();
    assert_eq!(lrs, vec![(1.0, 1.0), (0.25, 1.0), (1.0, 1.0)]);
    assert_eq!(s[1].weight_wd, 4.0);
    let decoupled = Parametrisation { decoupled_wd: true, ..settings(ParametrisationName::Mup) };
    assert_eq!(decoupled.scales(&mlp_shapes(&[256, 256], 64), OptimizerKind::Adamw)[1].weight_wd, 1.0);
}

#[test]
fn mup_takes_the_ratio_of_two_different_widths() {
    // 784-128-512-10 against base 64: m = 2 then 8.
    let s = settings(ParametrisationName::Mup).scales(&mlp_shapes(&[128, 512], 64), OptimizerKind::Sgd);
    assert_eq!(s[1].weight_lr, 8.0 / 2.0);
    assert_eq!(s[1].bias_init, 2f64.sqrt());
    assert_eq!((s[2].multiplier, s[2].weight_init), (1.0 / 8.0, 8f64.sqrt()));
    let adam = settings(ParametrisationName::Mup).scales(&mlp_shapes(&[128, 512], 64), OptimizerKind::Adam);
    assert_eq!(adam[1].weight_lr, 1.0 / 2.0);
}

#[test]
fn ntk_keeps_the_initial_function_and_moves_the_width_into_the_multiplier() {
    let s = settings(ParametrisationName::Ntk).scales(&mlp_shapes(&[256, 256], 64), OptimizerKind::Sgd);
    assert_eq!(s[0], LayerScale::IDENTITY);
    for layer in &s[1..] {
        assert_eq!((layer.weight_init, layer.multiplier, layer.weight_lr), (2.0, 0.5, 1.0));
        assert_eq!(layer.weight_init * layer.multiplier, 1.0);
    }
}

#[test]
fn mean_field_divides_by_the_width_and_scales_sgd_rates_up() {
    let shapes = mlp_shapes(&[256, 256], 64);
    let s = settings(ParametrisationName::MeanField).scales(&shapes, OptimizerKind::Sgd);
    assert_eq!((s[0].multiplier, s[0].weight_lr, s[0].bias_lr), (1.0, 4.0, 4.0));
    assert_eq!((s[2].weight_init, s[2].multiplier, s[2].weight_lr), (2.0, 0.25, 4.0));
    // The effective weight's std at init falls as m^(-1/2) against SP's.
    assert_eq!(s[1].weight_init * s[1].multiplier, 0.5);
    let adam = settings(ParametrisationName::MeanField).scales(&shapes, OptimizerKind::Adam);
    assert!(adam.iter().all(|l| l.weight_lr == 1.0 && l.bias_lr == 1.0));
}

#[test]
fn bad_settings_get_one_line_naming_the_field() {
    let zero = Parametrisation { base_width: 0, ..settings(ParametrisationName::Mup) };
    assert_eq!(
        zero.check("model.parametrisation").unwrap_err().to_string(),
        "model.parametrisation.base_width: must be at least 1"
    );
    let mult = Parametrisation { output_multiplier: 2.0, ..settings(ParametrisationName::Ntk) };
    assert!(mult.check("p").unwrap_err().to_string().starts_with("p.output_multiplier: only `mup`"));
}
