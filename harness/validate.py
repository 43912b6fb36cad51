"""A recipe checked end to end before anything trains: `harness validate`, and the first step of `harness run`.

Loading the registry has already imported every class path and checked its arguments against its
signature. This builds what a run builds, on the CPU, with the random streams set aside: the model
(its parameters and buffers counted on the meta device first, so that a typo's billion weights is
never allocated), the data and its split, one forward pass on one training batch, the loss on it, the
optimiser and scheduler and one training step with them (through a closure where the optimiser needs
one), and for the engine asked for, what it needs beyond that (the tensor path of `fast`, vmap for
`multiseed`). The first problem is one line naming the file, the key and the fix.
"""

from __future__ import annotations

import torch

from .datasets import as_tensors, fresh_batch
from .errors import HarnessError, RegistryError, one_line
from .models import build_model, parameter_count
from .named_datasets import DATASETS, classes as named_classes
from .training import (Scorer, inputs_for, labels_for, make_loss, make_optimizer, make_scheduler, needs_closure, step_of_its_own,
                       step_result)

MAX_PARAMETERS = 100_000_000  # the largest tutorial recipe has 535,818
PROBE_SAMPLES = 256  # at most this many samples in the one batch checked


def validate(experiment, options, engine: str = "reference") -> int:
    """Raise a one-line HarnessError at the first thing in `experiment` a run would fail on; else return
    the model's parameter count (0 for a script, whose model is its own)."""
    from .engines import SCRIPT_ENGINE
    from .engines.sources import batch_sizes_of, load_splits

    if (engine == SCRIPT_ENGINE) != bool(experiment.script):
        raise HarnessError(f"{experiment.id}: " + (f"a script recipe runs on the {SCRIPT_ENGINE} engine only (not --engine {engine})"
                           if experiment.script else f"--engine {SCRIPT_ENGINE} runs script recipes ([script]) only"))
    if experiment.script:
        from .engines.script import check

        check(experiment, options)
        return 0

    where = experiment.path
    with torch.random.fork_rng(devices=[]):
        with torch.device("meta"):
            shape = build_model(experiment)
        count = parameter_count(shape)
        buffered = sum(b.numel() for b in shape.buffers())  # BatchNorm's running statistics take memory too
        if count + buffered > MAX_PARAMETERS:
            raise RegistryError(f"{where}: [model] makes {count:,} parameters and {buffered:,} buffer values; allowed: at most "
                                f"{MAX_PARAMETERS:,} in all (check its init_args for a typo)")
        model = build_model(experiment)
        splits = load_splits(experiment, 0, options)
        train_set, train_idx = splits.split("train")
        if splits.fresh is not None:  # a training split drawn batch by batch: one batch drawn
            x, y = fresh_batch(experiment, splits.fresh)
        else:
            if not train_idx:
                raise RegistryError(f"{where}: the training split is empty; check [data]")
            batch, _ = batch_sizes_of(experiment)
            if batch is not None and batch > len(train_idx):
                raise RegistryError(f"{where}: 'training.batch_size' is {batch}; allowed: 1 to {len(train_idx)} (the samples it trains on)")
            n = min(batch or len(train_idx), PROBE_SAMPLES)
            x, y = _first_samples(train_set, train_idx[:n], experiment, engine)
        x, y = inputs_for(experiment, x), labels_for(experiment, y)
        model.train()
        from .objects import build

        # One forward pass, as training takes it: its loss then makes the one training step below.
        if experiment.steps:
            loss = _steps_of_its_own(experiment, model, x, y)
        else:
            outputs = build(model, {}, experiment.directory, f"{where}: a forward pass of [model] on a batch of shape {tuple(x.shape)}", x)
            _check_outputs(experiment, outputs, x, y, train_set, splits)
            loss_fn = make_loss(experiment)
            loss = build(loss_fn, {}, experiment.directory,
                         f"{where}: [loss] {experiment.loss['class_path']} on outputs of shape {tuple(outputs.shape)} "
                         f"and labels {tuple(y.shape)}", outputs, y)
            if not (torch.is_tensor(loss) and loss.dim() == 0):
                raise RegistryError(f"{where}: [loss] {experiment.loss['class_path']} gives {getattr(loss, 'shape', type(loss).__name__)}, "
                                    "not one number; use its mean (reduction='mean')")
            if experiment.own_metrics:  # each of the recipe's own metric functions, once, on the batch
                build(Scorer(experiment).sums, {}, experiment.directory, f"{where}: [metrics] on outputs of shape "
                      f"{tuple(outputs.shape)} and targets {tuple(y.shape)}", outputs, y)
        optimizer = make_optimizer(experiment, model.parameters())
        make_scheduler(experiment, optimizer)
        _one_step(experiment, model, loss, optimizer)
        if engine == "multiseed":
            from .engines.multiseed import check_batchable

            check_batchable(experiment, model, x, y)
    return count


