"""The training loop every engine shares, and the pieces of a run: loss, optimiser, metrics.

An engine only decides where batches come from (a `BatchSource`) and what trains on them (`Lanes`):
the reference engine uses the tutorials' DataLoaders, the fast engine slices tensors already on the
device, both with one model (`OneModel`); multiseed trains S seeds' models batched together, a lane
each. Everything else (the epoch loop, the metrics, how losses are averaged, when a run diverges and
stops) is this one file, so engines fed the same batches produce the same numbers.
"""

from __future__ import annotations

import contextlib
import hashlib
import inspect
import math
import os
import time
from dataclasses import dataclass, field
from typing import Callable, Iterable, Protocol

import torch
from torch import nn

from .datasets import dtype_of
from .models import build_model
from .catalogue import METRICS
from .errors import RegistryError, did_you_mean
from .objects import accepts, instantiate, resolve
from .schema import is_logged_epoch

Batch = tuple[torch.Tensor, torch.Tensor]


def set_determinism(deterministic: bool = True) -> None:
    """Deterministic kernels everywhere (cuBLAS needs its workspace fixed before first use); or, to measure
    what they take away, the fastest kernels CUDA picks, whatever order they add in."""
    os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
    torch.use_deterministic_algorithms(deterministic)
    torch.backends.cudnn.benchmark = not deterministic


def make_loss(experiment) -> nn.Module:
    return instantiate(experiment.loss, "loss", "loss", experiment)


def make_optimizer(experiment, params, capturable: bool = False) -> torch.optim.Optimizer:
    """The recipe's optimiser over `params`. `capturable` keeps a step count on the device, for CUDA
    graphs, where the optimiser keeps one (Adam's; SGD keeps none and takes no such flag)."""
    flag = {"capturable": True} if capturable and accepts(experiment.optimizer, "optimizer", experiment, "capturable") else {}
    return instantiate(experiment.optimizer, "optimizer", "optimizer", experiment, list(params), **flag)


def make_scheduler(experiment, optimizer: torch.optim.Optimizer):
    """The recipe's LR scheduler over `optimizer`, or None where it has none."""
    if experiment.scheduler is None:
        return None
    return instantiate(experiment.scheduler, "scheduler", "scheduler", experiment, optimizer)


def inputs_for(experiment, x: torch.Tensor) -> torch.Tensor:
    """A batch's inputs in the recipe's floating-point type (integer inputs, token ids say, stay as they are)."""
    dtype = dtype_of(experiment)
    return x.to(dtype) if x.is_floating_point() and x.dtype != dtype else x


def labels_for(experiment, y: torch.Tensor) -> torch.Tensor:
    """A batch's targets as the loss takes them: real values in the recipe's type, shape kept (a regression);
    the class index as a float column (T1's MSE recipes); class indices as int64 (a classifier)."""
    if experiment.real_targets:
        return y.to(dtype_of(experiment))
    return y.to(dtype_of(experiment)).reshape(-1, 1) if experiment.regression else y.to(torch.int64)


def count_correct(outputs: torch.Tensor, labels: torch.Tensor, regression: bool) -> torch.Tensor:
    """As the tutorials count: `(outputs + 0.5).int()` for the MSE nets, the arg-max otherwise."""
    if regression:
        return ((outputs + 0.5).int() == labels).sum()
    return (torch.max(outputs, 1).indices == labels).sum()


