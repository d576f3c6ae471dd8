"""The Python package against the records the Rust library writes, the
command line's messages, the safetensors reader and a NumPy forward pass
of the PyTorch module the weights are named after."""

import _thread
import os
import signal
import subprocess
import threading
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from safetensors.numpy import load_file

import initscope

CLI = os.environ.get("INITSCOPE_BIN", str(Path(__file__).resolve().parents[2] / "target" / "release" / "initscope"))


def experiment(data: Path, epochs: int = 1) -> dict:
    """Two variants of a small ReLU MLP on the synthetic data."""
    return {
        "name": "py",
        "dataset": str(data),
        "epochs": epochs,
        "batch_size": 50,
        "log_every": 0,
        "model": {"hidden": [32, 16], "activation": "relu"},
        "probe": {"every": 3, "histogram_every": 0},
        "variants": [
            {"name": "kaiming", "weight_init": {"scheme": "kaiming_normal"}},
            {"name": "tiny", "weight_init": {"scheme": "normal", "std": 0.001}},
        ],
    }


def test_records_read_back_as_dataframes_equal_to_the_csvs(data, tmp_path):
    run = initscope.run(experiment(data), tmp_path / "run")
    assert run.variants == ["kaiming", "tiny"] and not run.interrupted
    for variant in run.variants:
        for table, file in (("steps", "steps.csv"), ("epochs", "epochs.csv"), ("layers", "probe/layers.csv")):
            ours = getattr(run, table)(variant)
            csv = pd.read_csv(run.dir / variant / file)
            assert list(ours.columns) == list(csv.columns), table
            pd.testing.assert_frame_equal(ours, csv, check_dtype=False)
    both = run.epochs()
    assert list(both["variant"]) == ["kaiming", "tiny"]
    assert run.summary["status"] == "complete"
    assert set(run.verdicts.columns) == {"variant", "kind", "message"}
    assert initscope.open(run.dir).epochs("kaiming").equals(run.epochs("kaiming"))
    page = run._repr_html_()
    assert "<table>" in page and "kaiming" in page and "<svg" in page
    # The whole report, self-contained, in an iframe of its own.
    import html

    whole = run.show_report()._repr_html_()
    assert whole.startswith('<iframe srcdoc="') and html.escape((run.dir / "report.html").read_text(), quote=True) in whole


def test_weights_are_the_safetensors_files_and_give_the_models_predictions(data, tmp_path):
    run = initscope.run(experiment(data, epochs=5), tmp_path / "run")
    for which in ("initial", "final"):
        ours = run.weights("kaiming", which)
        theirs = load_file(str(run.dir / "kaiming" / f"{which}.safetensors"))
        assert ours.keys() == theirs.keys()
        for name in ours:
            np.testing.assert_array_equal(ours[name], theirs[name])
    # The notebook's nn.Sequential(Flatten, Linear, ReLU, Linear, ReLU, Linear)
    # under its module names, in NumPy: its argmax is the recorded prediction.
    w = run.weights("kaiming", "final")
    import gzip

    raw = gzip.decompress((data / "t10k-images-idx3-ubyte.gz").read_bytes())
    images = np.frombuffer(raw[16:], dtype=np.uint8).reshape(-1, 64).astype(np.float32) / 255.0
    x = images
    for i in (1, 3):
        x = np.maximum(x @ w[f"my_network.{i}.weight"].T + w[f"my_network.{i}.bias"], 0.0)
    logits = x @ w["my_network.5.weight"].T + w["my_network.5.bias"]
    recorded = pd.read_csv(run.dir / "kaiming" / "test_predictions.csv")
    agree = np.mean(logits.argmax(axis=1) == recorded["predicted"].to_numpy())
    # float32 sums in another order may flip a near-tie, nothing more.
    assert agree >= 0.99, agree
    assert (logits.argmax(axis=1) == recorded["label"].to_numpy()).mean() > 0.5, "the network learned the bands"


def test_bad_input_raises_the_command_lines_one_line_message(data, tmp_path):
    bad = tmp_path / "bad.toml"
    bad.write_text(f'dataset = "{data}"\n\n[model]\nhidden = [0]\n\n[[variants]]\nname = "a"\nweight_init = {{ scheme = "kaiming_normal" }}\n')
    with pytest.raises(initscope.InputError) as raised:
        initscope.run(bad, tmp_path / "out")
    assert isinstance(raised.value, ValueError)
    cli = subprocess.run([CLI, "run", str(bad), "--out", str(tmp_path / "cli")], capture_output=True, text=True)
    assert cli.returncode == 2
    assert cli.stderr.strip() == f"error: {raised.value}"
    assert str(raised.value) == f"{bad}:4: model.hidden[0]: a layer needs at least one unit"
    with pytest.raises(initscope.InputError, match="overrides: unknown field `batch`, expected one of"):
        initscope.run(experiment(data), tmp_path / "o", batch=3)
    with pytest.raises(initscope.InputError, match="no such experiment file or preset"):
        initscope.run("no-such-preset")
    with pytest.raises(initscope.InputError, match="not a run directory"):
        initscope.open(tmp_path)


