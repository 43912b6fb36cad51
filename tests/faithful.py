"""The tutorials' own code against the harness: every figure the code prints, at every epoch, and the
final weights, for the same seed on the CPU with one thread.

Each tutorial's code is held in tests/tutorials/ (see its package docstring). A harness run is traced
batch by batch (`trace_every = 1`, which changes nothing trained), so that each figure the tutorial
prints can be computed from the harness's own per-batch losses exactly as the tutorial computes it
(same values, same order of summation, same division): every comparison is for equality, bit for bit.

`python -m tests.faithful [EXPERIMENT ...]` (`make faithful`) runs the comparisons at each recipe's
full length and prints a table; the test suite runs them shortened (tests/test_faithful.py).
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import importlib
import io
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import torch

from harness.datasets import ensure_idx
from harness.engines import ENGINES
from harness.options import RunOptions
from harness.errors import DataError
from harness.registry import load_registry
from harness.training import RunOutcome

ROOT = Path(__file__).resolve().parent.parent

ENGINE_NAMES = ("reference", "fast")
IRIS_SAMPLES = 150
IMAGE_SPLITS = {"train": 60000, "test": 10000}  # MNIST's training and test set sizes

Figures = dict  # epoch -> {figure name: value}


def running_sum(values) -> float:
    """`total += value` from 0.0, in order, as the tutorials accumulate `loss.item()`."""
    total = 0.0
    for value in values:
        total += value
    return total


@dataclass
class HarnessRun:
    """A harness run, with what the derivations need to restate it as a tutorial's figures."""

    experiment: object
    options: RunOptions
    outcome: RunOutcome

    def batch_losses(self, epoch: int) -> list[float]:
        """The training batches' losses of one epoch, in order (from the batch-by-batch trace)."""
        return [row["running_loss"] for row in self.outcome.trace if row["epoch"] == epoch]

    def n_train(self) -> int:
        return self.outcome.train_samples // len(self.epochs())

    def epochs(self) -> list[int]:
        return sorted({row["epoch"] for row in self.outcome.trace})

    def rows(self) -> dict[int, tuple[dict, dict]]:
        """Logged epoch -> (its epochs.csv row, its evaluation losses batch by batch)."""
        return {row["epoch"]: (row, losses) for row, losses in zip(self.outcome.epochs, self.outcome.eval_batch_losses)}

    def n_eval(self, split: str) -> int:
        """How many samples of `split` are evaluated."""
        data, limit = self.experiment.data, self.options.eval_limit
        if data["dataset"] == "iris":
            full = IRIS_SAMPLES - self.n_train()
        elif split == "test":
            full = IMAGE_SPLITS["test"]
        else:
            full = IMAGE_SPLITS["train"] - int(IMAGE_SPLITS["train"] * (1 - data["valid_fraction"]))
        return full if limit is None else min(limit, full)

    def correct(self, row: dict, split: str) -> int:
        """The count of correct answers behind an accuracy."""
        n = self.n_train() if split == "train" else self.n_eval(split)
        return round(row[f"{split}_acc"] * n)


# How each tutorial computes what it prints, from the harness's run.

def t1_iris(run: HarnessRun, tests: bool) -> Figures:
    """T1 #2, #3, #6: the loss every 100 epochs; after training, the count correct on the training set
    (from the last step's outputs) and, for #2, on the test set."""
    rows = run.rows()
    figures = {epoch: {"loss": row["train_loss"]} for epoch, (row, _) in rows.items()}
    last, (row, _) = max(rows.items())
    figures[last]["train_correct"] = run.correct(row, "train")
    if tests:
        figures[last]["test_correct"] = run.correct(row, "test")
    return figures