class Scorer:
    """What a run measures on each batch besides its loss, as sums kept on the device (no sync per step), and a
    split's figures from a tally of them (`catalogue.MEASURES`): a classifier's correct count; a regression's
    squared and absolute errors and its targets' mean and spread; each batch's value of the recipe's own
    metrics ([metrics.<name>]: its function's, or what its steps return). Pure tensor functions for the
    catalogue's, so that multiseed maps `sums` over its lanes."""

    def __init__(self, experiment):
        self.regression, self.values = experiment.regression, experiment.real_targets
        self.declared, self.summed_loss = experiment.training["metrics"], experiment.summed_loss
        self.loss_only = experiment.steps is not None
        self.path = experiment.path
        # The recipe's own metrics: (name, reduction, function or None where its steps return it).
        self.own = [(name, spec["reduction"], spec["function"] and resolve(spec["function"], "metric", f"{experiment.path}: "
                                                                           f"'metrics.{name}.function'", experiment.directory))
                    for name, spec in experiment.own_metrics.items()]

    def sums(self, outputs, labels: torch.Tensor) -> tuple[torch.Tensor, ...]:
        """The batch's sums; `outputs`: the model's, or, from steps of the recipe's own, what they return besides
        the loss (a dict of its own metrics' batch values, or None)."""
        return self.builtin_sums(outputs, labels) + self.own_sums(outputs, labels)

    def builtin_sums(self, outputs, labels: torch.Tensor) -> tuple[torch.Tensor, ...]:
        """The catalogue's measures' sums: pure tensor code, which multiseed maps over its lanes."""
        if self.loss_only:  # steps of the recipe's own report their loss alone
            return ()
        if not self.values:
            return (count_correct(outputs, labels, self.regression),)
        error, target = (outputs.detach() - labels).double(), labels.double()
        mean = target.mean()
        # The batch's own mean and sum of squares about it: combined exactly over batches (Chan et al.), where
        # sums of y and y² would lose R²'s denominator to cancellation.
        return (error.square().sum(), error.abs().sum(), mean, (target - mean).square().sum())

    def own_sums(self, outputs, labels: torch.Tensor) -> tuple[torch.Tensor, ...]:
        """The recipe's own metrics' batch values: what its steps returned, or its functions' on the outputs. User
        code, called on one run's tensors (multiseed calls it lane by lane, never under vmap)."""
        if self.loss_only:
            return self.own_values(outputs) if outputs is not None else ()
        if not self.own:
            return ()
        detached = outputs.detach() if isinstance(outputs, torch.Tensor) else outputs
        return self.own_values({name: function(detached, labels) for name, _, function in self.own})

    def own_values(self, given: dict) -> tuple[torch.Tensor, ...]:
        """The recipe's own metrics' batch values, in declared order, each one number."""
        values = []
        for name, _, function in self.own:
            if name not in given:
                raise RegistryError(f"{self.path}: the training or evaluation step returned {sorted(given)} with no {name!r}, "
                                    f"which [metrics.{name}] declares; return it in the dict beside \"loss\"")
            value = given[name]
            value = value.detach() if isinstance(value, torch.Tensor) else torch.tensor(value)
            if value.numel() != 1 or not (value.is_floating_point() or value.dtype in (torch.int64, torch.int32, torch.bool)):
                what = f"'metrics.{name}.function'" if function else "the step"
                raise RegistryError(f"{self.path}: {what} gave {name} as {tuple(value.shape)} {value.dtype}; give one number per "
                                    "batch (its mean over the batch's samples, or its sum with reduction = \"sum\")")
            values.append(value.reshape(()).double())
        stray = sorted(set(given) - {name for name, _, _ in self.own})
        if stray:
            raise RegistryError(f"{self.path}: the step returned {stray[0]!r}, which no [metrics.{stray[0]}] declares; declare it "
                                "(better, bounded, reduction) or leave it out of the dict")
        return tuple(values)

    def figures(self, losses: torch.Tensor, sums: list[torch.Tensor], sizes: list[int], elements: list[int]) -> list[dict]:
        """Each lane's figures: `losses` and each of `sums` are (lanes, batches); `elements`: target values a batch."""
        n = sum(sizes)
        weights = torch.tensor(sizes, dtype=torch.float64)
        # A mean loss is weighted by its batch's samples; a summed one is already the batch's total.
        loss = (losses.sum(-1) if self.summed_loss else (losses * weights).sum(-1)) / n
        out = [{"loss": float(value)} for value in loss]
        builtin = 0 if self.loss_only else 1 if not self.values else 4
        # The recipe's own, combined as each declares: a batch mean weighted by its samples, or a sum, over the split's samples.
        own = sums[builtin:]
        for (name, reduction, _), values in zip(self.own, own):
            for row, total in zip(out, values.sum(-1) if reduction == "sum" else (values * weights).sum(-1)):
                row[name] = float(total) / n
        if self.loss_only:
            return out
        if not self.values:
            for row, correct in zip(out, sums[0].sum(-1)):
                row["acc"] = int(correct) / n
            return out
        squared, absolute, means, spreads = sums[:4]
        counts = torch.tensor(elements, dtype=torch.float64)
        total = counts.sum()
        grand_mean = (means * counts).sum(-1, keepdim=True) / total
        spread = spreads.sum(-1) + ((means - grand_mean).square() * counts).sum(-1)
        for lane, row in enumerate(out):
            sse = float(squared[lane].sum())
            # R² is undefined where the targets do not vary (no spread to explain): empty, as a metric that does not apply.
            found = {"mse": sse / float(total), "mae": float(absolute[lane].sum()) / float(total),
                     "r2": 1 - sse / float(spread[lane]) if spread[lane] > 0 else None}
            row.update({short: found[short] for short in self.declared})
        return out


