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

Under per-source seeds (`--vary`) each lane's loaders draw from its own `order` generator, and every
lane shares the one dropout seed (masks drawn once, `randomness="same"`), so `--vary dropout` is refused.
"""

from __future__ import annotations

import contextlib
import copy
import warnings

import torch
from torch.func import functional_call, stack_module_state, vmap

from torch import nn

from ..datasets import as_tensors
from ..errors import HarnessError
from ..training import (EpochTally, RunOutcome, Scorer, inputs_for, labels_for, step_of_its_own, make_loss, make_optimizer, make_scheduler,
                        step_result, train_lanes)
from . import graphs
from .fast import _draw_loader_seed, batch_sizes, loader_order
from ..options import RunOptions
from .sources import batch_sizes_of, seeded_model_and_splits


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
    """Every seed's batches at once: samples gathered from a pool by a (seeds, n) index matrix per split.

    Each seed's loader draws (the training order, each evaluation loader's seed) come from its own
    generator, standing in for the global RNG of a single-seed run, as `fast.TensorSource` draws them;
    with no batch size a split is one batch, in order, and draws nothing.
    """

    def __init__(self, splits: dict, experiment, generators: list[torch.Generator], owned: bool = False):
        self.splits, self.generators = splits, generators  # split -> (x pool, y pool, (seeds, n) rows) or None
        self.owned = owned  # the generators are the loaders' own (per-source seeds), not stand-ins for the global RNG
        self.batch, self.eval_batch = batch_sizes_of(experiment)
        self.shuffle, self.eval_shuffle = experiment.training["shuffle"], experiment.data["eval_shuffle"]
        self.n_train = splits["train"][2].shape[1]

    @staticmethod
    def _gather(pool, idx):
        x, y, _ = pool
        return x[idx], y[idx]

    def example_batches(self) -> list:
        train = self.splits["train"]
        return [self._gather(train, train[2][:, :size]) for size in batch_sizes(self.n_train, self.batch)]

    def train_batches(self):
        train = self.splits["train"]
        idx = train[2]
        if self.batch is None:
            yield self._gather(train, idx)
            return
        orders = torch.stack([loader_order(self.n_train, self.shuffle, g, self.owned) for g in self.generators]).to(idx.device)
        idx = idx.gather(1, orders)
        for i in range(0, self.n_train, self.batch):
            yield self._gather(train, idx[:, i : i + self.batch])

    def eval_batches(self, split: str):
        pool = self.splits.get(split)
        if pool is None:
            return None
        rows = pool[2]
        if self.eval_batch is None:
            return iter([self._gather(pool, rows)])
        if self.eval_shuffle:
            orders = torch.stack([loader_order(rows.shape[1], True, g, self.owned) for g in self.generators]).to(rows.device)
            rows = rows.gather(1, orders)
        else:
            for g in self.generators:
                _draw_loader_seed(g)
        return (self._gather(pool, rows[:, i : i + self.eval_batch]) for i in range(0, rows.shape[1], self.eval_batch))


def _rng_follower() -> torch.Generator:
    """A generator that continues the global RNG's stream from here, leaving the global one alone."""
    generator = torch.Generator()
    generator.set_state(torch.get_rng_state())
    return generator


def start_seeds(experiment, seeds, device, options: RunOptions):
    """Each seed's model and data, drawn as a single-seed run draws them; its loaders' draws then come from
    a generator of its own: a copy of where the global RNG stands (the tutorials' scheme) or its `order` one."""
    models, per_seed, shared = [], [], None
    for seed in seeds:
        model, splits, order = seeded_model_and_splits(experiment, seed, device, options, shared)
        if splits.fresh is not None:
            raise HarnessError(f"{experiment.id}: the multiseed engine stacks every seed's samples once, up front; a training split "
                               "drawn batch by batch draws them as it trains: use --engine fast or reference")
        models.append(model)
        shared = None if splits.datasets.seeded else splits.datasets
        per_seed.append((splits, order if order is not None else _rng_follower()))
    return models, _stacked(experiment, per_seed, device, owned=options.vary is not None)


