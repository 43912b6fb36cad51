"""The reference engine: the tutorials' loops as they wrote them (per-sample transforms, DataLoader)."""

from __future__ import annotations

import torch
from torch.utils.data import DataLoader, Subset

from ..training import RunOutcome, labels_for
from .sources import ImageSplits, RunOptions, run_each_seed


def first(dataset, n: int):
    """The dataset itself, or its first n samples."""
    return dataset if n >= len(dataset) else Subset(dataset, range(n))


class LoaderSource:
    def __init__(self, experiment, splits: ImageSplits, device: torch.device):
        training = experiment.training
        self.device, self.loss = device, training["loss"]
        train_full, train_idx, valid_idx = splits.train_full, splits.train_idx, splits.valid_idx
        train_set = Subset(train_full, train_idx) if len(train_idx) < len(train_full) else train_full
        batch = training["batch_size"]
        self.n_train = len(train_set)
        self.loaders = {
            "train": DataLoader(train_set, batch_size=batch, shuffle=True),
            "valid": DataLoader(Subset(train_full, valid_idx), batch_size=batch, shuffle=False) if valid_idx else None,
            "test": DataLoader(first(splits.test, splits.n_test), batch_size=batch, shuffle=False),
        }

    def _moved(self, loader):
        for x, y in loader:
            yield x.to(self.device), labels_for(self.loss, y).to(self.device)

    def train_batches(self):
        return self._moved(self.loaders["train"])

    def eval_batches(self, split: str):
        loader = self.loaders[split]
        return self._moved(loader) if loader is not None else None


def run(experiment, seeds, device: torch.device, options: RunOptions, on_epoch=None) -> list[RunOutcome]:
    return run_each_seed(LoaderSource, experiment, seeds, device, options, on_epoch)