def t1_running_loss(run: HarnessRun) -> Figures:
    """T1 #7, #8: the mean loss of every 500 batches; after training, the test count and total."""
    figures = {}
    for epoch in run.epochs():
        losses = run.batch_losses(epoch)
        chunks = [losses[i - 500:i] for i in range(500, len(losses) + 1, 500)]
        figures[epoch] = {"running_loss": [running_sum(chunk) / 500 for chunk in chunks]} if chunks else {}
    last, (row, _) = max(run.rows().items())
    figures[last].update(test_correct=run.correct(row, "test"), test_total=run.n_eval("test"))
    return figures


def t1_validated(run: HarnessRun) -> Figures:
    """T1 #10: per epoch, losses as sums of batch means over the sample count, accuracies."""
    n_train, n_valid = run.n_train(), run.n_eval("valid")
    return {epoch: {"train_loss": running_sum(run.batch_losses(epoch)) / n_train,
                    "train_accuracy": row["train_acc"],
                    "valid_loss": running_sum(losses["valid"]) / n_valid,
                    "valid_accuracy": row["valid_acc"]}
            for epoch, (row, losses) in run.rows().items()}


def t2(run: HarnessRun) -> Figures:
    """T2: per epoch, the batch losses averaged over batches (training, validation) and the validation
    accuracy in percent; after training, the test accuracy in percent."""
    n_valid = run.n_eval("valid")
    figures = {}
    for epoch, (row, losses) in run.rows().items():
        train_losses = run.batch_losses(epoch)
        figures[epoch] = {"train_loss": running_sum(train_losses) / len(train_losses),
                          "valid_loss": running_sum(losses["valid"]) / len(losses["valid"]),
                          "valid_accuracy": 100 * run.correct(row, "valid") / n_valid}
    last, (row, _) = max(run.rows().items())
    figures[last]["test_accuracy"] = 100 * run.correct(row, "test") / run.n_eval("test")
    return figures


def t4(run: HarnessRun) -> Figures:
    """T4: per epoch, accuracies and the batch losses averaged over batches, training and test."""
    figures = {}
    for epoch, (row, losses) in run.rows().items():
        train_losses = run.batch_losses(epoch)
        figures[epoch] = {"train_acc": row["train_acc"], "train_loss": running_sum(train_losses) / len(train_losses),
                          "test_acc": row["test_acc"], "test_loss": running_sum(losses["test"]) / len(losses["test"])}
    return figures


def pytorch_mnist(run: HarnessRun) -> Figures:
    """pytorch/examples' mnist: per epoch, the loss of every 10th training batch; the test pass's summed
    NLL over the test set's size, as printed (4 decimals), and its correct count."""
    figures = {}
    n_test, batch = run.n_eval("test"), run.experiment.data["eval_batch_size"]
    sizes = [min(batch, n_test - i) for i in range(0, n_test, batch)]
    for epoch, (row, losses) in run.rows().items():
        summed = running_sum(mean * size for mean, size in zip(losses["test"], sizes))
        figures[epoch] = {"train_loss": run.batch_losses(epoch)[::10], "test_loss": f"{summed / n_test:.4f}",
                          "test_correct": run.correct(row, "test")}
    return figures


def t5(run: HarnessRun) -> Figures:
    """T5: after training, the last batch's loss and the test accuracy."""
    last, (row, _) = max(run.rows().items())
    return {last: {"loss": run.batch_losses(last)[-1], "test_acc": row["test_acc"]}}


@dataclass(frozen=True)
class Case:
    tutorial: str  # a module of tests.tutorials
    derive: Callable[[HarnessRun], Figures]  # the tutorial's figures, from the harness's run
    entry: str = "main"  # the module's function that runs the tutorial's code
    # Shortened for the test suite: at least 3 epochs (the stream of epoch 2 onwards), on a subset.
    short: RunOptions = RunOptions()
    registry: str = "experiments"  # the registry directory holding the recipe, from the project's root

    @property
    def title(self) -> str:
        return importlib.import_module(f"tests.tutorials.{self.tutorial}").__doc__.split(":")[0]


