"""The experiment registry: one TOML file per experiment in experiments/, validated into plain data.

Each file has the sections below; `SCHEMA` is the single source of truth for which keys exist, their
types, defaults and allowed values, and `load_registry` rejects anything else with a one-line error
naming the file and the key.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import math
import os
import re
import sys
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from . import safe_files
from .catalogue import METRIC_NAMES
from .named_datasets import DATASETS, TABLES, split_counts
from .bounds import MAX_EPOCHS, MAX_SAMPLES, MAX_SEED, MAX_SEEDS
from .errors import RegistryError, did_you_mean

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
RECIPE_SECTIONS = ("data", "model", "loss", "optimizer", "scheduler", "training")  # what determines a run's numbers
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
    },
    # The model: any nn.Module class (or function returning one), built after seeding, before the split.
    "model": OBJECT,
    "loss": OBJECT,
    # The optimiser over the model's parameters (passed as its first argument).
    "optimizer": OBJECT,
    # An optional LR scheduler over that optimiser; `interval` says when it steps.
    "scheduler": {**OBJECT, "interval": _key(str, "epoch", choices=SCHEDULER_INTERVALS)},
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
    },
    # Minimum of the mean over seeds of a metric, for faithful full runs (harness check).
    "thresholds": {m: _key(float, None) for m in METRIC_NAMES},
    # A short run for the test suite: fewer epochs and samples, and its own minimum.
    "smoke": {
        "epochs": _key(int, 1, positive=True),
        "train_limit": _key(int, None, positive=True),
        "metric": _key(str, "test_acc", choices=METRIC_NAMES),
        "min": _key(float),
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
OPTIONAL_SECTIONS = {"scheduler", "published", "thresholds", "fashion_thresholds", "fashion_smoke", "margins", "ablation"}
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


@dataclass(frozen=True)
class Experiment:
    id: str
    title: str
    source: str
    notes: str
    seeds: int
    data: dict
    model: dict
    loss: dict
    optimizer: dict
    scheduler: dict | None  # None: the learning rate stays as the optimiser sets it
    training: dict
    published: dict | None
    thresholds: dict
    smoke: dict | None  # None: no smoke run (a Fashion-MNIST variant whose base declares none)
    fashion_thresholds: dict
    fashion_smoke: dict | None
    path: Path = field(compare=False)
    variant_of: str | None = None  # the registered experiment this one runs on another dataset
    margins: dict = field(default_factory=dict)  # metric -> absolute equivalence margin (harness compare)
    ablation: dict | None = None  # {of, about, shared, metrics, outcomes}: the report pairs it with `of`
    # SHA-256 of the Python files beside the recipe, where it names any of them (else ""): part of its config.
    code_sha256: str = ""

    @property
    def directory(self) -> Path:
        """The registry directory: where the recipe's own modules live."""
        return self.path.parent

    @property
    def config(self) -> dict:
        """What determines a run's numbers: the hash of this identifies its results.

        Only values that differ from the schema's defaults count, so a key added to the schema later
        (with a default that keeps today's behaviour) leaves every existing hash, and result, valid.
        The user code a recipe imports is part of it: editing it makes the rows of the old code stale.
        """
        config = {
            section: {k: v for k, v in getattr(self, section).items() if v != SCHEMA[section][k]["default"]}
            for section in RECIPE_SECTIONS if getattr(self, section) is not None
        }
        if self.code_sha256:
            config["code_sha256"] = self.code_sha256
        return config

    @property
    def dataset(self) -> str:
        return self.data["dataset"]

    @property
    def regression(self) -> bool:
        """Whether the loss regresses the class index as one float output (T1's MSE recipes)."""
        return self.loss["class_path"] in REGRESSION_LOSSES

    def config_hash(self, overrides: dict | None = None) -> str:
        payload = dict(self.config)
        if overrides:
            payload["overrides"] = {k: v for k, v in sorted(overrides.items()) if v is not None}
        text = json.dumps(payload, sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(text.encode()).hexdigest()[:12]

    @property
    def published_trace(self) -> list[float] | None:
        """The tutorial's running training loss, one value every `training.trace_every` steps, if it printed one."""
        return (self.published or {}).get("trace") or None

    @property
    def published_figures(self) -> list[dict]:
        """Every figure the tutorial printed, {metric, epoch, value}, the headline one first."""
        if not self.published:
            return []
        p = self.published
        return [{k: p[k] for k in FIGURE}, *p["figures"]]

    @property
    def published_text(self) -> str:
        if not self.published:
            return "none published"
        p = self.published
        return p["text"] or f"{p['metric']} {p['value']:g}"


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


def _section(raw: dict, name: str, path: Path) -> dict:
    return _checked_keys(raw, SCHEMA[name], path, f"{name}." if name else "")


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
        unknown = [m for m in ablation["metrics"] if m not in METRIC_NAMES]
        if unknown:
            raise RegistryError(f"{path}: 'ablation.metrics' names {', '.join(map(repr, unknown))}; allowed: {', '.join(METRIC_NAMES)}")
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
        if published["trace"] and not training["trace_every"]:
            raise RegistryError(f"{path}: 'published.trace' needs 'training.trace_every'")
        named = [("published.epoch", published["epoch"])]
        named += [(f"published.figures[{i}].epoch", f["epoch"]) for i, f in enumerate(published["figures"])]
        for key, epoch in named:
            _check_logged_epoch(epoch, training, path, key)
    for name in ("smoke", "fashion_smoke"):
        metric = exp[name]["metric"] if exp.get(name) else ""
        if metric.startswith("valid") and not data["valid_fraction"]:
            raise RegistryError(f"{path}: '{name}.metric' {metric!r} needs a validation split")
    if data["dataset"] not in VARIANT_DATASETS:
        for name in ("fashion_thresholds", "fashion_smoke"):
            if exp.get(name):
                raise RegistryError(f"{path}: [{name}] applies to MNIST experiments only (they also run on Fashion-MNIST)")


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


def load_experiment(path: Path) -> Experiment:
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
    sections = {name for name in SCHEMA if name}
    top = {k: v for k, v in raw.items() if not isinstance(v, dict)}
    for name, value in raw.items():
        if isinstance(value, dict) and name not in sections:
            raise RegistryError(f"{path}: unknown section [{name}]{did_you_mean(name, sorted(sections))}; "
                                f"allowed: {', '.join(sorted(sections))}")
    exp: dict[str, Any] = _section(top, "", path)
    for name in sections:
        if name not in raw:
            if name in OPTIONAL_SECTIONS:
                exp[name] = {} if name in METRIC_SECTIONS else None  # none set
                continue
            raise RegistryError(f"{path}: missing section [{name}]")
        exp[name] = _section(raw[name], name, path)
    if exp["id"] != path.stem:
        raise RegistryError(f"{path}: 'id' is {exp['id']!r} but the file is named {path.name}; make them agree")
    if VARIANT_SEPARATOR in exp["id"]:
        raise RegistryError(f"{path}: 'id' may not contain {VARIANT_SEPARATOR!r} (it names dataset variants)")
    if not ID_PATTERN.fullmatch(exp["id"]):
        raise RegistryError(f"{path}: 'id' {exp['id']!r} is not a plain name: allowed: 1 to 64 of a-z 0-9 . _ -, "
                            "starting with a letter or digit")
    for name in METRIC_SECTIONS:
        exp[name] = {k: v for k, v in exp[name].items() if v is not None}
    _validate_together(exp, path)
    exp["code_sha256"] = _resolve_objects(exp, path)
    return Experiment(path=path, **exp)


# What the harness passes each kind of object itself, beside its init_args.
HARNESS_ARGUMENTS = {"model": (), "loss": (), "optimizer": ("params",), "scheduler": ("optimizer",), "transform": (),
                     "dataset": ("root", "train", "transform", "download")}


def _resolve_objects(exp: dict, path: Path) -> str:
    """Every class path resolved (short names made full, in place) and its init_args checked against
    its signature; returns the digest of the user code the recipe names ("" if none)."""
    from . import objects

    directory = path.parent
    named: list[tuple[str, dict, str]] = [(section, exp[section], section) for section in OBJECT_SECTIONS if exp[section]]
    named += [(f"data.transforms[{i}]", t, "transform") for i, t in enumerate(exp["data"]["transforms"] or ())]
    uses_user_code = False
    for key, spec, slot in named:
        where = f"{path}: '{key}.class_path'"
        spec["class_path"] = objects.canonical_path(spec["class_path"], slot, where, directory)
        target = objects.resolve(spec["class_path"], slot, where, directory)
        objects.check_arguments(target, spec["init_args"], HARNESS_ARGUMENTS[slot], path, key, spec["class_path"])
        uses_user_code |= objects.is_user_module(spec["class_path"].rpartition(":")[0], directory)
    lr = exp["optimizer"]["init_args"].get("lr")
    if lr is not None and not (isinstance(lr, (int, float)) and not isinstance(lr, bool) and 0 < lr <= MAX_LR):
        raise RegistryError(f"{path}: 'optimizer.init_args.lr' is {lr!r}; allowed: a number above 0, at most {MAX_LR}")
    dataset = exp["data"]["dataset"]
    if dataset not in DATASETS:
        where = f"{path}: 'data.dataset'"
        exp["data"]["dataset"] = dataset = objects.canonical_path(dataset, "dataset", where, directory)
        target = objects.resolve(dataset, "dataset", where, directory)
        user = objects.is_user_module(dataset.rpartition(":")[0], directory)
        given = (("seed",) if objects.takes(target, "seed") else ()) if user else HARNESS_ARGUMENTS["dataset"]
        objects.check_arguments(target, exp["data"]["init_args"], given, path, "data", dataset)
        uses_user_code |= user
    elif exp["data"]["init_args"]:
        raise RegistryError(f"{path}: 'data.init_args' applies to datasets named by class path; {dataset!r} takes none")
    return objects.code_digest(directory) if uses_user_code else ""


INSTALLED_REGISTRY = Path("share") / "torch-repro-harness" / "experiments"  # where an installed wheel keeps the tutorials'


def default_registry_dir() -> Path:
    """HARNESS_EXPERIMENTS; else the project's experiments/ beside the package (a checkout); else the copy an
    installed wheel carries under its prefix."""
    env = os.environ.get("HARNESS_EXPERIMENTS")
    if env:
        return Path(env)
    checkout = Path(__file__).resolve().parent.parent / "experiments"
    if checkout.is_dir():
        return checkout
    return Path(sys.prefix) / INSTALLED_REGISTRY


def load_registry(directory: Path | None = None) -> dict[str, Experiment]:
    """Every experiment in the directory, by id, in file-name order; any bad file stops everything."""
    directory = Path(directory) if directory else default_registry_dir()
    if not directory.is_dir():
        raise RegistryError(f"{directory}: no experiments directory (set HARNESS_EXPERIMENTS or run from the project)")
    experiments: dict[str, Experiment] = {}
    for path in sorted(directory.glob("*.toml")):
        exp = load_experiment(path)  # its id is its file's name: one file per id
        experiments[exp.id] = exp
    if not experiments:
        raise RegistryError(f"{directory}: no experiment files (*.toml)")
    for exp in experiments.values():
        if exp.ablation:
            _check_ablation(exp, experiments)
    return experiments


def _check_ablation(exp: Experiment, experiments: dict[str, Experiment]) -> None:
    of = exp.ablation["of"]
    if of == exp.id:
        raise RegistryError(f"{exp.path}: 'ablation.of' names the experiment itself; name the one it varies")
    if of not in experiments:
        raise RegistryError(f"{exp.path}: 'ablation.of' names {of!r}, which is not in the registry{did_you_mean(of, experiments)}")
    base = experiments[of]
    if not differing_settings(base, exp):
        raise RegistryError(f"{exp.path}: its recipe is the same as {of!r}'s: an ablation changes at least one setting")
    if base.data["dataset"] != exp.data["dataset"]:
        raise RegistryError(f"{exp.path}: trains on {exp.data['dataset']}, {of!r} on {base.data['dataset']}: "
                            "an ablation is paired by seed on one dataset")
    if exp.ablation["outcomes"] == "over-fitting" and not base.data["valid_fraction"]:
        raise RegistryError(f"{exp.path}: 'ablation.outcomes' 'over-fitting' reads the validation curve, which {of!r} has not")


def differing_settings(a: Experiment, b: Experiment) -> list[str]:
    """The recipe settings B sets otherwise than A, as `section.key: A's → B's` (init_args flattened)."""
    ours, theirs = _flat_recipe(a), _flat_recipe(b)
    out = []
    for key in dict.fromkeys([*ours, *theirs]):
        mine, other = (flat[key] if key in flat else _default_argument(exp, key) for exp, flat in ((a, ours), (b, theirs)))
        if mine != other:
            out.append(f"{key}: {_setting(mine)} → {_setting(other)}")
    return out


def _default_argument(exp: Experiment, key: str):
    """What an init_args key left out means: its default in the signature of the object it belongs to."""
    import inspect

    from . import objects

    section, _, rest = key.partition(".init_args.")
    spec = getattr(exp, section, None) if rest and "." not in section else None
    if not spec or "." in rest:
        return None
    try:
        target = objects.resolve(spec["class_path"], section, f"{exp.path}: '{section}.class_path'", exp.directory)
        default = inspect.signature(target).parameters[rest].default
    except (KeyError, TypeError, ValueError):
        return None
    return None if default is inspect.Parameter.empty else default


def _flat_recipe(exp: Experiment) -> dict:
    out = {}

    def walk(prefix: str, value) -> None:
        if isinstance(value, dict):
            for k, v in value.items():
                walk(f"{prefix}.{k}", v)
        else:
            out[prefix] = value

    for section in RECIPE_SECTIONS:
        walk(section, getattr(exp, section) or {})
    return out


def _setting(value) -> str:
    if value is None:
        return "none"
    if isinstance(value, (tuple, list)):
        return "[" + ", ".join(_setting(v) for v in value) + "]"
    if isinstance(value, dict):
        return "{" + ", ".join(f"{k} = {_setting(v)}" for k, v in value.items()) + "}"
    return str(value)


def on_dataset(exp: Experiment, dataset: str) -> Experiment:
    """The experiment's recipe on `dataset`: itself, or its variant `<id>@<dataset>`.

    A variant changes nothing but the data: it has its own id (and so its own config hash and rows),
    nothing published (the tutorials trained on MNIST), and the base file's [fashion_*] thresholds
    and smoke run.
    """
    if dataset == exp.data["dataset"]:
        return exp
    others = VARIANT_DATASETS.get(exp.data["dataset"], ())
    if dataset not in others:
        also = f"it also runs on {', '.join(others)}" if others else "it runs on no other dataset"
        raise RegistryError(f"{exp.id} trains on {exp.data['dataset']}; {also}, not on {dataset!r}")
    return dataclasses.replace(
        exp,
        id=f"{exp.id}{VARIANT_SEPARATOR}{dataset}",
        title=f"{exp.title} (on {dataset})",
        data={**exp.data, "dataset": dataset},
        published=None,
        thresholds=exp.fashion_thresholds,
        smoke=exp.fashion_smoke,
        fashion_thresholds={},
        fashion_smoke=None,
        variant_of=exp.id,
        ablation=None,  # its pairing is with the base on MNIST; a variant's arms would both need to be variants
    )


def variants(registry: dict[str, Experiment]) -> dict[str, Experiment]:
    """Every dataset variant of the registered experiments, by id."""
    out = {}
    for exp in registry.values():
        for dataset in VARIANT_DATASETS.get(exp.data["dataset"], ()):
            variant = on_dataset(exp, dataset)
            out[variant.id] = variant
    return out


def select(registry: dict[str, Experiment], ids: list[str], dataset: str | None = None) -> list[Experiment]:
    """Experiments named on the command line ('all' for every one), with a suggestion for typos.

    `<id>@<dataset>` names a variant. With `dataset`, each experiment runs on that dataset instead;
    'all' then means every experiment that can.
    """
    if dataset is not None and dataset not in DATASETS:
        raise RegistryError(f"--dataset: unknown dataset {dataset!r}{did_you_mean(dataset, DATASETS)}; allowed: {', '.join(DATASETS)}")
    if not ids or ids == ["all"]:
        chosen = list(registry.values())
        if dataset is None:
            return chosen
        runnable = [e for e in chosen if dataset == e.data["dataset"] or dataset in VARIANT_DATASETS.get(e.data["dataset"], ())]
        if not runnable:
            raise RegistryError(f"--dataset: no registered experiment runs on {dataset!r}")
        return [on_dataset(e, dataset) for e in runnable]
    chosen = []
    known = {**registry, **variants(registry)}
    for exp_id in ids:
        if exp_id not in known:
            raise RegistryError(f"unknown experiment {exp_id!r}{did_you_mean(exp_id, known)}; "
                                "`harness list --variants` shows them all")
        exp = known[exp_id]
        chosen.append(on_dataset(exp, dataset) if dataset else exp)
    return chosen
