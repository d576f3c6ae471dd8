//! The `initscope` command line: parses arguments, calls the library,
//! prints. All the work is in the library.

use clap::{Args, Parser, Subcommand};
use initscope::data::{default_data_root, fetch, DatasetName};
use initscope::error::input;
use initscope::experiment::Experiment;
use initscope::report::{build_comparison_report, build_run_report};
use initscope::run::{resume_experiment, run_experiment, RunOptions, RunOutcome};
use initscope::train::grouping::Grouping;
use signal_hook::consts::{SIGINT, SIGTERM};
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::atomic::AtomicBool;
use std::sync::Arc;

mod coord;
mod sweep;
mod theory;

#[derive(Parser)]
#[command(name = "initscope", version, about = "Weight-initialisation and training-dynamics experiments")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run an experiment (with no arguments: the seed experiment, both
    /// initialisations, 15 epochs).
    Run(RunArgs),
    /// Continue an interrupted or killed run from its last checkpoint; the
    /// finished run is bit-identical to one that never stopped.
    Resume {
        /// The run directory.
        run: PathBuf,
        /// Worker threads (results do not depend on it).
        #[arg(long, default_value_t = default_threads())]
        threads: usize,
        /// Print nothing but errors and the run directory.
        #[arg(long, short)]
        quiet: bool,
        /// Continue a checkpoint made under other numerics (another
        /// instruction-set path); the result is then no longer bit-identical.
        #[arg(long)]
        allow_other_numerics: bool,
        #[command(flatten)]
        lockstep: LockstepArgs,
        #[command(flatten)]
        data: DataDir,
    },
    /// List the built-in experiments and sweeps, or print one as a file.
    Presets {
        /// Print this preset's file.
        #[arg(long, value_name = "NAME")]
        show: Option<String>,
    },
    /// Rebuild the charts and report.html of a run from its records alone
    /// (no retraining); with several run directories, a comparison report.
    Report {
        /// Run directories.
        #[arg(required = true)]
        runs: Vec<PathBuf>,
        /// Where the comparison report goes (several runs only).
        #[arg(long, default_value = "comparison.html")]
        out: PathBuf,
    },
    /// Measure the engine's speed on this machine (synthetic data, about a
    /// minute) and print it as GFLOP/s and ratios.
    Bench {
        /// Worker threads.
        #[arg(long, default_value_t = default_threads())]
        threads: usize,
    },
    /// Run a sweep: the grid of an experiment's settings that a sweep file's
    /// [sweep] table lists, into one table (sweep.csv) and one report. The
    /// same command again continues it.
    Sweep(Box<sweep::SweepArgs>),
    /// Mean-field theory's prediction for an experiment, before any
    /// training: per variant and layer the pre-activation std and gradient
    /// ratio, chi_1, depth scales, the edge of chaos and the regime.
    Theory(theory::TheoryArgs),
    /// The coord check: for several widths and the first steps on one
    /// batch, each layer's mean |x|; a verdict from its slope in width
    /// (flat: the parametrisation holds), charts and CSV.
    CoordCheck(coord::CoordArgs),
    /// Write a commented starter experiment file, NAME.toml: two variants,
    /// every other setting at the seed experiment's value.
    New {
        /// The experiment's name (and file, NAME.toml; a path may lead to it).
        name: PathBuf,
    },
    /// Write a run's (or every point of a sweep's) records for other tools.
    Export {
        #[command(subcommand)]
        format: ExportFormat,
    },
    /// Manage data sets.
    Data {
        #[command(subcommand)]
        command: DataCommand,
    },
}

#[derive(Args)]
pub struct DataDir {
    /// Root of the data sets (each in a subdirectory named after it).
    /// Default: the user's cache directory, e.g. ~/.cache/initscope.
    #[arg(long, env = "INITSCOPE_DATA_DIR", global = true)]
    data_dir: Option<PathBuf>,
}

impl DataDir {
    /// The data root: `--data-dir`, or the default cache directory.
    pub fn root(&self) -> PathBuf {
        self.data_dir.clone().unwrap_or_else(default_data_root)
    }
}

/// How runs of the same shapes train together (`run`, `resume`, `sweep`).
#[derive(Args)]
pub struct LockstepArgs {
    /// Train runs of the same shapes in lockstep groups, one group per
    /// thread (the same bits as alone; see the README for when it pays).
    #[arg(long)]
    lockstep: bool,
    /// Lockstep groups of at most N runs (implies --lockstep).
    #[arg(long, value_name = "N")]
    group_size: Option<usize>,
}

impl LockstepArgs {
    /// The grouping asked for; a group size of 0 is refused.
    pub fn grouping(&self) -> anyhow::Result<Grouping> {
        Grouping::requested(self.lockstep, self.group_size, "--group-size")
    }
}

