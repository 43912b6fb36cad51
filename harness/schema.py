"""The recipe file's schema: which sections and keys a registry file may hold, their types, defaults and
allowed values, and the rules that span keys. `SCHEMA` is the one list; `parse_recipe` refuses anything
else with one line naming the file and the key. Plain data and checks: nothing here imports what a recipe
names (`registry` does, through `objects`).
"""

from __future__ import annotations

import math
import re
import sys
import tomllib
from pathlib import Path
from typing import Any

from . import safe_files
from .bounds import MAX_EPOCHS, MAX_SAMPLES, MAX_SEED, MAX_SEEDS
from .catalogue import BUILT_IN, DECLARED_MEASURES, MEASURES, METRIC_NAMES, METRICS, OWN_NAME, measures_recorded, split_columns
from .errors import RegistryError, did_you_mean
from .named_datasets import DATASETS, TABLES, split_counts

# What a dataset's targets are: class indices (a classifier, scored by accuracy), or real values of any shape
# (a regression, scored by the metrics it declares).
TARGETS = ("classes", "values")
# The floating-point type of the model's parameters and of the data's floating inputs and real targets.
DTYPES = ("float32", "float64")
SCHEDULER_INTERVALS = ("epoch", "step")  # step the scheduler after each epoch's evaluation, or after each optimiser step
# torch.nn losses that regress the class index as one float output (T1's MSE nets): labels become a
# float column and a prediction counts as correct when `(output + 0.5).int()` equals the label.
REGRESSION_LOSSES = ("torch.nn:MSELoss", "torch.nn:L1Loss", "torch.nn:SmoothL1Loss", "torch.nn:HuberLoss")
# When a tutorial evaluates a split: after every epoch, once after training, or not at all.
EVALUATION_TIMES = ("every-epoch", "after-training", "never")
# A recipe on MNIST runs unchanged on Fashion-MNIST (same image format) as experiment `<id>@fashion-mnist`,
# with the thresholds and smoke run of its file's [fashion_thresholds] and [fashion_smoke].
VARIANT_DATASETS = {"mnist": ("fashion-mnist",)}
VARIANT_SEPARATOR = "@"

_REQUIRED = object()


def _key(type_, default=_REQUIRED, choices=None, positive=False, unit=False, nonnegative=False, maximum=None):
    return {"type": type_, "default": default, "choices": choices, "positive": positive, "unit": unit,
            "nonnegative": nonnegative, "maximum": maximum}


# One figure a tutorial printed: a metric's value after a given epoch. A list of these is `(FIGURE,)`.
FIGURE: dict[str, dict] = {
    "metric": _key(str, choices=METRIC_NAMES),
    "epoch": _key(int, positive=True),
    "value": _key(float),
}


# An object a recipe names: what to build and its arguments (Lightning CLI's class_path + init_args).
OBJECT: dict[str, dict] = {
    "class_path": _key(str),
    "init_args": _key(dict, {}),
}
RECIPE_SECTIONS = ("data", "model", "loss", "optimizer", "scheduler", "training", "steps", "script")  # what determines a run's numbers
# What a script recipe leaves to its script: these sections are refused beside [script].
SCRIPT_LEAVES = ("data", "model", "loss", "optimizer", "scheduler", "steps", "training", "smoke", "fashion_smoke", "fashion_thresholds")
SCRIPT_PLACEHOLDERS = ("{seed}", "{epochs}", "{device}")
# How a step of the recipe's own reports its loss: the batch's mean, or its sum over the batch's samples.
STEP_REDUCTIONS = ("mean", "sum")
OBJECT_SECTIONS = ("model", "loss", "optimizer", "scheduler")


