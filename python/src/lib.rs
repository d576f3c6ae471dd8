//! initscope from Python: the compiled half of the `initscope` package, a
//! thin layer over the one Rust implementation. Each function takes plain
//! values (paths, TOML or JSON text) and returns plain values (paths, JSON
//! text, bytes); the pure-Python half (`initscope/__init__.py`) turns them
//! into DataFrames, NumPy arrays and `Run` objects.
//!
//! Training runs on its own thread with the GIL released; the calling
//! thread wakes every 50 ms to let Python handle signals, and a
//! KeyboardInterrupt stops training at the next step with a checkpoint (as
//! the command line's Ctrl-C does), then is raised. Bad input raises
//! `InputError` (a `ValueError`) with the command line's one-line message;
//! other failures raise `RuntimeError`.

use initscope::experiment::Experiment;
use initscope::overrides::Overrides;
use initscope::record::dir::{RunDir, EPOCHS, FINAL_WEIGHTS, INITIAL_WEIGHTS, LOG, PROBE, STEPS};
use initscope::record::rows::{BlockStatsRow, EpochRow, LayerStatsRow, StepRow};
use initscope::run::{is_input_error, RunOptions};
use initscope::sweep::local::{run_sweep, SweepOptions};
use initscope::sweep::spec::SweepSpec;
use initscope::train::grouping::Grouping;
use pyo3::create_exception;
use pyo3::exceptions::{PyRuntimeError, PyValueError};
use pyo3::prelude::*;
use pyo3::types::PyBytes;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

create_exception!(_initscope, InputError, PyValueError, "Bad input: a file, a setting, a path (one line naming it).");

/// An error of the library as the Python exception the command line's exit
/// code corresponds to, with the command line's one-line message.
fn to_py(e: anyhow::Error) -> PyErr {
    let message = format!("{e:#}").replace('\n', " ");
    if is_input_error(&e) {
        InputError::new_err(message)
    } else {
        PyRuntimeError::new_err(message)
    }
}

/// The experiment `source` names: `kind` is `"file"` (a TOML file),
/// `"preset"` (a preset's name), `"json"` (a dict shaped like the TOML, as
/// JSON text) or `"seed"` (the seed experiment).
fn load_experiment(kind: &str, source: &str) -> anyhow::Result<Experiment> {
    let input = initscope::error::input;
    match kind {
        "file" => Experiment::from_file(Path::new(source)),
        "preset" => initscope::presets::load(source).unwrap_or_else(|| {
            Err(input(format!("{source}: no such experiment file or preset (initscope.presets() lists them)")))
        }),
        "json" => {
            let json: serde_json::Value =
                serde_json::from_str(source).map_err(|e| input(format!("experiment: {e}")))?;
            let mut table = toml::Value::try_from(json).map_err(|e| input(format!("experiment: {e}")))?;
            if let Some(t) = table.as_table_mut() {
                t.entry("name").or_insert_with(|| toml::Value::String("experiment".into()));
            }
            let exp: Experiment = table.try_into().map_err(|e: toml::de::Error| {
                input(format!("experiment: {}", e.message().trim().replace('\n', " ")))
            })?;
            exp.check_settings().map_err(|e| input(format!("experiment: {e}")))?;
            Ok(exp)
        }
        "seed" => Ok(Experiment::seed_experiment()),
        other => Err(input(format!("experiment: unknown source kind {other:?}"))),
    }
}

/// The command line's overrides from their JSON object (`epochs`, `lr`,
/// `seed`, `dataset`, `probe_every`, `rng`); an unknown key is an error.
fn overrides(json: &str) -> anyhow::Result<Overrides> {
    serde_json::from_str(json).map_err(|e| initscope::error::input(format!("overrides: {e}")))
}

/// A dict sent as JSON text, as the TOML table it stands for (`what`
/// names it in errors).
fn json_to_toml(json: &str, what: &str) -> anyhow::Result<toml::Value> {
    let input = initscope::error::input;
    let value: serde_json::Value = serde_json::from_str(json).map_err(|e| input(format!("{what}: {e}")))?;
    toml::Value::try_from(value).map_err(|e| input(format!("{what}: {e}")))
}

