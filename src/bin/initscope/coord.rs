//! `initscope coord-check`: `mup`'s coord check of an experiment's
//! variants over several widths (see `initscope::coord_check`), into
//! `coord.csv`, `slopes.csv`, one chart per variant and a verdict each.

use super::{load_experiment, DataDir};
use clap::Args;
use initscope::coord_check::{coord_rows, slopes, to_csv, variants, verdict, CoordSettings};
use initscope::error::input;
use initscope::fsutil::write_atomic;
use initscope::plot::coord::CoordChart;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Instant;

/// `initscope coord-check FILE|PRESET [--widths 128,256,...] [--steps 3] [--seeds 3]`.
#[derive(Args)]
pub struct CoordArgs {
    /// An experiment file or a preset's name (`coord-check` compares the
    /// standard parametrisation with muP under Adam).
    experiment: PathBuf,
    /// The hidden widths, comma-separated.
    #[arg(long, value_delimiter = ',', default_values_t = CoordSettings::default().widths)]
    widths: Vec<usize>,
    /// Steps recorded on the fixed batch (the first at initialisation).
    #[arg(long, default_value_t = CoordSettings::default().steps)]
    steps: usize,
    /// Seeds 0..N, averaged.
    #[arg(long, default_value_t = CoordSettings::default().seeds)]
    seeds: usize,
    /// The largest |slope| of log mean|x| against log width that passes.
    #[arg(long, default_value_t = CoordSettings::default().tolerance)]
    tolerance: f64,
    /// Where the records and charts go (default: coord-check/<experiment>).
    #[arg(long)]
    out: Option<PathBuf>,
    #[command(flatten)]
    data: DataDir,
}

fn settings(args: &CoordArgs) -> anyhow::Result<CoordSettings> {
    let mut widths = args.widths.clone();
    widths.sort_unstable();
    widths.dedup();
    if widths.len() < 2 || widths[0] == 0 {
        return Err(input("--widths: give at least two widths, each at least 1 (e.g. 128,256,512)"));
    }
    if args.steps == 0 || args.seeds == 0 {
        return Err(input("--steps and --seeds: each must be at least 1"));
    }
    if !(args.tolerance.is_finite() && args.tolerance > 0.0) {
        return Err(input("--tolerance: must be a positive number"));
    }
    Ok(CoordSettings { widths, steps: args.steps, seeds: args.seeds, tolerance: args.tolerance })
}

/// Runs the `coord-check` command; exit 0 when every variant's verdict is
/// written (pass or fail is in the verdict, not the exit status).
pub fn coord_command(args: CoordArgs) -> anyhow::Result<ExitCode> {
    let settings = settings(&args)?;
    let exp = load_experiment(Some(&args.experiment))?;
    // A network the widths cannot be set on is the file's fault: say so before loading data.
    initscope::coord_check::widen(&exp, settings.widths[0])
        .map_err(|e| input(format!("{}: {e}", args.experiment.display())))?;
    let out = args.out.clone().unwrap_or_else(|| PathBuf::from("coord-check").join(&exp.name));
    let data = exp.dataset.load(&args.data.root())?;
    let started = Instant::now();
    let rows = coord_rows(&exp, &data, &settings, &mut |width| {
        eprintln!("width {width} done ({:.1} s)", started.elapsed().as_secs_f64());
    })?;
    let slopes = slopes(&rows);
    std::fs::create_dir_all(&out).map_err(|e| input(format!("{}: cannot create: {e}", out.display())))?;
    write_atomic(&out.join("coord.csv"), &to_csv(&rows)?)?;
    write_atomic(&out.join("slopes.csv"), &to_csv(&slopes)?)?;
    let mut lines = Vec::new();
    for variant in variants(&rows) {
        let line = verdict(&variant, &slopes, settings.tolerance);
        // The verdict's first clause, its parenthesis closed.
        let mut title = line.split(';').next().unwrap_or(&line).to_string();
        if title.matches('(').count() > title.matches(')').count() {
            title.push(')');
        }
        let chart = CoordChart::new(&rows, &variant, title);
        let written = initscope::plot::save(&chart, &out, &format!("coord-{variant}"))?;
        println!("{line}\n  chart: {}", written.png.with_extension("svg").display());
        lines.push(line);
    }
    write_atomic(&out.join("verdicts.txt"), (lines.join("\n") + "\n").as_bytes())?;
    println!("Records: {}/coord.csv, slopes.csv", out.display());
    Ok(ExitCode::SUCCESS)
}