# section -> key -> rule. A type of (int,) tuple means "list of int"; dict, a table of arguments.
SCHEMA: dict[str, dict[str, dict]] = {
    "": {
        "id": _key(str),
        "title": _key(str),
        "source": _key(str),
        "notes": _key(str, ""),
        # How many seeds (0..N-1) `harness run` trains when no --seeds is given.
        "seeds": _key(int, 5, positive=True, maximum=MAX_SEEDS),  # a typo's extra zeros would run for days
    },
    "data": {
        # A name in DATASETS, or a class path: a torchvision dataset class (`torchvision.datasets:KMNIST`,
        # or just `KMNIST`) or a callable beside the recipe returning the splits (docs/recipes.md).
        "dataset": _key(str),
        "init_args": _key(dict, {}),  # the dataset class's or callable's own arguments
        # Per-sample transforms of an image dataset, in order (absent: ToTensor alone).
        "transforms": _key((OBJECT,), None),
        # Tabular datasets: train_test_split's test share, its random_state the run's seed (its default
        # 0.25 gives iris 112/38).
        "test_fraction": _key(float, 0.25, unit=True),
        # Share of the training set held out for validation with random_split (0: none).
        "valid_fraction": _key(float, 0.0, unit=True),
        # Seed of a private generator for that split (T2 fixes 42); absent: the run's global RNG.
        "split_seed": _key(int, None),
        # Batch of the evaluation passes (absent: the training batch size).
        "eval_batch_size": _key(int, None, positive=True),
        # Whether the evaluation loaders shuffle (mnist_rnn's test loader does), drawing from the RNG as a
        # shuffled DataLoader draws; the figures are sums over the split, so only the draws and rounding move.
        "eval_shuffle": _key(bool, False),
        # Class indices, or real values of any shape (a regression); see TARGETS.
        "targets": _key(str, "classes", choices=TARGETS),
        # Build the data before the model (a script that draws its data, or its target function, first).
        "before_model": _key(bool, False),
    },
    # The model: any nn.Module class (or function returning one), built after seeding, before the split.
    "model": OBJECT,
    "loss": OBJECT,
    # The optimiser over the model's parameters (passed as its first argument).
    "optimizer": OBJECT,
    # An optional LR scheduler over that optimiser; `interval` says when it steps.
    "scheduler": {**OBJECT, "interval": _key(str, "epoch", choices=SCHEDULER_INTERVALS)},
    # Steps of the recipe's own, where the standard one (outputs = model(x), loss(outputs, y)) does not fit: a
    # model returning a tuple, a loss over the inputs (autoencoders, VAEs), several losses. Each names a
    # function beside the recipe ("vae:training_step", called with (model, batch)) or a method of the model
    # ("training_step", called with (batch)); a batch is the (inputs, targets) pair the loaders give.
    "steps": {
        "training": _key(str),  # returns the loss to minimise on the batch
        "evaluation": _key(str, None),  # returns the batch's loss without gradients; absent: the training step's
        "epoch_end": _key(str, None),  # called with the model after each epoch's evaluation (a script's sampling)
        "reduction": _key(str, "mean", choices=STEP_REDUCTIONS),  # the steps' loss: a batch mean, or a sum
    },
    # Script mode: a Python script beside the recipe, run unchanged once per seed as a subprocess, its figures read
    # from what it prints (docs/scripts.md). A script recipe has no [data], [model], [loss] or [optimizer].
    "script": {
        "path": _key(str),  # the script, beside the recipe ("train.py")
        "args": _key((str,), ()),  # its arguments; {seed}, {epochs} and {device} are replaced by the run's
        "seed_env": _key(str, None),  # an environment variable that carries the seed too
        # A script that takes no seed: the harness seeds Python's, NumPy's and torch's global generators before it starts.
        "seed_globals": _key(bool, False),
        # A script that seeds itself, always with this seed: its runs are one outcome, recorded as this one seed.
        "own_seed": _key(int, None, nonnegative=True, maximum=MAX_SEED),
        # Settings of torch's own for the script's environment (TORCH_*, PYTORCH_*, CUBLAS_WORKSPACE_CONFIG): name -> value.
        "env": _key(dict, {}),
        "epochs": _key(int, positive=True),  # the epochs it trains (and reports) with these arguments
        "metrics": _key((str,), ()),  # the catalogue's metrics it reports (test_acc, train_loss, ...)
        # How it reports: regular expressions over each line of its output, their named groups `epoch` and the
        # metrics (a pattern with no `epoch` group reads the last epoch seen); or JSON lines ({"epoch": 1, ...}).
        "patterns": _key((str,), ()),
        "json_lines": _key(bool, False),
        "scale": _key(dict, {}),  # metric -> factor its printed value is multiplied by (0.01 for a percentage)
        "timeout": _key(float, 3600.0, positive=True),  # seconds a run may take before it is stopped, an error
        # A script that stops itself once a figure passes a bound (a loss below it): a run that reports fewer than
        # `epochs` counts where its last figure of `stop_metric` passes `stop_at`.
        "stop_metric": _key(str, None),
        "stop_at": _key(float, None),
    },
    "training": {
        "batch_size": _key(int, positive=True, default=None),  # absent: full batch
        # Whether the training loader shuffles (pytorch/examples' mnist does not on a CPU-only machine).
        "shuffle": _key(bool, True),
        "epochs": _key(int, positive=True),
        # Evaluate and log every N epochs (the last always); iris logs every 100 of its 2000.
        "log_every": _key(int, 1, positive=True),
        # Record the mean training loss over every N steps (T1 #7 prints it every 500); 0: off.
        "trace_every": _key(int, 0, nonnegative=True),
        # Which evaluations the tutorial itself performs. The harness evaluates every split on every
        # logged epoch for its curves; the evaluations the tutorial does not do leave the random stream
        # alone, so that training draws exactly what the tutorial's code draws.
        "tutorial_valid": _key(str, "every-epoch", choices=EVALUATION_TIMES),
        "tutorial_test": _key(str, "every-epoch", choices=EVALUATION_TIMES),
        # Where a dataset callable's training split is a function drawing one fresh batch per call: the batches an
        # epoch takes (pytorch/examples' regression draws one per step).
        "batches_per_epoch": _key(int, None, positive=True),
        # Stop once `stop_metric` is better than `stop_at` (a loss below it, an accuracy above it), as well as after
        # `epochs`: pytorch/examples' regression stops when its loss falls below 1e-3.
        "stop_metric": _key(str, None, choices=METRIC_NAMES),
        "stop_at": _key(float, None),
        # The model's and the data's floating-point type (time_sequence_prediction trains in float64).
        "dtype": _key(str, "float32", choices=DTYPES),
        # What a regression measures on each split besides its loss (data.targets = "values"): "mse", "mae", "r2".
        "metrics": _key((str,), ()),
    },
    "published": {
        # The headline figure: `metric` after `epoch` was `value` (one unseeded run of the tutorial).
        **FIGURE,
        # Further figures the tutorial printed, each {metric, epoch, value}.
        "figures": _key((FIGURE,), ()),
        "text": _key(str, ""),
        # Per-epoch points the tutorial printed, overlaid on the learning curves.
        "curve_metric": _key(str, None, choices=METRIC_NAMES),
        "curve_epochs": _key((int,), None),
        "curve_values": _key((float,), None),
        # Running training loss every `trace_every` steps, as printed.
        "trace": _key((float,), None),
        # The one test that judges the printed run, declared before any run: "curve" (the printed curve,
        # whole) or "figure" (the headline figure above); absent: the curve where one is given.
        "primary": _key(str, None, choices=("curve", "figure")),
        # The decimal places the tutorial printed its figures to, as this file records them (0.917: 3):
        # the seeds are read at that precision before they are ranked. Absent: as recorded.
        "decimals": _key(int, None, nonnegative=True, maximum=17),
    },
    # The worst mean over seeds a metric may have in faithful full runs (harness check): a minimum for an
    # accuracy, a maximum for a loss (the catalogue says which way a metric is better).
    "thresholds": {m: _key(float, None) for m in METRIC_NAMES},
    # A short run for the test suite: fewer epochs and samples, and its own minimum.
    "smoke": {
        "epochs": _key(int, 1, positive=True),
        "train_limit": _key(int, None, positive=True),
        # Absent: the test accuracy (a classifier), or a regression's first declared metric, else its loss.
        "metric": _key(str, None, choices=METRIC_NAMES),
        # The worst value it may reach: `min` for a metric where higher is better, `max` for one where lower is.
        "min": _key(float, None),
        "max": _key(float, None),
    },
}
# The same recipe on Fashion-MNIST: its thresholds and smoke run (MNIST experiments only).
SCHEMA["fashion_thresholds"] = SCHEMA["thresholds"]
SCHEMA["fashion_smoke"] = SCHEMA["smoke"]
# Equivalence margins of `harness compare` for this experiment, in the metric's own units (absolute),
# replacing the defaults per metric kind; not part of the recipe, so not of its config hash.
SCHEMA["margins"] = {m: _key(float, None, nonnegative=True) for m in METRIC_NAMES}
# This experiment as an ablation of another (A, as published): the report pairs the two by seed. What
# differs between the recipes is read off the recipes themselves; this section says what the pair measures,
# what a seed gives both arms alike (why pairing is right), and which outcomes to pair. Not part of the
# recipe, so not of its config hash.
ABLATION_OUTCOMES = ("final", "over-fitting")  # each metric after the last epoch; or T1 #10's over-fitting outcomes
SCHEMA["ablation"] = {
    "of": _key(str),
    "about": _key(str),  # what the pair measures, the report section's heading
    "shared": _key(str),
    "metrics": _key((str,), ()),  # with outcomes "final": the metrics paired (at least one)
    "outcomes": _key(str, "final", choices=ABLATION_OUTCOMES),
    # metric -> why its values mean different things in the two arms: shown, not tested
    "not_comparable": _key(dict, {}),
}
# A metric of the recipe's own, [metrics.<name>]: recorded on every split as `<split>_<name>`, from the batch
# values its function gives (or its steps return), combined over a split's batches as `reduction` says.
OWN_METRIC = {
    "label": _key(str, None),  # how it reads in a sentence ("KL divergence"); absent: its name
    "better": _key(str, choices=("higher", "lower")),
    "bounded": _key(bool, False),  # true: in [0, 1] like an accuracy, read in percent; false: any number, like a loss
    "reduction": _key(str, "mean", choices=STEP_REDUCTIONS),  # a batch's mean (weighted by its samples), or its sum
    # (outputs, targets) -> the batch's value, a function beside the recipe; absent: the recipe's steps return it.
    "function": _key(str, None),
}
MAX_OWN_METRICS = 16
OPTIONAL_SECTIONS = {"scheduler", "steps", "script", "published", "thresholds", "fashion_thresholds", "fashion_smoke", "margins", "ablation"}
# Optional sections of per-metric values: absent means none set.
METRIC_SECTIONS = ("thresholds", "fashion_thresholds", "margins")

