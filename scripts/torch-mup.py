#!/usr/bin/env python3
"""Writes tests/fixtures/torch/mup.json: what Microsoft's `mup` package
(1.0.0) does to the MLP 784-w-w-10 (ReLU, `MuReadout`, `set_base_shapes`
from base width BASE), for initscope's `parametrisation = { name = "mup" }`
to be held to.

- `init`: at each of WIDTHS, the md5 of every state_dict tensor after
  `torch.manual_seed(SEED)`, the model's construction (PyTorch's default
  Linear init) and `set_base_shapes` (which rescales the readout and the
  hidden biases), and its first values.
- `training`: for MuSGD, MuAdam and MuAdamW at each width, TRAIN_STEPS
  steps on MNIST images 0.. in order at batch BATCH: the losses in float32
  and float64, and in float32 with every layer's units in nine other orders
  (`reversed`, `permuted1`..`permuted8`, the same function with every sum
  in another order): PyTorch's own spread, the yardstick of the test.
- `coord`: `mup.coord_check.get_coord_data` itself, for the standard
  parametrisation (plain Linear readout, torch.optim) and for muP, under
  SGD and Adam: widths COORD_WIDTHS, COORD_SEEDS seeds (seed i is
  `torch.manual_seed(i)` right before the model), COORD_STEPS steps on one
  fixed batch of the first COORD_BATCH training images; each row the mean
  |x| (`l1`) of one module's output at one step, with the seed it came from.

To remake it (MNIST fetched by `initscope data fetch mnist`):

    python3 -m venv /tmp/torchenv
    /tmp/torchenv/bin/pip install torch numpy safetensors mup==1.0.0 pandas
    /tmp/torchenv/bin/python scripts/torch-mup.py [--data DIR]
"""

import importlib.util
import json
import warnings
from pathlib import Path

import mup
import torch
from mup import MuAdam, MuAdamW, MuReadout, MuSGD, get_shapes, set_base_shapes
from mup.coord_check import get_coord_data

OUT = Path(__file__).resolve().parent.parent / "tests" / "fixtures" / "torch" / "mup.json"
BASE = 64
WIDTHS = [128, 256]
SEED = 7
TRAIN_STEPS = 60
BATCH = 64
RECIPES = {
    "musgd": {"kind": "sgd", "lr": 0.1, "momentum": 0.9, "weight_decay": 1e-4},
    "muadam": {"kind": "adam", "lr": 1e-3},
    "muadamw": {"kind": "adamw", "lr": 1e-3, "weight_decay": 0.1},
}
COORD_WIDTHS = [128, 256, 512, 1024, 2048]
COORD_SEEDS = 3
COORD_STEPS = 3
COORD_BATCH = 64
COORD_RUNS = {"sgd": 0.1, "adam": 0.01}


