#!/usr/bin/env python3
"""Writes the PyTorch-made fixtures in tests/fixtures/torch/.

The tests compare initscope against these files and need no PyTorch. To
remake them (PyTorch from PyPI, one thread, MNIST fetched by
`initscope data fetch mnist`):

    python3 -m venv /tmp/torchenv
    /tmp/torchenv/bin/pip install torch numpy safetensors
    /tmp/torchenv/bin/python scripts/torch-fixtures.py [--data DIR]

What each file holds is written in tests/fixtures/torch/README.md.
"""

import argparse
import gzip
import hashlib
import json
import math
import os
from pathlib import Path

import numpy as np
import torch
from safetensors.numpy import save_file
from torch.utils.data import DataLoader, SubsetRandomSampler, TensorDataset

OUT = Path(__file__).resolve().parent.parent / "tests" / "fixtures" / "torch"
SEED_SIZES = [784, 512, 256, 128, 64, 10]
SMALL_SIZES = [20, 37, 16, 5]

# initscope's scheme (as its settings write it) for each variant's weights
# and biases; `torch_init` below is the notebook-style torch.nn.init call.
SMALL_VARIANTS = {
    "kaiming": ({"scheme": "kaiming_uniform", "mode": "fan_in", "gain": "relu"}, {"scheme": "constant", "value": 0.0}),
    "normal": ({"scheme": "normal", "mean": 0.0, "std": 0.001}, {"scheme": "constant", "value": 0.0}),
    "default": ({"scheme": "pytorch_default"}, {"scheme": "pytorch_default"}),
    "xavier_tanh": ({"scheme": "xavier_uniform", "gain": "tanh"}, {"scheme": "normal", "mean": 0.0, "std": 0.1}),
    "kaiming_normal_out": (
        {"scheme": "kaiming_normal", "mode": "fan_out", "gain": "relu"},
        {"scheme": "uniform", "a": -0.1, "b": 0.2},
    ),
    "xavier_normal": ({"scheme": "xavier_normal", "gain": 1.0}, {"scheme": "constant", "value": 0.05}),
    "lecun_uniform": ({"scheme": "lecun_uniform"}, {"scheme": "normal", "mean": 0.5, "std": 2.0}),
    "lecun_normal": ({"scheme": "lecun_normal"}, {"scheme": "constant", "value": 0.0}),
    "uniform": ({"scheme": "uniform", "a": -0.3, "b": 0.5}, {"scheme": "constant", "value": 0.0}),
}
GAINS = {"relu": math.sqrt(2.0), "tanh": 5.0 / 3}


def torch_init(tensor, scheme):
    """The torch.nn.init call for one of initscope's schemes."""
    kind = scheme["scheme"]
    gain = scheme.get("gain", 1.0)
    gain = GAINS.get(gain, gain)
    init = torch.nn.init
    if kind == "kaiming_uniform":
        init.kaiming_uniform_(tensor, mode=scheme["mode"], nonlinearity="relu")
    elif kind == "kaiming_normal":
        init.kaiming_normal_(tensor, mode=scheme["mode"], nonlinearity="relu")
    elif kind == "xavier_uniform":
        init.xavier_uniform_(tensor, gain=gain)
    elif kind == "xavier_normal":
        init.xavier_normal_(tensor, gain=gain)
    elif kind == "lecun_uniform":
        init.kaiming_uniform_(tensor, nonlinearity="linear")
    elif kind == "lecun_normal":
        init.kaiming_normal_(tensor, nonlinearity="linear")
    elif kind == "normal":
        init.normal_(tensor, scheme["mean"], scheme["std"])
    elif kind == "uniform":
        init.uniform_(tensor, scheme["a"], scheme["b"])
    elif kind == "constant":
        init.constant_(tensor, scheme["value"])
    elif kind != "pytorch_default":
        raise ValueError(kind)


