"""The fast engine: the reference engine's numbers without its overhead.

Two ideas: the whole dataset is transformed once into tensors that live on the run's device (no
per-sample transform, no collation, no DataLoader in the hot path), and each epoch's batches are
taken by index with exactly the permutation the reference DataLoader would have drawn from the
global RNG, so on the CPU every metric is bit-identical to the reference engine.

On CUDA a third: the whole training step (forward, loss, backward, optimiser step) is captured once
in a CUDA graph per batch shape and replayed (`graphs.py`).
"""

from __future__ import annotations

import torch
from torch import nn

from ..datasets import transform_tensor
from ..training import RunOutcome, StepFn, eager_step, labels_for, make_loss, make_optimizer
from . import graphs
from .sources import ImageSplits, RunOptions, run_each_seed


def _draw_loader_seed(generator: torch.Generator | None = None) -> int:
    """Each DataLoader iteration first draws a base seed (for worker processes) from the global RNG."""
    return int(torch.empty((), dtype=torch.int64).random_(generator=generator).item())


def loader_permutation(n: int, generator: torch.Generator | None = None) -> torch.Tensor:
    """The order `DataLoader(dataset, shuffle=True)` visits n samples in, drawn as it draws it.

    The iterator draws its base seed, then RandomSampler draws a seed for a private generator and
    calls randperm on it: two int64 draws from the global RNG (or `generator`, standing in for it)
    per epoch, in this order.
    """
    _draw_loader_seed(generator)
    seed = _draw_loader_seed(generator)
    return torch.randperm(n, generator=torch.Generator().manual_seed(seed))


def batch_sizes(n: int, batch: int) -> list[int]:
    """The batch sizes an epoch of n samples takes: full batches, and a smaller last one where n % batch != 0."""
    return sorted({min(batch, n), n % batch or min(batch, n)})


class TensorSource:
    def __init__(self, experiment, splits: ImageSplits, device: torch.device):
        data, training = experiment.data, experiment.training
        loss = training["loss"]
        train_full, test_set = splits.train_full, splits.test
        train_idx, valid_idx = splits.train_idx, splits.valid_idx
        x_all = transform_tensor(train_full.data, data["transform"])
        y_all = labels_for(loss, train_full.targets)

        def resident(idx):
            idx = torch.tensor(idx, dtype=torch.int64)
            return x_all[idx].to(device), y_all[idx].to(device)

        self.batch = training["batch_size"]
        self.device = device
        self.train = resident(train_idx)
        self.n_train = len(train_idx)
        n_test = splits.n_test
        self.splits = {
            "valid": resident(valid_idx) if valid_idx else None,
            "test": (transform_tensor(test_set.data[:n_test], data["transform"]).to(device),
                     labels_for(loss, test_set.targets[:n_test]).to(device)),
        }

    def example_batches(self) -> list:
        """One batch of each shape an epoch takes (the examples CUDA graphs are captured on)."""
        x, y = self.train
        return [(x[:size], y[:size]) for size in batch_sizes(self.n_train, self.batch)]

    def train_batches(self):
        order = loader_permutation(self.n_train).to(self.device)
        x, y = self.train
        for i in range(0, self.n_train, self.batch):
            idx = order[i : i + self.batch]
            yield x[idx], y[idx]

    def eval_batches(self, split: str):
        tensors = self.splits[split]
        if tensors is None:
            return None
        return self._in_order(*tensors)

    def _in_order(self, x, y):
        _draw_loader_seed()  # the reference's unshuffled loader draws one too
        for i in range(0, len(y), self.batch):
            yield x[i : i + self.batch], y[i : i + self.batch]


def make_step(model: nn.Module, experiment, source) -> StepFn | None:
    """On CUDA the eager step captured in CUDA graphs; elsewhere None, which gives `train`'s eager step."""
    device = next(model.parameters()).device
    if not graphs.enabled(device):
        return None
    training = experiment.training
    optimizer = make_optimizer(training, model.parameters(), capturable=True)
    step = eager_step(model, make_loss(training["loss"]), optimizer)
    model.train()
    return graphs.graphed_step(step, source.example_batches(), list(model.state_dict().values()), optimizer)


def run(experiment, seeds, device: torch.device, options: RunOptions, on_epoch=None) -> list[RunOutcome]:
    return run_each_seed(TensorSource, experiment, seeds, device, options, on_epoch, make_step=make_step)