/// The data sets' root: `data_dir`, else `$INITSCOPE_DATA_DIR`, else the
/// user's cache directory (as the command line finds it).
fn data_root(data_dir: Option<String>) -> PathBuf {
    data_dir
        .or_else(|| std::env::var("INITSCOPE_DATA_DIR").ok().filter(|d| !d.is_empty()))
        .map_or_else(initscope::data::default_data_root, PathBuf::from)
}

/// The lines a run appends to its `log.txt`, handed to a Python callable
/// as they come (the progress a notebook shows).
struct LogTail {
    path: PathBuf,
    read: usize,
    progress: PyObject,
}

impl LogTail {
    /// Hands every complete line written since the last call to the
    /// callable (reading only what is new).
    fn poll(&mut self, py: Python<'_>) -> PyResult<()> {
        use std::io::{Read, Seek, SeekFrom};
        let mut new = Vec::new();
        let Ok(mut file) = std::fs::File::open(&self.path) else { return Ok(()) };
        if file.seek(SeekFrom::Start(self.read as u64)).and_then(|_| file.read_to_end(&mut new)).is_err() {
            return Ok(());
        }
        let Some(end) = new.iter().rposition(|&b| b == b'\n') else { return Ok(()) };
        self.read += end + 1;
        for line in String::from_utf8_lossy(&new[..end]).lines() {
            self.progress.call1(py, (line,))?;
        }
        Ok(())
    }
}

/// Runs `work` on its own thread with the GIL released; a KeyboardInterrupt
/// (or any signal Python turns into an exception, or an exception of the
/// progress callable) raises `stop`, waits for `work` to end at its next
/// step boundary and is then raised.
fn interruptible<T: Send + 'static>(
    py: Python<'_>,
    mut tail: Option<LogTail>,
    work: impl FnOnce(Arc<AtomicBool>) -> anyhow::Result<T> + Send + 'static,
) -> PyResult<T> {
    let stop = Arc::new(AtomicBool::new(false));
    let handle = std::thread::spawn({
        let stop = Arc::clone(&stop);
        move || work(stop)
    });
    let mut raised = None;
    let mut poll = |py: Python<'_>, raised: &mut Option<PyErr>| {
        let result = py.check_signals().and_then(|()| tail.as_mut().map_or(Ok(()), |t| t.poll(py)));
        if let (Err(e), None) = (result, &raised) {
            stop.store(true, Ordering::Relaxed);
            *raised = Some(e);
        }
    };
    while !handle.is_finished() {
        py.allow_threads(|| std::thread::sleep(Duration::from_millis(50)));
        poll(py, &mut raised);
    }
    poll(py, &mut raised);
    let result =
        handle.join().map_err(|_| PyRuntimeError::new_err("initscope: internal error (please report this)"))?;
    match (raised, result) {
        (Some(e), Ok(_)) => Err(e),
        (_, result) => result.map_err(to_py),
    }
}

/// After a run: its report and TensorBoard export, as the command line
/// makes them.
fn finish(dir: &Path) -> anyhow::Result<()> {
    initscope::report::build_run_report(dir)?;
    initscope::tensorboard::export_run(dir)?;
    Ok(())
}

/// How a run from Python runs: quiet on the process's standard output
/// (its log reaches Python through `progress`), stopped by the flag
/// [`interruptible`] raises.
fn run_options(run_dir: Option<PathBuf>, data_root: PathBuf, threads: usize, grouping: Grouping) -> RunOptions {
    RunOptions {
        run_dir,
        runs_root: PathBuf::from("runs"),
        data_root,
        threads,
        quiet: true,
        stop: Arc::new(AtomicBool::new(false)),
        allow_other_numerics: false,
        grouping,
    }
}

/// The lockstep grouping of the keywords `lockstep` and `group_size`.
fn grouping(lockstep: bool, group_size: Option<usize>) -> PyResult<Grouping> {
    Grouping::requested(lockstep, group_size, "group_size").map_err(to_py)
}