def _stacked(experiment, per_seed: list, device, owned: bool = False) -> StackedSource:
    """The seeds' splits as pools of samples on the device and a row of indices into them per seed.

    A dataset the seeds share (an image set) is held once; one drawn per seed (a seeded table split)
    once per seed. Only the samples some seed uses are held.
    """
    datasets: dict[int, tuple] = {}  # id(dataset) -> (dataset, set of indices used)
    for splits, _ in per_seed:
        for name in ("train", "valid", "test"):
            found = splits.split(name)
            if found is not None:
                datasets.setdefault(id(found[0]), (found[0], set()))[1].update(found[1])
    xs, ys, lookups, start = [], [], {}, 0
    for key, (dataset, used) in datasets.items():
        used = sorted(used)
        x, y = as_tensors(dataset, used, experiment)
        lookup = torch.full((len(dataset),), -1, dtype=torch.int64)
        lookup[torch.tensor(used, dtype=torch.int64)] = torch.arange(start, start + len(used))
        xs.append(inputs_for(experiment, x))
        ys.append(labels_for(experiment, y))
        lookups[key], start = lookup, start + len(used)
    x_pool, y_pool = torch.cat(xs).to(device), torch.cat(ys).to(device)
    stacked = {}
    for name in ("train", "valid", "test"):
        found = [splits.split(name) for splits, _ in per_seed]
        if found[0] is None:
            stacked[name] = None
            continue
        rows = torch.stack([lookups[id(ds)][torch.tensor(idx, dtype=torch.int64)] for ds, idx in found]).to(device)
        stacked[name] = (x_pool, y_pool, rows)
    source = StackedSource(stacked, experiment, [g for _, g in per_seed], owned)
    source.dataset_md5s = [splits.datasets.md5 for splits, _ in per_seed]
    return source


# Optimisers that update every element from its own gradient and state alone: one over the seeds'
# stacked parameters is one independent optimiser per seed. (LBFGS, say, mixes elements.)
ELEMENTWISE_OPTIMIZERS = {f"torch.optim:{name}" for name in
                          ("SGD", "Adam", "AdamW", "Adadelta", "Adagrad", "Adamax", "NAdam", "RAdam", "RMSprop", "Rprop", "ASGD")}
# Schedulers that read a metric of the run (one per seed) cannot serve S seeds with one learning rate.
METRIC_SCHEDULERS = {"torch.optim.lr_scheduler:ReduceLROnPlateau"}


def refusal(experiment) -> str | None:
    """Why multiseed cannot run this recipe, judged from the recipe alone (None: it can)."""
    if experiment.steps and experiment.steps["epoch_end"]:
        return (f"{experiment.id}: 'steps.epoch_end' runs once an epoch on one model, where the multiseed engine holds S seeds' "
                "weights stacked; use --engine fast or reference")
    optimizer = experiment.optimizer["class_path"]
    if optimizer not in ELEMENTWISE_OPTIMIZERS:
        return (f"{experiment.id}: the multiseed engine trains S seeds with one optimiser over their stacked weights, "
                f"which is S independent ones only for an element-wise optimiser ({optimizer} is not known to be one); "
                "use --engine fast or reference")
    if experiment.scheduler and experiment.scheduler["class_path"] in METRIC_SCHEDULERS:
        return (f"{experiment.id}: {experiment.scheduler['class_path']} steps on each run's own metric, which one learning "
                "rate for S seeds cannot follow; use --engine fast or reference")
    return None


