"""The package against PyTorch itself (installed by scripts/python-tests.sh):
run weights loaded into the notebook's module give its predictions, and
from_torch starts a run from a module's own weights."""

import gzip

import numpy as np
import pandas as pd
import pytest
import torch
from conftest import write_synthetic
from safetensors.numpy import load_file

import initscope


def notebook_network():
    """The seed notebook's network, built its way: nn.Sequential of Flatten
    and Linear/ReLU pairs, 784-512-256-128-64-10, under torch.manual_seed(123)."""
    torch.manual_seed(123)
    nn = torch.nn
    return nn.Sequential(
        nn.Flatten(),
        nn.Linear(784, 512), nn.ReLU(),
        nn.Linear(512, 256), nn.ReLU(),
        nn.Linear(256, 128), nn.ReLU(),
        nn.Linear(128, 64), nn.ReLU(),
        nn.Linear(64, 10),
    )


def test_weights_load_into_the_torch_module_and_give_its_logits(tmp_path):
    data = tmp_path / "mnist-shaped"
    write_synthetic(data, train=300, test=64, side=28)
    exp = {"name": "seedlike", "dataset": str(data), "epochs": 1, "batch_size": 50, "log_every": 0,
           "variants": [{"name": "kaiming", "weight_init": {"scheme": "kaiming_uniform"}}]}
    run = initscope.run(exp, tmp_path / "run")
    model = notebook_network()
    state = {k.removeprefix("my_network."): torch.from_numpy(v) for k, v in run.weights("kaiming", "final").items()}
    model.load_state_dict(state)
    raw = gzip.decompress((data / "t10k-images-idx3-ubyte.gz").read_bytes())
    images = torch.from_numpy(np.frombuffer(raw[16:], dtype=np.uint8).reshape(-1, 28, 28).astype(np.float32) / 255.0)
    with torch.no_grad():
        logits = model(images).numpy()
    recorded = pd.read_csv(run.dir / "kaiming" / "test_predictions.csv")
    assert (logits.argmax(axis=1) == recorded["predicted"].to_numpy()).mean() >= 0.99


def test_from_torch_starts_from_the_modules_own_weights(tmp_path):
    data = write_synthetic(tmp_path / "mnist-shaped", train=300, test=64, side=28)
    model = notebook_network()
    exp = initscope.from_torch(model, name="mine", weights_path=tmp_path / "mine.safetensors", dataset=str(data))
    assert exp["model"] == {"hidden": [512, 256, 128, 64], "activation": "relu", "batch_norm": False}
    exp.update(epochs=1, batch_size=50, log_every=0)
    run = initscope.run(exp, tmp_path / "run")
    initial = run.weights("mine", "initial")
    for name, value in model.state_dict().items():
        np.testing.assert_array_equal(initial[f"my_network.{name}"], value.numpy())
    # Theory reads the module's own weights: PyTorch's default U(-1/sqrt(fan_in), 1/sqrt(fan_in))
    # has sigma_w^2 = fan_in Var(W) = 1/3 at every layer (to the sampling error of 40,960 draws or more).
    prediction = initscope.theory(exp)["variants"][0]
    assert [layer["fan_in"] for layer in prediction["layers"]] == [784, 512, 256, 128, 64]
    for layer in prediction["layers"][:-1]:
        assert abs(layer["weight_variance"] - 1 / 3) < 0.02, layer
        assert layer["pre_std"] is not None
    # Batch norm and its running statistics come along; other modules are named.
    nn = torch.nn
    with_bn = nn.Sequential(nn.Linear(784, 32), nn.BatchNorm1d(32), nn.Tanh(), nn.Linear(32, 10))
    with torch.no_grad():
        with_bn[1].running_mean.fill_(0.25)
    exp = initscope.from_torch(with_bn, weights_path=tmp_path / "bn.safetensors", dataset=str(data))
    assert exp["model"] == {"hidden": [32], "activation": "tanh", "batch_norm": True}
    assert (load_file(str(tmp_path / "bn.safetensors"))["my_network.2.running_mean"] == 0.25).all()
    with pytest.raises(initscope.InputError, match=r"module 1 \(Dropout\): not supported"):
        initscope.from_torch(nn.Sequential(nn.Linear(784, 32), nn.Dropout(), nn.ReLU(), nn.Linear(32, 10)))


