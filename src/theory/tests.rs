//! The theory checked against closed forms (ReLU, leaky ReLU, identity),
//! Monte Carlo (tanh, sigmoid, GELU, SELU) and the literature's edge of chaos.

use super::meanfield::{MeanField, Regime};
use super::*;
use crate::nn::{FanMode, Gain};
use crate::rng::Stream;

/// The prediction for variant `v` of `exp` on MNIST-shaped inputs with second moment 0.1.
fn predict_variant(exp: &Experiment, v: usize) -> VariantPrediction {
    let shape = DataShape { input_width: 784, classes: 10 };
    predict(&RunSpec::per_variant(exp, shape)[v], 0.1)
}

fn close(a: f64, b: f64, tol: f64) -> bool {
    (a - b).abs() <= tol * a.abs().max(b.abs()).max(1e-300)
}

#[test]
fn relu_has_its_closed_forms() {
    let f = MeanField::new(Activation::Relu);
    for q in [0.01, 0.5, 3.0, 40.0] {
        assert!(close(f.post_second_moment(q), q / 2.0, 1e-12), "E[relu^2] at q = {q}");
        assert!(close(f.derivative_moment(q), 0.5, 1e-12));
        // q^l = sigma_w^2 q^{l-1} / 2 + sigma_b^2.
        assert!(close(f.variance_map(q, 1.7, 0.1), 1.7 * q / 2.0 + 0.1, 1e-12));
    }
    let critical = f.critical_weight_variance(0.0).unwrap();
    assert!(close(critical, 2.0, 1e-9), "{critical}");
    let at_he = f.fixed_point(2.0, 0.0).unwrap();
    assert!(close(at_he.chi1, 1.0, 1e-12));
    assert_eq!(Regime::of(at_he.chi1), Regime::Critical);
    // With a bias, sigma_w^2 < 2 has q* = sigma_b^2 / (1 - sigma_w^2 / 2).
    let fixed = f.fixed_point(1.5, 0.1).unwrap();
    assert!(close(fixed.q_star, 0.1 / (1.0 - 0.75), 1e-9), "{}", fixed.q_star);
    assert!(close(fixed.chi1, 0.75, 1e-12));
    assert!(close(fixed.xi_c, -1.0 / 0.75f64.ln(), 1e-9));
    assert!(f.fixed_point(2.5, 0.1).is_none(), "the variance grows without bound");
}

#[test]
fn leaky_relu_and_identity_have_their_closed_forms() {
    let slope = 0.2f32;
    let s = f64::from(slope);
    let f = MeanField::new(Activation::LeakyRelu { slope });
    for q in [0.3, 5.0] {
        assert!(close(f.post_second_moment(q), q * (1.0 + s * s) / 2.0, 1e-6));
        assert!(close(f.derivative_moment(q), (1.0 + s * s) / 2.0, 1e-6));
    }
    let critical = f.critical_weight_variance(0.0).unwrap();
    assert!(close(critical, 2.0 / (1.0 + s * s), 1e-6), "{critical}");
    let identity = MeanField::new(Activation::Identity);
    assert!(close(identity.post_second_moment(2.5), 2.5, 1e-12));
    assert!(close(identity.derivative_moment(2.5), 1.0, 1e-12));
    assert!(close(identity.critical_weight_variance(0.0).unwrap(), 1.0, 1e-9));
}

/// Monte Carlo estimates of E[g(sqrt(q) z)] from a fixed seed, with their
/// standard errors.
fn monte_carlo(g: impl Fn(f64) -> f64, q: f64) -> (f64, f64) {
    let mut stream = Stream::new(2017, "theory/monte-carlo", 0);
    let n = 400_000;
    let (mut sum, mut sum2) = (0.0, 0.0);
    for _ in 0..n {
        let v = g(q.sqrt() * stream.standard_normal());
        sum += v;
        sum2 += v * v;
    }
    let mean = sum / n as f64;
    (mean, ((sum2 / n as f64 - mean * mean) / n as f64).sqrt())
}

#[test]
fn smooth_activations_agree_with_monte_carlo() {
    for activation in [Activation::Tanh, Activation::Sigmoid, Activation::Gelu, Activation::Selu] {
        let f = MeanField::new(activation);
        for q in [0.2, 1.0, 4.0] {
            let (post, err) = monte_carlo(|h| f.phi(h).0.powi(2), q);
            assert!((f.post_second_moment(q) - post).abs() < 5.0 * err + 1e-12, "{activation:?} E[phi^2] q = {q}");
            let (deriv, err) = monte_carlo(|h| f.phi(h).1.powi(2), q);
            assert!((f.derivative_moment(q) - deriv).abs() < 5.0 * err + 1e-12, "{activation:?} E[phi'^2] q = {q}");
        }
    }
}

