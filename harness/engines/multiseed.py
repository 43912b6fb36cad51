"""The multiseed engine: S seeds of one experiment trained together, as one batched model.

Each seed's model is built exactly as `fresh_model` builds it, then the S models' parameters are
stacked once into tensors with a leading seed dimension, and `torch.func.vmap` runs the one model
over all of them (`functional_call`). Every seed keeps its own:

- initial weights (its own `fresh_model`),
- data split and shuffling order: after seeding, building the model and splitting, the global RNG
  state is copied into a per-seed generator that the seed's loader draws then come from, as the
  DataLoader would draw them from the global RNG in a single-seed run,
- dropout masks (`randomness="different"`),
- optimiser state: SGD and Adam work element-wise, so one optimiser over the stacked tensors is S
  independent optimisers.

The loss minimised is the sum of the seeds' mean losses: seed s's parameters only reach its own
term, so each gets exactly the gradient of its own loss (a mean over seeds would scale it by 1/S).

The same shuffling order as `fast` holds for recipes without dropout; on the CPU a single-seed run's
dropout masks come from the same global RNG as its shuffling, so there later epochs' orders differ
(still one independent stream per seed). Batched matrix products sum in another order than single
ones, so numbers agree with `fast` to rounding, not bit for bit.
"""

from __future__ import annotations

import contextlib
import copy
import warnings
from functools import partial

import torch
from torch.func import functional_call, stack_module_state, vmap

from ..datasets import transform_tensor
from ..training import (EpochTally, RunOutcome, count_correct, fresh_model, labels_for, make_loss, make_optimizer, set_determinism,
                        train_lanes)
from . import graphs
from .fast import _draw_loader_seed, batch_sizes, loader_permutation
from .sources import IrisSource, RunOptions, image_datasets, image_splits


VMAP_FALLBACK = ".*performance drop.*"  # what vmap's per-seed-loop warning says


@contextlib.contextmanager
def vmap_fallback_is_an_error():
    """Where an op has no batching rule, vmap quietly runs it seed after seed (it warns only when told
    to): that would time a loop, not the batched model. Inside this block the warning is an error."""
    set_warning = getattr(torch._C._functorch, "_set_vmap_fallback_warning_enabled", None)
    if set_warning is None:  # a torch without the switch: nothing to watch
        yield
        return
    set_warning(True)
    try:
        with warnings.catch_warnings():
            warnings.filterwarnings("error", message=VMAP_FALLBACK)
            yield
    finally:
        set_warning(False)


class StackedSource:
    """Every seed's batches at once: samples gathered from a shared pool by a (seeds, n) index matrix.

    With per-seed generators (image recipes) each epoch is shuffled and each evaluation draws a loader
    seed, per seed, as `fast.TensorSource` does; without (iris) one full batch in order.
    """

    def __init__(self, train, evals: dict, batch: int, generators: list[torch.Generator] | None):
        self.train, self.evals, self.batch, self.generators = train, evals, batch, generators
        self.n_train = train[2].shape[1]

    def _gather(self, pool, idx):
        x, y, _ = pool
        return x[idx], y[idx]

    def example_batches(self) -> list:
        idx = self.train[2]
        return [self._gather(self.train, idx[:, :size]) for size in batch_sizes(self.n_train, self.batch)]

    def train_batches(self):
        idx = self.train[2]
        if self.generators:
            orders = torch.stack([loader_permutation(self.n_train, g) for g in self.generators]).to(idx.device)
            idx = idx.gather(1, orders)
        for i in range(0, self.n_train, self.batch):
            yield self._gather(self.train, idx[:, i : i + self.batch])

    def eval_batches(self, split: str):
        pool = self.evals.get(split)
        if pool is None:
            return None
        for g in self.generators or ():
            _draw_loader_seed(g)
        return (self._gather(pool, pool[2][:, i : i + self.batch]) for i in range(0, pool[2].shape[1], self.batch))


def _rng_follower() -> torch.Generator:
    """A generator that continues the global RNG's stream from here, leaving the global one alone."""
    generator = torch.Generator()
    generator.set_state(torch.get_rng_state())
    return generator