def _steps_of_its_own(experiment, model, x, y):
    """The recipe's own steps on the batch: the evaluation step (in eval mode, without gradients) and the
    epoch-end step each once, then the training step, whose loss makes the training step below; each must
    give one number, the training step's one the model's parameters lead to."""
    from .objects import build

    where = experiment.path
    for key in ("evaluation", "epoch_end"):
        step = step_of_its_own(experiment, model, key)
        if step is None:
            continue
        model.eval()
        with torch.no_grad():
            found = build(step, {}, experiment.directory, f"{where}: 'steps.{key}' {experiment.steps[key]}", *(((x, y),) if key == "evaluation" else ()))
        model.train()
        found = _loss_of(experiment, "evaluation", found) if key == "evaluation" else None
        if key == "evaluation" and not (torch.is_tensor(found) and found.dim() == 0):
            raise RegistryError(f"{where}: 'steps.evaluation' {experiment.steps[key]} gives {_shown(found)}, not one number; "
                                "return the batch's loss (a tensor of one value)")
    loss = build(step_of_its_own(experiment, model, "training"), {}, experiment.directory,
                 f"{where}: 'steps.training' {experiment.steps['training']} on a batch of shape {tuple(x.shape)}", (x, y))
    loss = _loss_of(experiment, "training", loss)
    if not (torch.is_tensor(loss) and loss.dim() == 0 and loss.requires_grad):
        raise RegistryError(f"{where}: 'steps.training' {experiment.steps['training']} gives {_shown(loss)}, not one number that "
                            "the model's parameters lead to; return the batch's loss to minimise (a tensor of one value)")
    return loss


def _loss_of(experiment, key: str, found):
    """A step's loss: what it returns, or the "loss" of the dict it returns beside the recipe's own metrics, which
    must then be those [metrics] declares, each one number."""
    figures, loss = step_result(experiment, key, found)
    if figures is not None:
        Scorer(experiment).own_values(figures)
    return loss


def _shown(value) -> str:
    if torch.is_tensor(value):
        return f"a tensor of shape {tuple(value.shape)}" + ("" if value.requires_grad else " without gradients")
    return f"a {type(value).__name__}"


class _FirstUpdateTaken(Exception):
    pass


