//! `initscope sweep`: run or continue a sweep, and rebuild a sweep's table
//! and report at any time.

use super::{default_threads, stop_on_signals, DataDir, Overrides};
use clap::{Args, Subcommand};
use initscope::error::input;
use initscope::sweep::{build_sweep_report, run_sweep, Metric, SweepOptions, SweepSpec};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

/// Beyond this many points a sweep asks for `--yes`: each point keeps a run
/// directory, so the size is worth a second look.
const CONFIRM_ABOVE: usize = 10_000;

/// `initscope sweep FILE|PRESET [options]` or `initscope sweep report DIR`.
#[derive(Args)]
#[command(args_conflicts_with_subcommands = true, subcommand_negates_reqs = true)]
pub struct SweepArgs {
    #[command(subcommand)]
    command: Option<SweepCommand>,
    /// A sweep file (an experiment file with a [sweep] table of axes) or a
    /// sweep preset's name (initscope presets lists them).
    #[arg(required = true)]
    sweep: Option<PathBuf>,
    #[command(flatten)]
    set: Overrides,
    /// The sweep directory (default: sweeps/<name>). An existing one that
    /// holds the same sweep is continued.
    #[arg(long)]
    out: Option<PathBuf>,
    /// Worker threads: points train side by side (results do not depend on it).
    #[arg(long, default_value_t = default_threads())]
    threads: usize,
    /// Run again the points that failed (a crash or an I/O error) before.
    #[arg(long)]
    retry_failed: bool,
    /// Run a sweep of more than 10,000 points.
    #[arg(long)]
    yes: bool,
    /// The metric the report's charts show.
    #[arg(long, value_enum, default_value_t)]
    metric: Metric,
    /// Print nothing but errors and where the results are.
    #[arg(long, short)]
    quiet: bool,
    #[command(flatten)]
    data: DataDir,
}

#[derive(Subcommand)]
enum SweepCommand {
    /// Rebuild sweep.csv and report.html of a sweep directory from its run
    /// directories (a partial sweep too).
    Report {
        /// The sweep directory.
        dir: PathBuf,
        /// The metric the charts show.
        #[arg(long, value_enum, default_value_t)]
        metric: Metric,
    },
}

/// Runs the `sweep` command.
pub fn sweep_command(args: SweepArgs) -> anyhow::Result<ExitCode> {
    if let Some(SweepCommand::Report { dir, metric }) = &args.command {
        let report = build_sweep_report(dir, *metric)?;
        println!("Table: {}", dir.join("sweep.csv").display());
        println!("Report: {}", report.display());
        return Ok(ExitCode::SUCCESS);
    }
    let path = args.sweep.clone().expect("clap requires the sweep file without a subcommand");
    let spec = load_spec(&path, &args.set)?;
    if spec.len() > CONFIRM_ABOVE && !args.yes {
        return Err(input(format!(
            "{}: the sweep has {} points (more than {CONFIRM_ABOVE}), each with its own run directory; pass --yes to run it",
            path.display(),
            spec.len()
        )));
    }
    let dir = args.out.clone().unwrap_or_else(|| Path::new("sweeps").join(spec.name()));
    let opts = SweepOptions {
        dir: dir.clone(),
        data_root: args.data.root(),
        threads: args.threads,
        quiet: args.quiet,
        stop: stop_on_signals()?,
        retry_failed: args.retry_failed,
    };
    if !args.quiet {
        println!("Sweep: {} points into {}", spec.len(), dir.display());
    }
    let outcome = run_sweep(&spec, &opts)?;
    let report = build_sweep_report(&dir, args.metric)?;
    println!("Table: {}", dir.join("sweep.csv").display());
    println!("Report: {}", report.display());
    println!("{} of {} points done", outcome.done, outcome.total);
    if outcome.interrupted {
        println!("Interrupted; continue with the same command");
        return Ok(ExitCode::from(130));
    }
    if !outcome.failed.is_empty() {
        eprintln!("{} points failed:", outcome.failed.len());
        for (point, values, why) in &outcome.failed {
            eprintln!("  point {point} ({values}): {why}");
        }
        eprintln!("Run them again with the same command and --retry-failed");
        return Ok(ExitCode::from(1));
    }
    Ok(ExitCode::SUCCESS)
}

/// The sweep file or preset, with the command line's overrides.
fn load_spec(path: &Path, set: &Overrides) -> anyhow::Result<SweepSpec> {
    let mut spec = if path.exists() {
        SweepSpec::from_file(path)?
    } else {
        match initscope::presets::sweep_text(&path.to_string_lossy()) {
            Some(text) => SweepSpec::from_toml(text, &format!("preset {}", path.display()))?,
            None => {
                return Err(input(format!(
                    "{}: no such sweep file or sweep preset (initscope presets lists them)",
                    path.display()
                )))
            }
        }
    };
    if let Some(lr) = set.lr {
        spec.set_base_lr(lr)?;
    }
    let integer = |n: usize| toml::Value::Integer(n as i64);
    if let Some(epochs) = set.epochs {
        spec.set_base("epochs", integer(epochs))?;
    }
    if let Some(dataset) = &set.dataset {
        spec.set_base("dataset", toml::Value::String(dataset.clone()))?;
    }
    if let Some(seed) = set.seed {
        let seed = i64::try_from(seed).map_err(|_| input("--seed: a sweep's seed is at most 2^63 - 1"))?;
        spec.set_base("seed", toml::Value::Integer(seed))?;
    }
    if let Some(every) = set.probe_every {
        spec.set_base("probe.every", integer(every))?;
    }
    Ok(spec)
}