#[test]
fn derivatives_match_finite_differences() {
    for activation in [Activation::Tanh, Activation::Sigmoid, Activation::Gelu, Activation::Selu] {
        let f = MeanField::new(activation);
        for z in [-2.3, -0.4, 0.7, 1.9] {
            let h = 1e-5;
            let (_, d, dd) = f.phi(z);
            let numeric = (f.phi(z + h).0 - f.phi(z - h).0) / (2.0 * h);
            let numeric2 = (f.phi(z + h).1 - f.phi(z - h).1) / (2.0 * h);
            assert!((d - numeric).abs() < 1e-8, "{activation:?} phi' at {z}");
            assert!((dd - numeric2).abs() < 1e-7, "{activation:?} phi'' at {z}");
        }
    }
}

#[test]
fn tanh_edge_of_chaos_is_where_the_literature_puts_it() {
    // Schoenholz et al. 2017, Sec. 3 and Fig. 1: with sigma_b^2 = 0.05 the
    // critical point is at sigma_w^2 of about 1.76; with no bias at 1.
    let f = MeanField::new(Activation::Tanh);
    let critical = f.critical_weight_variance(0.05).unwrap();
    assert!((critical - 1.76).abs() < 0.02, "{critical}");
    assert!(close(f.critical_weight_variance(0.0).unwrap(), 1.0, 1e-3));
    // Depth scales diverge at the edge and are finite on both sides.
    let near = f.fixed_point(critical * 1.001, 0.05).unwrap();
    let ordered = f.fixed_point(1.2, 0.05).unwrap();
    let chaotic = f.fixed_point(3.0, 0.05).unwrap();
    assert!(near.xi_c > 10.0 * ordered.xi_c.max(chaotic.xi_c), "{} {} {}", near.xi_c, ordered.xi_c, chaotic.xi_c);
    assert!(ordered.chi1 < 1.0 && chaotic.chi1 > 1.0 && chaotic.c_star < 1.0);
    assert_eq!(ordered.c_star, 1.0);
}

#[test]
fn the_seed_network_variants_are_critical_and_vanishing() {
    let exp = Experiment::seed_experiment();
    let [kaiming, normal] = [0, 1].map(|v| predict_variant(&exp, v));
    assert_eq!(kaiming.regime, Some(Regime::Critical));
    assert!(close(kaiming.chi1.unwrap(), 1.0, 1e-12));
    // Kaiming (fan_in, ReLU gain) keeps q: q^1 = 2 E[x^2] = 0.2, then q^l = q^{l-1}.
    for layer in &kaiming.layers {
        assert!(close(layer.pre_variance.unwrap(), 0.2, 1e-9), "{layer:?}");
    }
    // N(0, 0.001): each layer multiplies q by fan_in x 1e-6 / 2.
    let q: Vec<f64> = normal.layers.iter().map(|l| l.pre_variance.unwrap()).collect();
    for (l, pair) in q.windows(2).enumerate() {
        let fan_in = normal.layers[l + 1].fan_in as f64;
        assert!(close(pair[1] / pair[0], fan_in * 1e-6 / 2.0, 1e-9));
    }
    assert_eq!(normal.regime, Some(Regime::Ordered));
    // A ReLU network without biases is homogeneous: |dL/dW^l| is the
    // product of every other layer's weight scale, so |dL/dW^l| / |dL/dW^L|
    // = std(W^L) / std(W^l): 1 for N(0, 0.001), sqrt(784 / 64) = 3.5 for
    // Kaiming's first layer. The gradients do not vanish layer to layer.
    for p in [&kaiming, &normal] {
        let last = p.layers.last().unwrap();
        let var = |l: &LayerPrediction| l.weight_variance.unwrap() / l.fan_in as f64;
        for layer in &p.layers {
            let expected = (var(last) / var(layer)).sqrt();
            assert!(close(layer.grad_ratio.unwrap(), expected, 1e-9), "{}: {layer:?}", p.name);
        }
    }
}