# Bounds beyond the schema's types: values a recipe could not mean, which would otherwise pass and
# then fail inside every cell, or run until the machine gives out. (section, key) -> (least, most).
RANGES: dict[tuple[str, str], tuple[float, float]] = {
    ("data", "split_seed"): (0, MAX_SEED),
    ("training", "epochs"): (1, MAX_EPOCHS),
    ("training", "log_every"): (1, MAX_EPOCHS),
    ("smoke", "epochs"): (1, MAX_EPOCHS),
    ("smoke", "train_limit"): (1, MAX_SAMPLES),
}
# An optimiser's learning rate beyond this is a typo (the recipes use 0.001 to 1.0).
MAX_LR = 10.0
# The named datasets' sizes (tabular: before the test split) and classes.
MIN_SPLIT = 10  # samples each side of a train/test or train/validation split
# Ids name files and land in CSVs: letters a spreadsheet reads as a formula (= + - @) cannot start one.
ID_PATTERN = re.compile(r"[a-z0-9][a-z0-9._-]{0,63}")
MAX_FILE_BYTES = 1 << 20  # the registry's files are a few kB


def _type_name(rule_type) -> str:
    if _is_table_list(rule_type):
        return f"a list of tables with keys {', '.join(rule_type[0])}"
    if isinstance(rule_type, tuple):
        return f"a list of {rule_type[0].__name__}"
    return {str: "a string", int: "an integer", float: "a number", bool: "true or false", dict: "a table of arguments"}[rule_type]