@pytest.fixture
def sigint_handled():
    """Python's own SIGINT handler, as in a terminal or Jupyter: a process
    started in the background by a non-interactive shell inherits SIGINT
    ignored, and then `_thread.interrupt_main` does nothing."""
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    yield
    signal.signal(signal.SIGINT, previous)


def test_keyboard_interrupt_then_resume_gives_the_same_records(data, tmp_path, sigint_handled):
    whole = initscope.run(experiment(data, epochs=100), tmp_path / "whole")
    dir = tmp_path / "stopped"

    def interrupt_after_the_first_epoch():
        while not (dir / "kaiming" / "epochs.csv").exists():
            time.sleep(0.002)
        _thread.interrupt_main()

    threading.Thread(target=interrupt_after_the_first_epoch, daemon=True).start()
    with pytest.raises(KeyboardInterrupt):
        initscope.run(experiment(data, epochs=100), dir)
    assert (dir / "kaiming" / "checkpoint.json").exists(), "stopped with a checkpoint"
    resumed = initscope.resume(dir)
    assert not resumed.interrupted
    for variant in ("kaiming", "tiny"):
        pd.testing.assert_frame_equal(resumed.steps(variant), whole.steps(variant))
        pd.testing.assert_frame_equal(resumed.epochs(variant), whole.epochs(variant))
        for name, value in whole.weights(variant, "final").items():
            np.testing.assert_array_equal(resumed.weights(variant, "final")[name], value)


def test_theory_is_the_command_lines(data, tmp_path):
    import json

    ours = initscope.theory(experiment(data))
    file = tmp_path / "exp.toml"
    file.write_text(
        f'name = "py"\ndataset = "{data}"\n[model]\nhidden = [32, 16]\nactivation = "relu"\n'
        '[[variants]]\nname = "kaiming"\nweight_init = { scheme = "kaiming_normal" }\n'
        '[[variants]]\nname = "tiny"\nweight_init = { scheme = "normal", std = 0.001 }\n'
    )
    cli = subprocess.run([CLI, "theory", str(file), "--json"], capture_output=True, text=True, check=True)
    assert ours == json.loads(cli.stdout)
    assert ours["variants"][0]["layers"][0]["fan_in"] == 64



def test_a_sweep_runs_and_reads_back_as_a_table(data, tmp_path):
    spec = experiment(data)
    spec["sweep"] = {"optimizer.lr": [0.05, 0.2]}
    done = initscope.sweep(spec, tmp_path / "sweep")
    assert (done.total, done.done, done.failed, done.interrupted) == (2, 2, [], False)
    table = done.table
    assert list(table["optimizer.lr"].unique()) == [0.05, 0.2]
    assert set(table["variant"]) == {"kaiming", "tiny"}
    runs = done.runs()
    assert len(runs) == 2 and runs[0].epochs("kaiming")["epoch"].tolist() == [1]
    assert done.report.exists()
    bad = dict(spec, sweep={"optimizer.lr": []})
    with pytest.raises(initscope.InputError, match="the list is empty"):
        initscope.sweep(bad, tmp_path / "bad")
    with pytest.raises(initscope.InputError, match="^spec: a file, a preset's name or a dict, got int$"):
        initscope.sweep(42, tmp_path / "bad")


def test_lockstep_gives_the_records_of_training_alone(data, tmp_path):
    spec = experiment(data)
    spec["sweep"] = {"optimizer.lr": [0.05, 0.2, 0.1]}
    alone = initscope.sweep(spec, tmp_path / "alone")
    together = initscope.sweep(spec, tmp_path / "together", lockstep=True, group_size=3)
    columns = [c for c in alone.table.columns if c != "seconds"]
    assert len(columns) < len(alone.table.columns), "the wall time is the one column that may differ"
    pd.testing.assert_frame_equal(alone.table[columns], together.table[columns])
    for a, b in zip(alone.runs(), together.runs(), strict=True):
        for variant in ("kaiming", "tiny"):
            pd.testing.assert_frame_equal(a.steps(variant), b.steps(variant))
            for name, value in a.weights(variant, "final").items():
                np.testing.assert_array_equal(b.weights(variant, "final")[name], value)
    with pytest.raises(initscope.InputError, match="^group_size: must be at least 1$"):
        initscope.sweep(spec, tmp_path / "bad", group_size=0)
    with pytest.raises(initscope.InputError, match="^group_size: must be at least 1$"):
        initscope.run(experiment(data), tmp_path / "bad-run", group_size=0)


def test_progress_hands_over_each_log_line_as_it_is_written(data, tmp_path):
    lines = []
    run = initscope.run(experiment(data, epochs=3), tmp_path / "run", progress=lines.append)
    log = (run.dir / "log.txt").read_text().splitlines()
    assert lines == log and "Epoch: 003/003" in " ".join(lines), lines

    def refuse(line):
        raise RuntimeError("the callback's own error")

    with pytest.raises(RuntimeError, match="the callback's own error"):
        initscope.run(experiment(data, epochs=50), tmp_path / "stopped", progress=refuse)
    assert (tmp_path / "stopped" / "log.txt").exists()
