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
import math
import os
import time
from dataclasses import dataclass, field
from typing import Callable, Iterable, Protocol

import torch
from torch import nn

from .models import build_model
from .objects import accepts, instantiate
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


def labels_for(regression: bool, y: torch.Tensor) -> torch.Tensor:
    """T1's MSE recipes regress the class index as a float column; classification uses int64."""
    return y.to(torch.float32).reshape(-1, 1) if regression else y.to(torch.int64)


def count_correct(outputs: torch.Tensor, labels: torch.Tensor, regression: bool) -> torch.Tensor:
    """As the tutorials count: `(outputs + 0.5).int()` for the MSE nets, the arg-max otherwise."""
    if regression:
        return ((outputs + 0.5).int() == labels).sum()
    return (torch.max(outputs, 1).indices == labels).sum()


class EpochTally:
    """Per-batch losses and correct counts, kept on the device (no sync per step) and summed once.

    The loss reported is the usual sample mean: each batch mean weighted by its batch size. Losses
    and counts are scalars for one run, or vectors with one entry per seed for seeds trained together.
    """

    def __init__(self):
        self.losses: list[torch.Tensor] = []
        self.correct: list[torch.Tensor] = []
        self.sizes: list[int] = []

    def add(self, loss: torch.Tensor, correct: torch.Tensor, size: int) -> None:
        self.losses.append(loss.detach())
        self.correct.append(correct)
        self.sizes.append(size)

    def batch_losses(self) -> list:
        """One float per batch; for seeds trained together, one list per seed."""
        if not self.losses:
            return []
        return torch.stack(self.losses, dim=-1).double().cpu().tolist()

    def summary(self) -> tuple[float, float]:
        n = sum(self.sizes)
        if n == 0:
            return math.nan, math.nan
        losses = torch.stack(self.losses).double().cpu()
        sizes = torch.tensor(self.sizes, dtype=torch.float64)
        loss = float((losses * sizes).sum() / n)
        correct = int(torch.stack(self.correct).sum().cpu())
        return loss, correct / n

    def summaries(self) -> list[tuple[float, float]]:
        """`summary()` for each seed of vector-valued tallies."""
        n = sum(self.sizes)
        losses = torch.stack(self.losses, dim=-1).double().cpu()  # (seeds, batches)
        sizes = torch.tensor(self.sizes, dtype=torch.float64)
        loss = (losses * sizes).sum(-1) / n
        correct = torch.stack(self.correct, dim=-1).sum(-1).cpu()
        return [(float(seed_loss), int(c) / n) for seed_loss, c in zip(loss, correct)]


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


def evaluate(model: nn.Module, batches: Iterable[Batch], loss_fn: nn.Module, regression: bool) -> EpochTally:
    """Each batch's loss and correct count; `summary()` gives the split's loss and accuracy."""
    model.eval()
    tally = EpochTally()
    with torch.no_grad():
        for x, y in batches:
            outputs = model(x)
            tally.add(loss_fn(outputs, y), count_correct(outputs, y, regression), len(y))
    return tally


StepFn = Callable[[torch.Tensor, torch.Tensor], tuple[torch.Tensor, torch.Tensor]]


def eager_step(model: nn.Module, loss_fn: nn.Module, optimizer: torch.optim.Optimizer) -> StepFn:
    """The tutorials' step: zero_grad, forward, loss, backward, step."""

    def step(x: torch.Tensor, y: torch.Tensor):
        optimizer.zero_grad()
        outputs = model(x)
        loss = loss_fn(outputs, y)
        loss.backward()
        optimizer.step()
        return outputs, loss

    return step


class Lanes(Protocol):
    """What the epoch loop trains: one model (one lane), or the models of S seeds batched together (a
    lane each). Losses and correct counts are scalars for one lane, vectors with an entry per lane else."""

    count: int
    scheduler: object | None  # the LR scheduler of the lanes' optimiser, if the recipe has one

    def train_mode(self) -> None: ...

    def step(self, x: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]: ...  # outputs, loss

    def tally(self, tally: EpochTally, outputs: torch.Tensor, y: torch.Tensor, loss: torch.Tensor) -> None: ...

    def evaluate(self, batches: Iterable[Batch]) -> EpochTally: ...

    def summaries(self, tally: EpochTally) -> list[tuple[float, float]]: ...  # (loss, accuracy) per lane

    def batch_losses(self, tally: EpochTally) -> list[list[float]]: ...  # per lane

    def state(self, lane: int) -> dict[str, torch.Tensor]: ...