#[test]
fn schemes_the_theory_does_not_cover_are_said_so_never_numbered() {
    let mut exp = Experiment::seed_experiment();
    exp.variants[0].weight_init = Init::Lsuv { tol: 0.1, max_iter: 10 };
    exp.variants[1].weight_init = Init::Normal { mean: 0.5, std: 0.1 };
    for v in 0..exp.variants.len() {
        let p = predict_variant(&exp, v);
        assert!(p.layers.iter().all(|l| l.pre_std.is_none() && l.note.is_some()), "{p:?}");
        assert!(p.chi1.is_none() && p.note.is_some());
    }
    let mut exp = Experiment::seed_experiment();
    exp.model.batch_norm = true;
    let p = predict_variant(&exp, 0);
    assert!(p.layers[0].pre_std.is_some());
    assert!(p.layers[1..].iter().all(|l| l.pre_std.is_none() && l.note.as_deref().unwrap().contains("batch norm")));
}

#[test]
fn scheme_variances_follow_their_formulas() {
    let kaiming = Init::KaimingNormal { mode: FanMode::FanIn, gain: Gain::Value(1.5) };
    assert!(close(kaiming.zero_mean_variance(200, 50).unwrap(), 2.25 / 200.0, 1e-15));
    let xavier = Init::XavierUniform { gain: Gain::Value(1.0) };
    assert!(close(xavier.zero_mean_variance(300, 100).unwrap(), 2.0 / 400.0, 1e-15));
    let truncated = Init::TruncatedNormal { mean: 0.0, std: 1.0, a: -2.0, b: 2.0 };
    // Var of N(0,1) truncated to [-2, 2]: 1 - 4 phi(2) / (2 Phi(2) - 1) = 0.773741...
    assert!(close(truncated.zero_mean_variance(10, 10).unwrap(), 0.773_741_303_5, 1e-8));
    // Monte Carlo of the drawn values agrees for a uniform scheme.
    let uniform = Init::Uniform { a: -0.3, b: 0.3 };
    let mut w = vec![0.0f32; 100_000];
    uniform.fill(&mut w, 100, 1000, &mut Stream::new(3, "t", 0));
    let var = w.iter().map(|&x| f64::from(x).powi(2)).sum::<f64>() / w.len() as f64;
    assert!(close(var, uniform.zero_mean_variance(100, 1000).unwrap(), 0.02));
}

#[test]
fn a_vanishing_signal_verdict_quotes_the_prediction_beside_the_measurement() {
    let exp = Experiment::seed_experiment();
    let normal = predict_variant(&exp, 1);
    // Per layer the variance shrinks by fan_in x 1e-6 / 2 (fan_in 512, 256,
    // 128 from layer 1 to 4): the std by (1 / (256e-6 128e-6 64e-6))^(1/6) = 88.4.
    let measured: Vec<(usize, f64)> = normal.layers.iter().map(|l| (l.layer, 1.1 * l.pre_std.unwrap())).collect();
    let mut verdicts = vec![
        crate::verdict::Verdict::new(crate::verdict::VerdictKind::VanishingSignal, "vanishing signal".into()),
        crate::verdict::Verdict::new(crate::verdict::VerdictKind::FlatLoss, "flat".into()),
    ];
    quote_in_verdicts(&mut verdicts, &normal, &measured);
    assert!(
        verdicts[0].message.ends_with("the std shrinks 88x per layer from layer 1 to 4, measured 88x"),
        "{}",
        verdicts[0].message
    );
    assert_eq!(verdicts[1].message, "flat");
}

/// A residual experiment: stream width `width`, `blocks`, the variant's
/// weights `weight`, zero biases.
fn residual_spec(net: crate::nn::residual::Residual, activation: Activation, width: usize, weight: Init) -> RunSpec {
    let mut exp = Experiment::seed_experiment();
    exp.model = crate::experiment::ModelSettings {
        hidden: vec![width],
        activation,
        batch_norm: false,
        residual: Some(net),
        parametrisation: None,
    };
    exp.variants.truncate(1);
    exp.variants[0].weight_init = weight;
    RunSpec::per_variant(&exp, DataShape { input_width: 784, classes: 10 }).remove(0)
}

fn blocks_of(
    rule: crate::nn::residual::ResidualRule,
    norm: crate::nn::residual::BranchNorm,
) -> crate::nn::residual::Residual {
    crate::nn::residual::Residual {
        blocks: 12,
        branch_layers: 2,
        norm,
        order: crate::nn::residual::BlockOrder::Pre,
        alpha: None,
        scalar_biases: None,
        rule,
    }
}