def build(sizes, weight, bias, seed):
    """The notebook: manual_seed right before the model, then its loop over Linears."""
    torch.manual_seed(seed)
    layers = [torch.nn.Flatten()]
    for i, (fan_in, fan_out) in enumerate(zip(sizes, sizes[1:])):
        layers.append(torch.nn.Linear(fan_in, fan_out))
        if i < len(sizes) - 2:
            layers.append(torch.nn.ReLU())
    model = torch.nn.Sequential()
    model.my_network = torch.nn.Sequential(*layers)
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, torch.nn.Linear):
                torch_init(m.weight, weight)
                torch_init(m.bias, bias)
    return model


def state(model):
    return {k: v.detach().numpy().copy() for k, v in model.state_dict().items()}


def digest(array):
    return hashlib.md5(np.ascontiguousarray(array).tobytes()).hexdigest()


def generator_fixture():
    """Raw draws: int64 random_ (random64), uniform_, randperm, small normal_."""
    torch.manual_seed(123)
    words = torch.empty(64, dtype=torch.int64).random_().tolist()
    torch.manual_seed(123)
    uniform = torch.empty(64).uniform_(-0.7, 0.3).tolist()
    torch.manual_seed(123)
    perm = torch.randperm(54000).numpy().astype(np.uint32)
    torch.manual_seed(5)
    small_normal = [torch.empty(n).normal_(0.25, 3.0).tolist() for n in (5, 1, 7, 15)]
    return {
        "seed": 123,
        "int64_random": [str(w) for w in words],
        "uniform_-0.7_0.3": uniform,
        "randperm_54000_md5": digest(perm),
        "randperm_54000_head": perm[:16].tolist(),
        "normal_0.25_3_seed5_sizes_5_1_7_15": small_normal,
    }


def loader_orders(n_images, valid_fraction, batch, epochs, generator_ready):
    """Every index the notebook's loaders yield, epoch by epoch: training,
    the training-accuracy pass, validation. `generator_ready` puts the
    global generator where the notebook has it (after the model is built)."""
    n_valid = int(valid_fraction * n_images)
    train_idx, valid_idx = range(0, n_images - n_valid), range(n_images - n_valid, n_images)
    dataset = TensorDataset(torch.arange(n_images))
    train = DataLoader(dataset, batch_size=batch, sampler=SubsetRandomSampler(train_idx), drop_last=True)
    valid = DataLoader(dataset, batch_size=batch, sampler=SubsetRandomSampler(valid_idx))
    generator_ready()
    out = []
    for _ in range(epochs):
        epoch = {}
        for name, loader in (("train", train), ("train_eval", train), ("valid", valid)):
            epoch[name] = np.concatenate([b[0].numpy() for b in loader]).astype(np.int64)
        out.append(epoch)
    return out


def small_fixtures():
    tensors, meta = {}, {"sizes": SMALL_SIZES, "seeds": [0, 123], "variants": {}}
    for name, (weight, bias) in SMALL_VARIANTS.items():
        meta["variants"][name] = {"weight_init": weight, "bias_init": bias}
        for seed in meta["seeds"]:
            for key, value in state(build(SMALL_SIZES, weight, bias, seed)).items():
                tensors[f"{name}/seed{seed}/{key}"] = value
    # Loader orders after the xavier_tanh model (its normal biases of 37
    # and 5 values draw a tail block and the double path).
    weight, bias = SMALL_VARIANTS["xavier_tanh"]
    orders = loader_orders(300, 0.1, 32, 2, lambda: build(SMALL_SIZES, weight, bias, 123))
    meta["orders"] = {"variant": "xavier_tanh", "seed": 123, "images": 300, "validation_fraction": 0.1, "batch": 32}
    for e, epoch in enumerate(orders, 1):
        for part, idx in epoch.items():
            tensors[f"orders/epoch{e}/{part}"] = idx
    save_file(tensors, OUT / "small-init.safetensors")
    return meta


