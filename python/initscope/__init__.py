"""initscope from Python: run experiments and read their records.

A thin layer over the Rust library (the compiled module ``initscope._initscope``
does the work): experiments run exactly as ``initscope run`` runs them and
write the same run directory; this module reads it back as pandas DataFrames
and NumPy arrays.

>>> import initscope
>>> run = initscope.run("seed", epochs=1)          # a preset, a file or a dict
>>> run.epochs("kaiming")                           # epochs.csv as a DataFrame
>>> run.weights("kaiming", "final")                 # {PyTorch name: ndarray}

Bad input raises :class:`InputError` (a ``ValueError``) with the command
line's one-line message. Ctrl-C (KeyboardInterrupt) stops a run at the next
step with a checkpoint; :func:`resume` continues it.
"""

from __future__ import annotations

import html
import json
import os
from pathlib import Path
from typing import Any, Callable, Dict, List, Optional, Union

import numpy as np
import pandas as pd

from . import _initscope
from ._initscope import InputError

__all__ = ["InputError", "Run", "Sweep", "from_torch", "open", "presets", "resume", "run", "sweep", "theory"]

Experiment = Union[None, str, "os.PathLike[str]", Dict[str, Any]]


def _source(given: Any, field: str = "experiment") -> tuple:
    """How the compiled module is told which experiment (or sweep): a kind
    and a text. ``None`` is the seed experiment; ``field`` names the
    argument in the error."""
    if given is None and field == "experiment":
        return ("seed", "")
    if isinstance(given, dict):
        return ("json", json.dumps(given))
    if isinstance(given, (str, os.PathLike)):
        path = Path(os.fspath(given))
        if path.exists():
            return ("file", str(path))
        return ("preset", str(given))
    raise InputError(f"{field}: a file, a preset's name or a dict, got {type(given).__name__}")


Progress = Union[bool, Callable[[str], Any]]


def _progress(progress: Progress) -> Optional[Callable[[str], Any]]:
    """The callable that receives each line of the run's log as it is written."""
    if progress is True:
        return lambda line: print(line, flush=True)
    if progress is False or progress is None:
        return None
    if callable(progress):
        return progress
    raise InputError("progress: True (print each log line), False, or a callable taking each line")


def run(
    experiment: Experiment = None,
    out: Optional[Union[str, "os.PathLike[str]"]] = None,
    *,
    data_dir: Optional[str] = None,
    threads: int = 2,
    progress: Progress = True,
    lockstep: bool = False,
    group_size: Optional[int] = None,
    **overrides: Any,
) -> "Run":
    """Runs an experiment and returns its :class:`Run`.

    ``experiment`` is an experiment file, a preset's name (see
    :func:`presets`), a dict shaped like the TOML file, or ``None`` for the
    seed experiment. ``overrides`` are the command line's: ``epochs``,
    ``lr``, ``seed``, ``dataset``, ``probe_every``, ``rng``. The run
    directory is ``out`` (default ``runs/<name>-<timestamp>``); the data
    comes from ``data_dir`` (default ``$INITSCOPE_DATA_DIR`` or the cache).
    ``progress`` prints each line of the run's log as it is written (in
    Jupyter, into the cell's output), or hands it to a callable; False
    keeps quiet. ``lockstep`` trains the run's seeds of the same shapes
    together (the same bits as alone), in groups of at most ``group_size``
    when it is given (as ``--lockstep`` and ``--group-size``).
    """
    kind, source = _source(experiment)
    dir, interrupted = _initscope.run(
        kind,
        source,
        json.dumps(overrides),
        None if out is None else os.fspath(out),
        data_dir,
        threads,
        _progress(progress),
        lockstep,
        group_size,
    )
    return Run(dir, interrupted=interrupted)