class EpochTally:
    """Per-batch losses and measure sums (`Scorer.sums`), kept on the device and summed once.

    Losses and sums are scalars for one run, or vectors with one entry per seed for seeds trained together.
    """

    def __init__(self, scorer: Scorer):
        self.scorer = scorer
        self.losses: list[torch.Tensor] = []
        self.sums: list[tuple[torch.Tensor, ...]] = []
        self.sizes: list[int] = []
        self.elements: list[int] = []  # target values per lane in each batch

    def add(self, loss: torch.Tensor, sums: tuple[torch.Tensor, ...], size: int, elements: int) -> None:
        if self.sums and len(sums) != len(self.sums[0]):
            raise RegistryError(f"{self.scorer.path}: a step returned the recipe's own metrics for some batches of a split and not "
                                "for others; return them (a dict beside \"loss\") for every batch, or for none")
        self.losses.append(loss.detach())
        self.sums.append(sums)
        self.sizes.append(size)
        self.elements.append(elements)

    def batch_losses(self) -> list[list[float]]:
        """Each lane's losses, one float per batch."""
        if not self.losses:
            return [[]]
        losses = torch.stack(self.losses, dim=-1).double().cpu()
        return losses.reshape(-1, losses.shape[-1]).tolist()

    def summaries(self) -> list[dict]:
        """Each lane's figures ({"loss": ..., "acc": ...}, or a regression's loss and declared metrics)."""
        if not self.sizes:
            return [{}]
        losses = torch.stack(self.losses, dim=-1).double().cpu()
        lanes = losses.shape[0] if losses.dim() > 1 else 1
        sums = [torch.stack([batch[i] for batch in self.sums], dim=-1).cpu().reshape(lanes, -1)
                for i in range(len(self.sums[0]))]
        return self.scorer.figures(losses.reshape(lanes, -1), sums, self.sizes, self.elements)


def trace_rows(losses: list[float], sizes: list[int], trace_every: int, epoch: int, steps_before: int) -> list[dict]:
    """The running training loss over every `trace_every` steps, as T1 #7 prints it."""
    rows = []
    for i in range(trace_every, len(losses) + 1, trace_every):
        rows.append({"epoch": epoch, "step": steps_before + i, "samples": sum(sizes[:i]),
                     "running_loss": sum(losses[i - trace_every:i]) / trace_every})
    return rows


class EpochTimer:
    """Wall time of a stretch of device work: CUDA events on a GPU, the host clock on the CPU."""

    def __init__(self, device: torch.device):
        self.cuda = device.type == "cuda"

    def start(self) -> None:
        if self.cuda:
            self.begin, self.end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
            self.begin.record()
        else:
            self.t0 = time.perf_counter()

    def stop(self) -> float:
        """Seconds since `start`, once the device has finished the work queued meanwhile."""
        if self.cuda:
            self.end.record()
            self.end.synchronize()
            return self.begin.elapsed_time(self.end) / 1000
        return time.perf_counter() - self.t0


class BatchSource(Protocol):
    """Where an engine's batches come from. Each call to `train_batches` is one epoch."""

    n_train: int

    def train_batches(self) -> Iterable[Batch]: ...

    def eval_batches(self, split: str) -> Iterable[Batch] | None: ...