def seed_network_fixtures():
    """Digests of the seed network's initial tensors (seeds 123 and 1) and
    of its loaders' first two epochs (seed 123)."""
    out = {"sizes": SEED_SIZES, "tensors": {}, "orders": {}}
    for seed in (123, 1):
        for name in ("kaiming", "normal"):
            weight, bias = SMALL_VARIANTS[name]
            for key, value in state(build(SEED_SIZES, weight, bias, seed)).items():
                out["tensors"][f"{name}/seed{seed}/{key}"] = {"md5": digest(value), "head": value.ravel()[:4].tolist()}
    weight, bias = SMALL_VARIANTS["kaiming"]
    orders = loader_orders(60000, 0.1, 128, 2, lambda: build(SEED_SIZES, weight, bias, 123))
    for e, epoch in enumerate(orders, 1):
        for part, idx in epoch.items():
            idx = idx.astype(np.uint32)
            out["orders"][f"epoch{e}/{part}"] = {"md5": digest(idx), "len": len(idx), "head": idx[:8].tolist()}
    return out


def read_idx(path):
    with gzip.open(path) as f:
        data = f.read()
    dims = data[3]
    shape = [int.from_bytes(data[4 + 4 * i : 8 + 4 * i], "big") for i in range(dims)]
    return np.frombuffer(data, dtype=np.uint8, offset=4 + 4 * dims).reshape(shape)


def mnist_train(data_dir):
    images = read_idx(data_dir / "mnist" / "train-images-idx3-ubyte.gz")
    labels = read_idx(data_dir / "mnist" / "train-labels-idx1-ubyte.gz")
    return torch.from_numpy(images.astype(np.float32) / 255.0), torch.from_numpy(labels.astype(np.int64))


def seed_losses(data_dir, steps):
    """The seed experiment's first `steps` minibatch losses per variant,
    seed 123, batches drawn by the notebook's training loader."""
    images, labels = mnist_train(data_dir)
    dataset = TensorDataset(images, labels)
    out = {}
    for name in ("kaiming", "normal"):
        weight, bias = SMALL_VARIANTS[name]
        model = build(SEED_SIZES, weight, bias, 123)
        loader = DataLoader(dataset, batch_size=128, sampler=SubsetRandomSampler(range(54000)), drop_last=True)
        optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
        losses = []
        for x, y in loader:
            loss = torch.nn.functional.cross_entropy(model(x), y)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            losses.append(loss.item())
            if len(losses) == steps:
                break
        out[name] = losses
    return out


# The optimiser settings of the step-for-step comparison, as initscope's
# `[optimizer]` table; `torch_optimizer` below makes PyTorch's.
OPTIMIZERS = {
    "sgd": {"kind": "sgd", "lr": 0.1},
    "sgd_weight_decay": {"kind": "sgd", "lr": 0.1, "weight_decay": 1e-3},
    "sgd_nesterov_wd": {"kind": "sgd", "lr": 0.05, "momentum": 0.9, "nesterov": True, "weight_decay": 5e-4},
    "sgd_momentum_wd": {"kind": "sgd", "lr": 0.05, "momentum": 0.9, "weight_decay": 1e-4},
    "sgd_momentum": {"kind": "sgd", "lr": 0.05, "momentum": 0.9},
    "sgd_dampening_wd": {"kind": "sgd", "lr": 0.05, "momentum": 0.9, "dampening": 0.1, "weight_decay": 1e-4},
    "sgd_dampening": {"kind": "sgd", "lr": 0.05, "momentum": 0.9, "dampening": 0.1},
    "adam": {"kind": "adam", "lr": 1e-3},
    "adam_wd": {"kind": "adam", "lr": 1e-3, "weight_decay": 1e-4},
    "adamw": {"kind": "adamw", "lr": 1e-3, "weight_decay": 0.01},
    "adamw_no_decay": {"kind": "adamw", "lr": 1e-3, "weight_decay": 0.0},
    "adagrad": {"kind": "adagrad", "lr": 0.01},
    "adagrad_decay_wd": {"kind": "adagrad", "lr": 0.02, "lr_decay": 0.01, "weight_decay": 1e-4, "initial_accumulator_value": 0.1},
    "rmsprop": {"kind": "rmsprop", "lr": 1e-3},
    "rmsprop_centered_momentum": {"kind": "rmsprop", "lr": 1e-4, "alpha": 0.9, "momentum": 0.9, "centered": True},
    "rmsprop_momentum_wd": {"kind": "rmsprop", "lr": 1e-4, "alpha": 0.9, "momentum": 0.9, "weight_decay": 1e-4},
}
OPTIM_STEPS = 100
BATCH = 128
EVAL_FIRST = 54000  # the batch-norm model's evaluation-mode batch: images 54000..54127