def _check_value(value: Any, rule: dict, where: str) -> Any:
    rule_type = rule["type"]
    if isinstance(rule_type, tuple):
        item_type = rule_type[0]
        if not isinstance(value, list) or not all(_is_type(v, item_type) for v in value):
            raise RegistryError(f"{where} must be {_type_name(rule_type)}, got {value!r}")
        if item_type is float and not all(math.isfinite(v) for v in value):
            raise RegistryError(f"{where} must hold finite numbers, got {value!r}")
        return tuple(float(v) if item_type is float else v for v in value)
    if not _is_type(value, rule_type):
        raise RegistryError(f"{where} must be {_type_name(rule_type)}, got {value!r}")
    if rule_type is dict:
        return _checked_arguments(value, where)
    if rule_type is float:
        value = float(value)
        if not math.isfinite(value):  # TOML allows nan and inf; no recipe or threshold means them
            raise RegistryError(f"{where} must be a finite number, got {value!r}")
    if rule["choices"] and value not in rule["choices"]:
        raise RegistryError(f"{where} is {value!r}; allowed: {', '.join(rule['choices'])}{did_you_mean(value, rule['choices'])}")
    if rule["positive"] and value <= 0:
        raise RegistryError(f"{where} must be greater than 0, got {value!r}")
    if rule["nonnegative"] and value < 0:
        raise RegistryError(f"{where} must be 0 or more, got {value!r}")
    if rule["maximum"] is not None and value > rule["maximum"]:
        raise RegistryError(f"{where} must be at most {rule['maximum']}, got {value!r}")
    if rule["unit"] and not 0 <= value < 1:
        raise RegistryError(f"{where} must be in [0, 1), got {value!r}")
    return value


def _checked_arguments(value: Any, where: str) -> Any:
    """An init_args value: strings, numbers, booleans, and lists and tables of them (no TOML dates)."""
    if isinstance(value, dict):
        return {k: _checked_arguments(v, f"{where[:-1]}.{k}'") for k, v in value.items()}
    if isinstance(value, list):
        return [_checked_arguments(v, where) for v in value]
    if isinstance(value, float) and not math.isfinite(value):
        raise RegistryError(f"{where} must be a finite number, got {value!r}")
    if not isinstance(value, (str, int, float, bool)):
        raise RegistryError(f"{where} is {value!r}: arguments are strings, numbers, booleans, lists or tables")
    return value


def _is_type(value: Any, rule_type: type) -> bool:
    if rule_type is float:
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    if rule_type is int:
        return isinstance(value, int) and not isinstance(value, bool)
    return isinstance(value, rule_type)


def _ranged_section(name: str) -> str:
    return name.removeprefix("fashion_")  # [fashion_smoke] follows [smoke]'s rules


def _check_range(value, bounds: tuple | None, where: str) -> None:
    if bounds is not None and value is not None and not bounds[0] <= value <= bounds[1]:
        raise RegistryError(f"{where} is {value!r}; allowed: {bounds[0]} to {bounds[1]}")


def _section(raw: dict, name: str, path: Path, own: tuple[str, ...] = ()) -> dict:
    """A section checked against its schema; `own`: the columns of the recipe's own metrics, which every key
    naming a metric may name too."""
    return _checked_keys(raw, _with_own(SCHEMA[name], own) if own else SCHEMA[name], path, f"{name}." if name else "")


def _with_own(rules: dict, own: tuple[str, ...]) -> dict:
    """`rules` where a metric is named: the catalogue's metrics and the recipe's own."""
    out = {}
    for key, rule in rules.items():
        if rule["choices"] is METRIC_NAMES:
            rule = {**rule, "choices": (*METRIC_NAMES, *own)}
        elif _is_table_list(rule["type"]):
            rule = {**rule, "type": (_with_own(rule["type"][0], own),)}
        out[key] = rule
    if set(METRIC_NAMES) <= set(rules):  # a section keyed by metric (thresholds, margins)
        out.update({m: rules[METRIC_NAMES[0]] for m in own})
    return out


def _own_metrics(raw: Any, path: Path) -> dict[str, dict]:
    """[metrics.<name>]: each of the recipe's own metrics, checked; {} where it declares none."""
    if raw is None:
        return {}
    if not isinstance(raw, dict) or not all(isinstance(v, dict) for v in raw.values()):
        raise RegistryError(f"{path}: [metrics] holds one table per metric of the recipe's own ([metrics.kl], with 'better' = "
                            "\"lower\" ...)")
    if len(raw) > MAX_OWN_METRICS:
        raise RegistryError(f"{path}: [metrics] declares {len(raw)} metrics; at most {MAX_OWN_METRICS}")
    own = {}
    for name, spec in raw.items():
        if name in BUILT_IN:
            raise RegistryError(f"{path}: [metrics.{name}]: {name!r} is the catalogue's own ({MEASURES[name].label}); "
                                + ("declare it in 'training.metrics'" if name in DECLARED_MEASURES else "every run records it")
                                + ", or give yours another name")
        if not OWN_NAME.fullmatch(name):
            raise RegistryError(f"{path}: [metrics.{name}]: a metric's name is 1 to 32 of a-z 0-9 _, starting with a letter "
                                "(its columns are train_<name>, valid_<name>, test_<name>)")
        own[name] = _checked_keys(spec, OWN_METRIC, path, f"metrics.{name}.")
    return own


def _checked_keys(raw: dict, rules: dict, path: Path, prefix: str) -> dict:
    """`raw` validated against `rules`, defaults filled in; messages name keys as `prefix` + key."""
    for key in raw:
        if key not in rules:
            raise RegistryError(f"{path}: unknown key '{prefix}{key}'{did_you_mean(key, rules)}; allowed: {', '.join(rules)}")
    out = {}
    for key, rule in rules.items():
        where = f"{path}: '{prefix}{key}'"
        if key not in raw:
            if rule["default"] is _REQUIRED:
                raise RegistryError(f"{path}: missing key '{prefix}{key}' ({_type_name(rule['type'])})")
            out[key] = dict(rule["default"]) if isinstance(rule["default"], dict) else rule["default"]
        elif _is_table_list(rule["type"]):
            out[key] = _checked_tables(raw[key], rule["type"], path, f"{prefix}{key}")
        else:
            out[key] = _check_value(raw[key], rule, where)
            _check_range(out[key], RANGES.get((_ranged_section(prefix.split(".")[0]), key)), where)
    return out


