"""What both engines need before training: the split, and batches for iris (full batch, no loader)."""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch.utils.data import random_split

from ..bounds import OVERRIDE_LIMITS
from ..datasets import image_dataset, iris_split, train_size
from ..training import RunOutcome, fresh_model, labels_for, set_determinism, train


@dataclass(frozen=True)
class RunOptions:
    """How a run is carried out, beyond the registry: where data lives and quick-run overrides."""

    data_dir: str | None = None
    mirror: str | None = None
    epochs: int | None = None  # overrides the recipe: the row is not faithful
    train_limit: int | None = None  # first N training samples only: not faithful either
    eval_limit: int | None = None  # evaluate on the first N samples of each split only: not faithful

    @property
    def overrides(self) -> dict:
        named = {key: getattr(self, key) for key in OVERRIDE_LIMITS}  # the options a row's `overrides` may name
        return {k: v for k, v in named.items() if v is not None}

    def epochs_for(self, experiment) -> int:
        return self.epochs or experiment.training["epochs"]


def split_indices(n: int, valid_fraction: float, split_seed: int | None) -> tuple[list[int], list[int]]:
    """`random_split(dataset, (train, valid))` as T1 #10 and T2 call it, on indices.

    With no `split_seed` the split draws from the global RNG (T1 #10), after the model's
    initialisation; with one it uses its own generator (T2's `Generator().manual_seed(42)`).
    """
    if not valid_fraction:
        return list(range(n)), []
    train = train_size(n, valid_fraction)
    generator = torch.Generator().manual_seed(split_seed) if split_seed is not None else torch.default_generator
    train, valid = random_split(range(n), (train, n - train), generator=generator)
    return list(train.indices), list(valid.indices)


class IrisSource:
    """T1's iris recipes train on the whole training split at once: one batch is one epoch."""

    def __init__(self, experiment, seed: int, device: torch.device, options: RunOptions):
        loss = experiment.training["loss"]
        x_train, x_test, y_train, y_test = iris_split(experiment.data["test_fraction"], seed)
        x_train, y_train = x_train[: options.train_limit], y_train[: options.train_limit]
        x_test, y_test = x_test[: options.eval_limit], y_test[: options.eval_limit]
        as_x = lambda a: torch.from_numpy(a).float().to(device)  # noqa: E731
        as_y = lambda a: labels_for(loss, torch.from_numpy(a)).to(device)  # noqa: E731
        self.train = (as_x(x_train), as_y(y_train))
        self.test = (as_x(x_test), as_y(y_test))
        self.n_train = len(x_train)

    def example_batches(self) -> list:
        return [self.train]

    def train_batches(self):
        return [self.train]

    def eval_batches(self, split: str):
        return [self.test] if split == "test" else None


@dataclass
class ImageSplits:
    """The torchvision datasets of an MNIST-style recipe and the indices of its train/valid split."""

    train_full: object
    test: object
    train_idx: list[int]
    valid_idx: list[int]
    n_test: int  # the first n_test samples of `test` are evaluated


def image_datasets(experiment, options: RunOptions) -> tuple:
    """The (verified) training and test datasets of an MNIST-style recipe."""
    data = experiment.data
    return tuple(image_dataset(data["dataset"], train, data["transform"], options.data_dir, options.mirror) for train in (True, False))


def image_splits(experiment, options: RunOptions, datasets: tuple | None = None) -> ImageSplits:
    """Load data (or take `datasets` already loaded) and split it; the split may draw from the global
    RNG, so call it after building the model."""
    data = experiment.data
    train_full, test = datasets or image_datasets(experiment, options)
    train_idx, valid_idx = split_indices(len(train_full), data["valid_fraction"], data["split_seed"])
    # Slicing with None keeps everything: no limit, the whole split.
    train_idx, valid_idx = train_idx[: options.train_limit], valid_idx[: options.eval_limit]
    return ImageSplits(train_full, test, train_idx, valid_idx, len(test) if options.eval_limit is None else min(options.eval_limit, len(test)))


def seeded_start(image_source, experiment, seed: int, device, options: RunOptions):
    """A run's model and data source, drawn from the global RNG in the tutorials' order: seed, build
    the model, then the data (its split may draw from the RNG). Returns (model, source)."""
    set_determinism()
    model = fresh_model(experiment, seed, device)
    if experiment.data["dataset"] == "iris":
        return model, IrisSource(experiment, seed, device, options)
    return model, image_source(experiment, image_splits(experiment, options), device)


def run_each_seed(image_source, experiment, seeds, device, options: RunOptions, on_epoch=None, make_step=None) -> list[RunOutcome]:
    """One run per seed, each trained by `train`; `make_step(model, experiment, source)` may supply the step."""
    outcomes = []
    for seed in seeds:
        model, source = seeded_start(image_source, experiment, seed, device, options)
        step = make_step(model, experiment, source) if make_step else None
        outcomes.append(train(model, source, experiment, options.epochs_for(experiment), device, step=step, on_epoch=on_epoch))
    return outcomes