/// Runs an experiment; returns `(run directory, interrupted)`.
// One argument per keyword of the Python call (`initscope.run`).
#[allow(clippy::too_many_arguments)]
#[pyfunction]
#[pyo3(signature = (kind, source, overrides_json, out=None, data_dir=None, threads=2, progress=None, lockstep=false, group_size=None))]
fn run(
    py: Python<'_>,
    kind: &str,
    source: &str,
    overrides_json: &str,
    out: Option<String>,
    data_dir: Option<String>,
    threads: usize,
    progress: Option<PyObject>,
    lockstep: bool,
    group_size: Option<usize>,
) -> PyResult<(String, bool)> {
    let exp = load_experiment(kind, source).and_then(|e| overrides(overrides_json)?.apply(&e)).map_err(to_py)?;
    if threads == 0 {
        return Err(InputError::new_err("threads: must be at least 1"));
    }
    let grouping = grouping(lockstep, group_size)?;
    let mut opts = run_options(out.map(PathBuf::from), data_root(data_dir), threads, grouping);
    let dir = initscope::run::start_run_dir(&exp, &opts).map_err(to_py)?;
    let tail = progress.map(|progress| LogTail { path: dir.join(LOG), read: 0, progress });
    interruptible(py, tail, move |stop| {
        opts.stop = stop;
        let data = exp.dataset.load(&opts.data_root)?;
        let outcome = initscope::run::run_on_data(&exp, &data, &dir, &opts)?;
        finish(&outcome.dir)?;
        Ok((outcome.dir.display().to_string(), outcome.interrupted))
    })
}

/// Continues an interrupted run; returns `(run directory, interrupted)`.
#[pyfunction]
#[pyo3(signature = (dir, data_dir=None, threads=2, progress=None, lockstep=false, group_size=None))]
fn resume(
    py: Python<'_>,
    dir: String,
    data_dir: Option<String>,
    threads: usize,
    progress: Option<PyObject>,
    lockstep: bool,
    group_size: Option<usize>,
) -> PyResult<(String, bool)> {
    let grouping = grouping(lockstep, group_size)?;
    let root = data_root(data_dir);
    let log = Path::new(&dir).join(LOG);
    let read = std::fs::metadata(&log).map_or(0, |m| m.len() as usize);
    let tail = progress.map(|progress| LogTail { path: log, read, progress });
    interruptible(py, tail, move |stop| {
        let opts = RunOptions { stop, ..run_options(None, root, threads, grouping) };
        let outcome = initscope::run::resume_experiment(Path::new(&dir), &opts)?;
        finish(&outcome.dir)?;
        Ok((outcome.dir.display().to_string(), outcome.interrupted))
    })
}

/// The sweep `source` names: `"file"` (a sweep file), `"preset"` (a sweep
/// preset's name) or `"json"` (a dict shaped like the TOML, with its
/// `sweep` table, as JSON text).
fn load_sweep(kind: &str, source: &str) -> anyhow::Result<SweepSpec> {
    let input = initscope::error::input;
    match kind {
        "file" => SweepSpec::from_file(Path::new(source)),
        "preset" => match initscope::presets::sweep_text(source) {
            Some(text) => SweepSpec::from_toml(text, &format!("preset {source}")),
            None => Err(input(format!("{source}: no such sweep file or sweep preset"))),
        },
        "json" => {
            let text = toml::to_string(&json_to_toml(source, "sweep")?).map_err(|e| input(format!("sweep: {e}")))?;
            SweepSpec::from_toml(&text, "sweep")
        }
        other => Err(input(format!("sweep: unknown source kind {other:?}"))),
    }
}

/// What a sweep returns to Python: `(directory, points, done, failed
/// points as (point, values, why), interrupted)`.
type SweepResult = (String, usize, usize, Vec<(usize, String, String)>, bool);