def start_seeds(experiment, seeds, device, options: RunOptions):
    """Each seed's model and data, drawn from the global RNG as a single-seed run draws them."""
    models, per_seed = [], []
    loaded = None if experiment.data["dataset"] == "iris" else image_datasets(experiment, options)
    for seed in seeds:
        set_determinism()
        models.append(fresh_model(experiment, seed, device))
        if loaded is None:
            per_seed.append(IrisSource(experiment, seed, device, options))
        else:
            per_seed.append((image_splits(experiment, options, loaded), _rng_follower()))
    if loaded is None:
        return models, _stacked_iris(per_seed)
    return models, _stacked_images(experiment, per_seed, device)


def _stacked_iris(sources: list[IrisSource]) -> StackedSource:
    def pooled(pairs):
        x, y = (torch.stack(t) for t in zip(*pairs))  # (seeds, n, ...)
        seeds, n = x.shape[:2]
        idx = torch.arange(seeds * n, device=x.device).reshape(seeds, n)
        return x.flatten(0, 1), y.flatten(0, 1), idx

    train = pooled([s.train for s in sources])
    return StackedSource(train, {"test": pooled([s.test for s in sources])}, train[2].shape[1], None)


def _stacked_images(experiment, per_seed, device) -> StackedSource:
    data, loss = experiment.data, experiment.training["loss"]
    first = per_seed[0][0]
    x_all = transform_tensor(first.train_full.data, data["transform"]).to(device)
    y_all = labels_for(loss, first.train_full.targets).to(device)
    test_x = transform_tensor(first.test.data[: first.n_test], data["transform"]).to(device)
    test_y = labels_for(loss, first.test.targets[: first.n_test]).to(device)

    def rows(indices):
        return torch.tensor(indices, dtype=torch.int64, device=device)

    train = (x_all, y_all, rows([s.train_idx for s, _ in per_seed]))
    valid = (x_all, y_all, rows([s.valid_idx for s, _ in per_seed])) if first.valid_idx else None
    test = (test_x, test_y, torch.arange(first.n_test, device=device).expand(len(per_seed), -1))
    return StackedSource(train, {"valid": valid, "test": test}, experiment.training["batch_size"], [g for _, g in per_seed])


class BatchedSeeds:
    """The S seeds' models as one batched model, a lane each, for `training.train_lanes`."""

    def __init__(self, models, training: dict, device: torch.device, source):
        self.count = len(models)
        loss_fn = make_loss(training["loss"])
        self.params, self.buffers = stack_module_state(models)
        self.base = copy.deepcopy(models[0]).to("meta")  # the architecture only; the weights are `params`

        def loss_and_outputs(params, buffers, x, y):
            outputs = functional_call(self.base, (params, buffers), (x,))
            return loss_fn(outputs, y), outputs

        self.batched = vmap(loss_and_outputs, randomness="different")
        self.correct = vmap(partial(count_correct, loss=training["loss"]))
        optimizer = make_optimizer(training, self.params.values(), capturable=graphs.enabled(device))

        def step(x, y):
            optimizer.zero_grad()
            losses, outputs = self.batched(self.params, self.buffers, x, y)
            losses.sum().backward()
            optimizer.step()
            return outputs, losses

        self.base.train()
        if graphs.enabled(device):
            step = graphs.graphed_step(step, source.example_batches(), [*self.params.values(), *self.buffers.values()], optimizer)
        self.step = step

    def train_mode(self) -> None:
        self.base.train()

    def tally(self, tally: EpochTally, outputs, y, losses) -> None:
        tally.add(losses, self.correct(outputs, y), y.shape[1])

    def evaluate(self, batches) -> EpochTally:
        self.base.eval()
        tally = EpochTally()
        with torch.no_grad():
            for x, y in batches:
                losses, outputs = self.batched(self.params, self.buffers, x, y)
                self.tally(tally, outputs, y, losses)
        self.base.train()
        return tally

    def summaries(self, tally: EpochTally) -> list[tuple[float, float]]:
        return tally.summaries()

    def batch_losses(self, tally: EpochTally) -> list[list[float]]:
        return tally.batch_losses()

    def state(self, lane: int) -> dict[str, torch.Tensor]:
        return {name: t[lane].detach() for name, t in {**self.params, **self.buffers}.items()}


def run(experiment, seeds, device: torch.device, options: RunOptions, on_epoch=None) -> list[RunOutcome]:
    models, source = start_seeds(experiment, seeds, device, options)
    lanes = BatchedSeeds(models, experiment.training, device, source)
    del models
    return train_lanes(lanes, source, experiment, options.epochs_for(experiment), device, on_epoch)
