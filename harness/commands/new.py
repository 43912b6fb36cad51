"""`harness new`: a recipe and a model module beside it, written where nothing is, that run as they stand."""

from __future__ import annotations

import os
from pathlib import Path

from .. import safe_files
from ..errors import HarnessError
from .arguments import path

HELP = "write a recipe and a model module beside it that run as they stand"


def add_arguments(p) -> None:
    p.add_argument("name", help="the experiment id (and file name)")
    p.add_argument("--experiments-dir", type=path, default=None, help="the registry directory to write into (default experiments/)")


def run(args) -> int:
    from ..schema import ID_PATTERN

    if not ID_PATTERN.fullmatch(args.name) or "@" in args.name:
        raise HarnessError(f"new: {args.name!r} is not a plain name: allowed: 1 to 64 of a-z 0-9 . _ -, starting with a letter or digit")
    directory = Path(args.experiments_dir or "experiments")
    module = args.name.replace("-", "_").replace(".", "_") + "_model"
    recipe, code = directory / f"{args.name}.toml", directory / f"{module}.py"
    for file in (recipe, code):
        if os.path.lexists(file):  # a dangling link too: never written through
            raise HarnessError(f"new: {file} already exists; choose another name or edit it")
    written = []
    try:
        directory.mkdir(parents=True, exist_ok=True)
        for file, text in ((code, NEW_MODEL.format(id=args.name)), (recipe, NEW_RECIPE.format(id=args.name, module=module))):
            if not safe_files.create_new(file, text):  # created exclusively, never through a link planted meanwhile
                raise HarnessError(f"new: {file} already exists; choose another name or edit it")
            written.append(file)
    except OSError as e:
        for file in written:
            file.unlink(missing_ok=True)
        raise HarnessError(f"new: cannot write into {directory} ({e.strerror}); pass another --experiments-dir") from None
    except HarnessError:
        for file in written:
            file.unlink(missing_ok=True)
        raise
    print(f"wrote {recipe} and {code}; try: harness validate {args.name} --experiments-dir {directory}")
    return 0


NEW_RECIPE = """id = "{id}"
title = "{id}: a small MLP on scikit-learn's digits"
source = "written by `harness new`: edit every section to your recipe"
seeds = 5

# A dataset the harness knows by name (iris, digits, wine, breast_cancer, mnist, fashion-mnist), a torchvision
# class ("KMNIST"), or a function of your own beside this file returning the splits ("data:load").
[data]
dataset = "digits"

# Your model: a class (or function returning an nn.Module) in {module}.py, beside this file.
[model]
class_path = "{module}:Model"
init_args = {{ inputs = 64, hidden = 32, classes = 10 }}

[loss]
class_path = "CrossEntropyLoss"

[optimizer]
class_path = "Adam"
init_args = {{ lr = 0.01 }}

# An LR scheduler is optional; "interval" says when it steps ("epoch", after evaluation, or "step").
[scheduler]
class_path = "StepLR"
init_args = {{ step_size = 10, gamma = 0.5 }}
interval = "epoch"

[training]
batch_size = 32
epochs = 20
log_every = 5

# What `make test`'s smoke run (a short run) must reach, and the bar `harness check` holds full runs to.
[smoke]
epochs = 5
metric = "test_acc"
min = 0.80

[thresholds]
test_acc = 0.90
"""

NEW_MODEL = '''"""The model of the recipe {id}.toml: importing this file runs it, as any module does."""

from torch import nn


class Model(nn.Module):
    def __init__(self, inputs: int, hidden: int, classes: int):
        super().__init__()
        self.layers = nn.Sequential(nn.Linear(inputs, hidden), nn.ReLU(), nn.Linear(hidden, classes))

    def forward(self, x):
        return self.layers(x.flatten(1))
'''
