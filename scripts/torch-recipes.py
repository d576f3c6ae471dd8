#!/usr/bin/env python3
"""Writes tests/fixtures/torch/recipes.json: PyTorch's learning-rate schedules.

For every schedule below (written as initscope's `[schedule]` table, with
the optimiser it drives), the value PyTorch keeps in
`optimizer.param_groups[0]["lr"]` (and the momentum, or Adam's beta1) before
each optimiser step, over STEPS steps of a toy model, `scheduler.step()`
after each. The tests read the file without PyTorch. To remake it:

    python3 -m venv /tmp/torchenv
    /tmp/torchenv/bin/pip install torch numpy safetensors
    /tmp/torchenv/bin/python scripts/torch-recipes.py
"""

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


def main():
    warnings.simplefilter("ignore")
    torch.set_num_threads(1)
    out = {
        "torch_version": torch.__version__,
        "steps": STEPS,
        "schedules": {name: schedule_fixture(*pair) for name, pair in SCHEDULES.items()},
    }
    with open(OUT, "w") as f:
        json.dump(out, f, indent=1)
    print(f"wrote {OUT}")


if __name__ == "__main__":
    main()
