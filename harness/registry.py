"""The experiment registry: one TOML file per experiment in a registry directory (experiments/ for the
tutorials'), each checked against the schema (`schema.py`), its objects resolved (`objects.py`), and held
as an `Experiment`; the dataset variants of a recipe, ablation pairs, and the selection the command line
makes.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import sys
from dataclasses import dataclass, field
from pathlib import Path

from .catalogue import declare_own, own_kind
from .errors import RegistryError, did_you_mean
from .named_datasets import DATASETS
from .schema import (FIGURE, MAX_LR, OBJECT_SECTIONS, RECIPE_SECTIONS, REGRESSION_LOSSES, SCHEMA, VARIANT_DATASETS,
                     VARIANT_SEPARATOR, parse_recipe, recorded_metrics)

@dataclass(frozen=True)
class Experiment:
    id: str
    title: str
    source: str
    notes: str
    seeds: int
    data: dict
    model: dict
    loss: dict | None  # None: the recipe's own training step computes its loss ([steps])
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
    steps: dict | None = None  # {training, evaluation, epoch_end, reduction}: steps of the recipe's own
    script: dict | None = None  # script mode: the script run once per seed, and how it reports (docs/scripts.md)
    # [metrics.<name>]: metrics of the recipe's own, name -> {label, better, bounded, reduction, function}
    own_metrics: dict = field(default_factory=dict)

    def declare_metrics(self) -> None:
        """Its own metrics into the catalogue, known from here on to every reader of their figures in this process."""
        for name, spec in self.own_metrics.items():
            declare_own(name, own_kind(spec["better"] == "higher", spec["bounded"]), spec["label"] or name, self.path)

    def __setstate__(self, state: dict) -> None:
        """Unpickled in another process (a --jobs worker, a Ray task), it brings its own metrics' kinds with it."""
        self.__dict__.update(state)
        self.declare_metrics()

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
        if self.own_metrics:  # what its rows record, beside what trains (a label is how it reads, not what it is)
            config["metrics"] = {name: {k: v for k, v in spec.items() if k != "label"} for name, spec in self.own_metrics.items()}
        return config

    @property
    def default_seeds(self) -> tuple[int, ...]:
        """The seeds `harness run` trains when none are given: 0 to `seeds` - 1, or the one a script sets itself."""
        if self.script and self.script["own_seed"] is not None:
            return (self.script["own_seed"],)
        return tuple(range(self.seeds))

    @property
    def dataset(self) -> str:
        return self.data["dataset"]

    @property
    def real_targets(self) -> bool:
        """Whether the targets are real values of any shape (a regression), not class indices."""
        return self.data["targets"] == "values"

    @property
    def regression(self) -> bool:
        """Whether the loss regresses the class index as one float output (T1's MSE recipes)."""
        return not self.real_targets and self.loss is not None and self.loss["class_path"] in REGRESSION_LOSSES

    @property
    def metrics(self) -> tuple[str, ...]:
        """The metrics its runs record on every split: loss and accuracy, or a regression's loss and declared metrics."""
        return recorded_metrics({"data": self.data, "training": self.training, "steps": self.steps, "script": self.script,
                                 "own_metrics": self.own_metrics})

    @property
    def declared_test_metrics(self) -> tuple[str, ...]:
        """The test figures of the metrics the recipe declares (a regression's 'training.metrics', its own [metrics])
        that its runs record."""
        shorts = [*(self.training["metrics"] if self.real_targets else ()), *self.own_metrics]
        return tuple(m for m in (f"test_{short}" for short in shorts) if m in self.metrics)

    @property
    def summed_loss(self) -> bool:
        """Whether the loss sums over the batch (`reduction = "sum"`): its figures are then the sum over the
        split divided by its samples, as a script that sums its losses prints them."""
        if self.steps:
            return self.steps["reduction"] == "sum"
        return self.loss is not None and self.loss["init_args"].get("reduction") == "sum"

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
    def headline_metric(self) -> str:
        """The metric a recipe is read by: the one its tutorial printed as its result, else the test accuracy (a
        regression: its first declared metric, else its loss)."""
        if self.published:
            return self.published["metric"]
        if self.script:  # its first test metric, else the first it reports
            return next((m for m in self.metrics if m.startswith("test_")), self.metrics[0])
        return self.metrics[0].replace("train_", "test_", 1)  # test_acc for a classifier

    @property
    def published_text(self) -> str:
        if not self.published:
            return "none published"
        p = self.published
        return p["text"] or f"{p['metric']} {p['value']:g}"


def load_experiment(path: Path) -> Experiment:
    """One registry file as an Experiment: checked against the schema, then its objects resolved (which imports
    the modules it names) and their arguments checked against their signatures."""
    exp = parse_recipe(path)
    exp["code_sha256"] = _resolve_objects(exp, path)
    experiment = Experiment(path=path, **exp)
    experiment.declare_metrics()
    return experiment


# What the harness passes each kind of object itself, beside its init_args.
HARNESS_ARGUMENTS = {"model": (), "loss": (), "optimizer": ("params",), "scheduler": ("optimizer",), "transform": (),
                     "dataset": ("root", "train", "transform", "download")}


def _resolve_objects(exp: dict, path: Path) -> str:
    """Every class path resolved (short names made full, in place) and its init_args checked against
    its signature; returns the digest of the user code the recipe names ("" if none)."""
    from . import objects

    directory = path.parent
    if exp["script"]:
        script = directory / exp["script"]["path"]
        if not script.is_file():
            raise RegistryError(f"{path}: 'script.path' {exp['script']['path']!r}: no such file beside the recipe ({script})")
        return objects.code_digest(directory)  # the script's digest (and its siblings', each file checked) is part of its config
    named: list[tuple[str, dict, str]] = [(section, exp[section], section) for section in OBJECT_SECTIONS if exp[section]]
    named += [(f"data.transforms[{i}]", t, "transform") for i, t in enumerate(exp["data"]["transforms"] or ())]
    uses_user_code = False
    for key, spec, slot in named:
        where = f"{path}: '{key}.class_path'"
        spec["class_path"] = objects.canonical_path(spec["class_path"], slot, where, directory)
        target = objects.resolve(spec["class_path"], slot, where, directory)
        objects.check_arguments(target, spec["init_args"], HARNESS_ARGUMENTS[slot], path, key, spec["class_path"])
        uses_user_code |= objects.is_user_module(spec["class_path"].rpartition(":")[0], directory)
    for name, spec in exp["own_metrics"].items():
        if spec["function"]:
            objects.resolve(spec["function"], "metric", f"{path}: 'metrics.{name}.function'", directory)
            uses_user_code = True
    for key, name in (exp["steps"] or {}).items():
        if key == "reduction" or name is None:
            continue
        where = f"{path}: 'steps.{key}'"
        if ":" not in name:  # a method of the model, looked up once the model is built (harness validate)
            if not name.isidentifier() or name.startswith("_"):
                raise RegistryError(f"{where} is {name!r}: name a public method of the model ('training_step') or a function "
                                    "beside the recipe ('steps:training_step')")
            continue
        objects.resolve(name, "step", where, directory)
        uses_user_code = True
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
                                "`harness list --variants` shows them all; `--experiments-dir DIR` finds recipes of your own")
        exp = known[exp_id]
        chosen.append(on_dataset(exp, dataset) if dataset else exp)
    return chosen
