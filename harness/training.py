"""The training loop every engine shares, and the pieces of a run: loss, optimiser, metrics.

An engine only decides where batches come from (a `BatchSource`): the reference engine uses the
tutorials' DataLoaders, the fast engine slices tensors already on the device. Everything else (the
step, the metrics, how losses are averaged, when to stop) is this one file, so two engines fed the
same batches produce the same numbers.
"""

from __future__ import annotations

import contextlib
import math
import os
import time
from dataclasses import dataclass, field
from typing import Callable, Iterable, Protocol

import torch
from torch import nn

from .models import build_model
from .registry import is_logged_epoch

Batch = tuple[torch.Tensor, torch.Tensor]


def set_determinism() -> None:
    """Deterministic kernels everywhere; cuBLAS needs its workspace fixed before first use."""
    os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
    torch.use_deterministic_algorithms(True)
    torch.backends.cudnn.benchmark = False


def make_loss(kind: str) -> nn.Module:
    return nn.MSELoss() if kind == "mse" else nn.CrossEntropyLoss()


def make_optimizer(training: dict, params, capturable: bool = False) -> torch.optim.Optimizer:
    """The recipe's optimiser. `capturable` keeps Adam's step count on the device, for CUDA graphs
    (SGD keeps no such count and needs no flag)."""
    if training["optimizer"] == "adam":
        return torch.optim.Adam(params, lr=training["lr"], capturable=capturable)
    return torch.optim.SGD(params, lr=training["lr"], momentum=training["momentum"])


def labels_for(loss: str, y: torch.Tensor) -> torch.Tensor:
    """T1's MSE recipes regress the class index as a float column; classification uses int64."""
    return y.to(torch.float32).reshape(-1, 1) if loss == "mse" else y.to(torch.int64)


def count_correct(outputs: torch.Tensor, labels: torch.Tensor, loss: str) -> torch.Tensor:
    """As the tutorials count: `(outputs + 0.5).int()` for the MSE nets, the arg-max otherwise."""
    if loss == "mse":
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


def evaluate(model: nn.Module, batches: Iterable[Batch], loss_fn: nn.Module, loss: str) -> EpochTally:
    """Each batch's loss and correct count; `summary()` gives the split's loss and accuracy."""
    model.eval()
    tally = EpochTally()
    with torch.no_grad():
        for x, y in batches:
            outputs = model(x)
            tally.add(loss_fn(outputs, y), count_correct(outputs, y, loss), len(y))
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


def train(
    model: nn.Module,
    source: BatchSource,
    experiment,
    epochs: int,
    device: torch.device,
    step: StepFn | None = None,
    on_epoch: Callable[[dict], None] | None = None,
) -> RunOutcome:
    """The epoch loop: train on every batch, then evaluate valid/test on logged epochs."""
    training = experiment.training
    loss_kind = training["loss"]
    loss_fn = make_loss(loss_kind)
    if step is None:
        step = eager_step(model, loss_fn, make_optimizer(training, model.parameters()))
    log_every, trace_every = training["log_every"], training["trace_every"]
    outcome = RunOutcome()
    timer = EpochTimer(device)
    steps_done = 0
    for epoch in range(1, epochs + 1):
        _sync(device)
        start = time.perf_counter()
        timer.start()
        model.train()
        tally = EpochTally()
        for x, y in source.train_batches():
            outputs, loss = step(x, y)
            tally.add(loss, count_correct(outputs, y, loss_kind), len(y))
        train_time = timer.stop()
        train_loss, train_acc = tally.summary()
        outcome.epoch_train_s.append(train_time)
        outcome.train_time_s += train_time
        outcome.train_samples += sum(tally.sizes)
        if trace_every:
            outcome.trace += trace_rows(tally.batch_losses(), tally.sizes, trace_every, epoch, steps_done)
        steps_done += len(tally.sizes)

        diverged = not math.isfinite(train_loss)
        if diverged or is_logged_epoch(epoch, log_every, epochs):
            row = {"epoch": epoch, "train_loss": train_loss, "train_acc": train_acc}
            eval_losses = {}
            for split in ("valid", "test"):
                with evaluation_scope(training, split, epoch, epochs):
                    batches = source.eval_batches(split)
                    scores = evaluate(model, batches, loss_fn, loss_kind) if batches is not None else None
                row[f"{split}_loss"], row[f"{split}_acc"] = scores.summary() if scores else (None, None)
                if scores:
                    eval_losses[split] = scores.batch_losses()
            outcome.eval_batch_losses.append(eval_losses)
            _sync(device)
            row["epoch_time_s"] = time.perf_counter() - start
            row["samples_per_s"] = sum(tally.sizes) / train_time if train_time > 0 else None
            outcome.epochs.append(row)
            if on_epoch:
                on_epoch(row)
            # The last step of an epoch can break the weights after its training loss was taken:
            # a non-finite evaluation loss is divergence too (on the last epoch, nothing else would see it).
            bad = next((k for k in ("train_loss", "valid_loss", "test_loss") if row[k] is not None and not math.isfinite(row[k])), None)
            if bad:
                outcome.status, outcome.diverged_epoch = "diverged", epoch
                outcome.message = f"{bad} became {row[bad]} at epoch {epoch}"
                break
    outcome.state = model.state_dict()
    return outcome


def fresh_model(experiment, seed: int, device: torch.device) -> nn.Module:
    """Seed the global RNG and build the model first, as the tutorials do before anything else."""
    torch.manual_seed(seed)
    return build_model(experiment.model).to(device)
