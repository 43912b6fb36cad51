"""What every engine needs before training: the recipe's datasets and their train/valid/test split."""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch.utils.data import random_split

from ..datasets import Datasets, FreshBatches, fresh_batch, load_datasets
from ..errors import RegistryError
from ..named_datasets import train_share
from ..models import build_model
from ..options import RunOptions
from ..training import RunOutcome, fresh_model, nudge_one_weight, set_determinism, train


def split_indices(n: int, valid_fraction: float, split_seed: int | None, generator: torch.Generator | None = None
                  ) -> tuple[list[int], list[int]]:
    """`random_split(dataset, (train, valid))` as T1 #10 and T2 call it, on indices.

    With no `split_seed` the split draws from `generator`, by default the global RNG (T1 #10), after the
    model's initialisation; with one it uses its own generator (T2's `Generator().manual_seed(42)`).
    """
    if not valid_fraction:
        return list(range(n)), []
    train = train_share(n, valid_fraction)
    if split_seed is not None:
        generator = torch.Generator().manual_seed(split_seed)
    generator = generator or torch.default_generator
    train, valid = random_split(range(n), (train, n - train), generator=generator)
    return list(train.indices), list(valid.indices)


@dataclass
class Splits:
    """A run's data: each split a dataset and the indices of it that the run uses, in order."""

    datasets: Datasets
    train_idx: list[int]
    valid_idx: list[int]  # into datasets.valid if given, else into datasets.train (a held-out share)
    test_idx: list[int]

    @property
    def fresh(self) -> FreshBatches | None:
        """The function drawing each training batch, where the training split is drawn batch by batch."""
        return self.datasets.train if isinstance(self.datasets.train, FreshBatches) else None

    @property
    def valid_set(self):
        return self.datasets.valid if self.datasets.valid is not None else self.datasets.train

    def split(self, name: str):
        """(dataset, indices) of split `name`, or None where the recipe has no such split."""
        data = self.datasets
        found = {"train": (data.train, self.train_idx), "valid": (self.valid_set, self.valid_idx) if self.valid_idx else None,
                 "test": (data.test, self.test_idx) if data.test is not None and self.test_idx else None}
        return found[name]


def load_splits(experiment, seed: int, options: RunOptions, datasets: Datasets | None = None,
                generator: torch.Generator | None = None) -> Splits:
    """The seed's datasets (or `datasets` already loaded) split as the recipe says, less the quick-run
    limits. The split may draw from the global RNG (or `generator`): call it after building the model."""
    data = experiment.data
    datasets = datasets or load_datasets(experiment, seed, options.data_dir, options.mirror)
    drawn = isinstance(datasets.train, FreshBatches)
    if drawn != (experiment.training["batches_per_epoch"] is not None):
        raise RegistryError(f"{experiment.path}: 'training.batches_per_epoch' " + (
            "is missing: the dataset's training split is a function drawing fresh batches; say how many make an epoch"
            if drawn else "applies to a training split drawn batch by batch (a function in the dataset's 'train')"))
    if drawn:
        if data["valid_fraction"] or experiment.training["batch_size"] is not None or options.train_limit is not None:
            raise RegistryError(f"{experiment.path}: a training split drawn batch by batch has no samples to hold out, batch or "
                                "limit: remove 'data.valid_fraction' and 'training.batch_size' (and --train-limit); its function "
                                "draws each batch whole")
        test_idx = list(range(len(datasets.test))) if datasets.test is not None else []
        valid_idx = list(range(len(datasets.valid))) if datasets.valid is not None else []
        return Splits(datasets, [], valid_idx[: options.eval_limit], test_idx[: options.eval_limit])
    if datasets.valid is not None:
        train_idx, valid_idx = list(range(len(datasets.train))), list(range(len(datasets.valid)))
    else:
        train_idx, valid_idx = split_indices(len(datasets.train), data["valid_fraction"], data["split_seed"], generator)
    test_idx = list(range(len(datasets.test))) if datasets.test is not None else []
    # Slicing with None keeps everything: no limit, the whole split.
    return Splits(datasets, train_idx[: options.train_limit], valid_idx[: options.eval_limit], test_idx[: options.eval_limit])


def drawn_batches(experiment, fresh: FreshBatches):
    """An epoch of a training split drawn batch by batch: `fresh.per_epoch` calls of its function, each a fresh batch."""
    for _ in range(fresh.per_epoch):
        yield fresh_batch(experiment, fresh)


def batch_sizes_of(experiment) -> tuple[int | None, int | None]:
    """The training and evaluation batch sizes; None: the whole split at once, with no DataLoader."""
    batch = experiment.training["batch_size"]
    return batch, experiment.data["eval_batch_size"] or batch


def seeded_model_and_splits(experiment, seed: int, device, options: RunOptions, datasets: Datasets | None = None):
    """A run's model and data, built in one fixed order: seed, model, split; then what the loaders draw
    from. Returns (model, splits, order): `order` is the loaders' own generator, or None where they draw
    from the global RNG.

    Under the tutorials' scheme one `torch.manual_seed(seed)` drives everything in their order (the split
    may draw from the global RNG after the model's initialisation). With per-source seeds each source has
    a stream of its own: the model is built after seeding with the `init` seed (then nudged by one ulp
    where a `bit` seed is given), the split drawn from a generator of the `split` seed (a table's split
    takes it as its random_state), the loaders handed a generator of the `order` seed, and the global
    RNG reseeded with the `dropout` seed, so that only the draws made while training come from it.
    """
    set_determinism(options.vary != "kernels")
    seeds = options.seeds_of(seed)
    if seeds is None:
        if experiment.data["before_model"]:  # the script draws its data first: seed, data, model
            torch.manual_seed(seed)
            splits = load_splits(experiment, seed, options, datasets)
            return build_model(experiment).to(device), splits, None
        model = fresh_model(experiment, seed, device)
        return model, load_splits(experiment, seed, options, datasets), None
    model = fresh_model(experiment, seeds["init"], device)
    if seeds["bit"] is not None:
        nudge_one_weight(model, seeds["bit"])
    splits = load_splits(experiment, seeds["split"], options, datasets, torch.Generator().manual_seed(seeds["split"]))
    torch.manual_seed(seeds["dropout"])
    return model, splits, torch.Generator().manual_seed(seeds["order"])


def seeded_start(make_source, experiment, seed: int, device, options: RunOptions, datasets: Datasets | None = None):
    """A run's model and data source (`seeded_model_and_splits`). Returns (model, source, splits)."""
    model, splits, order = seeded_model_and_splits(experiment, seed, device, options, datasets)
    return model, make_source(experiment, splits, device, order), splits


def run_each_seed(make_source, experiment, seeds, device, options: RunOptions, on_epoch=None, make_step=None) -> list[RunOutcome]:
    """One run per seed, each trained by `train`; `make_step(model, experiment, source)` may supply the step."""
    outcomes, shared = [], None
    for seed in seeds:
        model, source, splits = seeded_start(make_source, experiment, seed, device, options, shared)
        shared = None if splits.datasets.seeded else splits.datasets  # data drawn for no seed in particular: load once
        step = make_step(model, experiment, source) if make_step else None
        outcome = train(model, source, experiment, options.epochs_for(experiment), device, step=step, on_epoch=on_epoch)
        outcome.dataset_md5 = splits.datasets.md5
        outcomes.append(outcome)
    return outcomes
