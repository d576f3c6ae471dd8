#!/usr/bin/env python3
"""Writes tests/fixtures/torch/recipes.json: PyTorch's training recipes.

- `schedules`: for every schedule below (written as initscope's
  `[schedule]` table, with the optimiser it drives), the value PyTorch keeps
  in `optimizer.param_groups[0]["lr"]` (and the momentum, or Adam's beta1)
  before each optimiser step, over STEPS steps of a toy model,
  `scheduler.step()` after each.
- `training`: for every recipe below (a schedule, gradient clipping, a
  loss), the seed network (Kaiming, seed 123, PyTorch's draws) trained
  TRAIN_STEPS steps on MNIST images 0.. in order at batch 128: the losses in
  float32 (`f32`) and float64 (`f64`), and the float32 run made again with
  the inputs and every hidden layer's units reversed and in eight random
  orders (`reversed`, `permuted1`..`permuted8`; the same function, every
  sum in another order): PyTorch's own sensitivity to a summation order,
  the yardstick of `tests/optim_torch/recipes.rs`. With clipping, `grad_norm`
  and `clipped` per step of the float32 run.

The tests read the file without PyTorch. To remake it (MNIST fetched by
`initscope data fetch mnist`):

    python3 -m venv /tmp/torchenv
    /tmp/torchenv/bin/pip install torch numpy safetensors
    /tmp/torchenv/bin/python scripts/torch-recipes.py [--data DIR]
"""

import importlib.util
import json
import warnings
from pathlib import Path

import torch
from torch.optim import lr_scheduler as sched

OUT = Path(__file__).resolve().parent.parent / "tests" / "fixtures" / "torch" / "recipes.json"
STEPS = 400

# name: (optimizer settings, [schedule] table)
SCHEDULES = {
    "constant": ({"kind": "sgd", "lr": 0.1}, {"kind": "constant"}),
    "step": ({"kind": "sgd", "lr": 0.1}, {"kind": "step", "step_size": 30, "gamma": 0.5}),
    "multi_step": ({"kind": "sgd", "lr": 0.3}, {"kind": "multi_step", "milestones": [50, 120, 121, 300], "gamma": 0.3}),
    "exponential": ({"kind": "adam", "lr": 1e-3}, {"kind": "exponential", "gamma": 0.99}),
    "cosine": ({"kind": "sgd", "lr": 0.1}, {"kind": "cosine", "t_max": 100, "eta_min": 0.001}),
    "cosine_zero_floor": ({"kind": "sgd", "lr": 0.05}, {"kind": "cosine", "t_max": 400}),
    "linear": ({"kind": "sgd", "lr": 0.1}, {"kind": "linear", "start_factor": 0.001, "end_factor": 1.0, "total_iters": 250}),
    "linear_down": ({"kind": "adamw", "lr": 3e-4}, {"kind": "linear", "start_factor": 1.0, "end_factor": 0.0, "total_iters": 390}),
    "warmup_cosine": (
        {"kind": "sgd", "lr": 0.1, "momentum": 0.9},
        {"kind": "cosine", "t_max": 300, "eta_min": 1e-4, "warmup_steps": 100, "warmup_start_factor": 0.01},
    ),
    "warmup_constant": ({"kind": "adam", "lr": 1e-3}, {"kind": "constant", "warmup_steps": 37}),
    "warmup_step": ({"kind": "sgd", "lr": 0.2}, {"kind": "step", "step_size": 50, "gamma": 0.5, "warmup_steps": 60}),
    "sequence": (
        {"kind": "sgd", "lr": 0.1},
        {
            "kind": "sequence",
            "milestones": [20, 200],
            "schedules": [
                {"kind": "linear", "start_factor": 0.1, "total_iters": 20},
                {"kind": "exponential", "gamma": 0.995},
                {"kind": "cosine", "t_max": 150, "eta_min": 0.0005},
            ],
        },
    ),
    "one_cycle": ({"kind": "sgd", "lr": 0.1, "momentum": 0.9}, {"kind": "one_cycle", "max_lr": 0.5}),
    "one_cycle_adam_linear": (
        {"kind": "adam", "lr": 1e-3},
        {"kind": "one_cycle", "max_lr": 3e-3, "anneal_strategy": "linear", "pct_start": 0.25, "div_factor": 10.0},
    ),
    "one_cycle_three_phase": (
        {"kind": "sgd", "lr": 0.1},
        {"kind": "one_cycle", "max_lr": 0.4, "three_phase": True, "cycle_momentum": False, "total_steps": 450},
    ),
}