def torch_optimizer(params, settings):
    kind, lr = settings["kind"], settings["lr"]
    wd = settings.get("weight_decay", 0.01 if kind == "adamw" else 0.0)
    if kind == "sgd":
        return torch.optim.SGD(
            params,
            lr=lr,
            momentum=settings.get("momentum", 0.0),
            dampening=settings.get("dampening", 0.0),
            nesterov=settings.get("nesterov", False),
            weight_decay=wd,
        )
    if kind == "adagrad":
        return torch.optim.Adagrad(
            params,
            lr=lr,
            lr_decay=settings.get("lr_decay", 0.0),
            weight_decay=wd,
            initial_accumulator_value=settings.get("initial_accumulator_value", 0.0),
        )
    if kind == "rmsprop":
        return torch.optim.RMSprop(
            params,
            lr=lr,
            alpha=settings.get("alpha", 0.99),
            weight_decay=wd,
            momentum=settings.get("momentum", 0.0),
            centered=settings.get("centered", False),
        )
    return (torch.optim.Adam if kind == "adam" else torch.optim.AdamW)(params, lr=lr, weight_decay=wd)


def build_batch_norm(sizes, seed):
    """The seed-batchnorm network (Linear, BatchNorm1d, ReLU), Kaiming weights, zero biases."""
    torch.manual_seed(seed)
    layers = [torch.nn.Flatten()]
    for i, (fan_in, fan_out) in enumerate(zip(sizes, sizes[1:])):
        layers.append(torch.nn.Linear(fan_in, fan_out))
        if i < len(sizes) - 2:
            layers += [torch.nn.BatchNorm1d(fan_out), torch.nn.ReLU()]
    model = torch.nn.Sequential()
    model.my_network = torch.nn.Sequential(*layers)
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, torch.nn.Linear):
                torch.nn.init.kaiming_uniform_(m.weight, mode="fan_in", nonlinearity="relu")
                m.bias.zero_()
    return model


def train_steps(model, settings, images, labels, dtype, eval_batch=False):
    """OPTIM_STEPS steps on images 0.. in file order; the losses (and the
    evaluation-mode loss on the fixed batch after each step)."""
    model = model.to(dtype)
    optimizer = torch_optimizer(model.parameters(), settings)
    losses, evals = [], []
    x_eval = images[EVAL_FIRST : EVAL_FIRST + BATCH].to(dtype)
    y_eval = labels[EVAL_FIRST : EVAL_FIRST + BATCH]
    for k in range(OPTIM_STEPS):
        x, y = images[k * BATCH : (k + 1) * BATCH].to(dtype), labels[k * BATCH : (k + 1) * BATCH]
        model.train()
        loss = torch.nn.functional.cross_entropy(model(x), y)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
        if eval_batch:
            model.eval()
            with torch.no_grad():
                evals.append(torch.nn.functional.cross_entropy(model(x_eval), y_eval).item())
    return losses, evals