def _is_table_list(rule_type) -> bool:
    return isinstance(rule_type, tuple) and isinstance(rule_type[0], dict)


def _checked_tables(value: Any, rule_type: tuple, path: Path, name: str) -> tuple[dict, ...]:
    if not isinstance(value, list) or not all(isinstance(v, dict) for v in value):
        raise RegistryError(f"{path}: '{name}' must be {_type_name(rule_type)}, got {value!r}")
    return tuple(_checked_keys(v, rule_type[0], path, f"{name}[{i}].") for i, v in enumerate(value))


def _validate_together(exp: dict, path: Path) -> None:
    """Rules that span keys."""
    data, training = exp["data"], exp["training"]
    ablation = exp.get("ablation")
    if ablation:
        names = (*METRIC_NAMES, *split_columns(exp["own_metrics"]))
        unknown = [m for m in ablation["metrics"] if m not in names]
        if unknown:
            raise RegistryError(f"{path}: 'ablation.metrics' names {', '.join(map(repr, unknown))}; allowed: {', '.join(names)}")
        if ablation["outcomes"] == "final" and not ablation["metrics"]:
            raise RegistryError(f"{path}: 'ablation.metrics' is empty: name the metrics to pair (e.g. [\"test_acc\"])")
        stray = [m for m in ablation["not_comparable"] if m not in ablation["metrics"]]
        if stray:
            raise RegistryError(f"{path}: 'ablation.not_comparable' names {', '.join(map(repr, stray))}, not in 'ablation.metrics'")
        if not all(isinstance(why, str) and why for why in ablation["not_comparable"].values()):
            raise RegistryError(f"{path}: 'ablation.not_comparable' maps each metric to a reason, e.g. "
                                "{ test_loss = \"A's loss is bounded below\" }")
        if ablation["outcomes"] == "over-fitting" and ablation["metrics"]:
            raise RegistryError(f"{path}: 'ablation.metrics' applies to outcomes 'final' only (over-fitting has its own)")
        if ablation["outcomes"] == "over-fitting" and not data["valid_fraction"]:
            raise RegistryError(f"{path}: 'ablation.outcomes' 'over-fitting' reads the validation curve: 'data.valid_fraction' is 0")
    _validate_sizes(exp, path)
    published = exp.get("published")
    if published:
        epochs, values = published["curve_epochs"], published["curve_values"]
        if (epochs is None) != (values is None) or (epochs and len(epochs) != len(values)):
            raise RegistryError(
                f"{path}: 'published.curve_epochs' and 'published.curve_values' must be given together, same length"
            )
        if epochs and not published["curve_metric"]:
            raise RegistryError(f"{path}: 'published.curve_metric' names what the curve measures")
        if published["primary"] == "curve" and not epochs:
            raise RegistryError(f"{path}: 'published.primary' is \"curve\", but no curve is given ('published.curve_epochs' "
                                "and 'curve_values'); judge the figure instead (primary = \"figure\")")
        if published["trace"] and not training["trace_every"]:
            raise RegistryError(f"{path}: 'published.trace' needs 'training.trace_every'")
        named = [("published.epoch", published["epoch"])]
        named += [(f"published.figures[{i}].epoch", f["epoch"]) for i, f in enumerate(published["figures"])]
        for key, epoch in named:
            _check_logged_epoch(epoch, training, path, key)
    for name in ("smoke", "fashion_smoke"):
        if exp.get(name) and exp[name]["metric"] is None:
            exp[name]["metric"] = recorded_metrics(exp)[0].replace("train_", "test_", 1)
    _validate_metrics(exp, path)
    if (training["stop_metric"] is None) != (training["stop_at"] is None):
        raise RegistryError(f"{path}: 'training.stop_metric' and 'training.stop_at' go together: the metric, and the value "
                            "it must pass to stop the run (e.g. stop_metric = \"train_loss\", stop_at = 0.001)")
    stop = training["stop_metric"]
    if stop and not stop.startswith("train_") and training["log_every"] != 1:
        raise RegistryError(f"{path}: 'training.stop_metric' {stop!r} is evaluated on logged epochs only: set 'training.log_every' = 1, "
                            "or stop on a training metric")
    for name in ("smoke", "fashion_smoke"):
        metric = exp[name]["metric"] if exp.get(name) else ""
        if metric.startswith("valid") and not data["valid_fraction"]:
            raise RegistryError(f"{path}: '{name}.metric' {metric!r} needs a validation split")
        if metric:
            own = exp["own_metrics"].get(metric.partition("_")[2])
            better_high = own["better"] == "higher" if own else METRICS[metric].kind.higher_is_better
            bound, other = ("min", "max") if better_high else ("max", "min")
            if exp[name][bound] is None or exp[name][other] is not None:
                raise RegistryError(f"{path}: '{name}.metric' is {metric!r} (better {'higher' if better_high else 'lower'}): give "
                                    f"'{name}.{bound}', the worst value its short run may reach, and no '{name}.{other}'")
    if data["dataset"] not in VARIANT_DATASETS:
        for name in ("fashion_thresholds", "fashion_smoke"):
            if exp.get(name):
                raise RegistryError(f"{path}: [{name}] applies to MNIST experiments only (they also run on Fashion-MNIST)")


def recorded_metrics(exp: dict) -> tuple[str, ...]:
    """The metrics a recipe's runs record, every split: its loss, its accuracy (a classifier) or the metrics it
    declares (a regression); a recipe with steps of its own, the loss they return."""
    if exp.get("script"):
        return tuple(exp["script"]["metrics"])  # what the script reports, as it declares it
    shorts = ("loss",) if exp.get("steps") else measures_recorded(exp["data"]["targets"], exp["training"]["metrics"])
    shorts = (*shorts, *(exp.get("own_metrics") or {}))  # its own metrics last, as their columns come last
    return split_columns(shorts)


