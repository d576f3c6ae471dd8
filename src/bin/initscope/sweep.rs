//! `initscope sweep`: run or continue a sweep, and rebuild a sweep's table
//! and report at any time.

use super::{default_threads, stop_on_signals, DataDir, Overrides};
use clap::{Args, Subcommand};
use initscope::error::input;
use initscope::sweep::slurm::SlurmOptions;
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
    /// Where the points run: here, or as a Slurm job array.
    #[arg(long, value_enum, default_value = "local")]
    executor: Executor,
    #[command(flatten)]
    slurm: SlurmArgs,
    /// Print nothing but errors and where the results are.
    #[arg(long, short)]
    quiet: bool,
    #[command(flatten)]
    lockstep: super::LockstepArgs,
    #[command(flatten)]
    data: DataDir,
}

/// Where a sweep's points run.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
enum Executor {
    /// On this machine, points side by side.
    Local,
    /// As Slurm job arrays (sbatch), from a shared filesystem.
    Slurm,
}

/// The Slurm executor's options.
#[derive(Args)]
struct SlurmArgs {
    /// Slurm partition.
    #[arg(long)]
    partition: Option<String>,
    /// Time limit of each task (HH:MM:SS).
    #[arg(long)]
    time: Option<String>,
    /// CPUs of each task (and the threads of its point).
    #[arg(long, default_value_t = 1)]
    cpus_per_task: usize,
    /// Memory of each task (e.g. 4G).
    #[arg(long)]
    mem: Option<String>,
    /// At most this many tasks at once.
    #[arg(long)]
    max_running: Option<usize>,
    /// Points each task runs, one after another.
    #[arg(long, default_value_t = 1)]
    points_per_task: usize,
    /// A further sbatch argument (repeatable), e.g. --sbatch-arg=--qos=short.
    #[arg(long = "sbatch-arg", allow_hyphen_values = true)]
    sbatch_args: Vec<String>,
    /// Times a task stopped by Slurm requeues itself.
    #[arg(long, default_value_t = 3)]
    max_requeues: usize,
    /// Wait with a progress bar until every point is done, then write the
    /// table and report.
    #[arg(long)]
    wait: bool,
}