def optimizer_losses(data_dir, optimizers=None, batch_norm=True):
    """Per optimiser setting, the seed network (Kaiming, seed 123, PyTorch's
    draws) trained OPTIM_STEPS steps on images 0..12799 in order, in float32
    and float64; and the batch-norm network with plain SGD, with its
    evaluation-mode loss after every step."""
    images, labels = mnist_train(data_dir)
    weight, bias = SMALL_VARIANTS["kaiming"]
    out = {"steps": OPTIM_STEPS, "batch": BATCH, "settings": {}}
    for name, settings in (optimizers or OPTIMIZERS).items():
        runs = {}
        for dtype, key in ((torch.float32, "f32"), (torch.float64, "f64")):
            runs[key], _ = train_steps(build(SEED_SIZES, weight, bias, 123), settings, images, labels, dtype)
        out["settings"][name] = {"optimizer": settings, "batch_norm": False, **runs}
    if not batch_norm:
        return out
    runs = {}
    for dtype, key in ((torch.float32, "f32"), (torch.float64, "f64")):
        model = build_batch_norm(SEED_SIZES, 123)
        runs[key], runs[f"eval_{key}"] = train_steps(model, OPTIMIZERS["sgd"], images, labels, dtype, True)
    out["settings"]["batch_norm_sgd"] = {"optimizer": OPTIMIZERS["sgd"], "batch_norm": True, "eval_first": EVAL_FIRST, **runs}
    return out


def permute_inputs(model, images, order):
    """The same network and images with the 784 inputs in another order:
    the first Linear's columns follow the pixels, so the function is the
    same and only the order of layer 1's sums changes."""
    with torch.no_grad():
        first = model.my_network[1]
        first.weight.copy_(first.weight[:, order])
    return model, images.reshape(len(images), -1)[:, order]


def reorder_sensitivity(data_dir, optimizers=None):
    """PyTorch's own sensitivity to the order of a sum: every float32 run of
    `optimizer_losses` made again on this machine as it is and with layer
    1's inputs permuted (eight fixed random orders, and reversed). A change of
    summation order moves every later loss by about this much in PyTorch
    too (Adam most: it divides gradients below eps by their square root),
    so the tests bound initscope's distance from PyTorch by it."""
    images, labels = mnist_train(data_dir)
    weight, bias = SMALL_VARIANTS["kaiming"]
    orders = {f"permuted{seed}": torch.randperm(784, generator=torch.Generator().manual_seed(seed)) for seed in range(1, 9)}
    orders["reversed"] = torch.arange(783, -1, -1)
    out = {"cpu_capability": torch.backends.cpu.get_cpu_capability(), "settings": {}}
    chosen = optimizers or {**OPTIMIZERS, "batch_norm_sgd": OPTIMIZERS["sgd"]}
    for name, settings in chosen.items():
        batch_norm = name == "batch_norm_sgd"
        fresh = (lambda: build_batch_norm(SEED_SIZES, 123)) if batch_norm else (lambda: build(SEED_SIZES, weight, bias, 123))
        runs = {}
        runs["f32"], runs["eval_f32"] = train_steps(fresh(), settings, images, labels, torch.float32, batch_norm)
        for key, order in orders.items():
            model, permuted = permute_inputs(fresh(), images, order)
            runs[key], runs[f"eval_{key}"] = train_steps(model, settings, permuted, labels, torch.float32, batch_norm)
        out["settings"][name] = {k: v for k, v in runs.items() if v}
    return out