#[derive(Args)]
struct RunArgs {
    /// An experiment file (TOML) or a preset's name; without it, the seed
    /// experiment. The options below override the file.
    experiment: Option<PathBuf>,
    #[command(flatten)]
    set: Overrides,
    /// The run directory to create (default: runs/<name>-<timestamp>).
    #[arg(long)]
    out: Option<PathBuf>,
    /// Worker threads (results do not depend on it).
    #[arg(long, default_value_t = default_threads())]
    threads: usize,
    /// Print nothing but errors and the run directory.
    #[arg(long, short)]
    quiet: bool,
    #[command(flatten)]
    lockstep: LockstepArgs,
    #[command(flatten)]
    data: DataDir,
}

/// Settings the command line overrides in the experiment (`run`) or in
/// every point of a sweep (`sweep`; the axes still take precedence).
#[derive(Args)]
pub struct Overrides {
    /// Epochs to train each variant.
    #[arg(long)]
    epochs: Option<usize>,
    /// The data: mnist, fashion-mnist, or a directory holding the four IDX
    /// files (train-images-idx3-ubyte[.gz] and so on).
    #[arg(long)]
    dataset: Option<String>,
    /// Learning rate of every optimiser: the experiment's and each
    /// variant's own.
    #[arg(long)]
    lr: Option<f64>,
    /// Seed of every random stream.
    #[arg(long)]
    seed: Option<u64>,
    /// Record the per-layer probe statistics every N steps (0: never).
    #[arg(long, value_name = "N")]
    probe_every: Option<usize>,
    /// The generator of initial weights and batch orders: chacha
    /// (initscope's streams) or torch (PyTorch's: the same seed gives the
    /// notebook's weights and batches).
    #[arg(long, value_enum)]
    rng: Option<initscope::rng::RngKind>,
}

impl Overrides {
    /// The library's overrides (applied one way to a run and to a sweep).
    pub fn overrides(&self) -> initscope::overrides::Overrides {
        initscope::overrides::Overrides {
            epochs: self.epochs,
            dataset: self.dataset.clone(),
            lr: self.lr,
            seed: self.seed,
            probe_every: self.probe_every,
            rng: self.rng,
        }
    }
}

#[derive(Subcommand)]
enum ExportFormat {
    /// TensorBoard event files, tensorboard/<variant>/events.out.tfevents.*
    /// in each run directory (then: tensorboard --logdir DIR).
    Tensorboard {
        /// A run directory or a sweep directory.
        dir: PathBuf,
    },
}

#[derive(Subcommand)]
enum DataCommand {
    /// Fetch and verify a data set (MNIST by default).
    Fetch {
        /// Which data set.
        #[arg(value_enum, default_value = "mnist")]
        dataset: DatasetName,
        #[command(flatten)]
        data: DataDir,
    },
}

/// The number of threads the machine runs at once.
pub fn default_threads() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get())
}

/// A flag raised by the first SIGINT or SIGTERM (training then stops at
/// the next step boundary and saves a checkpoint); a second one ends the
/// process at once.
pub fn stop_on_signals() -> anyhow::Result<Arc<AtomicBool>> {
    let stop = Arc::new(AtomicBool::new(false));
    for signal in [SIGINT, SIGTERM] {
        signal_hook::flag::register_conditional_shutdown(signal, 130, Arc::clone(&stop))?;
        signal_hook::flag::register(signal, Arc::clone(&stop))?;
    }
    Ok(stop)
}

/// Prints where the run is and builds its report; exit 130 when it was
/// interrupted.
fn finish(outcome: RunOutcome) -> anyhow::Result<ExitCode> {
    println!("Run directory: {}", outcome.dir.display());
    let report = build_run_report(&outcome.dir)?;
    println!("Report: {}", report.display());
    initscope::tensorboard::export_run(&outcome.dir)?;
    println!("TensorBoard: tensorboard --logdir {}", outcome.dir.display());
    Ok(if outcome.interrupted { ExitCode::from(130) } else { ExitCode::SUCCESS })
}

/// An experiment file, a preset's name, or (none) the seed experiment.
fn load_experiment(path: Option<&std::path::Path>) -> anyhow::Result<Experiment> {
    Ok(match path {
        Some(path) if path.exists() => Experiment::from_file(path)?,
        Some(path) => match initscope::presets::load(&path.to_string_lossy()) {
            Some(preset) => preset?,
            None => {
                return Err(input(format!(
                    "{}: no such experiment file or preset (initscope presets lists them)",
                    path.display()
                )))
            }
        },
        None => Experiment::seed_experiment(),
    })
}