@dataclass
class RunOutcome:
    status: str = "ok"  # ok | diverged | error
    epochs: list[dict] = field(default_factory=list)
    trace: list[dict] = field(default_factory=list)
    train_time_s: float = 0.0
    train_samples: int = 0
    diverged_epoch: int | None = None
    message: str = ""
    # Seconds of training (no evaluation) in each epoch, for benchmarks.
    epoch_train_s: list[float] = field(default_factory=list)
    # The final parameters and buffers (a state_dict), for comparing engines; not written anywhere.
    state: dict[str, torch.Tensor] = field(default_factory=dict, repr=False)
    dataset_md5: str = ""  # the checksum of the data trained on (runs.csv's dataset_md5)
    # Each logged epoch's evaluation losses batch by batch ({split: [loss, ...]}), for comparing with code
    # that averages them another way (per batch, or per sample of a sum); not written anywhere.
    eval_batch_losses: list[dict[str, list[float]]] = field(default_factory=list, repr=False)

    @property
    def final(self) -> dict:
        return self.epochs[-1] if self.epochs else {}


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def tutorial_evaluates(training: dict, split: str, epoch: int, epochs: int) -> bool:
    """Whether the recipe's tutorial evaluates `split` after this epoch (its `tutorial_<split>` key)."""
    when = training[f"tutorial_{split}"]
    return when == "every-epoch" or (when == "after-training" and epoch == epochs)


@contextlib.contextmanager
def random_streams_kept(generators=()):
    """Run a block without moving the CPU's global RNG or any of `generators`.

    Each pass over a DataLoader draws a base seed from the global RNG, even unshuffled; an evaluation
    that the tutorial does not do would shift every later shuffle away from the tutorial's.
    """
    states = [g.get_state() for g in generators]
    with torch.random.fork_rng(devices=[]):
        yield
    for generator, state in zip(generators, states):
        generator.set_state(state)


def evaluation_scope(training: dict, split: str, epoch: int, epochs: int, generators=()):
    """Where to evaluate `split`: on the tutorial's random stream if the tutorial evaluates it here,
    else with the streams set aside (`generators`: per-seed stand-ins for the global RNG)."""
    if tutorial_evaluates(training, split, epoch, epochs):
        return contextlib.nullcontext()
    return random_streams_kept(generators)


Forward = Callable[[torch.Tensor, torch.Tensor], tuple[torch.Tensor | None, torch.Tensor]]  # a batch's (outputs, loss)


def standard_forward(model: nn.Module, loss_fn: nn.Module) -> Forward:
    """The tutorials' forward pass: outputs = model(x), loss(outputs, y)."""

    def forward(x: torch.Tensor, y: torch.Tensor):
        outputs = model(x)
        return outputs, loss_fn(outputs, y)

    return forward


def step_of_its_own(experiment, model: nn.Module, key: str) -> Callable | None:
    """The step a recipe names in `[steps]` (`key`: training, evaluation, epoch_end), bound to `model`: a function
    beside the recipe, called with (model, ...), or a method of the model; None where it names none."""
    name = (experiment.steps or {}).get(key)
    if name is None:
        return None
    where = f"{experiment.path}: 'steps.{key}'"
    if ":" in name:
        function = resolve(name, "step", where, experiment.directory)
        return lambda *args: function(model, *args)
    method = getattr(model, name, None)
    if not callable(method):
        methods = [m for m in dir(model) if not m.startswith("_") and callable(getattr(model, m, None))]
        raise RegistryError(f"{where} is {name!r}, but [model] {experiment.model['class_path']} has no method {name!r}"
                            f"{did_you_mean(name, methods)}; define it, or name a function beside the recipe ('steps:{name}')")
    return method


def forwards(experiment, model: nn.Module) -> tuple[Forward, Forward]:
    """The forward passes of training and of evaluation: the standard one over the recipe's loss, or its own steps
    (each given the batch, returning its loss; evaluation by the training step where it names no other)."""
    if not experiment.steps:
        forward = standard_forward(model, make_loss(experiment))
        return forward, forward
    training = step_of_its_own(experiment, model, "training")
    evaluation = step_of_its_own(experiment, model, "evaluation") or training
    return own_forward(experiment, "training", training), own_forward(experiment, "evaluation", evaluation)