def optimizer_updates(data_dir, optimizers=None, tensors_before=None):
    """Three updates of every optimiser setting from the same parameters
    and the same three gradients (784-16-10 network, real MNIST batches, so
    with the exact zeros of the border pixels): the parameters after the
    first and the third. Isolates the update arithmetic from the gradients."""
    images, labels = mnist_train(data_dir)
    weight, bias = SMALL_VARIANTS["kaiming"]
    model = build([784, 16, 10], weight, bias, 123)
    tensors = {f"params0/{k}": v for k, v in state(model).items()}
    grads = []
    for k in range(3):
        model.zero_grad()
        x, y = images[k * BATCH : (k + 1) * BATCH], labels[k * BATCH : (k + 1) * BATCH]
        torch.nn.functional.cross_entropy(model(x), y).backward()
        grads.append({n: p.grad.detach().clone() for n, p in model.named_parameters()})
        tensors.update({f"grad{k + 1}/{n}": g.numpy().copy() for n, g in grads[-1].items()})
    initial = state(model)
    if tensors_before is not None:
        # The parameters and gradients the file already holds (another
        # machine's products may round the gradients differently).
        tensors = dict(tensors_before)
        initial = {n: tensors[f"params0/{n}"] for n in initial}
        grads = [{n: torch.from_numpy(tensors[f"grad{k + 1}/{n}"].copy()) for n in initial} for k in range(3)]
    for name, settings in (optimizers or OPTIMIZERS).items():
        with torch.no_grad():
            for n, p in model.named_parameters():
                p.copy_(torch.from_numpy(initial[n]))
        optimizer = torch_optimizer(model.parameters(), settings)
        for k in range(3):
            for n, p in model.named_parameters():
                p.grad = grads[k][n].clone()
            optimizer.step()
            if k in (0, 2):
                tensors.update({f"{name}/step{k + 1}/{n}": v for n, v in state(model).items()})
    save_file(tensors, OUT / "optim-updates.safetensors")
    return {"sizes": [784, 16, 10], "settings": optimizers or OPTIMIZERS}


def layer_fixtures():
    """Forward and backward of every activation, batch norm (training with
    its running statistics, evaluation) and cross-entropy, in float32."""
    g = torch.Generator().manual_seed(2026)
    t = {}
    x = torch.randn(2048, generator=g) * 3
    x[:8] = torch.tensor([0.0, -0.0, 1e-30, -1e-30, 20.0, -20.0, 88.0, -88.0])
    dy = torch.randn(2048, generator=g)
    t["act/x"], t["act/dy"] = x, dy
    acts = {
        "relu": torch.nn.functional.relu,
        "leaky_relu": lambda v: torch.nn.functional.leaky_relu(v, 0.01),
        "tanh": torch.tanh,
        "sigmoid": torch.sigmoid,
        "gelu": torch.nn.functional.gelu,
        "selu": torch.nn.functional.selu,
        "identity": lambda v: v * 1,
    }
    for name, f in acts.items():
        xi = x.clone().requires_grad_(True)
        y = f(xi)
        y.backward(dy)
        t[f"act/{name}/y"], t[f"act/{name}/dx"] = y.detach(), xi.grad
    bn = torch.nn.BatchNorm1d(37)
    with torch.no_grad():
        bn.weight.copy_(torch.rand(37, generator=g) + 0.5)
        bn.bias.copy_(torch.randn(37, generator=g))
    xb = (torch.randn(64, 37, generator=g) * 2 + 0.5).requires_grad_(True)
    dyb = torch.randn(64, 37, generator=g)
    t["bn/x"], t["bn/dy"], t["bn/gamma"], t["bn/beta"] = xb.detach().clone(), dyb, bn.weight.detach().clone(), bn.bias.detach().clone()
    bn.train()
    yb = bn(xb)
    yb.backward(dyb)
    t["bn/train/y"], t["bn/train/dx"] = yb.detach(), xb.grad
    t["bn/train/dgamma"], t["bn/train/dbeta"] = bn.weight.grad, bn.bias.grad
    t["bn/running_mean"], t["bn/running_var"] = bn.running_mean.clone(), bn.running_var.clone()
    bn.eval()
    with torch.no_grad():
        t["bn/eval/y"] = bn(xb.detach())
    logits = (torch.randn(64, 10, generator=g) * 3).requires_grad_(True)
    targets = torch.randint(0, 10, (64,), generator=g)
    loss = torch.nn.functional.cross_entropy(logits, targets)
    loss.backward()
    t["ce/logits"], t["ce/labels"], t["ce/loss"], t["ce/dlogits"] = logits.detach().clone(), targets, loss.detach().reshape(1), logits.grad
    save_file({k: v.numpy().copy() for k, v in t.items()}, OUT / "layers.safetensors")