def resume(
    dir: Union[str, "os.PathLike[str]"],
    *,
    data_dir: Optional[str] = None,
    threads: int = 2,
    progress: Progress = True,
    lockstep: bool = False,
    group_size: Optional[int] = None,
) -> "Run":
    """Continues the interrupted run in ``dir`` (bit-identical to an
    uninterrupted one) and returns its :class:`Run`; ``progress``,
    ``lockstep`` and ``group_size`` as for :func:`run`."""
    out, interrupted = _initscope.resume(
        os.fspath(dir), data_dir, threads, _progress(progress), lockstep, group_size
    )
    return Run(out, interrupted=interrupted)


def sweep(
    spec: Union[str, "os.PathLike[str]", Dict[str, Any]],
    out: Optional[Union[str, "os.PathLike[str]"]] = None,
    *,
    data_dir: Optional[str] = None,
    threads: int = 2,
    quiet: bool = True,
    lockstep: bool = False,
    group_size: Optional[int] = None,
    **overrides: Any,
) -> "Sweep":
    """Runs a sweep with the local executor (as ``initscope sweep``) and
    returns its :class:`Sweep`.

    ``spec`` is a sweep file, a sweep preset's name, or a dict shaped like
    the TOML (an experiment with its ``sweep`` table of axes). The same call
    on the same ``out`` continues an interrupted sweep. ``lockstep`` and
    ``group_size`` train points of the same shapes together, as the command
    line's ``--lockstep`` and ``--group-size`` (the same bits as alone).
    """
    kind, source = _source(spec, "spec")
    dir, total, done, failed, interrupted = _initscope.sweep(
        kind,
        source,
        json.dumps(overrides),
        None if out is None else os.fspath(out),
        data_dir,
        threads,
        quiet,
        lockstep,
        group_size,
    )
    return Sweep(dir, total=total, done=done, failed=failed, interrupted=interrupted)


class Sweep:
    """A sweep directory: its table of points and each point's :class:`Run`."""

    def __init__(self, dir: Union[str, "os.PathLike[str]"], *, total: int = 0, done: int = 0,
                 failed: Optional[list] = None, interrupted: bool = False) -> None:
        self.dir = Path(os.fspath(dir))
        #: Points in the sweep, and points finished.
        self.total, self.done = total, done
        #: ``(point, axis values, why)`` of each point that failed.
        self.failed = list(failed or [])
        #: Whether it stopped on request (the same call continues it).
        self.interrupted = interrupted

    def __repr__(self) -> str:
        return f"Sweep({str(self.dir)!r})"

    @property
    def table(self) -> pd.DataFrame:
        """``sweep.csv``: one row per point and variant, the axis values and the results."""
        return pd.read_csv(self.dir / "sweep.csv")

    def runs(self) -> List["Run"]:
        """Each finished point's run, in point order."""
        return [Run(d) for d in sorted((self.dir / "runs").iterdir()) if (d / "summary.json").exists()]

    @property
    def report(self) -> Path:
        """The sweep's HTML report."""
        return self.dir / "report.html"


def open(dir: Union[str, "os.PathLike[str]"]) -> "Run":  # noqa: A001 (the package's own open)
    """The run in directory ``dir`` (finished or not)."""
    found = Run(os.fspath(dir))
    found.summary  # raises InputError when it is not a run directory
    return found


def theory(experiment: Experiment = None, *, data_dir: Optional[str] = None, **overrides: Any) -> dict:
    """Mean-field theory's prediction for every variant of ``experiment``
    before training (as ``initscope theory --json`` prints it)."""
    kind, source = _source(experiment)
    return json.loads(_initscope.theory(kind, source, json.dumps(overrides), data_dir))


_ACTIVATIONS = {"ReLU": "relu", "Tanh": "tanh", "Sigmoid": "sigmoid", "GELU": "gelu", "SELU": "selu", "Identity": "identity"}


def _activation(index: int, module: Any) -> Any:
    """initscope's name for a PyTorch activation module, or why there is none."""
    kind = type(module).__name__
    if kind == "LeakyReLU":
        return {"leaky_relu": {"slope": float(module.negative_slope)}}
    if kind == "GELU" and getattr(module, "approximate", "none") != "none":
        raise InputError(f"module {index} (GELU): approximate='tanh' is not initscope's exact GELU")
    return _ACTIVATIONS.get(kind)