class _OwnStep(nn.Module):
    """A recipe's own step as a module's forward, its model a submodule: torch.func.functional_call then swaps each
    lane's weights into the model for the whole step, whatever of the model the step calls."""

    def __init__(self, experiment, model: nn.Module, key: str):
        super().__init__()
        self.model = model
        self.step = step_of_its_own(experiment, model, key) or step_of_its_own(experiment, model, "training")

    def forward(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        return self.step((x, y))


def lane_forward(experiment, base: nn.Module, key: str = "training"):
    """One lane's loss (and outputs) from its weights, for vmap: the standard forward pass and loss, or the recipe's
    own step (`key`: training or evaluation), which gives no outputs."""
    if not experiment.steps:
        loss_fn = make_loss(experiment)

        def standard(params, buffers, x, y):
            outputs = functional_call(base, (params, buffers), (x,))
            return loss_fn(outputs, y), outputs

        return standard, True
    own = _OwnStep(experiment, base, key)

    def stepped(params, buffers, x, y):
        return functional_call(own, {f"model.{k}": v for k, v in {**params, **buffers}.items()}, (x, y))

    return stepped, False


def batched(experiment, base: nn.Module, key: str, randomness: str):
    """`lane_forward` mapped over the lanes: (params, buffers, x, y) -> (losses, outputs), where a step of the
    recipe's own gives in place of outputs the dict of its own metrics' lanes' values beside the loss, or None."""
    forward, gives_outputs = lane_forward(experiment, base, key)
    mapped = vmap(forward, randomness=randomness)
    if gives_outputs:
        return mapped

    def stepped(*args):
        metrics, losses = step_result(experiment, key, mapped(*args))
        return losses, metrics

    return stepped


def lane_of(outputs, lane: int):
    """One lane's outputs (or a step's metrics) from the lanes' stacked ones."""
    if isinstance(outputs, dict):
        return {name: value[lane] for name, value in outputs.items()}
    return None if outputs is None else outputs[lane]


def check_batchable(experiment, model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> None:
    """A forward pass of two stacked copies of `model` under vmap on one batch: where torch.func cannot
    batch the model (data-dependent control flow, in-place buffer updates as BatchNorm's), one line why."""
    reason = refusal(experiment)
    if reason:
        raise HarnessError(reason)
    params, buffers = stack_module_state([model, copy.deepcopy(model)])
    base = copy.deepcopy(model).to("meta")
    try:
        with torch.random.fork_rng(devices=[]), vmap_fallback_is_an_error():
            batched(experiment, base, "training", "different")(params, buffers, x.expand(2, *x.shape), y.expand(2, *y.shape))
    except Exception as e:
        message = " ".join(str(e).split())[:200]
        raise HarnessError(f"{experiment.id}: the multiseed engine cannot batch {experiment.model['class_path']} with torch.func.vmap "
                           f"({type(e).__name__}: {message}); use --engine fast or reference") from None


class BatchedSeeds:
    """The S seeds' models as one batched model, a lane each, for `training.train_lanes`."""

    def __init__(self, models, experiment, device: torch.device, source, randomness: str = "different"):
        self.count = len(models)
        self.params, self.buffers = stack_module_state(models)
        self.base = copy.deepcopy(models[0]).to("meta")  # the architecture only; the weights are `params`
        self.batched = batched(experiment, self.base, "training", randomness)
        self.evaluated = batched(experiment, self.base, "evaluation", randomness)
        self.scorer = Scorer(experiment)
        # The catalogue's measures are mapped over the lanes (steps of a recipe's own give a loss alone: none); the
        # recipe's own metrics are its code, called lane by lane on plain tensors as on the other engines.
        builtin = (lambda outputs, y: ()) if self.scorer.loss_only else vmap(self.scorer.builtin_sums)

        def sums(outputs, y):
            own = zip(*(self.scorer.own_sums(lane_of(outputs, lane), y[lane]) for lane in range(self.count)))
            return builtin(outputs, y) + tuple(torch.stack(values) for values in own)

        self.sums = sums if self.scorer.own else builtin  # no Python call per lane and batch where there is nothing to call
        # A captured step replays its learning rate; a step of the recipe's own may do what a graph cannot replay.
        graphed = graphs.enabled(device) and experiment.scheduler is None and not experiment.steps
        optimizer = make_optimizer(experiment, self.params.values(), capturable=graphed)
        self.scheduler = make_scheduler(experiment, optimizer)

        def step(x, y):
            optimizer.zero_grad()
            losses, outputs = self.batched(self.params, self.buffers, x, y)
            losses.sum().backward()
            optimizer.step()
            return outputs, losses

        self.base.train()
        if graphed:
            step = graphs.graphed_step(step, source.example_batches(), [*self.params.values(), *self.buffers.values()], optimizer)
        self.step = step

    def train_mode(self) -> None:
        self.base.train()

    def tally(self, tally: EpochTally, outputs, y, losses) -> None:
        tally.add(losses, self.sums(outputs, y), y.shape[1], y[0].numel())

    def evaluate(self, batches) -> EpochTally:
        self.base.eval()
        tally = EpochTally(self.scorer)
        with torch.no_grad():
            for x, y in batches:
                losses, outputs = self.evaluated(self.params, self.buffers, x, y)
                self.tally(tally, outputs, y, losses)
        self.base.train()
        return tally

    def state(self, lane: int) -> dict[str, torch.Tensor]:
        return {name: t[lane].detach() for name, t in {**self.params, **self.buffers}.items()}


def run(experiment, seeds, device: torch.device, options: RunOptions, on_epoch=None) -> list[RunOutcome]:
    reason = refusal(experiment)
    if reason:
        raise HarnessError(reason)
    if options.vary == "dropout" and len(seeds) > 1:
        raise HarnessError(f"{experiment.id}: the multiseed engine draws every lane's dropout masks from one stream, so "
                           "lanes cannot each have a dropout seed of their own; vary dropout with --engine fast or reference")
    models, source = start_seeds(experiment, seeds, device, options)
    # Per-source seeds give every lane the same dropout seed: the same masks, drawn once from the global
    # RNG as a single run draws them. The tutorials' scheme gives each lane masks of its own.
    lanes = BatchedSeeds(models, experiment, device, source, "same" if options.vary is not None else "different")
    del models
    outcomes = train_lanes(lanes, source, experiment, options.epochs_for(experiment), device, on_epoch)
    for outcome, md5 in zip(outcomes, source.dataset_md5s):
        outcome.dataset_md5 = md5
    return outcomes