def own_forward(experiment, key: str, step: Callable) -> Forward:
    """A step of the recipe's own as a forward pass: it returns the batch's loss, or a dict of the loss ("loss") and
    the recipe's own metrics, handed on in place of outputs for the scorer to tally."""

    return lambda x, y: step_result(experiment, key, step((x, y)))


def step_result(experiment, key: str, result) -> tuple[dict | None, torch.Tensor]:
    """What a step of the recipe's own returned, as (its own metrics' batch values or None, its loss)."""
    if not isinstance(result, dict):
        return None, result
    if "loss" not in result:
        raise RegistryError(f"{experiment.path}: 'steps.{key}' returned a dict without \"loss\" ({sorted(result)}); return "
                            "the loss to minimise as \"loss\", beside the recipe's own metrics")
    return {k: v for k, v in result.items() if k != "loss"}, result["loss"]


def evaluate(model: nn.Module, batches: Iterable[Batch], forward: Forward, scorer: Scorer) -> EpochTally:
    """Each batch's loss and measure sums; `summaries()` gives the split's figures."""
    model.eval()
    tally = EpochTally(scorer)
    with torch.no_grad():
        for x, y in batches:
            outputs, loss = forward(x, y)
            tally.add(loss, scorer.sums(outputs, y), len(y), y.numel())
    return tally


StepFn = Callable[[torch.Tensor, torch.Tensor], tuple[torch.Tensor | None, torch.Tensor]]


def needs_closure(optimizer: torch.optim.Optimizer) -> bool:
    """Whether the optimiser's `step` requires a closure (LBFGS re-evaluates the loss within a step)."""
    closure = inspect.signature(type(optimizer).step).parameters.get("closure")
    return closure is not None and closure.default is inspect.Parameter.empty


def eager_step(forward: Forward, optimizer: torch.optim.Optimizer) -> StepFn:
    """The tutorials' step: zero_grad, forward and loss, backward, step. An optimiser that needs a closure is
    stepped with one doing the same (as time_sequence_prediction steps LBFGS); the step reports the closure's
    first evaluation, before any update, as the plain step reports its forward pass."""

    def step(x: torch.Tensor, y: torch.Tensor):
        optimizer.zero_grad()
        outputs, loss = forward(x, y)
        loss.backward()
        optimizer.step()
        return outputs, loss

    def step_with_closure(x: torch.Tensor, y: torch.Tensor):
        first = []

        def closure():
            optimizer.zero_grad()
            outputs, loss = forward(x, y)
            loss.backward()
            if not first:
                first.append((outputs.detach() if isinstance(outputs, torch.Tensor) else outputs, loss.detach()))
            return loss

        optimizer.step(closure)
        return first[0]

    return step_with_closure if needs_closure(optimizer) else step


class Lanes(Protocol):
    """What the epoch loop trains: one model (one lane), or the models of S seeds batched together (a
    lane each). Losses and correct counts are scalars for one lane, vectors with an entry per lane else."""

    count: int
    scorer: Scorer  # what the lanes measure on each batch besides the loss, and the figures from its tallies
    scheduler: object | None  # the LR scheduler of the lanes' optimiser, if the recipe has one
    epoch_end: Callable[[], None] | None  # the recipe's own step after each epoch's evaluation, if it names one

    def train_mode(self) -> None: ...

    def step(self, x: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]: ...  # outputs, loss

    def tally(self, tally: EpochTally, outputs: torch.Tensor, y: torch.Tensor, loss: torch.Tensor) -> None: ...

    def evaluate(self, batches: Iterable[Batch]) -> EpochTally: ...

    def state(self, lane: int) -> dict[str, torch.Tensor]: ...