def load(name):
    path = Path(__file__).resolve().parent / name
    spec = importlib.util.spec_from_file_location(name.replace("-", "_")[:-3], path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def mlp(width, readout=MuReadout):
    """784-w-w-10 as initscope names it (my_network.<i>, 0 its Flatten)."""
    model = torch.nn.Module()
    model.my_network = torch.nn.Sequential(
        torch.nn.Flatten(),
        torch.nn.Linear(784, width),
        torch.nn.ReLU(),
        torch.nn.Linear(width, width),
        torch.nn.ReLU(),
        readout(width, 10),
    )
    model.forward = lambda x: model.my_network(x)
    return model


BASE_SHAPES = None


def mu_model(width):
    """The muP model, drawing from the generator as it stands."""
    model = mlp(width)
    set_base_shapes(model, BASE_SHAPES)
    return model


def sp_model(width):
    return mlp(width, readout=torch.nn.Linear)


def optimizer(params, settings):
    kind = settings["kind"]
    make = {"sgd": MuSGD, "adam": MuAdam, "adamw": MuAdamW}[kind]
    extra = {"momentum": settings["momentum"]} if "momentum" in settings else {}
    return make(params, lr=settings["lr"], weight_decay=settings.get("weight_decay", 0.0), **extra)


def train(fx, model, settings, images, labels, dtype):
    model = model.to(dtype)
    return fx.train_losses(model, optimizer(model.parameters(), settings), images, labels, dtype, TRAIN_STEPS, BATCH)


def seeded(width):
    torch.manual_seed(SEED)
    return mu_model(width)


def init_fixture(fx):
    out = {}
    for width in WIDTHS:
        tensors = fx.state(seeded(width))
        out[str(width)] = {k: {"md5": fx.digest(v), "first": v.reshape(-1)[:4].tolist()} for k, v in tensors.items()}
    return out


def training_fixture(fx, recipes_module, images, labels):
    out = {}
    orders = {f"permuted{seed}": seed for seed in range(1, 9)}
    orders["reversed"] = 0
    for width in WIDTHS:
        for name, settings in RECIPES.items():
            runs = {"optimizer": settings, "width": width}
            runs["f32"] = train(fx, seeded(width), settings, images, labels, torch.float32)
            runs["f64"] = train(fx, seeded(width), settings, images, labels, torch.float64)
            for key, seed in orders.items():
                model, permuted = recipes_module.permute_every_layer(fx, seeded(width), images, seed)
                runs[key] = train(fx, model, settings, permuted, labels, torch.float32)
            out[f"{name}_w{width}"] = runs
            print(f"{name} width {width}: final loss {runs['f32'][-1]:.4f}")
    return out


def coord_fixture(images, labels):
    batch = [(images[:COORD_BATCH].reshape(COORD_BATCH, 1, 28, 28), labels[:COORD_BATCH])]
    out = []
    for parametrisation, build in (("standard", sp_model), ("mup", mu_model)):
        for opt, lr in COORD_RUNS.items():
            rows = []
            for width in COORD_WIDTHS:
                df = get_coord_data(
                    {width: (lambda w=width: build(w))},
                    batch,
                    optimizer=opt,
                    lr=lr,
                    mup=parametrisation == "mup",
                    nseeds=COORD_SEEDS,
                    nsteps=COORD_STEPS,
                    flatten_input=True,
                    fix_data=True,
                    cuda=False,
                    show_progress=False,
                )
                per_seed = len(df) // COORD_SEEDS
                for i, row in enumerate(df.itertuples()):
                    if row.module.startswith("my_network."):
                        rows.append({"width": width, "module": row.module, "t": row.t, "seed": i // per_seed, "l1": row.l1})
            out.append({"parametrisation": parametrisation, "optimizer": opt, "lr": lr, "rows": rows})
            print(f"coord check {parametrisation} {opt}: {len(rows)} rows")
    return out


def main():
    global BASE_SHAPES
    fx, recipes_module = load("torch-fixtures.py"), load("torch-recipes.py")
    args = fx.data_argument_parser(__doc__).parse_args()
    warnings.simplefilter("ignore")
    torch.set_num_threads(1)
    BASE_SHAPES = get_shapes(mlp(BASE))
    images, labels = fx.mnist_train(args.data)
    out = {
        "torch_version": torch.__version__,
        "mup_version": getattr(mup, "__version__", "1.0.0"),
        "cpu_capability": torch.backends.cpu.get_cpu_capability(),
        "base_width": BASE,
        "seed": SEED,
        "steps": TRAIN_STEPS,
        "batch": BATCH,
        "init": init_fixture(fx),
        "training": training_fixture(fx, recipes_module, images, labels),
        "coord": {"steps": COORD_STEPS, "seeds": COORD_SEEDS, "batch": COORD_BATCH, "runs": coord_fixture(images, labels)},
    }
    with open(OUT, "w") as f:
        json.dump(out, f, indent=1)
    print(f"wrote {OUT}")


if __name__ == "__main__":
    main()
