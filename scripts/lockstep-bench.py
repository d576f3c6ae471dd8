#!/usr/bin/env python3
"""Points per hour of a group of small networks of one shape: initscope
(runs side by side, and in lockstep) against PyTorch's ways of training an
ensemble on a CPU, in one run on this machine. Not part of the tests.

The group: P tanh MLPs 784-W^D-10 (kaiming_normal, gains evenly from 1.0 to
2.0, zero biases), SGD lr 0.01, batch 128, one epoch of MNIST (the first
80 % for training), then each point's evaluation as initscope does it: the
training images again, the validation images, the test images. Probes off.

PyTorch (from PyPI; `pip install torch numpy`) trains the same group
  - one after the other (each network alone, preloaded tensors);
  - as one model with stacked weights [P, out, in] and `torch.baddbmm`;
  - with `torch.func` (`stack_module_state` + `vmap` of `functional_call`).
The arithmetic floor is the group's FLOP at NumPy's OpenBLAS 2048^3
single-precision peak, measured in the same run with the same threads.

    python3 -m venv /tmp/torchenv && /tmp/torchenv/bin/pip install torch numpy
    cargo build --release && target/release/initscope data fetch mnist
    /tmp/torchenv/bin/python scripts/lockstep-bench.py [--widths 16 64 256]
        [--threads 2] [--baseline OLD_INITSCOPE_BINARY]

`--baseline` times another initscope build on the same sweep (say the one
before a change) for a same-run ratio.
"""

import argparse
import gzip
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def parse_args():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--widths", type=int, nargs="+", default=[16, 64, 256])
    p.add_argument("--depth", type=int, default=20, help="hidden layers")
    p.add_argument("--points", type=int, default=8)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--binary", default=str(ROOT / "target/release/initscope"))
    p.add_argument("--baseline", help="another initscope binary to time on the same sweep")
    p.add_argument("--data", default=os.environ.get("INITSCOPE_DATA_DIR", str(Path.home() / ".cache/initscope")))
    return p.parse_args()


ARGS = parse_args()
for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ[var] = str(ARGS.threads)

import numpy as np  # noqa: E402  (after the thread counts are set)
import torch  # noqa: E402
from torch.func import functional_call, grad, stack_module_state, vmap  # noqa: E402

torch.set_num_threads(ARGS.threads)
BATCH, LR, VALIDATION = 128, 0.01, 0.2


def idx(path):
    with gzip.open(path, "rb") as f:
        raw = f.read()
    dims = raw[3]
    shape = [int.from_bytes(raw[4 + 4 * i : 8 + 4 * i], "big") for i in range(dims)]
    return np.frombuffer(raw, dtype=np.uint8, offset=4 + 4 * dims).reshape(shape)


def mnist():
    d = Path(ARGS.data) / "mnist"
    x = torch.from_numpy(idx(d / "train-images-idx3-ubyte.gz").reshape(-1, 784).astype(np.float32) / 255.0)
    y = torch.from_numpy(idx(d / "train-labels-idx1-ubyte.gz").astype(np.int64))
    tx = torch.from_numpy(idx(d / "t10k-images-idx3-ubyte.gz").reshape(-1, 784).astype(np.float32) / 255.0)
    ty = torch.from_numpy(idx(d / "t10k-labels-idx1-ubyte.gz").astype(np.int64))
    n_train = len(x) - int(len(x) * VALIDATION)
    return (x[:n_train], y[:n_train]), (x[n_train:], y[n_train:]), (tx, ty)


def gains():
    p = ARGS.points
    return [1.0 + i / (p - 1) for i in range(p)] if p > 1 else [1.0]


def sizes(width):
    return [784] + [width] * ARGS.depth + [10]