#[derive(Subcommand)]
enum SweepCommand {
    /// Points per state, and the tasks Slurm still holds.
    Status {
        /// The sweep directory.
        dir: PathBuf,
    },
    /// Run one task of a Slurm submission (what slurm/submit.sh calls).
    #[command(hide = true)]
    Task {
        /// The sweep directory.
        dir: PathBuf,
        /// The submission's tasks file.
        #[arg(long)]
        list: PathBuf,
        /// The task (its line, from 0).
        #[arg(long)]
        task: usize,
        /// Threads of each point.
        #[arg(long, default_value_t = 1)]
        threads: usize,
        /// Times the task requeues itself.
        #[arg(long, default_value_t = 3)]
        max_requeues: usize,
        #[command(flatten)]
        lockstep: super::LockstepArgs,
        #[command(flatten)]
        data: DataDir,
    },
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
    match &args.command {
        Some(SweepCommand::Report { dir, metric }) => {
            let report = build_sweep_report(dir, *metric)?;
            println!("Table: {}", dir.join("sweep.csv").display());
            println!("Report: {}", report.display());
            return Ok(ExitCode::SUCCESS);
        }
        Some(SweepCommand::Status { dir }) => return status_command(dir),
        Some(SweepCommand::Task { dir, list, task, threads, max_requeues, lockstep, data }) => {
            let opts = SweepOptions {
                dir: dir.clone(),
                data_root: data.root(),
                threads: (*threads).max(1),
                quiet: true,
                stop: stop_on_signals()?,
                retry_failed: false,
                grouping: lockstep.grouping()?,
            };
            // Slurm's warning before the time limit (--signal=B:USR2@90).
            signal_hook::flag::register(signal_hook::consts::SIGUSR2, opts.stop.clone())?;
            initscope::sweep::slurm::run_task(&opts, list, *task, *max_requeues)?;
            return Ok(ExitCode::SUCCESS);
        }
        None => {}
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
        grouping: args.lockstep.grouping()?,
    };
    if args.executor == Executor::Slurm {
        return slurm_command(&spec, &opts, &args);
    }
    let outcome = run_sweep(&spec, &opts)?;
    let report = build_sweep_report(&dir, args.metric)?;
    println!("Table: {}", dir.join("sweep.csv").display());
    println!("Report: {}", report.display());
    println!("{} of {} points done", outcome.done, outcome.total);
    if outcome.running > 0 {
        println!(
            "{} points are being run by another process; `initscope sweep status {}` follows them",
            outcome.running,
            dir.display()
        );
    }
    if outcome.interrupted {
        println!("Interrupted; continue with the same command");
        return Ok(ExitCode::from(130));
    }
    if !outcome.failed.is_empty() {
        eprintln!("{} points failed:", outcome.failed.len());
        for initscope::sweep::local::FailedPoint { point, values, why } in &outcome.failed {
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
    spec.apply_overrides(&set.overrides())?;
    Ok(spec)
}

/// `--executor slurm`: submit, and with `--wait` wait and write the results.
fn slurm_command(spec: &SweepSpec, opts: &SweepOptions, args: &SweepArgs) -> anyhow::Result<ExitCode> {
    let a = &args.slurm;
    let binary = std::env::current_exe()?;
    let slurm = SlurmOptions {
        partition: a.partition.clone(),
        time: a.time.clone(),
        cpus_per_task: a.cpus_per_task.max(1),
        mem: a.mem.clone(),
        max_running: a.max_running,
        points_per_task: a.points_per_task.max(1),
        sbatch_args: a.sbatch_args.clone(),
        max_requeues: a.max_requeues,
        binary,
    };
    let opts = SweepOptions {
        dir: std::path::absolute(&opts.dir)?,
        data_root: std::path::absolute(&opts.data_root)?,
        ..opts.clone()
    };
    let submitted = initscope::sweep::slurm::submit(spec, &opts, &slurm)?;
    if submitted.held > 0 {
        println!(
            "{} points are held by {} live Slurm tasks of an earlier submission: nothing new submitted for them",
            submitted.held, submitted.live_tasks
        );
    }
    if submitted.points > 0 {
        println!(
            "Submitted {} points as {} tasks (jobs {}); script: {}",
            submitted.points,
            submitted.tasks,
            submitted.jobs.join(", "),
            opts.dir.join("slurm/submit.sh").display()
        );
    } else if submitted.held == 0 {
        println!("Nothing to submit: no point is left to run (failed ones run again with --retry-failed)");
    }
    if !a.wait && submitted.points + submitted.held == 0 {
        return Ok(ExitCode::SUCCESS);
    }
    if !a.wait {
        println!("Follow it with: initscope sweep status {}", opts.dir.display());
        return Ok(ExitCode::SUCCESS);
    }
    let left = initscope::sweep::slurm::wait(&opts.dir, args.quiet)?;
    let report = build_sweep_report(&opts.dir, args.metric)?;
    println!("Table: {}", opts.dir.join("sweep.csv").display());
    println!("Report: {}", report.display());
    status_lines(&opts.dir)?;
    Ok(if left == 0 && failed_points(&opts.dir)? == 0 { ExitCode::SUCCESS } else { ExitCode::from(1) })
}

/// `initscope sweep status DIR`.
fn status_command(dir: &Path) -> anyhow::Result<ExitCode> {
    status_lines(dir)?;
    Ok(ExitCode::SUCCESS)
}

fn status_lines(dir: &Path) -> anyhow::Result<()> {
    let initscope::sweep::slurm::Status { counts, tasks } = initscope::sweep::slurm::status(dir)?;
    let parts: Vec<String> = counts.iter().map(|(s, n)| format!("{n} {s}")).collect();
    println!("Points: {}", parts.join(", "));
    let count = |word: &str| tasks.iter().filter(|t| t.word() == word).count();
    println!("Slurm tasks: {} running, {} requeued, {} queued", count("running"), count("requeued"), count("queued"));
    Ok(())
}

fn failed_points(dir: &Path) -> anyhow::Result<usize> {
    let counts = initscope::sweep::slurm::status(dir)?.counts;
    Ok(counts.iter().find(|(s, _)| *s == "failed").map_or(0, |c| c.1))
}