def _layers_of(module: Any) -> tuple:
    """The hidden widths, activation, batch norm and the tensors in order of
    an ``nn.Sequential`` MLP: [Flatten,] (Linear, [BatchNorm1d,] activation)*, Linear."""
    children = list(module.named_children()) if hasattr(module, "named_children") else None
    if not children:
        raise InputError(f"from_torch: an nn.Sequential of layers, got {type(module).__name__}")
    linears, norms, activations, tensors = [], [], [], []
    for i, (_, child) in enumerate(children):
        kind = type(child).__name__
        if kind == "Flatten" and i == 0:
            continue
        if kind == "Linear":
            if child.bias is None:
                raise InputError(f"module {i} (Linear): bias=False; initscope's Linear layers have biases")
            linears.append((child.in_features, child.out_features))
            tensors += [child.weight, child.bias]
        elif kind == "BatchNorm1d":
            settings = (child.eps, child.momentum, child.affine, child.track_running_stats)
            if settings != (1e-5, 0.1, True, True):
                raise InputError(f"module {i} (BatchNorm1d): initscope's batch norm is eps 1e-5, momentum 0.1, affine, tracking running statistics")
            norms.append(len(linears))
            tensors += [child.weight, child.bias]
        elif _activation(i, child) is not None:
            activations.append(_activation(i, child))
        else:
            raise InputError(
                f"module {i} ({kind}): not supported; initscope takes Flatten (first), Linear, BatchNorm1d, "
                "ReLU, LeakyReLU, Tanh, Sigmoid, GELU, SELU, Identity"
            )
    if len(linears) < 2 or any(a != activations[0] for a in activations) or len(activations) != len(linears) - 1:
        raise InputError("from_torch: an MLP of two or more Linear layers, one activation of one kind after each hidden one")
    if norms and norms != list(range(1, len(linears))):
        raise InputError("from_torch: batch norm after every hidden Linear (before its activation) or after none")
    buffers = [b for _, child in children if type(child).__name__ == "BatchNorm1d" for b in (child.running_mean, child.running_var)]
    hidden = [out for _, out in linears[:-1]]
    return linears[0][0], hidden, activations[0], bool(norms), tensors + buffers


def _residual_of(module: Any) -> Optional[Dict[str, Any]]:
    """The model settings of a module shaped as initscope's residual network
    (``input`` Linear, ``blocks`` of ``norm<k>``/``act<k>``/``fc<k>`` and
    ``alpha``, ``final_norm``, ``final_act``, ``output`` Linear: the module
    initscope's names follow, as in ``scripts/torch-fixtures.py``); ``None``
    for any other module."""
    if not all(hasattr(module, name) for name in ("input", "blocks", "output")):
        return None
    blocks = list(module.blocks)
    if not blocks:
        raise InputError("from_torch: a residual network needs at least one block")
    first = dict(blocks[0].named_children())
    fcs = [name for name in first if name.startswith("fc")]
    norm = type(first.get("norm1")).__name__
    norms = {"LayerNorm": "layer_norm", "BatchNorm1d": "batch_norm", "NoneType": "none"}
    if norm not in norms:
        raise InputError(f"blocks.0.norm1 ({norm}): not supported; LayerNorm, BatchNorm1d or none")
    activation = _activation(0, first.get("act1"))
    if activation is None:
        raise InputError(f"blocks.0.act1 ({type(first.get('act1')).__name__}): not an activation initscope has")
    residual: Dict[str, Any] = {"blocks": len(blocks), "branch_layers": len(fcs), "norm": norms[norm], "order": "pre"}
    alpha = getattr(blocks[0], "alpha", None)
    if alpha is not None:
        trainable = bool(getattr(alpha, "requires_grad", False))
        value = alpha.detach().reshape(-1)[0] if hasattr(alpha, "detach") else alpha
        residual["alpha"] = {"init": float(value), "trainable": trainable}
    if any(name.startswith("bias") for name, _ in blocks[0].named_parameters()):
        residual["scalar_biases"] = True
    return {"width": module.input.out_features, "activation": activation, "residual": residual}