def optimizer(params, settings):
    kind, lr = settings["kind"], settings["lr"]
    if kind == "sgd":
        return torch.optim.SGD(params, lr=lr, momentum=settings.get("momentum", 0.0))
    return {"adam": torch.optim.Adam, "adamw": torch.optim.AdamW}[kind](params, lr=lr)


def scheduler(opt, table, steps):
    kind = table["kind"]
    args = {k: v for k, v in table.items() if k not in ("kind", "warmup_steps", "warmup_start_factor", "interval")}
    if kind == "constant":
        return sched.LambdaLR(opt, lambda _: 1)
    if kind == "step":
        return sched.StepLR(opt, **args)
    if kind == "multi_step":
        return sched.MultiStepLR(opt, **args)
    if kind == "exponential":
        return sched.ExponentialLR(opt, **args)
    if kind == "cosine":
        return sched.CosineAnnealingLR(opt, T_max=args["t_max"], eta_min=args.get("eta_min", 0.0))
    if kind == "linear":
        return sched.LinearLR(opt, **args)
    if kind == "one_cycle":
        args.setdefault("total_steps", steps)
        return sched.OneCycleLR(opt, **args)
    if kind == "sequence":
        parts = [scheduler(opt, s, steps) for s in table["schedules"]]
        return sched.SequentialLR(opt, parts, milestones=table["milestones"])
    raise ValueError(kind)


def build(opt, table, steps):
    """The table's scheduler; with `warmup_steps`, behind a LinearLR warm-up."""
    warmup = table.get("warmup_steps", 0)
    if not warmup:
        return scheduler(opt, table, steps)
    first = sched.LinearLR(opt, start_factor=table.get("warmup_start_factor", 0.01), end_factor=1.0, total_iters=warmup)
    return sched.SequentialLR(opt, [first, scheduler(opt, table, steps)], milestones=[warmup])


def schedule_fixture(settings, table):
    model = torch.nn.Linear(3, 2)
    opt = optimizer(model.parameters(), settings)
    s = build(opt, table, STEPS)
    lrs, momenta = [], []
    for _ in range(STEPS):
        group = opt.param_groups[0]
        lrs.append(group["lr"])
        momenta.append(group["betas"][0] if "betas" in group else group["momentum"])
        model(torch.ones(1, 3)).sum().backward()
        opt.step()
        opt.zero_grad()
        s.step()
    return {"optimizer": settings, "schedule": {**table, "interval": "step"}, "lr": lrs, "momentum": momenta}


TRAIN_STEPS = 60
BATCH = 128

# name: (optimizer, schedule table or None, clip table or None, loss table or None)
RECIPES = {
    "clip_norm": ({"kind": "sgd", "lr": 0.1}, None, {"max_norm": 0.5}, None),
    "clip_value": ({"kind": "sgd", "lr": 0.1, "momentum": 0.9}, None, {"max_value": 0.01}, None),
    "label_smoothing": ({"kind": "sgd", "lr": 0.1}, None, None, {"kind": "cross_entropy", "label_smoothing": 0.1}),
    "mse_one_hot": ({"kind": "sgd", "lr": 0.1}, None, None, {"kind": "mse", "target": "one_hot"}),
    "mse_centered_adam": ({"kind": "adam", "lr": 1e-3}, None, None, {"kind": "mse", "target": "centered"}),
    "warmup_cosine": (
        {"kind": "sgd", "lr": 0.05, "momentum": 0.9},
        {"kind": "cosine", "t_max": 40, "eta_min": 0.001, "warmup_steps": 20, "warmup_start_factor": 0.05},
        {"max_norm": 1.0},
        None,
    ),
    "one_cycle_adam": ({"kind": "adam", "lr": 1e-3}, {"kind": "one_cycle", "max_lr": 3e-3}, None, None),
}