def _one_step(experiment, model, loss, optimizer) -> None:
    """One training step on the batch's loss, as the loop takes it (with a closure where the optimiser needs
    one): settings torch cannot step with, or that make the weights non-finite at once, are refused here
    rather than failing every run."""
    where, name = experiment.path, experiment.optimizer["class_path"]
    settings = experiment.optimizer.get("init_args") or {}
    optimizer.zero_grad()
    try:
        loss.backward()
    except RuntimeError as e:
        what = f"'steps.training' {experiment.steps['training']}" if experiment.steps else f"[loss] {experiment.loss['class_path']}"
        raise RegistryError(f"{where}: {what} cannot be differentiated through [model] "
                            f"({one_line(str(e))}); the model must have parameters the loss depends on") from None
    unused = [loss]

    def closure():
        # The probe's loss, its gradients taken. An optimiser with a closure evaluates again only after its
        # first update (LBFGS up to 25 times a step, each on the whole batch): that update is all the probe needs.
        if unused:
            return unused.pop()
        raise _FirstUpdateTaken

    try:
        optimizer.step(closure) if needs_closure(optimizer) else optimizer.step()
    except _FirstUpdateTaken:
        pass
    except Exception as e:  # noqa: BLE001 - torch's own errors, each made one line naming the recipe's key
        raise RegistryError(f"{where}: [optimizer] {name} {settings} cannot take a training step ({one_line(str(e))}); "
                            "check its init_args") from None
    if not all(torch.isfinite(p).all() for p in model.parameters()):
        raise RegistryError(f"{where}: one training step with [optimizer] {name} {settings} makes the weights infinite or NaN; "
                            "check its init_args (a learning rate or weight decay far too large)")


def _first_samples(dataset, idx, experiment, engine: str):
    """The first samples of a split as the engine would hold them: stacked tensors (fast, multiseed, which
    need transforms that draw nothing), or sample by sample as a DataLoader collates them (reference)."""
    if engine in ("fast", "multiseed"):
        return as_tensors(dataset, idx, experiment)
    from torch.utils.data import Subset, default_collate

    from .objects import build

    samples = build(lambda: [Subset(dataset, idx)[i] for i in range(len(idx))], {}, experiment.directory,
                    f"{experiment.path}: reading a sample of 'data.dataset' {experiment.dataset}")
    return default_collate(samples)[:2]


def _check_outputs(experiment, outputs, x, y, train_set, splits) -> None:
    where, model = experiment.path, experiment.model["class_path"]
    if experiment.real_targets:
        if not torch.is_tensor(outputs) or outputs.shape != y.shape:
            shape = tuple(outputs.shape) if torch.is_tensor(outputs) else type(outputs).__name__
            raise RegistryError(f"{where}: [model] {model} gives {shape} for targets of shape {tuple(y.shape)}; a regression's "
                                "outputs must have its targets' shape (the errors are taken element by element)")
        return
    if not torch.is_tensor(outputs) or outputs.dim() != 2 or outputs.shape[0] != x.shape[0]:
        shape = tuple(outputs.shape) if torch.is_tensor(outputs) else type(outputs).__name__
        raise RegistryError(f"{where}: [model] {model} gives {shape} for a batch of {x.shape[0]}; "
                            f"it must give (batch, outputs): one row per sample")
    width = outputs.shape[1]
    if experiment.regression:
        if width != 1:
            raise RegistryError(f"{where}: [loss] {experiment.loss['class_path']} regresses the class index, so [model] must give "
                                f"1 output per sample, not {width}; for real-valued targets set 'data.targets' = \"values\"")
        return
    if experiment.dataset in DATASETS:
        classes = named_classes(experiment.dataset)
    else:  # the largest label + 1: of the drawn batch, where the split is drawn batch by batch
        classes = int(y.max()) + 1 if splits.fresh is not None else _classes(train_set, splits)
    if width < classes:
        raise RegistryError(f"{where}: [model] {model} gives {width} outputs per sample, but {experiment.dataset} has {classes} classes: "
                            f"a classifier needs an output per class ({classes} or more)")


def _classes(train_set, splits) -> int:
    """The number of classes of a dataset the harness does not know by name: its largest label + 1."""
    labels = getattr(train_set, "targets", None)
    if labels is None and hasattr(train_set, "tensors"):
        labels = train_set.tensors[1]
    if labels is None:
        labels = [train_set[i][1] for i in splits.train_idx[:PROBE_SAMPLES]]
    return int(torch.as_tensor(labels).max()) + 1
