//! Expansion of sweep files: grid sizes, `*`, indexes, tied and random
//! axes, and the errors of bad files.

use super::*;

/// The seed experiment as a file, with `sweep` appended.
fn file(sweep: &str) -> String {
    format!("{}\n{sweep}", Experiment::seed_experiment().to_toml())
}

fn spec(sweep: &str) -> SweepSpec {
    SweepSpec::from_toml(&file(sweep), "s.toml").unwrap_or_else(|e| panic!("{e:#}"))
}

fn error(sweep: &str) -> String {
    let spec = SweepSpec::from_toml(&file(sweep), "s.toml");
    let result = spec.and_then(|s| s.points().map(|_| ()));
    format!("{:#}", result.expect_err("the sweep should be refused"))
}

/// The 1-based line of `needle` in the sweep file made from `sweep`.
fn line(sweep: &str, needle: &str) -> usize {
    file(sweep).lines().position(|l| l.contains(needle)).expect("the needle is in the file") + 1
}

#[test]
fn the_grid_is_the_product_of_the_axes_last_fastest() {
    let s = spec(
        "[sweep]\n\"optimizer.lr\" = [0.01, 0.1]\nseed = [1, 2, 3]\n\"model.activation\" = [\"relu\", \"tanh\"]\n",
    );
    assert_eq!(s.len(), 12);
    assert_eq!(s.keys(), ["optimizer.lr", "seed", "model.activation"]);
    let points = s.points().unwrap();
    let p = &points[7]; // lr index 1, seed index 0, activation index 1
    assert_eq!(p.experiment.optimizer.lr, 0.1);
    assert_eq!(p.experiment.seed, 1);
    assert_eq!(p.experiment.model.activation, crate::nn::Activation::Tanh);
    assert_eq!(p.describe(), "optimizer.lr = 0.1, seed = 1, model.activation = tanh");
    // Everything not swept is the file's.
    assert!(points.iter().all(|p| p.experiment.epochs == 15 && p.experiment.variants.len() == 2));
}

#[test]
fn star_sets_every_element_and_an_index_one() {
    let s = spec("[sweep]\n\"variants.*.bias_init.value\" = [0.5]\n\"variants.1.weight_init.std\" = [0.01, 0.1]\n");
    assert_eq!(s.len(), 2);
    let p = s.point(1).unwrap();
    let biases: Vec<_> = p.experiment.variants.iter().map(|v| v.bias_init.clone()).collect();
    assert!(biases.iter().all(|b| *b == crate::nn::Init::Constant { value: 0.5 }), "{biases:?}");
    assert_eq!(p.experiment.variants[1].weight_init, crate::nn::Init::Normal { mean: 0.0, std: 0.1 });
    assert_eq!(p.experiment.variants[0].weight_init, crate::nn::Init::kaiming_relu());
}

#[test]
fn depth_is_an_axis_of_a_uniform_model() {
    let text = file("[sweep]\n\"model.depth\" = [1, 3]\n").replace("hidden = [512, 256, 128, 64]", "width = 16");
    let s = SweepSpec::from_toml(&text, "d.toml").unwrap();
    let hidden: Vec<_> = s.points().unwrap().iter().map(|p| p.experiment.model.hidden.clone()).collect();
    assert_eq!(hidden, [vec![16], vec![16, 16, 16]]);
}

#[test]
fn tied_axes_move_together() {
    let s = spec("[sweep]\nseed = [1, 2]\n[[sweep.zip]]\n\"optimizer.lr\" = [0.1, 0.01, 0.001]\nepochs = [1, 2, 3]\n");
    assert_eq!(s.len(), 6);
    let pairs: Vec<_> = s.points().unwrap().iter().map(|p| (p.experiment.optimizer.lr, p.experiment.epochs)).collect();
    assert_eq!(pairs[..3], [(0.1, 1), (0.01, 2), (0.001, 3)]);
    assert_eq!(pairs[3..], pairs[..3]);
}

#[test]
fn random_axes_draw_reproducibly_inside_their_ranges() {
    let sweep = "[sweep.random]\nsamples = 50\nseed = 7\n\"optimizer.lr\" = { log_uniform = [1e-4, 1.0] }\n\"optimizer.momentum\" = { uniform = [0.0, 0.9] }\n";
    let a = spec(sweep);
    assert_eq!(a.len(), 50);
    let lrs: Vec<f64> = a.points().unwrap().iter().map(|p| p.experiment.optimizer.lr).collect();
    assert!(lrs.iter().all(|lr| (1e-4..1.0).contains(lr)));
    // Log-uniform: about as many draws below 1e-2 as above.
    let below = lrs.iter().filter(|&&lr| lr < 1e-2).count();
    assert!((15..=35).contains(&below), "{below} of 50 below 1e-2");
    assert_eq!(spec(sweep).resolved_toml(), a.resolved_toml());
    // The resolved file states the draws, and expands to the same points.
    let again = SweepSpec::from_toml(&a.resolved_toml(), "resolved").unwrap();
    let lrs_again: Vec<f64> = again.points().unwrap().iter().map(|p| p.experiment.optimizer.lr).collect();
    assert_eq!(lrs_again, lrs);
}

