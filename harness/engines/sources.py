"""What both engines need before training: the split, and batches for iris (full batch, no loader)."""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch.utils.data import random_split

from ..datasets import image_dataset, iris_split
from ..training import RunOutcome, fresh_model, labels_for, set_determinism, train


@dataclass(frozen=True)
class RunOptions:
    """How a run is carried out, beyond the registry: where data lives and quick-run overrides."""

    data_dir: str | None = None
    mirror: str | None = None
    epochs: int | None = None  # overrides the recipe: the row is not faithful
    train_limit: int | None = None  # first N training samples only: not faithful either

    @property
    def overrides(self) -> dict:
        return {k: v for k, v in (("epochs", self.epochs), ("train_limit", self.train_limit)) if v is not None}

    def epochs_for(self, experiment) -> int:
        return self.epochs or experiment.training["epochs"]


def split_indices(n: int, valid_fraction: float, split_seed: int | None) -> tuple[list[int], list[int]]:
    """`random_split(dataset, (train, valid))` as T1 #10 and T2 call it, on indices.

    With no `split_seed` the split draws from the global RNG (T1 #10), after the model's
    initialisation; with one it uses its own generator (T2's `Generator().manual_seed(42)`).
    """
    if not valid_fraction:
        return list(range(n)), []
    train_size = int(n * (1 - valid_fraction))
    generator = torch.Generator().manual_seed(split_seed) if split_seed is not None else torch.default_generator
    train, valid = random_split(range(n), (train_size, n - train_size), generator=generator)
    return list(train.indices), list(valid.indices)


class IrisSource:
    """T1's iris recipes train on the whole training split at once: one batch is one epoch."""

    def __init__(self, experiment, seed: int, device: torch.device, options: RunOptions):
        loss = experiment.training["loss"]
        x_train, x_test, y_train, y_test = iris_split(experiment.data["test_fraction"], seed)
        if options.train_limit:
            x_train, y_train = x_train[: options.train_limit], y_train[: options.train_limit]
        as_x = lambda a: torch.from_numpy(a).float().to(device)  # noqa: E731
        as_y = lambda a: labels_for(loss, torch.from_numpy(a)).to(device)  # noqa: E731
        self.train = (as_x(x_train), as_y(y_train))
        self.test = (as_x(x_test), as_y(y_test))
        self.n_train = len(x_train)

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


def image_splits(experiment, options: RunOptions) -> ImageSplits:
    """Load (verified) data and split it; the split may draw from the global RNG, so call it after the model."""
    data = experiment.data
    train_full = image_dataset(data["dataset"], True, data["transform"], options.data_dir, options.mirror)
    test = image_dataset(data["dataset"], False, data["transform"], options.data_dir, options.mirror)
    train_idx, valid_idx = split_indices(len(train_full), data["valid_fraction"], data["split_seed"])
    if options.train_limit:
        train_idx = train_idx[: options.train_limit]
    return ImageSplits(train_full, test, train_idx, valid_idx)


def run_each_seed(image_source, experiment, seeds, device, options: RunOptions, on_epoch=None) -> list[RunOutcome]:
    """One run per seed: seed, build the model, then the data source (its split may use the RNG), train."""
    outcomes = []
    for seed in seeds:
        set_determinism()
        model = fresh_model(experiment, seed, device)
        if experiment.data["dataset"] == "iris":
            source = IrisSource(experiment, seed, device, options)
        else:
            source = image_source(experiment, image_splits(experiment, options), device)
        outcomes.append(train(model, source, experiment, options.epochs_for(experiment), device, on_epoch=on_epoch))
    return outcomes