def _validate_metrics(exp: dict, path: Path) -> None:
    """A regression declares only the measures a regression has, and every metric the recipe names elsewhere
    (its published figures, thresholds, margins, smoke run, ablation) is one its runs record."""
    targets, declared = exp["data"]["targets"], exp["training"]["metrics"]
    for name, spec in ({} if exp.get("script") else exp["own_metrics"]).items():  # a script prints its own
        if exp.get("steps") and spec["function"]:
            raise RegistryError(f"{path}: 'metrics.{name}.function' with [steps]: the steps return the recipe's own metrics "
                                f"(a dict: {{\"loss\": ..., \"{name}\": ...}}); remove 'function'")
        if not exp.get("steps") and not spec["function"]:
            raise RegistryError(f"{path}: [metrics.{name}] needs 'function', beside the recipe, taking (outputs, targets) and "
                                "giving the batch's value (or steps of the recipe's own that return it)")
    if exp.get("steps"):
        if declared:
            raise RegistryError(f"{path}: 'training.metrics' with [steps]: a step of the recipe's own reports its loss only, "
                                "which every split records; remove 'training.metrics'")
        if exp.get("loss"):
            raise RegistryError(f"{path}: [loss] with [steps]: the training step computes the loss itself; remove [loss]")
    for short in declared:
        if short not in DECLARED_MEASURES:
            raise RegistryError(f"{path}: 'training.metrics' names {short!r}; allowed: {', '.join(DECLARED_MEASURES)}"
                                f"{did_you_mean(short, DECLARED_MEASURES)}")
        if targets not in MEASURES[short].targets:
            raise RegistryError(f"{path}: 'training.metrics' names {short!r}, a regression's; set 'data.targets' = \"values\" "
                                "(real-valued targets), or remove it (a classifier records its loss and accuracy)")
    if len(set(declared)) != len(declared):
        raise RegistryError(f"{path}: 'training.metrics' names a metric twice: {list(declared)}")
    recorded = recorded_metrics(exp)
    named = [(f"{name}.{metric}", metric) for name in ("thresholds", "fashion_thresholds", "margins") for metric in exp.get(name) or {}]
    named += [(f"{name}.metric", exp[name]["metric"]) for name in ("smoke", "fashion_smoke") if exp.get(name)]
    named += [("training.stop_metric", exp["training"]["stop_metric"])] if exp["training"]["stop_metric"] else []
    published = exp.get("published")
    if published:
        named += [("published.metric", published["metric"])]
        named += [(f"published.figures[{i}].metric", f["metric"]) for i, f in enumerate(published["figures"])]
        named += [("published.curve_metric", published["curve_metric"])] if published["curve_metric"] else []
    if exp.get("ablation"):
        named += [("ablation.metrics", m) for m in exp["ablation"]["metrics"]]
        if exp["ablation"]["outcomes"] == "over-fitting" and "valid_acc" not in recorded:
            raise RegistryError(f"{path}: 'ablation.outcomes' 'over-fitting' reads the validation accuracy, which this recipe's runs "
                                "do not record; pair its final figures instead (outcomes = \"final\", metrics = [\"test_loss\"])")
    for key, metric in named:
        if metric not in recorded:
            what = ("this script reports ('script.metrics')" if exp.get("script") else "a classifier's runs record"
                    if targets == "classes" else "this regression's runs record (its loss and 'training.metrics')")
            raise RegistryError(f"{path}: '{key}' is {metric!r}, which no run of this recipe records; {what}: {', '.join(recorded)}")


def is_logged_epoch(epoch: int, log_every: int, epochs: int) -> bool:
    """Whether a run of `epochs` epochs records `epoch` in epochs.csv (every `log_every`-th, and the last)."""
    return 1 <= epoch <= epochs and (epoch % log_every == 0 or epoch == epochs)


def _check_logged_epoch(epoch: int, training: dict, path: Path, key: str) -> None:
    """A published figure is compared with the seeds' value at its epoch: the recipe must record that epoch."""
    if not is_logged_epoch(epoch, training["log_every"], training["epochs"]):
        raise RegistryError(
            f"{path}: '{key}' is {epoch}, not an epoch the recipe logs "
            f"(1 to training.epochs = {training['epochs']}, a multiple of training.log_every = {training['log_every']} or the last)"
        )


def _validate_sizes(exp: dict, path: Path) -> None:
    """Bounds that depend on a named dataset's size: the splits, the batch (others are checked by
    `harness validate`, once their data is loaded)."""
    data, training = exp["data"], exp["training"]
    dataset = data["dataset"]
    if dataset not in DATASETS:
        return
    if data["transforms"] is not None and dataset in TABLES:
        raise RegistryError(f"{path}: 'data.transforms' applies to image datasets only; {dataset} is a table of numbers")
    trained, held_out, tested = split_counts(data)
    if dataset in TABLES:
        n = TABLES[dataset].samples
        _check_split(path, "data.test_fraction", data["test_fraction"], n, tested)
    if data["valid_fraction"]:
        _check_split(path, "data.valid_fraction", data["valid_fraction"], trained + held_out, held_out)
    if training["batch_size"] is not None and training["batch_size"] > trained:
        raise RegistryError(f"{path}: 'training.batch_size' is {training['batch_size']}; allowed: 1 to {trained} "
                            f"(the samples it trains on)")


