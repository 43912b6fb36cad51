"""The reference engine: the tutorials' loops as they wrote them (per-sample transforms, DataLoader)."""

from __future__ import annotations

import torch
from torch.utils.data import DataLoader, Subset

from ..datasets import as_tensors
from ..training import RunOutcome, inputs_for, labels_for
from ..options import RunOptions
from .sources import Splits, batch_sizes_of, drawn_batches, run_each_seed


class LoaderSource:
    """Each split through a DataLoader (shuffling where the recipe says: `training.shuffle`, `data.eval_shuffle`); a recipe
    without a batch size takes the whole split at once, as T1's iris code does, with no loader. `order`:
    the loaders' own generator under per-source seeds (None: they draw from the global RNG)."""

    def __init__(self, experiment, splits: Splits, device: torch.device, order: torch.Generator | None = None):
        self.device, self.experiment = device, experiment
        self.generators = [order] if order is not None else []
        batch, eval_batch = batch_sizes_of(experiment)
        self.n_train = len(splits.train_idx)
        self.batches = {}
        self.fresh = splits.fresh  # a training split drawn batch by batch, or None
        for name in ("train", "valid", "test"):
            found = splits.split(name)
            if found is None or (name == "train" and self.fresh is not None):
                self.batches[name] = None
                continue
            dataset, idx = found
            size = batch if name == "train" else eval_batch
            if size is None:
                self.batches[name] = [as_tensors(dataset, idx, experiment)]
                continue
            subset = Subset(dataset, idx) if len(idx) < len(dataset) else dataset
            shuffle = experiment.training["shuffle"] if name == "train" else experiment.data["eval_shuffle"]
            self.batches[name] = DataLoader(subset, batch_size=size, shuffle=shuffle, generator=order)

    def _moved(self, batches):
        for x, y in batches:
            yield inputs_for(self.experiment, x).to(self.device), labels_for(self.experiment, y).to(self.device)

    def train_batches(self):
        if self.fresh is not None:
            return self._moved(drawn_batches(self.experiment, self.fresh))
        return self._moved(self.batches["train"])

    def eval_batches(self, split: str):
        batches = self.batches[split]
        return self._moved(batches) if batches is not None else None


def run(experiment, seeds, device: torch.device, options: RunOptions, on_epoch=None) -> list[RunOutcome]:
    return run_each_seed(LoaderSource, experiment, seeds, device, options, on_epoch)