CASES = {
    "iris-mse": Case("t1_02_iris_mse", lambda run: t1_iris(run, tests=True)),
    "iris-ce": Case("t1_03_iris_ce", lambda run: t1_iris(run, tests=False)),
    "iris-mylinear": Case("t1_06_iris_mylinear", lambda run: t1_iris(run, tests=False)),
    # Shortened, T1 #7 and #8 print no running loss (one per 500 batches): their full length does.
    "mnist-mlp": Case("t1_07_mnist_mlp", t1_running_loss, short=RunOptions(epochs=3, train_limit=3000, eval_limit=500)),
    "mnist-cnn": Case("t1_08_mnist_cnn", t1_running_loss, short=RunOptions(epochs=3, train_limit=1500, eval_limit=500)),
    "mnist-cnn-50": Case("t1_10_mnist_cnn_50", t1_validated, short=RunOptions(epochs=3, train_limit=1500, eval_limit=500)),
    "mnist-cnn-dropout-50": Case("t1_10_mnist_cnn_50", t1_validated, entry="main_dropout",
                                 short=RunOptions(epochs=3, train_limit=1500, eval_limit=500)),
    # Limits that leave a last, smaller batch (batch 64), where averaging over batches and over samples differ.
    "mnist-mynet-adam": Case("t2_mnist_mynet_adam", t2, short=RunOptions(epochs=3, train_limit=2000, eval_limit=500)),
    "mnist-mlp-sgd-50": Case("t4_mnist_mlp_sgd_50", t4, short=RunOptions(epochs=3, train_limit=2000, eval_limit=500)),
    "mnist-sequential-adam": Case("t5_mnist_sequential_adam", t5, short=RunOptions(epochs=3, train_limit=2000, eval_limit=500)),
    # A user's recipe, with its model in a module beside it (a 1.2M-parameter CNN: the shortest subsets).
    "pytorch-mnist": Case("pytorch_examples_mnist", pytorch_mnist, registry="examples/pytorch-mnist",
                          short=RunOptions(epochs=3, train_limit=1280, eval_limit=1500)),
}


def experiment_of(exp_id: str):
    """The registered experiment a case checks, from its own registry directory."""
    return load_registry(ROOT / CASES[exp_id].registry)[exp_id]


@contextlib.contextmanager
def one_thread():
    """One thread for the comparison (as the committed rows), and the caller's settings back after."""
    threads, deterministic = torch.get_num_threads(), torch.are_deterministic_algorithms_enabled()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(threads)
        torch.use_deterministic_algorithms(deterministic)


def run_tutorial(case: Case, seed: int, epochs: int, options: RunOptions) -> tuple[Figures, torch.nn.Module]:
    """The tutorial's code as a user runs it (default kernels, not the harness's deterministic ones);
    what it prints is kept from the terminal."""
    main = getattr(importlib.import_module(f"tests.tutorials.{case.tutorial}"), case.entry)
    torch.use_deterministic_algorithms(False)
    with contextlib.redirect_stdout(io.StringIO()):
        return main(seed, epochs, root=options.data_dir, train_limit=options.train_limit, eval_limit=options.eval_limit)


def run_harness(experiment, engine: str, seed: int, options: RunOptions) -> HarnessRun:
    traced = dataclasses.replace(experiment, training={**experiment.training, "trace_every": 1})
    (outcome,) = ENGINES[engine](traced, [seed], torch.device("cpu"), options)
    if outcome.status != "ok":
        raise RuntimeError(f"{experiment.id} ({engine}): {outcome.message}")
    return HarnessRun(traced, options, outcome)


def first_difference(tutorial: Figures, harness: Figures) -> str | None:
    """The first figure (by epoch, then in the tutorial's order) that differs; None when all are equal."""
    if sorted(tutorial) != sorted(harness):
        return f"epochs with figures: tutorial {sorted(tutorial)}, harness {sorted(harness)}"
    for epoch in sorted(tutorial):
        ours, theirs = tutorial[epoch], harness[epoch]
        for name in list(ours) + [k for k in theirs if k not in ours]:
            if ours.get(name) != theirs.get(name):
                return f"epoch {epoch} {name}: tutorial {ours.get(name)!r}, harness {theirs.get(name)!r}"
    return None