class OneModel:
    """One seed's model as the loop's only lane."""

    count = 1

    def __init__(self, model: nn.Module, forward: Forward, scorer: Scorer, step: StepFn, scheduler=None, epoch_end=None):
        self.model, self.forward, self.scorer, self.step, self.scheduler = model, forward, scorer, step, scheduler
        self.epoch_end = epoch_end

    def train_mode(self) -> None:
        self.model.train()

    def tally(self, tally: EpochTally, outputs, y, loss) -> None:
        tally.add(loss, self.scorer.sums(outputs, y), len(y), y.numel())

    def evaluate(self, batches) -> EpochTally:
        return evaluate(self.model, batches, self.forward, self.scorer)

    def state(self, lane: int) -> dict[str, torch.Tensor]:
        return self.model.state_dict()


def train(
    model: nn.Module,
    source: BatchSource,
    experiment,
    epochs: int,
    device: torch.device,
    step: StepFn | None = None,
    on_epoch: Callable[[dict], None] | None = None,
) -> RunOutcome:
    """One seed's run: `train_lanes` with the model as its one lane (the recipe's eager step by default)."""
    train_forward, eval_forward = forwards(experiment, model)
    scheduler = None
    if step is None:
        optimizer = make_optimizer(experiment, model.parameters())
        scheduler = make_scheduler(experiment, optimizer)
        step = eager_step(train_forward, optimizer)
    elif experiment.scheduler is not None:
        raise ValueError("a step supplied from outside has no scheduler to step: build it eagerly")
    lanes = OneModel(model, eval_forward, Scorer(experiment), step, scheduler, step_of_its_own(experiment, model, "epoch_end"))
    return train_lanes(lanes, source, experiment, epochs, device, on_epoch)[0]


def train_lanes(lanes: Lanes, source: BatchSource, experiment, epochs: int, device: torch.device,
                on_epoch: Callable[[dict], None] | None = None) -> list[RunOutcome]:
    """The epoch loop, for one seed or many: train on every batch, then evaluate valid/test on logged
    epochs. A lane whose loss (train, valid or test) stops being finite ends there, diverged; the others
    go on. `on_epoch` hears lane 0's rows."""
    training = experiment.training
    log_every, trace_every = training["log_every"], training["trace_every"]
    generators = getattr(source, "generators", None) or ()  # per-seed stand-ins for the global RNG, if any
    scheduler, scorer = lanes.scheduler, lanes.scorer
    epoch_end = getattr(lanes, "epoch_end", None)
    stop = (training["stop_metric"], training["stop_at"]) if training["stop_metric"] else None
    per_step = scheduler is not None and experiment.scheduler["interval"] == "step"
    outcomes = [RunOutcome() for _ in range(lanes.count)]
    live = list(range(lanes.count))
    timer = EpochTimer(device)
    steps_done = 0
    for epoch in range(1, epochs + 1):
        _sync(device)
        start = time.perf_counter()
        timer.start()
        lanes.train_mode()
        tally = EpochTally(scorer)
        for x, y in source.train_batches():
            outputs, loss = lanes.step(x, y)
            if per_step:
                scheduler.step()
            lanes.tally(tally, outputs, y, loss)
        train_time = timer.stop() / lanes.count  # one device's time shared by the lanes: each its share
        train = tally.summaries()
        batch_losses = tally.batch_losses() if trace_every else None
        logged = is_logged_epoch(epoch, log_every, epochs)
        # A lane that reaches the recipe's bound on a training metric stops here: this epoch is its last, logged.
        stopping = {s for s in live if stop and stop[0].startswith("train_") and passed(stop, train[s].get(stop[0].removeprefix("train_")))}
        evaluated = logged or bool(stopping) or any(not math.isfinite(train[s]["loss"]) for s in live)
        scores: dict[str, tuple | None] = {}
        if evaluated:
            for split in ("valid", "test"):
                with evaluation_scope(training, split, epoch, epochs, generators):
                    batches = source.eval_batches(split)
                    tallied = lanes.evaluate(batches) if batches is not None else None
                scores[split] = (tallied.summaries(), tallied.batch_losses()) if tallied else None
            _sync(device)
        epoch_time = (time.perf_counter() - start) / lanes.count
        for s in list(live):
            outcome, train_loss = outcomes[s], train[s]["loss"]
            outcome.epoch_train_s.append(train_time)
            outcome.train_time_s += train_time
            outcome.train_samples += sum(tally.sizes)
            if batch_losses is not None:
                outcome.trace += trace_rows(batch_losses[s], tally.sizes, trace_every, epoch, steps_done)
            if not (logged or s in stopping or not math.isfinite(train_loss)):
                continue
            row = {"epoch": epoch, **{f"train_{short}": value for short, value in train[s].items()}}
            eval_losses = {}
            for split in ("valid", "test"):
                summaries, losses = scores[split] or (None, None)
                row.update({f"{split}_{short}": value for short, value in (summaries[s] if summaries else {}).items()})
                if summaries:
                    eval_losses[split] = losses[s]
            outcome.eval_batch_losses.append(eval_losses)
            row["epoch_time_s"] = epoch_time
            row["samples_per_s"] = sum(tally.sizes) / train_time if train_time > 0 else None
            outcome.epochs.append(row)
            if on_epoch and s == 0:
                on_epoch(row)
            # The last step of an epoch can break the weights after its training loss was taken:
            # a non-finite evaluation loss is divergence too (on the last epoch, nothing else would see it).
            bad = next((k for k in ("train_loss", "valid_loss", "test_loss") if row.get(k) is not None and not math.isfinite(row[k])), None)
            if bad:
                outcome.status, outcome.diverged_epoch = "diverged", epoch
                outcome.message = f"{bad} became {row[bad]} at epoch {epoch}"
                live.remove(s)
            elif stop and passed(stop, row.get(stop[0])):
                outcome.message = f"stopped after epoch {epoch}: {stop[0]} {row[stop[0]]!r} passed {stop[1]!r}"
                live.remove(s)
        steps_done += len(tally.sizes)
        if epoch_end is not None:
            epoch_end()  # after the evaluation, on the run's own random stream, as the script does it
        if scheduler is not None and not per_step:
            scheduler.step()  # after the epoch's evaluation, as pytorch/examples' mnist steps its StepLR
        if not live:
            break
    for s, outcome in enumerate(outcomes):
        outcome.state = lanes.state(s)
    return outcomes