RESIDUAL = {"width": 64, "blocks": 4, "alpha": 0.5, "seed": 123}
RESIDUAL_SETTINGS = {
    "sgd": {"kind": "sgd", "lr": 0.1},
    "adam": {"kind": "adam", "lr": 1e-3},
}


class Block(torch.nn.Module):
    """x + alpha * fc2(relu(norm2(fc1(relu(norm1(x)))))): initscope's
    pre-activation block with two Linears, LayerNorm and a trainable alpha,
    its modules registered in forward order (so the names and the draws
    follow initscope's)."""

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


def build_residual():
    """manual_seed right before the model, then Kaiming-uniform weights and zero biases, Linear by Linear."""
    torch.manual_seed(RESIDUAL["seed"])
    model = ResidualNet(RESIDUAL["width"], RESIDUAL["blocks"], RESIDUAL["alpha"])
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, torch.nn.Linear):
                torch.nn.init.kaiming_uniform_(m.weight, mode="fan_in", nonlinearity="relu")
                m.bias.zero_()
    return model


def residual_fixtures(data_dir):
    """residual.json and residual.safetensors: LayerNorm's forward and
    backward; the residual network's initial state_dict; per optimiser, 60
    losses on images 0..7679 in order (float32, float64, and float32 with
    layer 1's inputs in four other orders, PyTorch's own spread)."""
    g = torch.Generator().manual_seed(2027)
    t = {}
    ln = torch.nn.LayerNorm(37)
    with torch.no_grad():
        ln.weight.copy_(torch.rand(37, generator=g) + 0.5)
        ln.bias.copy_(torch.randn(37, generator=g))
    x = (torch.randn(64, 37, generator=g) * 2 + 0.5).requires_grad_(True)
    dy = torch.randn(64, 37, generator=g)
    y = ln(x)
    y.backward(dy)
    t["ln/x"], t["ln/dy"], t["ln/gamma"], t["ln/beta"] = x.detach().clone(), dy, ln.weight.detach().clone(), ln.bias.detach().clone()
    t["ln/y"], t["ln/dx"], t["ln/dgamma"], t["ln/dbeta"] = y.detach(), x.grad, ln.weight.grad, ln.bias.grad
    for name, value in build_residual().state_dict().items():
        t[f"init/{name}"] = value.detach().clone()
    images, labels = mnist_train(data_dir)
    images = images.reshape(-1, 784)
    steps = 60
    runs = {}
    for setting, optimizer in RESIDUAL_SETTINGS.items():
        run = {"optimizer": optimizer}
        for dtype, key in [(torch.float32, "f32"), (torch.float64, "f64")]:
            model = build_residual().to(dtype)
            run[key] = residual_losses(model, optimizer, images, labels, dtype, steps)
        for p in range(1, 5):
            order = torch.randperm(784, generator=torch.Generator().manual_seed(p))
            model = build_residual()
            with torch.no_grad():
                model.input.weight.copy_(model.input.weight[:, order])
            run[f"permuted{p}"] = residual_losses(model, optimizer, images[:, order], labels, torch.float32, steps)
        runs[setting] = run
    save_file({k: v.numpy().copy() for k, v in t.items()}, OUT / "residual.safetensors")
    return {
        "torch_version": torch.__version__,
        "cpu_capability": torch.backends.cpu.get_cpu_capability(),
        "network": RESIDUAL,
        "settings": runs,
    }


def residual_losses(model, settings, images, labels, dtype, steps):
    return train_losses(model, torch_optimizer(model.parameters(), settings), images, labels, dtype, steps)


def train_losses(model, optimizer, images, labels, dtype, steps, batch=BATCH):
    """`steps` steps of cross-entropy on images 0.. in order; the losses."""
    losses = []
    for k in range(steps):
        x, y = images[k * batch : (k + 1) * batch].to(dtype), labels[k * batch : (k + 1) * batch]
        loss = torch.nn.functional.cross_entropy(model(x), y)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    return losses