def load_fixtures_module():
    path = Path(__file__).resolve().parent / "torch-fixtures.py"
    spec = importlib.util.spec_from_file_location("torch_fixtures", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def loss_of(table):
    if table is None or (table["kind"] == "cross_entropy" and not table.get("label_smoothing")):
        return torch.nn.functional.cross_entropy
    if table["kind"] == "cross_entropy":
        return lambda out, y: torch.nn.functional.cross_entropy(out, y, label_smoothing=table["label_smoothing"])

    def mse(out, y):
        target = out.new_zeros(out.size(0), out.size(1))
        target.scatter_(1, y.unsqueeze(-1), 1)
        if table.get("target") == "centered":
            target -= 1 / out.size(1)
        return torch.nn.functional.mse_loss(out, target)

    return mse


def train_recipe(fx, model, recipe, images, labels, dtype):
    """TRAIN_STEPS steps of the recipe; the losses, pre-clip norms and whether clipping fired."""
    settings, schedule, clip, loss_table = recipe
    model = model.to(dtype)
    opt = fx.torch_optimizer(model.parameters(), settings)
    sched = build(opt, {**schedule, "interval": "step"}, TRAIN_STEPS) if schedule else None
    loss_fn = loss_of(loss_table)
    losses, norms, clipped = [], [], []
    for k in range(TRAIN_STEPS):
        x, y = images[k * BATCH : (k + 1) * BATCH].to(dtype), labels[k * BATCH : (k + 1) * BATCH]
        loss = loss_fn(model(x), y)
        opt.zero_grad()
        loss.backward()
        if clip and "max_norm" in clip:
            norm = torch.nn.utils.clip_grad_norm_(model.parameters(), clip["max_norm"])
            norms.append(norm.item())
            clipped.append(bool(norm.item() + 1e-6 > clip["max_norm"]))
        elif clip:
            grads = [p.grad for p in model.parameters()]
            norms.append(torch.linalg.vector_norm(torch.stack([torch.linalg.vector_norm(g) for g in grads])).item())
            clipped.append(any(bool((g.abs() > clip["max_value"]).any()) for g in grads))
            torch.nn.utils.clip_grad_value_(model.parameters(), clip["max_value"])
        opt.step()
        if sched:
            sched.step()
        losses.append(loss.item())
    return losses, norms, clipped


def permute_every_layer(fx, model, images, seed):
    """The same function with every sum in another order: layer 1's inputs
    (the pixels) and each hidden layer's units permuted (a Linear's rows and
    bias, the next Linear's columns), from `manual_seed(seed)`; `seed` 0
    reverses them all."""
    g = torch.Generator().manual_seed(seed)
    linears = [m for m in model.my_network if isinstance(m, torch.nn.Linear)]
    order = lambda n: torch.arange(n - 1, -1, -1) if seed == 0 else torch.randperm(n, generator=g)
    pixels = order(784)
    with torch.no_grad():
        linears[0].weight.copy_(linears[0].weight[:, pixels])
        for layer, after in zip(linears, linears[1:]):
            units = order(layer.out_features)
            layer.weight.copy_(layer.weight[units])
            layer.bias.copy_(layer.bias[units])
            after.weight.copy_(after.weight[:, units])
    return model, images.reshape(len(images), -1)[:, pixels]


def training_fixtures(data_dir):
    fx = load_fixtures_module()
    images, labels = fx.mnist_train(data_dir)
    weight, bias = fx.SMALL_VARIANTS["kaiming"]
    fresh = lambda: fx.build(fx.SEED_SIZES, weight, bias, 123)
    orders = {f"permuted{seed}": seed for seed in range(1, 9)}
    orders["reversed"] = 0
    out = {"steps": TRAIN_STEPS, "batch": BATCH, "recipes": {}}
    for name, recipe in RECIPES.items():
        settings, schedule, clip, loss_table = recipe
        runs = {"optimizer": settings, "schedule": schedule, "clip": clip, "loss": loss_table}
        runs["f32"], runs["grad_norm"], runs["clipped"] = train_recipe(fx, fresh(), recipe, images, labels, torch.float32)
        runs["f64"], _, _ = train_recipe(fx, fresh(), recipe, images, labels, torch.float64)
        for key, seed in orders.items():
            model, permuted = permute_every_layer(fx, fresh(), images, seed)
            runs[key], _, _ = train_recipe(fx, model, recipe, permuted, labels, torch.float32)
        out["recipes"][name] = runs
        print(f"{name}: final loss {runs['f32'][-1]:.4f}")
    return out


def main():
    args = load_fixtures_module().data_argument_parser(__doc__).parse_args()
    warnings.simplefilter("ignore")
    torch.set_num_threads(1)
    out = {
        "torch_version": torch.__version__,
        "cpu_capability": torch.backends.cpu.get_cpu_capability(),
        "steps": STEPS,
        "schedules": {name: schedule_fixture(*pair) for name, pair in SCHEDULES.items()},
        "training": training_fixtures(args.data),
    }
    with open(OUT, "w") as f:
        json.dump(out, f, indent=1)
    print(f"wrote {OUT}")


if __name__ == "__main__":
    main()