def group_flop(width, data):
    """Multiply-adds x 2 of the training (forward and two backward
    products) and of the evaluation passes, over the group."""
    (x, _), (vx, _), (tx, _) = data
    weights = sum(a * b for a, b in zip(sizes(width)[:-1], sizes(width)[1:]))
    trained = (len(x) // BATCH) * BATCH
    evaluated = trained + len(vx) + len(tx)
    return ARGS.points * weights * 2 * (3 * trained + evaluated)


def blas_peak():
    a = np.random.default_rng(0).standard_normal((2048, 2048)).astype(np.float32)
    np.matmul(a, a)
    best = float("inf")
    for _ in range(5):
        t = time.perf_counter()
        np.matmul(a, a)
        best = min(best, time.perf_counter() - t)
    return 2 * 2048**3 / best


def init_layers(width, gain, generator):
    layers = []
    for fan_in, fan_out in zip(sizes(width)[:-1], sizes(width)[1:]):
        w = torch.randn(fan_out, fan_in, generator=generator) * (gain / fan_in**0.5)
        layers.append((w, torch.zeros(fan_out)))
    return layers


def sequential_model(width, gain, generator):
    mods = []
    for (w, b) in init_layers(width, gain, generator):
        lin = torch.nn.Linear(w.shape[1], w.shape[0])
        with torch.no_grad():
            lin.weight.copy_(w)
            lin.bias.copy_(b)
        mods += [lin, torch.nn.Tanh()]
    return torch.nn.Sequential(*mods[:-1])


def batches(x, seed):
    order = torch.randperm(len(x), generator=torch.Generator().manual_seed(seed))
    return [order[i : i + BATCH] for i in range(0, len(x) - BATCH + 1, BATCH)]


def evaluate(predict, data):
    (x, y), (vx, vy), (tx, ty) = data
    out = []
    with torch.no_grad():
        for ex, ey in ((x, y), (vx, vy), (tx, ty)):
            correct = 0
            for i in range(0, len(ex), 1000):
                correct += predict(ex[i : i + 1000]).argmax(-1).eq(ey[i : i + 1000]).sum(-1)
            out.append(correct)
    return out


def torch_sequential(width, data):
    (x, y) = data[0]
    g = torch.Generator().manual_seed(1)
    for gain in gains():
        model = sequential_model(width, gain, g)
        opt = torch.optim.SGD(model.parameters(), lr=LR)
        for idx_ in batches(x, 1):
            opt.zero_grad()
            torch.nn.functional.cross_entropy(model(x[idx_]), y[idx_]).backward()
            opt.step()
        evaluate(model, data)


def torch_bmm(width, data):
    (x, y) = data[0]
    g = torch.Generator().manual_seed(1)
    per_point = [init_layers(width, gain, g) for gain in gains()]
    ws = [torch.stack([p[l][0] for p in per_point]).transpose(1, 2).contiguous().requires_grad_() for l in range(len(per_point[0]))]
    bs = [torch.stack([p[l][1] for p in per_point]).unsqueeze(1).contiguous().requires_grad_() for l in range(len(per_point[0]))]
    params = ws + bs
    opt = torch.optim.SGD(params, lr=LR)
    P = ARGS.points

    def forward(inp):  # inp [P, batch, 784] or [batch, 784]
        h = inp if inp.dim() == 3 else inp.unsqueeze(0).expand(P, -1, -1)
        for l, (w, b) in enumerate(zip(ws, bs)):
            h = torch.baddbmm(b, h, w)
            if l < len(ws) - 1:
                h = torch.tanh(h)
        return h

    for idx_ in batches(x, 1):
        opt.zero_grad()
        logits = forward(x[idx_])
        # The sum of the members' mean losses: each member's gradient is its own.
        torch.nn.functional.cross_entropy(logits.reshape(-1, 10), y[idx_].repeat(P), reduction="sum").div(len(idx_)).backward()
        opt.step()
    evaluate(forward, data)


def torch_vmap(width, data):
    (x, y) = data[0]
    g = torch.Generator().manual_seed(1)
    models = [sequential_model(width, gain, g) for gain in gains()]
    params, buffers = stack_module_state(models)
    base = sequential_model(width, 1.0, g).to("meta")

    def loss(p, b, inp, target):
        return torch.nn.functional.cross_entropy(functional_call(base, (p, b), (inp,)), target)

    step = vmap(grad(loss), in_dims=(0, 0, None, None))
    for idx_ in batches(x, 1):
        grads = step(params, buffers, x[idx_], y[idx_])
        with torch.no_grad():
            for k in params:
                params[k] -= LR * grads[k]
    predict = vmap(lambda p, b, inp: functional_call(base, (p, b), (inp,)), in_dims=(0, 0, None))
    evaluate(lambda inp: predict(params, buffers, inp), data)


def sweep_file(width, directory):
    text = f"""name = "lockstep-bench-w{width}"
dataset = "mnist"
seed = 1
epochs = 1
batch_size = {BATCH}
validation_fraction = {VALIDATION}
log_every = 0
[model]
width = {width}
depth = {ARGS.depth}
activation = "tanh"
[optimizer]
lr = {LR}
[probe]
every = 0
histogram_every = 0
[[variants]]
name = "tanh"
weight_init = {{ scheme = "kaiming_normal", mode = "fan_in", gain = 1.0 }}
bias_init = {{ scheme = "constant", value = 0.0 }}
[sweep]
"variants.0.weight_init.gain" = [{", ".join(f"{g:.4f}" for g in gains())}]
"""
    path = Path(directory) / f"w{width}.toml"
    path.write_text(text)
    return path


def initscope_sweep(binary, width, extra):
    with tempfile.TemporaryDirectory() as tmp:
        args = [binary, "sweep", str(sweep_file(width, tmp)), "--quiet", "--threads", str(ARGS.threads)]
        args += ["--out", str(Path(tmp) / "out"), "--data-dir", ARGS.data] + extra
        subprocess.run(args, check=True, stdout=subprocess.DEVNULL)


def timed(f):
    t = time.perf_counter()
    f()
    return time.perf_counter() - t


def main():
    data = mnist()
    peak = blas_peak()
    print(f"OpenBLAS (NumPy) 2048^3 peak on {ARGS.threads} threads: {peak / 1e9:.1f} GFLOP/s; "
          f"PyTorch {torch.__version__}; {ARGS.points} points of tanh 784-W^{ARGS.depth}-10, one epoch")
    ways = []
    if ARGS.baseline:
        ways.append(("initscope baseline build", lambda w: initscope_sweep(ARGS.baseline, w, [])))
    ways += [
        ("initscope sweep (alone)", lambda w: initscope_sweep(ARGS.binary, w, [])),
        ("initscope sweep --lockstep", lambda w: initscope_sweep(ARGS.binary, w, ["--lockstep"])),
        ("PyTorch one after the other", lambda w: torch_sequential(w, data)),
        ("PyTorch stacked bmm", lambda w: torch_bmm(w, data)),
        ("PyTorch torch.func vmap", lambda w: torch_vmap(w, data)),
    ]
    print(f"{'':32}" + "".join(f"{'width ' + str(w):>22}" for w in ARGS.widths))
    floors = [group_flop(w, data) / peak for w in ARGS.widths]
    print(f"{'arithmetic floor':32}" + "".join(f"{f:8.1f} s {3600 * ARGS.points / f:9.0f}/h" for f in floors))
    for name, run in ways:
        cells = []
        for w, floor in zip(ARGS.widths, floors):
            s = timed(lambda: run(w))
            cells.append(f"{s:8.1f} s {3600 * ARGS.points / s:7.0f}/h {floor / s:4.2f}")
        print(f"{name:32}" + "".join(cells), flush=True)
    print("each cell: wall time, points per hour, fraction of the floor")


if __name__ == "__main__":
    sys.exit(main())