/// Runs a sweep with the local executor (points side by side, one lane per
/// thread), then writes its table and report.
// One argument per keyword of the Python call (`initscope.sweep`).
#[allow(clippy::too_many_arguments)]
#[pyfunction]
#[pyo3(signature = (kind, source, overrides_json, out=None, data_dir=None, threads=2, quiet=true, lockstep=false, group_size=None))]
fn sweep(
    py: Python<'_>,
    kind: &str,
    source: &str,
    overrides_json: &str,
    out: Option<String>,
    data_dir: Option<String>,
    threads: usize,
    quiet: bool,
    lockstep: bool,
    group_size: Option<usize>,
) -> PyResult<SweepResult> {
    let grouping = grouping(lockstep, group_size)?;
    let mut spec = load_sweep(kind, source).map_err(to_py)?;
    overrides(overrides_json).and_then(|set| spec.apply_overrides(&set)).map_err(to_py)?;
    if threads == 0 {
        return Err(InputError::new_err("threads: must be at least 1"));
    }
    let dir = out.map_or_else(|| Path::new("sweeps").join(spec.name()), PathBuf::from);
    let root = data_root(data_dir);
    interruptible(py, None, move |stop| {
        let opts =
            SweepOptions { dir: dir.clone(), data_root: root, threads, quiet, stop, retry_failed: false, grouping };
        let outcome = run_sweep(&spec, &opts)?;
        initscope::sweep::report::build_sweep_report(&dir, Default::default())?;
        let failed = outcome.failed.into_iter().map(|f| (f.point, f.values, f.why)).collect();
        Ok((dir.display().to_string(), outcome.total, outcome.done, failed, outcome.interrupted))
    })
}

/// `summary.json` of a run directory, as JSON text (an input error when the
/// directory has none or it is corrupt).
#[pyfunction]
fn read_summary(dir: &str) -> PyResult<String> {
    let read = || -> anyhow::Result<String> {
        let summary = RunDir::new(Path::new(dir))
            .read_summary()?
            .ok_or_else(|| initscope::error::input(format!("{dir}: not a run directory (no summary.json)")))?;
        Ok(serde_json::to_string(&summary)?)
    };
    read().map_err(to_py)
}

/// One of a variant's tables (`steps`, `epochs`, `layers`, `blocks`) as
/// JSON text: a list of rows, each an object by column, read through the
/// same typed rows the report reads.
#[pyfunction]
fn read_table(dir: &str, variant: &str, table: &str) -> PyResult<String> {
    let run_dir = RunDir::new(Path::new(dir));
    let probe = |name: &str| run_dir.variant(variant).join(PROBE).join(name);
    let json = |path: PathBuf| -> anyhow::Result<String> {
        if !path.exists() {
            return Err(initscope::error::input(format!("{}: not recorded", path.display())));
        }
        Ok(match table {
            "steps" => serde_json::to_string(&initscope::table::read_rows::<StepRow>(&path)?)?,
            "epochs" => serde_json::to_string(&initscope::table::read_rows::<EpochRow>(&path)?)?,
            "layers" => serde_json::to_string(&initscope::table::read_rows::<LayerStatsRow>(&path)?)?,
            _ => serde_json::to_string(&initscope::table::read_rows::<BlockStatsRow>(&path)?)?,
        })
    };
    let path = match table {
        "steps" => run_dir.variant_file(variant, STEPS),
        "epochs" => run_dir.variant_file(variant, EPOCHS),
        "layers" => probe("layers.csv"),
        "blocks" => probe("blocks.csv"),
        other => return Err(InputError::new_err(format!("{other}: not a table (steps, epochs, layers, blocks)"))),
    };
    json(path).map_err(to_py)
}

/// A tensor as `(name, shape, little-endian float32 bytes)`.
type NamedBytes<'py> = (String, Vec<usize>, Bound<'py, PyBytes>);

/// A variant's `initial` or `final` weights: `(name, shape, little-endian
/// float32 bytes)` per tensor, under the PyTorch module's names.
#[pyfunction]
fn read_weights<'py>(py: Python<'py>, dir: &str, variant: &str, which: &str) -> PyResult<Vec<NamedBytes<'py>>> {
    let file = match which {
        "initial" => INITIAL_WEIGHTS,
        "final" => FINAL_WEIGHTS,
        other => return Err(InputError::new_err(format!("{other}: weights are \"initial\" or \"final\""))),
    };
    let path = RunDir::new(Path::new(dir)).variant_file(variant, file);
    if !path.exists() {
        return Err(InputError::new_err(format!("{}: not recorded", path.display())));
    }
    let tensors = initscope::tensorfile::load(&path).map_err(to_py)?;
    Ok(tensors
        .into_iter()
        .map(|(name, shape, values)| {
            let bytes: Vec<u8> = values.iter().flat_map(|v| v.to_le_bytes()).collect();
            (name, shape, PyBytes::new(py, &bytes))
        })
        .collect())
}

