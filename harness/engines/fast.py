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

from ..datasets import as_tensors
from ..training import RunOutcome, StepFn, eager_step, inputs_for, labels_for, make_loss, make_optimizer, needs_closure, standard_forward
from . import graphs
from ..options import RunOptions
from .sources import Splits, batch_sizes_of, drawn_batches, run_each_seed


def _draw_loader_seed(generator: torch.Generator | None = None) -> int:
    """Each DataLoader iteration first draws a base seed (for worker processes) from the global RNG."""
    return int(torch.empty((), dtype=torch.int64).random_(generator=generator).item())


def loader_permutation(n: int, generator: torch.Generator | None = None, owned: bool = False) -> torch.Tensor:
    """The order `DataLoader(dataset, shuffle=True)` visits n samples in, drawn as it draws it.

    The iterator draws its base seed, then RandomSampler draws a seed for a private generator and
    calls randperm on it: two int64 draws from the global RNG (or `generator`, standing in for it)
    per epoch, in this order. `owned`: `generator` is the loader's own (`DataLoader(generator=g)`),
    which the sampler shuffles with directly, after the base seed.
    """
    _draw_loader_seed(generator)
    if owned:
        order = torch.randperm(n, generator=generator)
        # RandomSampler then draws one more permutation for the last 0 of n samples before it stops: on its
        # own generator that draw moves every later epoch's order (on a private one it went unseen).
        torch.randperm(n, generator=generator)
        return order
    seed = _draw_loader_seed(generator)
    return torch.randperm(n, generator=torch.Generator().manual_seed(seed))


def batch_sizes(n: int, batch: int | None) -> list[int]:
    """The batch sizes an epoch of n samples takes: full batches, and a smaller last one where n % batch != 0."""
    if batch is None:
        return [n]
    return sorted({min(batch, n), n % batch or min(batch, n)})


def loader_order(n: int, shuffle: bool, generator: torch.Generator | None = None, owned: bool = False) -> torch.Tensor:
    """The order a training DataLoader visits n samples in: shuffled, or in order after its one draw."""
    if shuffle:
        return loader_permutation(n, generator, owned)
    _draw_loader_seed(generator)
    return torch.arange(n)


def in_batches(x: torch.Tensor, y: torch.Tensor, batch: int | None, generator: torch.Generator | None = None,
               shuffle: bool = False, owned: bool = False):
    """An evaluation split as its DataLoader gives it: in order after its one draw, or shuffled as a shuffled
    one draws (`loader_order`); with no batch size, the whole split at once and no draw (no loader)."""
    if batch is None:
        yield x, y
        return
    if shuffle:
        order = loader_order(len(y), True, generator, owned).to(y.device)
        for i in range(0, len(y), batch):
            idx = order[i : i + batch]
            yield x[idx], y[idx]
        return
    _draw_loader_seed(generator)
    for i in range(0, len(y), batch):
        yield x[i : i + batch], y[i : i + batch]


class TensorSource:
    """`order`: the loaders' own generator under per-source seeds, None where they draw from the global RNG."""

    def __init__(self, experiment, splits: Splits, device: torch.device, order: torch.Generator | None = None):
        self.batch, self.eval_batch = batch_sizes_of(experiment)
        self.shuffle, self.eval_shuffle = experiment.training["shuffle"], experiment.data["eval_shuffle"]
        self.device = device
        self.order = order
        self.generators = [order] if order is not None else []

        def resident(found):
            if found is None:
                return None
            x, y = as_tensors(*found, experiment)
            return inputs_for(experiment, x).to(device), labels_for(experiment, y).to(device)

        self.fresh = splits.fresh  # a training split drawn batch by batch, or None
        self.experiment = experiment
        self.train = None if self.fresh is not None else resident(splits.split("train"))
        self.n_train = len(splits.train_idx)
        self.splits = {name: resident(splits.split(name)) for name in ("valid", "test")}

    def example_batches(self) -> list:
        """One batch of each shape an epoch takes (the examples CUDA graphs are captured on)."""
        x, y = self.train
        return [(x[:size], y[:size]) for size in batch_sizes(self.n_train, self.batch)]

    def train_batches(self):
        if self.fresh is not None:  # drawn as it trains: each batch moved to the device as it comes
            for x, y in drawn_batches(self.experiment, self.fresh):
                yield inputs_for(self.experiment, x).to(self.device), labels_for(self.experiment, y).to(self.device)
            return
        x, y = self.train
        if self.batch is None:
            yield x, y
            return
        order = loader_order(self.n_train, self.shuffle, self.order, owned=self.order is not None).to(self.device)
        for i in range(0, self.n_train, self.batch):
            idx = order[i : i + self.batch]
            yield x[idx], y[idx]

    def eval_batches(self, split: str):
        tensors = self.splits[split]
        if tensors is None:
            return None
        return in_batches(*tensors, self.eval_batch, self.order, self.eval_shuffle, owned=self.order is not None)


def make_step(model: nn.Module, experiment, source) -> StepFn | None:
    """On CUDA the eager step captured in CUDA graphs; elsewhere None, which gives `train`'s eager step.

    A recipe with an LR scheduler steps eagerly: a captured step would replay the learning rate it was
    recorded with; so does an optimiser that needs a closure, whose step runs a data-dependent number of
    evaluations (LBFGS's line search)."""
    device = next(model.parameters()).device
    if not graphs.enabled(device) or experiment.scheduler is not None or experiment.steps or source.fresh is not None:
        return None  # steps of the recipe's own may do anything a graph cannot replay: they run eagerly
    optimizer = make_optimizer(experiment, model.parameters(), capturable=True)
    if needs_closure(optimizer):
        return None
    step = eager_step(standard_forward(model, make_loss(experiment)), optimizer)
    model.train()
    return graphs.graphed_step(step, source.example_batches(), list(model.state_dict().values()), optimizer)


def run(experiment, seeds, device: torch.device, options: RunOptions, on_epoch=None) -> list[RunOutcome]:
    return run_each_seed(TensorSource, experiment, seeds, device, options, on_epoch, make_step=make_step)