#[test]
fn a_relu_residual_stream_grows_by_one_plus_alpha_squared_per_block() {
    use crate::nn::residual::{Alpha, BranchNorm, ResidualRule};
    for alpha in [1.0f32, 0.5] {
        let mut net = blocks_of(ResidualRule::Standard, BranchNorm::None);
        net.alpha = Some(Alpha { init: alpha, trainable: false });
        let spec = residual_spec(net, Activation::Relu, 64, Init::kaiming_relu());
        let p = predict(&spec, 0.1);
        // He-scaled ReLU branches keep the variance: q_m = s_b, so s_{b+1} = (1 + alpha^2) s_b.
        let growth = 1.0 + f64::from(alpha).powi(2);
        assert!(close(p.blocks[0].stream_in, 0.2, 1e-9));
        for b in &p.blocks {
            assert!(close(b.stream_out / b.stream_in, growth, 1e-9), "{b:?}");
            // chi = 2 * 1/2 per branch layer: the error grows by the same factor.
            assert!(close(b.gradient_growth, growth, 1e-9), "{b:?}");
        }
        assert_eq!(p.layers.len(), 2 + 24);
    }
    // Fixup's branches start at zero: the stream does not grow at all.
    let fixup = predict(
        &residual_spec(blocks_of(ResidualRule::Fixup, BranchNorm::None), Activation::Relu, 64, Init::kaiming_relu()),
        0.1,
    );
    assert!(fixup.blocks.iter().all(|b| b.branch_out == 0.0 && b.gradient_growth == 1.0));
}

/// Per block, the mean square of the stream leaving it in a wide random
/// network at step 0, over a batch of Gaussian inputs.
fn measured_stream(spec: &RunSpec, seed: u64, batch: usize, input_moment: f64) -> Vec<f64> {
    use crate::nn::{Layer, Workspace};
    let mut model = spec.model();
    model.initialise_layers(&spec.schemes, seed);
    model.scale_linears(&spec.residual.unwrap().weight_factors());
    let mut ws = Workspace::new(&model, batch);
    let mut stream = Stream::new(seed, "theory/residual-inputs", 0);
    let sd = input_moment.sqrt() as f32;
    ws.input.iter_mut().for_each(|x| *x = sd * stream.standard_normal() as f32);
    model.forward_train(&mut ws, batch);
    let adds = model.layers.iter().enumerate().filter(|(_, l)| matches!(l, Layer::Add(_)));
    adds.map(|(p, _)| {
        let out = &ws.outputs[p][..batch * spec.widths[1]];
        out.iter().map(|&v| f64::from(v).powi(2)).sum::<f64>() / out.len() as f64
    })
    .collect()
}

#[test]
fn residual_stream_moments_match_wide_random_networks_at_step_0() {
    use crate::nn::residual::{Alpha, BranchNorm, ResidualRule};
    let cases = [
        (Activation::Relu, BranchNorm::None, ResidualRule::Skipinit, Init::kaiming_relu()),
        (Activation::Tanh, BranchNorm::None, ResidualRule::Standard, Init::Normal { mean: 0.0, std: 0.08 }),
        (Activation::Gelu, BranchNorm::LayerNorm, ResidualRule::Standard, Init::kaiming_relu()),
        (
            Activation::Tanh,
            BranchNorm::BatchNorm,
            ResidualRule::DepthScaled,
            Init::XavierNormal { gain: Gain::Named("tanh".into()) },
        ),
        (Activation::Relu, BranchNorm::LayerNorm, ResidualRule::Skipinit, Init::kaiming_relu()),
    ];
    let mut table = String::from("| activation | norm | rule | block | predicted | measured |\n");
    for (activation, norm, rule, weight) in cases {
        let mut net = blocks_of(rule, norm);
        if rule == ResidualRule::Skipinit {
            // SkipInit's multiplier below 1/sqrt(L), so the branches are on.
            net.alpha = Some(Alpha { init: 0.25, trainable: true });
        }
        let spec = residual_spec(net, activation, 512, weight);
        let p = predict(&spec, 0.1);
        for seed in [1, 2] {
            let measured = measured_stream(&spec, seed, 256, 0.1);
            for (b, m) in p.blocks.iter().zip(&measured) {
                if seed == 1 && (b.block == 1 || b.block == 12) {
                    table += &format!(
                        "| {activation:?} | {norm:?} | {rule:?} | {} | {:.4} | {m:.4} |\n",
                        b.block, b.stream_out
                    );
                }
                assert!(
                    close(b.stream_out, *m, 0.15),
                    "{activation:?} {norm:?} {rule:?} seed {seed}: {b:?} measured {m}"
                );
            }
        }
    }
    println!("{table}");
}