def passed(stop: tuple[str, float], value: float | None) -> bool:
    """Whether a value of the recipe's stopping metric passes its bound (`training.stop_metric`, `stop_at`):
    strictly better than it, a loss below it, an accuracy above it."""
    metric, bound = stop
    if value is None or not math.isfinite(value):
        return False
    return value > bound if METRICS[metric].kind.higher_is_better else value < bound


def state_sha256(state: dict[str, torch.Tensor]) -> str:
    """One digest of a run's final weights: each tensor's name, dtype, shape and bytes, in name order, so
    that the same weights give the same digest whichever engine (and layout of its state) produced them."""
    digest = hashlib.sha256()
    for name in sorted(state):
        tensor = state[name].detach().cpu().contiguous()
        digest.update(f"{name}\0{tensor.dtype}\0{tuple(tensor.shape)}\0".encode())
        digest.update(tensor.reshape(-1).view(torch.uint8).numpy().tobytes() if tensor.numel() else b"")
    return digest.hexdigest()


def nudge_one_weight(model: nn.Module, seed: int) -> tuple[str, int]:
    """Add one ulp (the next float up) to one weight, picked uniformly among all the model's floating
    parameters by a generator of `seed`; the global RNG is left alone. Returns (parameter name, flat index)."""
    params = [(name, p) for name, p in model.named_parameters() if p.is_floating_point() and p.numel()]
    total = sum(p.numel() for _, p in params)
    pick = int(torch.randint(total, (), generator=torch.Generator().manual_seed(seed)))
    for name, p in params:
        if pick < p.numel():
            with torch.no_grad():
                flat = p.view(-1)
                flat[pick] = torch.nextafter(flat[pick], torch.tensor(math.inf, dtype=p.dtype, device=p.device))
            return name, pick
        pick -= p.numel()
    raise ValueError("the model has no floating-point parameter to nudge")


def fresh_model(experiment, seed: int, device: torch.device) -> nn.Module:
    """Seed the global RNG and build the model first, as the tutorials do before anything else."""
    torch.manual_seed(seed)
    return build_model(experiment).to(device)