def from_torch(
    module: Any,
    name: str = "torch",
    weights_path: Optional[Union[str, "os.PathLike[str]"]] = None,
    dataset: str = "mnist",
) -> Dict[str, Any]:
    """An experiment (a dict, for :func:`run` and :func:`theory`) that trains
    the PyTorch module ``module`` from its current weights.

    The module is either an ``nn.Sequential`` MLP of the layers initscope
    has (an optional Flatten, then Linear layers with one activation kind
    after each hidden one: ReLU, LeakyReLU, Tanh, Sigmoid, GELU, SELU,
    Identity; optionally BatchNorm1d before it), or a residual network
    shaped as initscope's (pre-activation blocks; see the README). Its
    weights (and batch-norm running statistics) are written to
    ``weights_path`` (default ``initscope-torch/<name>.safetensors``) under
    initscope's names, and the experiment's one variant ``name`` starts from
    them (the ``from_file`` scheme). Any other module is named in an
    :class:`InputError`.
    """
    residual = _residual_of(module)
    if residual is None:
        inputs, hidden, activation, batch_norm, tensors = _layers_of(module)
        model = {"hidden": hidden, "activation": activation, "batch_norm": batch_norm}
    else:
        inputs, model = module.input.in_features, residual
        state = {k: v for k, v in module.state_dict().items() if not k.endswith("num_batches_tracked")}
    exp = {
        "name": name,
        "dataset": dataset,
        "model": model,
        "variants": [{"name": name, "weight_init": {"scheme": "kaiming_normal"}}],
    }
    slots = _initscope.tensor_slots("json", json.dumps(exp), inputs)
    if residual is not None:
        missing = [slot for slot, _ in slots if slot not in state]
        extra = sorted(set(state) - {slot for slot, _ in slots})
        if missing or extra:
            raise InputError(
                f"from_torch: the module's tensors are not initscope's residual network's "
                f"(missing {missing[:3]}, unexpected {extra[:3]})"
            )
        tensors = [state[slot] for slot, _ in slots]
    path = Path(weights_path if weights_path is not None else Path("initscope-torch") / f"{name}.safetensors")
    path.parent.mkdir(parents=True, exist_ok=True)
    written = []
    for (slot, shape), tensor in zip(slots, tensors):
        values = tensor.detach().to("cpu").float().contiguous().numpy()
        if list(values.shape) != list(shape):
            raise InputError(f"from_torch: {slot} has shape {list(values.shape)}, initscope's network needs {list(shape)}")
        written.append((slot, list(shape), values.astype("<f4").tobytes()))
    _initscope.write_tensors(str(path), written)
    exp["variants"][0]["weight_init"] = {"scheme": "from_file", "path": str(path.resolve())}
    return exp


def presets() -> List[str]:
    """The names of the built-in experiments."""
    return list(_initscope.presets())