/// The Jacobian's gain `E|J^T v|^2 / E|v|^2` of a wide random network at
/// step 0 (64 Gaussian inputs, 16 draws of v) against the product of chi:
/// a plain ReLU MLP at He's scale (chi = 1, gain 1), a tanh one in the
/// ordered phase, and SkipInit residual blocks.
#[test]
fn the_jacobian_gain_matches_wide_random_networks_at_step_0() {
    use crate::nn::residual::{Alpha, BranchNorm, ResidualRule};
    use crate::nn::Workspace;
    let plain = |activation: Activation, weight: Init| {
        let mut exp = Experiment::seed_experiment();
        exp.model.hidden = vec![512; 6];
        exp.model.activation = activation;
        exp.variants.truncate(1);
        exp.variants[0].weight_init = weight;
        RunSpec::per_variant(&exp, DataShape { input_width: 784, classes: 10 }).remove(0)
    };
    let mut net = blocks_of(ResidualRule::Skipinit, BranchNorm::None);
    net.alpha = Some(Alpha { init: 0.25, trainable: true });
    let cases = [
        plain(Activation::Relu, Init::kaiming_relu()),
        plain(Activation::Tanh, Init::Normal { mean: 0.0, std: 0.04 }),
        residual_spec(net, Activation::Tanh, 512, Init::kaiming_relu()),
    ];
    for spec in cases {
        let predicted = predict(&spec, 0.1).jacobian_gain.unwrap();
        let mut model = spec.model();
        model.initialise_layers(&spec.schemes, 5);
        if let Some(net) = spec.residual {
            model.scale_linears(&net.weight_factors());
        }
        let batch = 64;
        let mut ws = Workspace::new(&model, batch);
        let mut stream = Stream::new(5, "theory/jacobian-inputs", 0);
        let sd = 0.1f32.sqrt();
        ws.input.iter_mut().for_each(|x| *x = sd * stream.standard_normal() as f32);
        model.forward_train(&mut ws, batch);
        let mut grads = vec![0.0; model.params.len()];
        let (mut out, mut into) = (0.0, 0.0);
        for _ in 0..16 {
            let v: Vec<f32> = (0..batch * 10).map(|_| stream.standard_normal() as f32).collect();
            into += v.iter().map(|&x| f64::from(x).powi(2)).sum::<f64>();
            let g = model.vector_jacobian(&mut ws, &v, &mut grads, batch, 0);
            out += g.iter().map(|&x| f64::from(x).powi(2)).sum::<f64>();
        }
        let measured = out / into;
        println!(
            "{:?} residual={}: predicted {predicted:.4}, measured {measured:.4}",
            spec.activation,
            spec.residual.is_some()
        );
        assert!(close(predicted, measured, 0.15), "predicted {predicted}, measured {measured}");
    }
}