def _check_split(path: Path, key: str, fraction: float, n: int, held_out: int) -> None:
    if not MIN_SPLIT <= held_out <= n - MIN_SPLIT:
        raise RegistryError(
            f"{path}: '{key}' {fraction!r} holds out {held_out} of {n} samples, leaving {n - held_out} to train; "
            f"each side needs at least {MIN_SPLIT}: allowed: about {MIN_SPLIT / n:.4g} to {1 - MIN_SPLIT / n:.4g}")


def _read_registry_file(path: Path) -> str:
    """A registry file's text, refusing what is not a small regular file before reading any of it."""
    data = safe_files.read_user_file(path, MAX_FILE_BYTES, "an experiment is a TOML text file", "an experiment file")
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        raise RegistryError(f"{path}: not UTF-8 text; save it as UTF-8") from None


def parse_recipe(path: Path) -> dict:
    """A recipe file read and checked against `SCHEMA` and the rules that span keys: its sections as plain
    data, defaults filled in. Nothing it names is imported yet (`registry.load_experiment` does that)."""
    text = _read_registry_file(path)
    try:
        raw = tomllib.loads(text)
    except tomllib.TOMLDecodeError as e:
        raise RegistryError(f"{path}: not valid TOML: {e}") from None
    except RecursionError:
        raise RegistryError(f"{path}: not valid TOML: arrays or tables nested too deeply") from None
    except ValueError as e:  # an integer of thousands of digits, beyond what Python converts from text
        if "digits" not in str(e):
            raise RegistryError(f"{path}: not valid TOML: {' '.join(str(e).split())[:200]}") from None
        raise RegistryError(f"{path}: an integer of more than {sys.get_int_max_str_digits():,} digits; no value a recipe "
                            "takes is that large") from None
    sections = {name for name in SCHEMA if name} | {"metrics"}
    top = {k: v for k, v in raw.items() if not isinstance(v, dict)}
    for name, value in raw.items():
        if isinstance(value, dict) and name not in sections:
            raise RegistryError(f"{path}: unknown section [{name}]{did_you_mean(name, sorted(sections))}; "
                                f"allowed: {', '.join(sorted(sections))}")
    exp: dict[str, Any] = _section(top, "", path)
    exp["own_metrics"] = _own_metrics(raw.get("metrics"), path)
    own = split_columns(exp["own_metrics"])  # the columns of the recipe's own metrics, which metric keys may name
    if "script" in raw:
        return _script_recipe(raw, exp, path, own)
    for name in sorted(sections - {"metrics"}):
        if name not in raw:
            if name in OPTIONAL_SECTIONS or (name == "loss" and "steps" in raw):  # a step of its own computes its loss
                exp[name] = {} if name in METRIC_SECTIONS else None  # none set
                continue
            raise RegistryError(f"{path}: missing section [{name}]")
        exp[name] = _section(raw[name], name, path, own)
    _check_id(exp, path)
    for name in METRIC_SECTIONS:
        exp[name] = {k: v for k, v in exp[name].items() if v is not None}
    _validate_together(exp, path)
    return exp


def _check_id(exp: dict, path: Path) -> None:
    if exp["id"] != path.stem:
        raise RegistryError(f"{path}: 'id' is {exp['id']!r} but the file is named {path.name}; make them agree")
    if VARIANT_SEPARATOR in exp["id"]:
        raise RegistryError(f"{path}: 'id' may not contain {VARIANT_SEPARATOR!r} (it names dataset variants)")
    if not ID_PATTERN.fullmatch(exp["id"]):
        raise RegistryError(f"{path}: 'id' {exp['id']!r} is not a plain name: allowed: 1 to 64 of a-z 0-9 . _ -, "
                            "starting with a letter or digit")


# What 'script.env' may set: torch's own settings, which change how the script's torch behaves and run no code.
SCRIPT_ENV = re.compile(r"(?:TORCH|PYTORCH)_[A-Z0-9_]+|CUBLAS_WORKSPACE_CONFIG")


def _check_script_seed(raw: dict, script: dict, path: Path) -> None:
    """A script takes its seed one way: in its arguments or an environment variable, from the harness's seeding of
    the global generators, or not at all (it seeds itself: 'own_seed', one outcome)."""
    passed = any("{seed}" in a for a in script["args"]) or script["seed_env"] is not None
    ways = [name for name, given in (("{seed} or 'script.seed_env'", passed), ("'script.seed_globals'", script["seed_globals"]),
                                     ("'script.own_seed'", script["own_seed"] is not None)) if given]
    if not ways:
        raise RegistryError(f"{path}: [script] passes the script no seed: put {{seed}} in 'script.args' (e.g. [\"--seed\", "
                            "\"{seed}\"]), name an environment variable in 'script.seed_env', set 'script.seed_globals' = true "
                            "for a script that takes none, or 'script.own_seed' for one that seeds itself")
    if len(ways) > 1:
        raise RegistryError(f"{path}: [script] gives the seed two ways ({ways[0]} and {ways[1]}); keep the one the script reads")
    if script["own_seed"] is not None and raw.get("seeds", 1) != 1:
        raise RegistryError(f"{path}: 'seeds' is {raw['seeds']!r}, but the script seeds itself ('script.own_seed'): its runs are "
                            "one outcome; remove 'seeds'")


def _check_script_env(script: dict, path: Path) -> None:
    for name, value in script["env"].items():
        if not SCRIPT_ENV.fullmatch(name):
            raise RegistryError(f"{path}: 'script.env' sets {name!r}; a recipe may set torch's own settings only (TORCH_*, "
                                "PYTORCH_*, CUBLAS_WORKSPACE_CONFIG): set others in the shell that runs the harness")
        if not isinstance(value, str) or "\0" in value:
            raise RegistryError(f"{path}: 'script.env.{name}' must be a string (e.g. \"1\")")