class OneModel:
    """One seed's model as the loop's only lane."""

    count = 1

    def __init__(self, model: nn.Module, loss_fn: nn.Module, regression: bool, step: StepFn, scheduler=None):
        self.model, self.loss_fn, self.regression, self.step, self.scheduler = model, loss_fn, regression, step, scheduler

    def train_mode(self) -> None:
        self.model.train()

    def tally(self, tally: EpochTally, outputs, y, loss) -> None:
        tally.add(loss, count_correct(outputs, y, self.regression), len(y))

    def evaluate(self, batches) -> EpochTally:
        return evaluate(self.model, batches, self.loss_fn, self.regression)

    def summaries(self, tally: EpochTally) -> list[tuple[float, float]]:
        return [tally.summary()]

    def batch_losses(self, tally: EpochTally) -> list[list[float]]:
        return [tally.batch_losses()]

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
    loss_fn = make_loss(experiment)
    scheduler = None
    if step is None:
        optimizer = make_optimizer(experiment, model.parameters())
        scheduler = make_scheduler(experiment, optimizer)
        step = eager_step(model, loss_fn, optimizer)
    elif experiment.scheduler is not None:
        raise ValueError("a step supplied from outside has no scheduler to step: build it eagerly")
    lanes = OneModel(model, loss_fn, experiment.regression, step, scheduler)
    return train_lanes(lanes, source, experiment, epochs, device, on_epoch)[0]


def train_lanes(lanes: Lanes, source: BatchSource, experiment, epochs: int, device: torch.device,
                on_epoch: Callable[[dict], None] | None = None) -> list[RunOutcome]:
    """The epoch loop, for one seed or many: train on every batch, then evaluate valid/test on logged
    epochs. A lane whose loss (train, valid or test) stops being finite ends there, diverged; the others
    go on. `on_epoch` hears lane 0's rows."""
    training = experiment.training
    log_every, trace_every = training["log_every"], training["trace_every"]
    generators = getattr(source, "generators", None) or ()  # per-seed stand-ins for the global RNG, if any
    scheduler = lanes.scheduler
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
        tally = EpochTally()
        for x, y in source.train_batches():
            outputs, loss = lanes.step(x, y)
            if per_step:
                scheduler.step()
            lanes.tally(tally, outputs, y, loss)
        train_time = timer.stop() / lanes.count  # one device's time shared by the lanes: each its share
        train = lanes.summaries(tally)
        batch_losses = lanes.batch_losses(tally) if trace_every else None
        logged = is_logged_epoch(epoch, log_every, epochs)
        evaluated = logged or any(not math.isfinite(train[s][0]) for s in live)
        scores: dict[str, tuple | None] = {}
        if evaluated:
            for split in ("valid", "test"):
                with evaluation_scope(training, split, epoch, epochs, generators):
                    batches = source.eval_batches(split)
                    tallied = lanes.evaluate(batches) if batches is not None else None
                scores[split] = (lanes.summaries(tallied), lanes.batch_losses(tallied)) if tallied else None
            _sync(device)
        epoch_time = (time.perf_counter() - start) / lanes.count
        for s in list(live):
            outcome, (train_loss, train_acc) = outcomes[s], train[s]
            outcome.epoch_train_s.append(train_time)
            outcome.train_time_s += train_time
            outcome.train_samples += sum(tally.sizes)
            if batch_losses is not None:
                outcome.trace += trace_rows(batch_losses[s], tally.sizes, trace_every, epoch, steps_done)
            if not (logged or not math.isfinite(train_loss)):
                continue
            row = {"epoch": epoch, "train_loss": train_loss, "train_acc": train_acc}
            eval_losses = {}
            for split in ("valid", "test"):
                summaries, losses = scores[split] or (None, None)
                row[f"{split}_loss"], row[f"{split}_acc"] = summaries[s] if summaries else (None, None)
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
            bad = next((k for k in ("train_loss", "valid_loss", "test_loss") if row[k] is not None and not math.isfinite(row[k])), None)
            if bad:
                outcome.status, outcome.diverged_epoch = "diverged", epoch
                outcome.message = f"{bad} became {row[bad]} at epoch {epoch}"
                live.remove(s)
        steps_done += len(tally.sizes)
        if scheduler is not None and not per_step:
            scheduler.step()  # after the epoch's evaluation, as pytorch/examples' mnist steps its StepLR
        if not live:
            break
    for s, outcome in enumerate(outcomes):
        outcome.state = lanes.state(s)
    return outcomes


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