def data_argument_parser(doc):
    """A fixture script's parser: its doc's first line, and `--data`."""
    parser = argparse.ArgumentParser(description=doc.splitlines()[0])
    default_data = os.environ.get("INITSCOPE_DATA_DIR") or Path.home() / ".cache" / "initscope"
    parser.add_argument("--data", type=Path, default=Path(default_data), help="initscope's data directory")
    return parser


def add_optimizers(data_dir, chosen):
    """Adds `chosen` settings to every part of optim.json and to
    optim-updates.safetensors, leaving what is there as it was made."""
    from safetensors.numpy import load_file

    with open(OUT / "optim.json") as f:
        optim = json.load(f)
    optim["losses"]["settings"].update(optimizer_losses(data_dir, chosen, batch_norm=False)["settings"])
    optim["reorder_sensitivity"]["settings"].update(reorder_sensitivity(data_dir, chosen)["settings"])
    before = load_file(OUT / "optim-updates.safetensors")
    optim["updates"]["settings"].update(optimizer_updates(data_dir, chosen, before)["settings"])
    optim.setdefault("added", {}).update(
        {name: {"torch_version": torch.__version__, "cpu_capability": torch.backends.cpu.get_cpu_capability()} for name in chosen}
    )
    with open(OUT / "optim.json", "w") as f:
        json.dump(optim, f, indent=1)
    print(f"added {', '.join(chosen)} to {OUT / 'optim.json'}")


def main():
    parser = data_argument_parser(__doc__)
    parser.add_argument(
        "--reorder-only",
        action="store_true",
        help="only (re)write optim.json's reorder_sensitivity, keeping every other fixture as it was made",
    )
    parser.add_argument(
        "--add-optimizers",
        nargs="+",
        metavar="SETTING",
        help="only add these OPTIMIZERS settings to optim.json and optim-updates.safetensors, keeping the rest",
    )
    parser.add_argument(
        "--residual-only",
        action="store_true",
        help="only (re)write residual.json and residual.safetensors, keeping every other fixture as it was made",
    )
    args = parser.parse_args()
    torch.set_num_threads(1)
    OUT.mkdir(parents=True, exist_ok=True)
    if args.add_optimizers:
        add_optimizers(args.data, {name: OPTIMIZERS[name] for name in args.add_optimizers})
        return
    if args.residual_only:
        with open(OUT / "residual.json", "w") as f:
            json.dump(residual_fixtures(args.data), f, indent=1)
        print(f"wrote {OUT / 'residual.json'}")
        return
    if args.reorder_only:
        with open(OUT / "optim.json") as f:
            optim = json.load(f)
        optim["reorder_sensitivity"] = reorder_sensitivity(args.data)
        with open(OUT / "optim.json", "w") as f:
            json.dump(optim, f, indent=1)
        print(f"wrote {OUT / 'optim.json'}")
        return
    fixtures = {
        "torch_version": torch.__version__,
        "cpu_capability": torch.backends.cpu.get_cpu_capability(),
        "generator": generator_fixture(),
        "small": small_fixtures(),
        "seed_network": seed_network_fixtures(),
        "seed_losses": seed_losses(args.data, 60),
    }
    with open(OUT / "rng.json", "w") as f:
        json.dump(fixtures, f, indent=1)
    optim = {
        "torch_version": torch.__version__,
        "cpu_capability": torch.backends.cpu.get_cpu_capability(),
        "losses": optimizer_losses(args.data),
        "updates": optimizer_updates(args.data),
        "reorder_sensitivity": reorder_sensitivity(args.data),
    }
    with open(OUT / "optim.json", "w") as f:
        json.dump(optim, f, indent=1)
    layer_fixtures()
    print(f"wrote {OUT}")


if __name__ == "__main__":
    main()