class Block(torch.nn.Module):
    """x + alpha * fc2(relu(norm2(fc1(relu(norm1(x)))))), as scripts/torch-fixtures.py defines it."""

    def __init__(self, width, alpha):
        super().__init__()
        self.norm1 = torch.nn.LayerNorm(width)
        self.act1 = torch.nn.ReLU()
        self.fc1 = torch.nn.Linear(width, width)
        self.norm2 = torch.nn.LayerNorm(width)
        self.act2 = torch.nn.ReLU()
        self.fc2 = torch.nn.Linear(width, width)
        self.alpha = torch.nn.Parameter(torch.tensor([alpha]))

    def forward(self, x):
        return x + self.alpha * self.fc2(self.act2(self.norm2(self.fc1(self.act1(self.norm1(x))))))


class ResidualNet(torch.nn.Module):
    """input Linear, the blocks, final LayerNorm and ReLU, output Linear."""

    def __init__(self, width, blocks, alpha):
        super().__init__()
        self.input = torch.nn.Linear(784, width)
        self.blocks = torch.nn.ModuleList([Block(width, alpha) for _ in range(blocks)])
        self.final_norm = torch.nn.LayerNorm(width)
        self.final_act = torch.nn.ReLU()
        self.output = torch.nn.Linear(width, 10)

    def forward(self, x):
        x = self.input(x)
        for block in self.blocks:
            x = block(x)
        return self.output(self.final_act(self.final_norm(x)))


def test_from_torch_takes_a_residual_network_and_trains_what_pytorch_would_run(tmp_path):
    data = write_synthetic(tmp_path / "mnist-shaped", train=300, test=64, side=28)
    torch.manual_seed(7)
    model = ResidualNet(width=32, blocks=3, alpha=0.5)
    exp = initscope.from_torch(model, name="res", weights_path=tmp_path / "res.safetensors", dataset=str(data))
    assert exp["model"]["residual"] == {
        "blocks": 3, "branch_layers": 2, "norm": "layer_norm", "order": "pre", "alpha": {"init": 0.5, "trainable": True}
    }
    exp.update(epochs=2, batch_size=50, log_every=0)
    run = initscope.run(exp, tmp_path / "run", progress=False)
    initial = run.weights("res", "initial")
    assert initial.keys() == model.state_dict().keys()
    for name, value in model.state_dict().items():
        np.testing.assert_array_equal(initial[name], value.numpy().reshape(initial[name].shape))
    final = run.weights("res", "final")
    assert final["blocks.1.alpha"][0] != 0.5, "alpha trained"
    model.load_state_dict({k: torch.from_numpy(v).reshape(model.state_dict()[k].shape) for k, v in final.items()})
    raw = gzip.decompress((data / "t10k-images-idx3-ubyte.gz").read_bytes())
    images = torch.from_numpy(np.frombuffer(raw[16:], dtype=np.uint8).reshape(-1, 784).astype(np.float32) / 255.0)
    with torch.no_grad():
        logits = model(images).numpy()
    recorded = pd.read_csv(run.dir / "res" / "test_predictions.csv")
    assert (logits.argmax(axis=1) == recorded["predicted"].to_numpy()).mean() >= 0.99
    with pytest.raises(initscope.InputError, match="not initscope's residual network"):
        model.extra = torch.nn.Linear(2, 2)
        initscope.from_torch(model, weights_path=tmp_path / "x.safetensors", dataset=str(data))