def _script_recipe(raw: dict, exp: dict, path: Path, own: tuple[str, ...]) -> dict:
    """A script recipe: [script] and what judges its runs; the sections that say what trains are the script's own."""
    leaves = [name for name in SCRIPT_LEAVES if name in raw]
    if leaves:
        raise RegistryError(f"{path}: [{leaves[0]}] beside [script]: a script says itself what it trains; keep [script] and what "
                            "judges its runs ([published], [thresholds], [margins]), or write a recipe without [script]")
    _check_id(exp, path)
    script = _section(raw["script"], "script", path)
    name = script["path"]
    if Path(name).is_absolute() or ".." in Path(name).parts or not name.endswith(".py") or Path(name).name != name:
        raise RegistryError(f"{path}: 'script.path' is {name!r}: name a Python file beside the recipe (e.g. \"train.py\")")
    _check_script_seed(raw, script, path)
    for arg in script["args"]:
        stray = [w for w in re.findall(r"\{[^{}]*\}", arg) if w not in SCRIPT_PLACEHOLDERS]
        if stray:
            raise RegistryError(f"{path}: 'script.args' {arg!r} holds {stray[0]}; the placeholders are {', '.join(SCRIPT_PLACEHOLDERS)}")
    if script["seed_env"] is not None and not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", script["seed_env"]):
        raise RegistryError(f"{path}: 'script.seed_env' {script['seed_env']!r} is not an environment variable's name")
    names = (*METRIC_NAMES, *own)
    unknown = [m for m in script["metrics"] if m not in names]
    if unknown or not script["metrics"]:
        raise RegistryError(f"{path}: 'script.metrics' " + (f"names {unknown[0]!r}{did_you_mean(unknown[0], names)}" if unknown
                            else "is empty") + f"; name the metrics the script reports, from: {', '.join(names)} (or declare "
                            "one of its own in [metrics.<name>])")
    for name in exp["own_metrics"]:
        given = [key for key in ("function", "reduction") if key in raw["metrics"][name]]
        if given:
            raise RegistryError(f"{path}: 'metrics.{name}.{given[0]}' with [script]: the script computes its figures and "
                                "prints them as they are; remove it")
        if not any(m.partition("_")[2] == name for m in script["metrics"]):
            raise RegistryError(f"{path}: [metrics.{name}] is declared, but 'script.metrics' names none of its figures "
                                f"(train_{name}, valid_{name}, test_{name})")
    _check_script_env(script, path)
    if (script["stop_metric"] is None) != (script["stop_at"] is None) or script["stop_metric"] not in (None, *script["metrics"]):
        raise RegistryError(f"{path}: 'script.stop_metric' and 'script.stop_at' go together, the metric one of 'script.metrics': "
                            "the figure whose passing a bound ends the script, and that bound (e.g. stop_metric = \"train_loss\", "
                            "stop_at = 0.001)")
    if bool(script["patterns"]) == script["json_lines"]:
        raise RegistryError(f"{path}: [script] reads its output one way: give 'script.patterns' (regular expressions) or set "
                            "'script.json_lines' = true, not both")
    named = set()
    for i, pattern in enumerate(script["patterns"]):
        try:
            groups = set(re.compile(pattern).groupindex)
        except re.error as e:
            raise RegistryError(f"{path}: 'script.patterns[{i}]' is not a regular expression ({e})") from None
        stray = groups - {"epoch", *script["metrics"]}
        if stray or not groups - {"epoch"}:
            raise RegistryError(f"{path}: 'script.patterns[{i}]' " + (f"has a group {sorted(stray)[0]!r}" if stray else "reads no metric")
                                + f"; its named groups are `epoch` and metrics of 'script.metrics': {', '.join(script['metrics'])}")
        named |= groups
    missing = [m for m in script["metrics"] if script["patterns"] and m not in named]
    if missing:
        raise RegistryError(f"{path}: 'script.metrics' names {missing[0]!r}, which no pattern reads: add a group (?P<{missing[0]}>...)")
    for metric, factor in script["scale"].items():
        if metric not in script["metrics"] or not isinstance(factor, (int, float)) or isinstance(factor, bool) or not factor > 0:
            raise RegistryError(f"{path}: 'script.scale.{metric}' must map a metric of 'script.metrics' to a number above 0 "
                                "(0.01 for a percentage)")
    exp.update({name: None for name in ("model", "loss", "optimizer", "scheduler", "steps", "smoke", "fashion_smoke")})
    # What the rest of the harness reads of any recipe: its data named after the script, its epochs and logging.
    exp["data"] = {key: rule["default"] for key, rule in SCHEMA["data"].items()} | {"dataset": f"script:{name}"}
    exp["training"] = {key: rule["default"] for key, rule in SCHEMA["training"].items()} | {"epochs": script["epochs"]}
    exp["script"] = script
    if script["own_seed"] is not None:
        exp["seeds"] = 1  # its one outcome
    for section in ("published", "thresholds", "margins", "ablation", "fashion_thresholds"):
        exp[section] = _section(raw[section], section, path, own) if section in raw else ({} if section in METRIC_SECTIONS else None)
    for section in METRIC_SECTIONS:
        exp[section] = {k: v for k, v in exp[section].items() if v is not None}
    _validate_metrics(exp, path)
    published = exp.get("published")
    if published:
        for key, epoch in [("published.epoch", published["epoch"])] + [(f"published.figures[{i}].epoch", f["epoch"])
                                                                        for i, f in enumerate(published["figures"])]:
            _check_logged_epoch(epoch, exp["training"], path, key)
    return exp