/// The verdict on a variant's norms: the prediction without them and what
/// they measured, for a residual network whose stream would explode, one
/// whose branches start small, and the seed's N(0, 0.001) network with
/// batch norm, whose signal would vanish.
#[test]
fn a_norm_verdict_says_what_the_norms_compensate_for() {
    use super::norms::{norm_verdict, without_norms, NormInputs};
    use crate::nn::residual::{Alpha, BranchNorm, ResidualRule};
    let stream = [(1, 0.45), (20, 30.0)];
    let measured = NormInputs { pre_std: &[], stream_rms: &stream };
    let verdict_of = |spec: &RunSpec| {
        let bare = without_norms(spec, 0.1).expect("a network with norms");
        (norm_verdict(spec, &bare, &measured).expect("a verdict").message, bare)
    };
    let mut net = blocks_of(ResidualRule::Standard, BranchNorm::LayerNorm);
    net.blocks = 20;
    let explodes = residual_spec(net, Activation::Relu, 64, Init::kaiming_relu());
    let (message, bare) = verdict_of(&explodes);
    // Without the norm, He-scaled ReLU branches double the variance per block: 2^10 in RMS over 20 blocks.
    assert!(close(bare.blocks[19].stream_out.sqrt() / bare.blocks[0].stream_in.sqrt(), 1024.0, 1e-9));
    assert!(message.starts_with("layer norm compensating: at step 0 the residual stream's RMS is 0.450 entering block 1 and 30.000 entering block 20 (67x)"), "{message}");
    assert!(message.contains("(1024x)") && message.contains("the signal would explode"), "{message}");
    net.alpha = Some(Alpha { init: 0.25, trainable: true });
    net.rule = ResidualRule::Skipinit;
    let (message, _) = verdict_of(&residual_spec(net, Activation::Relu, 64, Init::kaiming_relu()));
    // (1 + 1/16)^10 = 1.83 in RMS.
    assert!(message.contains("(1.83x)") && message.contains("compensate for little"), "{message}");
    // A network without norms has no verdict.
    net.norm = BranchNorm::None;
    assert!(without_norms(&residual_spec(net, Activation::Relu, 64, Init::kaiming_relu()), 0.1).is_none());

    let mut exp = Experiment::seed_experiment();
    exp.model.batch_norm = true;
    let shape = DataShape { input_width: 784, classes: 10 };
    let normal = RunSpec::per_variant(&exp, shape).remove(1);
    let pre_std = [(1, 0.0125), (2, 0.016), (3, 0.011), (4, 0.008), (5, 0.009)];
    let bare = without_norms(&normal, 0.1).unwrap();
    let measured = NormInputs { pre_std: &pre_std, stream_rms: &[] };
    let message = norm_verdict(&normal, &bare, &measured).unwrap().message;
    // q^{l+1} / q^l = fan_in * 1e-6 / 2 (the test above): std from layer 1 to 4 shrinks
    // sqrt(512 * 256 * 128 / 8e18).
    let expected = (512.0 * 256.0 * 128.0 * 1e-18 / 8.0f64).sqrt();
    assert!(close(bare.layers[3].pre_std.unwrap() / bare.layers[0].pre_std.unwrap(), expected, 1e-9));
    assert!(message.starts_with("batch norm compensating: at step 0 the pre-activations reaching the norms have std 1.250e-2 at layer 1 and 8.000e-3 at layer 4 (from 8.000e-3 to 1.600e-2), and the norms scale each back to 1 (by 62x to 125x)"), "{message}");
    assert!(
        message.contains(&format!("(1/{:.1e}x)", 1.0 / expected)) && message.contains("the signal would vanish"),
        "{message}"
    );
}

/// Weights from a file are predicted from their measured second moments:
/// a file of Kaiming-drawn weights (wide layers) gives Kaiming's formula's
/// prediction to within the sampling error of its second moments, and a
/// file without a layer's tensor says so instead of a number.
#[test]
fn weights_from_a_file_are_predicted_from_their_second_moments() {
    let exp = Experiment::seed_experiment();
    let shape = DataShape { input_width: 784, classes: 10 };
    let kaiming = &RunSpec::per_variant(&exp, shape)[0];
    let (model, _) = kaiming.drawn_model(&|| false).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("w.safetensors");
    crate::nn::state_dict::save(&model, &path).unwrap();
    let mut from_file = exp.clone();
    from_file.variants.truncate(1);
    from_file.variants[0].weight_init = Init::FromFile { path: path.clone() };
    let file = predict(&RunSpec::per_variant(&from_file, shape)[0], 0.1);
    let formula = predict(kaiming, 0.1);
    assert_eq!(file.layers.len(), formula.layers.len());
    for (f, k) in file.layers.iter().zip(&formula.layers) {
        // 784 x 512 draws at the first layer down to 64 x 10 at the last: within 5 standard errors of E[W^2].
        let draws = (f.fan_in * f.fan_out) as f64;
        let tolerance = 5.0 * (2.0 / draws).sqrt();
        assert!(close(f.weight_variance.unwrap(), k.weight_variance.unwrap(), tolerance), "{f:?} {k:?}");
        assert_eq!(f.bias_variance, Some(0.0), "Kaiming's zero biases");
    }
    let (f, k) = (file.chi1.unwrap(), formula.chi1.unwrap());
    assert!(close(f, k, 0.05), "chi1 {f} against {k}");
    // A file that lacks a tensor is named, never numbered.
    crate::tensorfile::save_vector("other", &[1.0], &path).unwrap();
    let missing = predict(&RunSpec::per_variant(&from_file, shape)[0], 0.1);
    assert!(missing.layers.is_empty() && missing.note.as_deref().unwrap().contains("no tensor my_network.1.weight"));
}