/// Mean-field theory's prediction of every variant, as JSON text (the data
/// is loaded for its inputs' second moment).
#[pyfunction]
#[pyo3(signature = (kind, source, overrides_json, data_dir=None))]
fn theory(
    py: Python<'_>,
    kind: &str,
    source: &str,
    overrides_json: &str,
    data_dir: Option<String>,
) -> PyResult<String> {
    let exp = load_experiment(kind, source).and_then(|e| overrides(overrides_json)?.apply(&e)).map_err(to_py)?;
    let root = data_root(data_dir);
    py.allow_threads(move || -> anyhow::Result<String> {
        let data = exp.dataset.load(&root)?;
        let predictions = initscope::theory::predict_all(&exp, &data);
        Ok(serde_json::to_string(&serde_json::json!({ "experiment": exp.name, "variants": predictions }))?)
    })
    .map_err(to_py)
}

/// The tensors (parameters, then batch-norm running statistics) the first
/// variant's network of the experiment has for inputs of `input_width`
/// features: `(PyTorch name, shape)` in the model's order, the order a
/// weights file is matched against.
#[pyfunction]
fn tensor_slots(kind: &str, source: &str, input_width: usize) -> PyResult<Vec<(String, Vec<usize>)>> {
    let exp = load_experiment(kind, source).map_err(to_py)?;
    let shape = initscope::spec::DataShape { input_width, classes: initscope::data::CLASSES };
    let spec = initscope::spec::RunSpec::per_variant(&exp, shape).remove(0);
    let model = spec.model();
    Ok(model.tensors().into_iter().chain(model.buffers()).map(|slot| (slot.name, slot.shape)).collect())
}

/// Writes `(name, shape, little-endian float32 bytes)` tensors as a
/// safetensors file (what the `from_file` scheme reads).
#[pyfunction]
fn write_tensors(path: &str, tensors: Vec<(String, Vec<usize>, Vec<u8>)>) -> PyResult<()> {
    let values: Vec<Vec<f32>> = tensors
        .iter()
        .map(|(_, _, bytes)| bytes.chunks_exact(4).map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]])).collect())
        .collect();
    for ((name, shape, _), v) in tensors.iter().zip(&values) {
        if shape.iter().product::<usize>() != v.len() {
            return Err(InputError::new_err(format!("{name}: shape {shape:?} does not hold {} values", v.len())));
        }
    }
    let named: Vec<_> = tensors
        .iter()
        .zip(&values)
        .map(|((name, shape, _), v)| (name.clone(), shape.clone(), initscope::tensorfile::Values::F32(v)))
        .collect();
    initscope::tensorfile::save(Path::new(path), &named).map_err(to_py)
}

/// The presets' names.
#[pyfunction]
fn presets() -> Vec<String> {
    initscope::presets::PRESETS.iter().map(|(name, _)| name.to_string()).collect()
}

/// The compiled module.
#[pymodule]
fn _initscope(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add("InputError", m.py().get_type::<InputError>())?;
    m.add_function(wrap_pyfunction!(run, m)?)?;
    m.add_function(wrap_pyfunction!(resume, m)?)?;
    m.add_function(wrap_pyfunction!(sweep, m)?)?;
    m.add_function(wrap_pyfunction!(read_summary, m)?)?;
    m.add_function(wrap_pyfunction!(read_table, m)?)?;
    m.add_function(wrap_pyfunction!(read_weights, m)?)?;
    m.add_function(wrap_pyfunction!(theory, m)?)?;
    m.add_function(wrap_pyfunction!(presets, m)?)?;
    m.add_function(wrap_pyfunction!(tensor_slots, m)?)?;
    m.add_function(wrap_pyfunction!(write_tensors, m)?)?;
    Ok(())
}