def weights_difference(net: torch.nn.Module, state: dict) -> str | None:
    """The first parameter or buffer that differs (compared in creation order: the names differ)."""
    ours, theirs = list(net.state_dict().items()), list(state.items())
    if len(ours) != len(theirs):
        return f"final weights: {len(ours)} tensors in the tutorial's net, {len(theirs)} in the harness's"
    for (name, value), (their_name, their_value) in zip(ours, theirs):
        if value.shape != their_value.shape or not torch.equal(value, their_value):
            return f"final weights: {name} (tutorial) differs from {their_name} (harness)"
    return None


@dataclass
class Comparison:
    experiment: str
    epochs: int
    tutorial: Figures
    differences: dict[str, str | None]  # engine -> first difference, None: identical

    @property
    def identical(self) -> bool:
        return not any(self.differences.values())


def compare(experiment, seed: int, options: RunOptions, engines=ENGINE_NAMES) -> Comparison:
    """Run the tutorial's code and each engine for `seed` with `options`, and compare them."""
    case = CASES[experiment.id]
    epochs = options.epochs_for(experiment)
    with one_thread():
        figures, net = run_tutorial(case, seed, epochs, options)
        differences = {}
        for engine in engines:
            run = run_harness(experiment, engine, seed, options)
            differences[engine] = first_difference(figures, case.derive(run)) or weights_difference(net, run.outcome.state)
    return Comparison(experiment.id, epochs, figures, differences)


def parse_args(argv):
    parser = argparse.ArgumentParser(prog="python -m tests.faithful", description=__doc__.splitlines()[0])
    parser.add_argument("experiments", nargs="*", metavar="EXPERIMENT", help=f"default: all of {', '.join(CASES)}")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--data-dir", help="where MNIST is kept (default: data/, or HARNESS_DATA_DIR)")
    parser.add_argument("--data-mirror", help="a directory with the four MNIST *.gz files (or HARNESS_DATA_MIRROR)")
    return parser.parse_args(argv)


def main(argv=None) -> int:
    from tabulate import tabulate

    from harness.datasets import default_data_dir

    args = parse_args(argv)
    unknown = [e for e in args.experiments if e not in CASES]
    if unknown:
        print(f"faithful: no tutorial code for {', '.join(unknown)}; choose from {', '.join(CASES)}", file=sys.stderr)
        return 2
    data_dir = str(args.data_dir or default_data_dir())
    table, all_identical = [], True
    for exp_id in args.experiments or list(CASES):
        experiment = experiment_of(exp_id)
        if experiment.data["dataset"] != "iris":
            try:
                ensure_idx(experiment.data["dataset"], data_dir, args.data_mirror)
            except DataError as e:
                print(f"faithful: {e}", file=sys.stderr)
                return 2
        result = compare(experiment, args.seed, RunOptions(data_dir=data_dir, mirror=args.data_mirror))
        verdicts = [result.differences[e] or "identical" for e in ENGINE_NAMES]
        print(f"{exp_id}: {result.epochs} epochs, " + ", ".join(f"{e} {v}" for e, v in zip(ENGINE_NAMES, verdicts)), flush=True)
        table.append([exp_id, CASES[exp_id].title, result.epochs, *verdicts])
        all_identical &= result.identical
    print()
    print(f"The tutorials' code against the harness, seed {args.seed}, CPU, one thread:")
    print(tabulate(table, headers=["experiment", "tutorial", "epochs checked", *ENGINE_NAMES], tablefmt="github"))
    return 0 if all_identical else 1


if __name__ == "__main__":
    sys.exit(main())