#[test]
fn a_zip_written_before_the_plain_keys_numbers_the_points_as_its_resolved_file() {
    // TOML lets `[[sweep.zip]]` come first; the resolved file writes it last.
    let text = format!(
        "{}\n[[sweep.zip]]\nseed = [1, 2, 3]\nepochs = [4, 5, 6]\n[sweep]\n\"optimizer.lr\" = [0.01, 0.1]\n",
        Experiment::seed_experiment().to_toml()
    );
    let s = SweepSpec::from_toml(&text, "s.toml").unwrap();
    assert_eq!(s.keys(), ["optimizer.lr", "seed", "epochs"], "plain keys first, wherever written");
    let again = SweepSpec::from_toml(&s.resolved_toml(), "resolved").unwrap();
    let a: Vec<_> = s.points().unwrap().into_iter().map(|p| p.experiment).collect();
    let b: Vec<_> = again.points().unwrap().into_iter().map(|p| p.experiment).collect();
    assert_eq!(a, b);
    assert_eq!((a[1].optimizer.lr, a[1].seed, a[1].epochs), (0.01, 2, 5));
}

#[test]
fn the_resolved_file_expands_to_the_same_points() {
    let mut s = spec("[sweep]\n\"optimizer.lr\" = [0.01, 0.1]\n[[sweep.zip]]\nseed = [1, 2]\nepochs = [3, 4]\n");
    s.set_base("epochs", Value::Integer(9)).unwrap();
    let again = SweepSpec::from_toml(&s.resolved_toml(), "resolved").unwrap();
    let a: Vec<_> = s.points().unwrap().into_iter().map(|p| p.experiment).collect();
    let b: Vec<_> = again.points().unwrap().into_iter().map(|p| p.experiment).collect();
    assert_eq!(a, b);
    // An axis outranks an override of the same key.
    assert_eq!(a[0].epochs, 3);
}

#[test]
fn bad_values_name_the_file_line_key_and_point() {
    let sweep = "[sweep]\nseed = [1, 2]\n\"optimizer.lr\" = [0.1, -1.0]\n";
    let e = error(sweep);
    let at = line(sweep, "\"optimizer.lr\"");
    assert!(e.starts_with(&format!("s.toml:{at}: point 2 of 4 (seed = 1, optimizer.lr = -1.0): optimizer.lr:")), "{e}");
    let sweep = "[sweep]\n\"model.activation\" = [\"relu\", 3]\n";
    let e = error(sweep);
    assert!(e.starts_with(&format!("s.toml:{}: point 2 of 2", line(sweep, "model.activation"))), "{e}");
}

#[test]
fn bad_paths_and_lists_are_refused_with_their_line() {
    let cases = [
        ("[sweep]\n\"optimizer.lrr\" = [0.1]\n", "\"optimizer.lrr\"", "lrr"),
        ("[sweep]\n\"variants.5.weight_init.std\" = [0.1]\n", "variants.5", "index out of range"),
        ("[sweep]\n\"optimizer.lr.x\" = [0.1]\n", "optimizer.lr.x", "is a value"),
        ("[sweep]\n\"variants.name\" = [\"a\"]\n", "variants.name", "is a list"),
        ("[sweep]\nseed = []\n", "seed = []", "empty"),
        ("[sweep]\nseed = 3\n", "seed = 3", "must be a list"),
        ("[sweep]\n[[sweep.zip]]\nseed = [1, 2]\nepochs = [1]\n", "epochs = [1]", "equally long"),
        ("[sweep]\nseed = [1]\n[[sweep.zip]]\nseed = [2]\n", "seed = [2]", "swept twice"),
        ("[sweep.random]\nsamples = 0\n\"optimizer.lr\" = { uniform = [0.1, 1] }\n", "samples", "samples"),
        ("[sweep.random]\nsamples = 2\n\"optimizer.lr\" = { log_uniform = [0, 1] }\n", "log_uniform", "positive"),
    ];
    for (sweep, needle, says) in cases {
        let e = error(sweep);
        let at = line(sweep, needle);
        assert!(e.starts_with(&format!("s.toml:{at}: ")) && e.contains(says), "{sweep}: {e}");
    }
    let plain = SweepSpec::from_toml(&Experiment::seed_experiment().to_toml(), "e.toml").unwrap_err();
    assert!(plain.to_string().starts_with("e.toml: no [sweep] table"), "{plain}");
}

#[test]
fn a_bad_experiment_is_not_blamed_on_an_axis() {
    let text = format!(
        "{}\n[sweep]\nseed = [1, 2]\n",
        Experiment::seed_experiment().to_toml().replace("epochs = 15", "epochs = \"x\"")
    );
    let spec = SweepSpec::from_toml(&text, "s.toml").unwrap();
    let err = format!("{:#}", spec.points().unwrap_err());
    let axis_line = text.lines().position(|l| l.starts_with("seed = [")).unwrap() + 1;
    assert!(err.starts_with("s.toml"), "{err}");
    assert!(!err.starts_with(&format!("s.toml:{axis_line}:")), "blamed on the seed axis: {err}");
    assert!(err.contains("invalid type"), "{err}");
}