class Run:
    """A run directory: its summary, per-variant records and weights."""

    def __init__(self, dir: Union[str, "os.PathLike[str]"], *, interrupted: bool = False) -> None:
        self.dir = Path(os.fspath(dir))
        #: Whether the run stopped on request before its end (see :func:`resume`).
        self.interrupted = interrupted

    def __repr__(self) -> str:
        return f"Run({str(self.dir)!r})"

    @property
    def summary(self) -> dict:
        """``summary.json``: the experiment, its status and each finished variant."""
        return json.loads(_initscope.read_summary(str(self.dir)))

    @property
    def variants(self) -> List[str]:
        """The finished variants' names, in the experiment's order."""
        return [v["name"] for v in self.summary["variants"]]

    @property
    def verdicts(self) -> pd.DataFrame:
        """Every variant's verdicts: columns ``variant``, ``kind``, ``message``."""
        rows = [
            {"variant": v["name"], "kind": d["kind"], "message": d["message"]}
            for v in self.summary["variants"]
            for d in v["verdicts"]
        ]
        return pd.DataFrame(rows, columns=["variant", "kind", "message"])

    def _table(self, variant: Optional[str], table: str) -> pd.DataFrame:
        names = self.variants if variant is None else [variant]
        frames = []
        for name in names:
            frame = pd.DataFrame(json.loads(_initscope.read_table(str(self.dir), name, table)))
            if variant is None:
                frame.insert(0, "variant", name)
            frames.append(frame)
        return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()

    def steps(self, variant: Optional[str] = None) -> pd.DataFrame:
        """``steps.csv``: one row per minibatch (all variants, with a
        ``variant`` column, when ``variant`` is None)."""
        return self._table(variant, "steps")

    def epochs(self, variant: Optional[str] = None) -> pd.DataFrame:
        """``epochs.csv``: one row per epoch."""
        return self._table(variant, "epochs")

    def layers(self, variant: Optional[str] = None) -> pd.DataFrame:
        """``probe/layers.csv``: per recorded step and Linear layer."""
        return self._table(variant, "layers")

    def blocks(self, variant: Optional[str] = None) -> pd.DataFrame:
        """``probe/blocks.csv`` (residual networks): per recorded step and block."""
        return self._table(variant, "blocks")

    def weights(self, variant: str, which: str = "final") -> Dict[str, np.ndarray]:
        """The ``initial`` or ``final`` weights under the PyTorch module's
        names: ``model.load_state_dict({k: torch.from_numpy(v) for k, v in
        run.weights(name).items()})`` loads them."""
        tensors = _initscope.read_weights(str(self.dir), variant, which)
        return {name: np.frombuffer(data, dtype="<f4").reshape(shape).copy() for name, shape, data in tensors}

    @property
    def report(self) -> Path:
        """The HTML report's path."""
        return self.dir / "report.html"

    def show_report(self) -> "_Report":
        """The whole HTML report (self-contained: its charts are inlined), for
        Jupyter to show inline: ``run.show_report()`` as a cell's last line."""
        return _Report(self.report)

    def _repr_html_(self) -> str:
        """In Jupyter: the summary table, the verdicts and the overview charts
        (:meth:`show_report` shows the whole report)."""
        rows = []
        for v in self.summary["variants"]:
            test = v["test"]
            accuracy = 100.0 * test["correct"] / max(test["total"], 1)
            verdicts = "; ".join(d["kind"] for d in v["verdicts"]) or "none"
            rows.append(
                f"<tr><td>{html.escape(v['name'])}</td><td>{accuracy:.2f} %</td>"
                f"<td>{v['final_loss']}</td><td>{html.escape(verdicts)}</td></tr>"
            )
        charts = "".join(
            (self.dir / "plots" / name).read_text()
            for name in ("all-loss.svg", "all-accuracy.svg")
            if (self.dir / "plots" / name).exists()
        )
        return (
            f"<p><b>initscope run</b> {html.escape(str(self.dir))}"
            f"{' (interrupted: resume it)' if self.interrupted else ''}</p>"
            "<table><tr><th>variant</th><th>test accuracy</th><th>final loss</th><th>verdicts</th></tr>"
            + "".join(rows)
            + f"</table><div>{charts}</div><p>Full report: {html.escape(str(self.report))}</p>"
        )


class _Report:
    """A run's report page shown inline, in an iframe of its own (its styles
    and scripts stay apart from the notebook's)."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def _repr_html_(self) -> str:
        page = self.path.read_text()
        return (
            f'<iframe srcdoc="{html.escape(page, quote=True)}" '
            'style="width: 100%; height: 800px; border: 1px solid #ccc"></iframe>'
        )
