"""The catalogue: every metric a run records and every column of the results files, in one place.

A metric's kind (an accuracy, a loss) says what its values can be, which way is better, how far two
means may lie apart and still count as equivalent, and how it reads; the tables, plots, margins,
checks and readers take all of it from here (as pytest-benchmark's `Stats.fields` serves its table and
its storage alike). Adding a measure touches the training loop, which computes it (`training.Scorer`), and this file;
a recipe adds its own as data ([metrics.<name>], `declare_own`), their columns after the catalogue's.
Plain data: no torch, no pandas.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass

from .errors import HarnessError, RegistryError, did_you_mean
from .seeds import SEED_COLUMNS

DASH = "–"  # no figure


@dataclass(frozen=True)
class Kind:
    """What kind of number a metric is."""

    name: str
    least: float  # the bounds of its values
    most: float
    higher_is_better: bool
    margin: float  # the default equivalence margin: a share of A's mean, or of what A's mean leaves (its error)
    margin_of: str  # "mean" or "error"
    percent: bool  # read in percent (and differences in percentage points)


# Accuracy: a tenth of A's error rate, so that "equivalent" means as much at 99% as at 90% (0.1 pp, ten
# MNIST test samples, against 1 pp: half a point at 99% would be half the errors). Loss: 2% of A's mean,
# since losses differ tenfold in scale between recipes (a cross-entropy near 0.6 on iris, 0.03 on MNIST).
ACCURACY = Kind("accuracy", 0.0, 1.0, higher_is_better=True, margin=0.1, margin_of="error", percent=True)
LOSS = Kind("loss", 0.0, math.inf, higher_is_better=False, margin=0.02, margin_of="mean", percent=False)


# R², the share of the targets' variance a regression explains: 1 at best, unbounded below (a model worse
# than predicting the mean). Its margin, like an accuracy's, is a tenth of what A leaves unexplained.
R2 = Kind("R²", -math.inf, 1.0, higher_is_better=True, margin=0.1, margin_of="error", percent=False)


@dataclass(frozen=True)
class Metric:
    name: str
    kind: Kind
    label: str  # in a sentence: "test accuracy"


@dataclass(frozen=True)
class Measure:
    """What a run measures on each split, after each epoch (`<split>_<short>` names the figure)."""

    short: str
    kind: Kind
    label: str
    targets: tuple[str, ...]  # the recipes it applies to, by `data.targets`: "classes", "values"
    declared: bool = False  # recorded only where the recipe names it in `training.metrics`


SPLITS = ("train", "valid", "test")
SPLIT_LABELS = {"train": "training", "valid": "validation", "test": "test"}
# The loss is every run's; accuracy a classifier's; mean squared and absolute error and R² a regression's
# (data.targets = "values"), as its recipe declares them (training.metrics). Their order is the columns'.
MEASURES = {m.short: m for m in (
    Measure("loss", LOSS, "loss", ("classes", "values")),
    Measure("acc", ACCURACY, "accuracy", ("classes",)),
    Measure("mse", LOSS, "mean squared error", ("values",), declared=True),
    Measure("mae", LOSS, "mean absolute error", ("values",), declared=True),
    Measure("r2", R2, "R²", ("values",), declared=True),
)}
METRICS: dict[str, Metric] = {
    f"{split}_{m.short}": Metric(f"{split}_{m.short}", m.kind, f"{SPLIT_LABELS[split]} {m.label}")
    for m in MEASURES.values() for split in SPLITS
}
DECLARED_MEASURES = tuple(m.short for m in MEASURES.values() if m.declared)  # what `training.metrics` may name
BUILT_IN = tuple(MEASURES)  # the catalogue's own measures; recipes add theirs after them (`declare_own`)


def measures_recorded(targets: str, declared=()) -> tuple[str, ...]:
    """The measures a recipe's runs record: those of its kind of targets that need no declaring, then the ones it
    declares, its loss last (a classifier: acc, loss; a regression declaring mse: mse, loss)."""
    always = [m.short for m in MEASURES.values() if targets in m.targets and not m.declared and m.short != "loss"]
    return (*always, *declared, "loss")


# Each split's loss and accuracy: the columns every version of the harness wrote, in their places.
FIRST_METRICS = tuple(f"{split}_{short}" for split in SPLITS for short in ("loss", "acc"))
LATER_METRICS = tuple(m for m in METRICS if m not in FIRST_METRICS)  # added after them, at each table's end
METRIC_NAMES = (*FIRST_METRICS, *LATER_METRICS)
DEFAULT_METRIC = "test_acc"  # what a classifier that printed nothing is read by: how its model generalises


# A metric of a recipe's own ([metrics.<name>], docs/recipes.md#metrics-of-your-own): its kind from which way is
# better and whether it is bounded like an accuracy (in [0, 1], read in percent) or unbounded like a loss (any
# real number: a log-likelihood may be negative). Its margin is then an accuracy's or a loss's: a tenth of
# what a bounded one leaves (1 - mean where higher is better; its mean, an error rate, where lower is), 2%
# of an unbounded one's mean.
def own_kind(higher_is_better: bool, bounded: bool) -> Kind:
    if bounded:
        return Kind("bounded", 0.0, 1.0, higher_is_better, margin=0.1, margin_of="error" if higher_is_better else "mean",
                    percent=True)
    return Kind("unbounded", -math.inf, math.inf, higher_is_better, margin=0.02, margin_of="mean", percent=False)


OWN_NAME = re.compile(r"[a-z][a-z0-9_]{0,31}")  # a metric of a recipe's own: its columns are `<split>_<name>`


_OWN_HOMES: dict[str, str] = {}  # a recipe's own metric -> the registry directory that declared it


def declare_own(short: str, kind: Kind, label: str, path) -> None:
    """Add a recipe's own metric to the catalogue, for every command of this process that reads its figures. One
    name, one meaning within a registry: the same name declared otherwise by another recipe beside it is refused
    (`path`: the recipe's file); a registry loaded later may give it another."""
    measure = Measure(short, kind, label, ("classes", "values"), declared=True)
    known, home = MEASURES.get(short), str(path.parent)
    if known is not None and known != measure and (short in BUILT_IN or _OWN_HOMES.get(short) == home):
        first = "the catalogue's" if short in BUILT_IN else "another recipe's beside it"
        raise RegistryError(f"{path}: [metrics.{short}] declares {short!r} otherwise than {first} ({known.label}, "
                            f"{'higher' if known.kind.higher_is_better else 'lower'} is better"
                            f"{', bounded' if known.kind.percent else ''}): give it another name")
    MEASURES[short], _OWN_HOMES[short] = measure, home
    for column in split_columns((short,)):
        METRICS[column] = Metric(column, kind, f"{SPLIT_LABELS[column.partition('_')[0]]} {label}")


def metric_names() -> tuple[str, ...]:
    """Every metric's name: the catalogue's (`METRIC_NAMES`), then those of the recipes loaded (`declare_own`)."""
    return tuple(METRICS)


def split_columns(shorts) -> tuple[str, ...]:
    """The columns of measures (`mse` -> train_mse, valid_mse, test_mse), each on every split."""
    return tuple(f"{split}_{short}" for short in shorts for split in SPLITS)


def own_columns(columns) -> list[str]:
    """Of a table's columns (or a row's keys), those of recipes' own metrics: `<split>_<name>`, none of the catalogue's."""
    return [c for c in columns if c.partition("_")[0] in SPLITS and OWN_NAME.fullmatch(c.partition("_")[2])
            and c not in CATALOGUE_COLUMNS]


def with_own_columns(columns, rows) -> list[str]:
    """`columns`, then the columns of recipes' own metrics that `rows` (as read from a results table) hold."""
    return [*columns, *own_columns({c: None for row in rows for c in row})]


def measure_of(name: str) -> Measure:
    """The measure a metric name reads (`test_mse` -> mse)."""
    return MEASURES[metric(name).name.partition("_")[2]]


def metric(name: str) -> Metric:
    """A metric by name, the catalogue's or a loaded recipe's own; one line naming the known ones for a name that is not."""
    try:
        return METRICS[name]
    except KeyError:
        raise HarnessError(f"unknown metric {name!r}{did_you_mean(name, METRICS)}; known: {', '.join(METRICS)}") from None


def kind_of(name: str) -> Kind:
    return metric(name).kind


def is_accuracy(name: str) -> bool:
    return kind_of(name).percent


def metric_range(name: str) -> tuple[float, float]:
    """What a metric can reach: an accuracy lies in [0, 1], a loss is at least 0."""
    kind = kind_of(name)
    return kind.least, kind.most


# ---------------------------------------------------------------------------------------------------
# How a metric's values read: the one formatter of the report, `compare` and every command's output


def fmt(name: str, value: float | None) -> str:
    if value is None or math.isnan(value):
        return DASH
    return f"{100 * value:.2f}%" if is_accuracy(name) else f"{value:.4f}"


def fmt_spread(name: str, value: float | None) -> str:
    """`fmt`, with two significant digits where the fixed places would show a spread that is not 0 as 0."""
    text = fmt(name, value)
    if value and not any(c in "123456789" for c in text):
        return f"{100 * value:.1e}%" if is_accuracy(name) else f"{value:.1e}"
    return text


def fmt_diff(name: str, value: float, sign: bool = True) -> str:
    """A difference of two values (or a margin, `sign=False`): percentage points for an accuracy."""
    if value is None or math.isnan(value):
        return DASH
    spec, accuracy = "+" if sign else "", is_accuracy(name)
    text = f"{100 * value:{spec}.2f} pp" if accuracy else f"{value:{spec}.4f}"
    if value and not any(c in "123456789" for c in text):  # a difference the fixed places would show as 0
        text = f"{100 * value:{spec}.1e} pp" if accuracy else f"{value:{spec}.1e}"
    return text


def fmt_interval(name: str, low: float, high: float, diff: bool = False) -> str:
    if math.isnan(low):
        return DASH
    show = fmt_diff if diff else fmt
    return f"[{show(name, low)}, {show(name, high)}]"


# How the speed columns read: a run's wall time, its training throughput.
SPEED_FORMATS = {"wall_time_s": "{:.1f} s", "train_samples_per_s": "{:,.0f}"}


def fmt_speed(column: str, value: float | None) -> str:
    if value is None or math.isnan(value):
        return DASH
    return SPEED_FORMATS[column].format(value)


def fmt_p(p: float, floor: bool = False) -> str:
    """A p-value, to two significant digits; `floor`: the least its random resamples can give, the exact
    p being smaller."""
    if math.isnan(p):
        return DASH
    return f"≤ {p:.2g} (floor)" if floor else f"{p:.2g}"


def fmt_p_clause(name: str, p: float, floor: bool = False) -> str:
    """'permutation p = 0.03', or 'permutation p ≤ 0.0002 (floor)', for a sentence."""
    return f"{name} p {'' if floor else '= '}{fmt_p(p, floor)}"


def fmt_runs(value: float) -> str:
    """A run count from `stats.runs_needed`: '–' where none could be computed."""
    return DASH if math.isnan(value) else f"{value:.0f}"


# ---------------------------------------------------------------------------------------------------
# The results files' columns


RUN_COLUMNS = [
    "run_id", "experiment", "seed", "device", "device_name", "engine", "epochs", "faithful", "status",
    *FIRST_METRICS,
    "wall_time_s", "train_time_s", "train_samples_per_s", "started_at", "config_hash", "git_commit",
    "torch_version", "python_version", "host",
    # What else it takes to re-create or explain a row.
    "threads", "overrides", "dataset_md5", "diverged_epoch", "message",
    # What picks the CPU kernels, and so the last bits of every CPU figure: ATen's vector instruction set
    # in force, and the environment settings that steer it, MKL and oneDNN (empty: none set).
    "cpu_capability", "kernel_settings",
    # What proves two runs bit-identical, and what names the user code a recipe ran: a SHA-256 of the final
    # weights (`training.state_sha256`), and of the Python files beside the recipe (empty: it names none).
    "weights_sha256", "code_sha256",
    # Each source's seed where the run seeds them one by one (`--vary`, docs/variance.md); all empty under the
    # tutorials' scheme, where `seed` alone drives every draw. seed_bit: which weight got one ulp (empty: none).
    *SEED_COLUMNS,
    # A regression's declared metrics (empty where a recipe does not declare them).
    *LATER_METRICS,
]
EPOCH_COLUMNS = ["run_id", "epoch", *FIRST_METRICS, "epoch_time_s", "samples_per_s", *LATER_METRICS]
TRACE_COLUMNS = ["run_id", "epoch", "step", "samples", "running_loss"]
TABLES = {"epochs.csv": EPOCH_COLUMNS, "trace.csv": TRACE_COLUMNS, "runs.csv": RUN_COLUMNS}  # write order
CATALOGUE_COLUMNS = frozenset(c for columns in TABLES.values() for c in columns)


def table_columns(table: str, header=(), rows=()) -> list[str]:
    """A results table's columns: the catalogue's (`TABLES`), then, in runs.csv and epochs.csv, those of recipes'
    own metrics, as many as its header holds after the catalogue's and then those its new rows bring (of
    recipes loaded: `declare_own`), each in the order it first came."""
    columns = list(TABLES[table])
    if table == "trace.csv":
        return columns
    header = list(header)
    kept = own_columns(header[len(columns):]) if header[: len(columns)] == columns else []
    brought = split_columns(c.partition("_")[2] for row in rows for c in own_columns(row) if c in METRICS)
    for column in [*kept, *brought]:  # a measure's columns on every split, as the catalogue's are
        if column not in columns:
            columns.append(column)
    return columns
# The columns every version of the harness wrote: a table with these and fewer than today's columns is an
# earlier version's (the later columns read empty); one with fewer is no results table.
EARLIEST_COLUMNS = {"runs.csv": RUN_COLUMNS[: RUN_COLUMNS.index("host") + 1],
                    "epochs.csv": EPOCH_COLUMNS[: EPOCH_COLUMNS.index("samples_per_s") + 1],
                    "trace.csv": TRACE_COLUMNS}

# What the values of a column are (every other column is text).
TIMES = ("wall_time_s", "train_time_s", "train_samples_per_s", "epoch_time_s", "samples_per_s")  # finite, 0 or more
LOSSES = (*(m for m in METRIC_NAMES if METRICS[m].kind is LOSS), "running_loss")  # 0 or more (nan: diverged)
FLOATS = (*METRIC_NAMES, *TIMES, "running_loss")
INTEGERS = ("seed", "epochs", "epoch", "step", "samples", "threads", "diverged_epoch", *SEED_COLUMNS)
BOOLEANS = ("faithful",)
# What pandas, a spreadsheet or the csv module's readers take for a number rather than text.
NUMBER = re.compile(r"[+-]?(?:[0-9]+\.?[0-9]*|\.[0-9]+)(?:[eE][+-]?[0-9]+)?|[+-]?(?:nan|inf|infinity)", re.IGNORECASE)
ID_WIDTH = 12  # hex digits of a run_id and a git_commit


def id_prefix(hex_digits: str, width: int = ID_WIDTH) -> str:
    """The first `width` hex digits of an identifier, and more while they would read as a number: a re-save
    by pandas or a spreadsheet keeps `9361700204e6a` as written, where `9361700204e6` became
    9361700204000000.0 and `76658e040003` infinity."""
    for end in range(width, len(hex_digits) + 1):
        if not NUMBER.fullmatch(hex_digits[:end]):
            return hex_digits[:end]
    return hex_digits
# What identifies a run: never empty in a row the harness wrote.
REQUIRED = ("run_id", "experiment", "seed", "device", "engine", "epochs", "faithful", "status", "config_hash", "started_at")
# What names a cell of the matrix: a finished one is not run again. Its seed aside (SAMPLE), what makes
# runs draws of one recipe's outcome, to be compared over seeds.
CELL = ("experiment", "config_hash", "device", "engine", "seed")
SAMPLE = CELL[:-1]


def cell_key(row) -> tuple:
    """A row's cell (`CELL`), from a runs.csv row or any mapping with those keys."""
    return tuple(int(row[c]) if c == "seed" else row[c] for c in CELL)
# Columns of free text, from outside the harness's control (an exception's message, a host or device name).
FREE_TEXT_COLUMNS = ("device_name", "host", "message")
# The longest field the harness writes, in characters: a user's exception can carry a message of any size,
# and one field over the csv module's own limit (131,072) would make the whole table unreadable.
MAX_FIELD = 1000