/// `initscope run`: the experiment (a file, a preset or the seed), the
/// command line's overrides, then the run and its report.
fn run_command(args: RunArgs) -> anyhow::Result<ExitCode> {
    let exp = args.set.overrides().apply(&load_experiment(args.experiment.as_deref())?)?;
    if args.threads == 0 {
        return Err(input("--threads: must be at least 1"));
    }
    let opts = RunOptions {
        run_dir: args.out,
        runs_root: PathBuf::from("runs"),
        data_root: args.data.root(),
        threads: args.threads,
        quiet: args.quiet,
        stop: stop_on_signals()?,
        allow_other_numerics: false,
        grouping: args.lockstep.grouping()?,
    };
    finish(run_experiment(&exp, &opts)?)
}

fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    match cli.command {
        Command::Run(args) => return run_command(args),
        Command::Sweep(args) => return sweep::sweep_command(*args),
        Command::Theory(args) => return theory::theory_command(args),
        Command::CoordCheck(args) => return coord::coord_command(args),
        Command::Export { format: ExportFormat::Tensorboard { dir } } => {
            let files = initscope::tensorboard::export(&dir)?;
            println!("Wrote {} event files; view them with: tensorboard --logdir {}", files.len(), dir.display());
        }
        Command::New { name } => {
            let file = if name.extension().is_some_and(|e| e == "toml") { name } else { name.with_extension("toml") };
            if file.exists() {
                return Err(input(format!("{}: exists; choose another name", file.display())));
            }
            let stem = initscope::experiment::stem_name(&file);
            initscope::fsutil::write_atomic(&file, initscope::presets::starter(&stem).as_bytes())
                .map_err(|e| input(format!("{}: cannot write: {e:#}", file.display())))?;
            println!("Wrote {}; run it with: initscope run {}", file.display(), file.display());
        }
        Command::Resume { run, threads, quiet, allow_other_numerics, lockstep, data } => {
            let opts = RunOptions {
                run_dir: Some(run.clone()),
                runs_root: PathBuf::from("runs"),
                data_root: data.root(),
                threads: threads.max(1),
                quiet,
                stop: stop_on_signals()?,
                allow_other_numerics,
                grouping: lockstep.grouping()?,
            };
            return finish(resume_experiment(&run, &opts)?);
        }
        Command::Presets { show: Some(name) } => {
            match initscope::presets::text(&name).or(initscope::presets::sweep_text(&name)) {
                Some(text) => print!("{text}"),
                None => return Err(input(format!("--show: no preset {name:?} (initscope presets lists them)"))),
            }
        }
        Command::Presets { show: None } => {
            for (name, _) in initscope::presets::PRESETS {
                let exp = initscope::presets::load(name).expect("listed")?;
                println!("{name:<18} {}", exp.description);
            }
            println!("\nSweeps (initscope sweep NAME):");
            for (name, text) in initscope::presets::SWEEP_PRESETS {
                let spec = initscope::sweep::SweepSpec::from_toml(text, &format!("preset {name}"))?;
                let description = spec.point(0)?.experiment.description;
                println!("{name:<18} {description} ({} points)", spec.len());
            }
        }
        Command::Report { runs, out } => {
            let report =
                if runs.len() == 1 { build_run_report(&runs[0])? } else { build_comparison_report(&runs, &out)? };
            println!("Report: {}", report.display());
        }
        Command::Bench { threads } => {
            let r = initscope::bench::run(threads.max(1), None, &mut |line| println!("{line}"))?;
            r.summary_lines().iter().for_each(|line| println!("{line}"));
            println!("(for the OpenBLAS peak and a per-product comparison: cargo bench --bench speed)");
        }
        Command::Data { command: DataCommand::Fetch { dataset, data } } => {
            fetch::ensure(dataset, &data.root())?;
            let dir = data.root().join(dataset.as_str());
            println!("{} is ready in {}", dataset.as_str(), dir.display());
        }
    }
    Ok(ExitCode::SUCCESS)
}

fn main() -> ExitCode {
    // A bug must still end in one line, not a backtrace.
    std::panic::set_hook(Box::new(|info| {
        let location = info.location().map_or(String::new(), |l| format!(" at {}:{}", l.file(), l.line()));
        let message = info
            .payload()
            .downcast_ref::<&str>()
            .map(|s| s.to_string())
            .or_else(|| info.payload().downcast_ref::<String>().cloned())
            .unwrap_or_default();
        eprintln!("error: internal error{location}: {message} (please report this)");
    }));
    match run(Cli::parse()) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {}", initscope::error::one_line(&e));
            // Bad input or usage exits 2 (as clap does), failures at run time 1.
            ExitCode::from(if initscope::run::is_input_error(&e) { 2 } else { 1 })
        }
    }
}
