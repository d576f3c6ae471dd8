//! `initscope theory`: mean-field theory's prediction for an experiment's
//! variants (no training), as a table or JSON, and an activation's
//! order-to-chaos phase diagram.

use super::{load_experiment, DataDir};
use clap::Args;
use initscope::error::input;
use initscope::nn::Activation;
use initscope::theory::meanfield::Regime;
use initscope::theory::{predict_all, VariantPrediction};
use std::path::PathBuf;
use std::process::ExitCode;

/// `initscope theory [FILE|PRESET] [--json] [--phase-diagram ACTIVATION]`.
#[derive(Args)]
pub struct TheoryArgs {
    /// An experiment file or a preset's name (default: the seed experiment).
    experiment: Option<PathBuf>,
    /// Print JSON instead of tables.
    #[arg(long)]
    json: bool,
    /// The data whose inputs' second moment starts the recursion: mnist,
    /// fashion-mnist or a directory of IDX files (default: the experiment's).
    #[arg(long)]
    dataset: Option<String>,
    /// Instead: draw chi_1 over (sigma_w^2, sigma_b^2) for an activation
    /// (relu, tanh, sigmoid, gelu, selu, identity, leaky_relu[:SLOPE]).
    #[arg(long, value_name = "ACTIVATION")]
    phase_diagram: Option<String>,
    /// Where the phase diagram goes (SVG and PNG).
    #[arg(long, default_value = "theory")]
    out: PathBuf,
    #[command(flatten)]
    data: DataDir,
}

/// Runs the `theory` command.
pub fn theory_command(args: TheoryArgs) -> anyhow::Result<ExitCode> {
    if let Some(name) = &args.phase_diagram {
        let activation = parse_activation(name)?;
        let stem = format!("phase-diagram-{}", name.replace(':', "-"));
        let diagram = initscope::theory::diagram::phase_diagram(activation);
        let chart = initscope::plot::phase::draw_phase_diagram(&diagram, &args.out, &stem)?;
        println!("critical weight variance (the edge of chaos, chi_1 = 1):");
        for (bias, weight) in diagram.critical {
            let weight = weight.map_or("none in [0.01, 1000]".into(), |w| format!("{w:.4}"));
            println!("  sigma_b^2 = {bias:<5} sigma_w^2 = {weight}");
        }
        println!("Chart: {}", chart.png.with_extension("svg").display());
        return Ok(ExitCode::SUCCESS);
    }
    let set = initscope::overrides::Overrides { dataset: args.dataset.clone(), ..Default::default() };
    let exp = set.apply(&load_experiment(args.experiment.as_deref())?)?;
    exp.validate()?;
    let data = exp.dataset.load(&args.data.root())?;
    let predictions = predict_all(&exp, &data);
    if args.json {
        let json = serde_json::json!({ "experiment": exp.name, "variants": predictions });
        println!("{}", serde_json::to_string_pretty(&json)?);
    } else {
        predictions.iter().for_each(print_table);
    }
    Ok(ExitCode::SUCCESS)
}

fn parse_activation(name: &str) -> anyhow::Result<Activation> {
    let bad = || {
        input(format!("--phase-diagram: unknown activation {name:?} (relu, tanh, sigmoid, gelu, selu, identity, leaky_relu[:SLOPE])"))
    };
    if let Some(rest) = name.strip_prefix("leaky_relu") {
        let slope = match rest.strip_prefix(':') {
            Some(s) => s.parse::<f32>().map_err(|_| bad())?,
            None if rest.is_empty() => 0.01,
            None => return Err(bad()),
        };
        return Ok(Activation::LeakyRelu { slope });
    }
    serde::Deserialize::deserialize(toml::Value::String(name.into())).map_err(|_: toml::de::Error| bad())
}

fn number(x: Option<f64>, digits: usize) -> String {
    match x {
        Some(v) if v.is_finite() && v != 0.0 && !(1e-3..1e5).contains(&v.abs()) => format!("{v:.2e}"),
        Some(v) if v.is_finite() => format!("{v:.digits$}"),
        Some(_) => "inf".into(),
        None => "-".into(),
    }
}

fn print_table(p: &VariantPrediction) {
    println!("Variant {} ({}; inputs' E[x^2] = {:.4})", p.name, p.activation, p.input_second_moment);
    println!("  layer  fan_in  fan_out  sigma_w^2  sigma_b^2  pre std (pred.)  chi      grad ratio  note");
    for l in &p.layers {
        println!(
            "  {:<5}  {:<6}  {:<7}  {:<9}  {:<9}  {:<15}  {:<7}  {:<10}  {}",
            l.layer,
            l.fan_in,
            l.fan_out,
            number(l.weight_variance, 4),
            number(l.bias_variance, 4),
            number(l.pre_std, 4),
            number(l.chi1, 4),
            number(l.grad_ratio, 4),
            l.note.as_deref().unwrap_or("")
        );
    }
    let regime = match p.regime {
        Some(Regime::Ordered) => "ordered",
        Some(Regime::Critical) => "critical",
        Some(Regime::Chaotic) => "chaotic",
        Some(Regime::Mixed) => "mixed",
        None => "-",
    };
    println!("  chi_1 = {} ({regime})", number(p.chi1, 4));
    if let Some(f) = &p.fixed_point {
        println!(
            "  fixed point q* = {}, c* = {}, depth scales xi_q = {}, xi_c = {} (trainable to about 6 xi_c = {})",
            number(Some(f.q_star), 4),
            number(Some(f.c_star), 4),
            number(Some(f.xi_q), 2),
            number(Some(f.xi_c), 2),
            number(Some(6.0 * f.xi_c), 1)
        );
    }
    if let Some(w) = p.critical_weight_variance {
        let bias = p.layers.get(1).and_then(|l| l.bias_variance).unwrap_or(0.0);
        println!("  edge of chaos at sigma_w^2 = {w:.4} (for sigma_b^2 = {bias})");
    }
    if let Some(note) = &p.note {
        println!("  note: {note}");
    }
    println!();
}
