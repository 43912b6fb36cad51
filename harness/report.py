"""`harness report`: REPORT.md and plots/*.png in the results directory, from runs/epochs/trace.csv.

What counts: the latest row of each cell (a --force re-run supersedes the earlier one), of experiments
still in the registry, whose config_hash is the recipe's current one. Faithful rows are set against the
published numbers; quick runs (overridden epochs or samples) get a table of their own. Everything left
out is counted in the report's "What was read" section.
"""

from __future__ import annotations

import io
import json
import math
import re
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # files only, no display
import matplotlib.ticker  # noqa: E402
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
from tabulate import tabulate  # noqa: E402

from . import safe_files  # noqa: E402
from .errors import HarnessError  # noqa: E402
from .registry import METRICS  # noqa: E402
from .results import EPOCH_COLUMNS, RUN_COLUMNS, TRACE_COLUMNS, ResultsStore, is_current, latest_rows  # noqa: E402
from .stats import NO_PUBLISHED, REPRODUCED, Summary, summarize, verdict, welch_p_value  # noqa: E402

# The claim of T1 #10 tested across seeds: dropout narrows the train/validation gap.
OVERFITTING_PAIR = ("mnist-cnn-50", "mnist-cnn-dropout-50")
# T2's output Softmax fed to CrossEntropyLoss, against the same net emitting logits.
ABLATION_PAIRS = [("mnist-mynet-adam", "mnist-mynet-adam-logits", "T2's output Softmax before CrossEntropyLoss (a double softmax)")]
KEY_COLUMNS = ("run_id", "experiment", "seed", "device", "engine", "config_hash", "started_at", "faithful", "status")
NUMERIC_RUN_COLUMNS = [*METRICS, "epochs", "wall_time_s", "train_time_s", "train_samples_per_s"]
SPLIT_COLORS = {"train": "C0", "valid": "C1", "test": "C2"}
GROUP_STYLES = ("-", "--", ":", "-.")
DPI = 80
REPORT_NOT_WRITTEN = "free some space or fix the directory's permissions"


# ---------------------------------------------------------------------------------------------------
# Reading


def _read_csv(path: Path, columns: list[str], required: tuple[str, ...]) -> pd.DataFrame:
    """A results table as text, exactly as written (what latest_rows expects; run ids stay strings).

    Absent or empty gives no rows; optional columns missing from an older file are added empty.
    """
    empty = pd.DataFrame(columns=columns, dtype=str)
    data = safe_files.read_bytes(path)
    if not data:
        return empty
    try:
        frame = pd.read_csv(io.BytesIO(data), dtype=str, keep_default_na=False)
    except pd.errors.EmptyDataError:
        return empty
    except (pd.errors.ParserError, UnicodeDecodeError) as e:
        raise HarnessError(f"{path}: not a readable CSV file ({str(e).strip()}); move it aside and run `harness run` again") from None
    missing = [c for c in required if c not in frame.columns]
    if missing:
        raise HarnessError(f"{path}: missing column(s) {', '.join(missing)}; is this a harness results file?")
    for column in columns:
        if column not in frame.columns:
            frame[column] = ""
    return frame.fillna("")  # a short (truncated) line leaves NaN in its last cells


@dataclass
class Results:
    """The rows the report is about, and an account of what was set aside."""

    runs: pd.DataFrame  # latest, current rows of registered experiments, numeric columns as numbers
    epochs: pd.DataFrame  # epoch rows of those runs
    trace: pd.DataFrame
    read: int = 0  # rows in runs.csv
    malformed: int = 0
    superseded: int = 0
    stale: dict = field(default_factory=dict)  # experiment -> rows of an earlier recipe
    unregistered: dict = field(default_factory=dict)  # experiment -> rows
    orphan_epochs: int = 0  # epoch rows of no recorded run (an interrupted write)


def load_results(results_dir: Path, registry: dict) -> Results:
    runs_text = _read_csv(results_dir / "runs.csv", RUN_COLUMNS, KEY_COLUMNS)
    records = runs_text.to_dict("records")
    well_formed = [r for r in records if all(r[c] for c in KEY_COLUMNS) and r["seed"].isdigit()]
    latest = latest_rows(well_formed)
    kept, stale, unregistered = [], {}, {}
    for row in latest:
        exp = registry.get(row["experiment"])
        if exp is None:
            unregistered[row["experiment"]] = unregistered.get(row["experiment"], 0) + 1
        elif not is_current(row, exp):
            stale[exp.id] = stale.get(exp.id, 0) + 1
        else:
            kept.append(row)
    runs = pd.DataFrame(kept, columns=RUN_COLUMNS)
    for column in NUMERIC_RUN_COLUMNS + ["seed"]:
        runs[column] = pd.to_numeric(runs[column], errors="coerce")
    runs["faithful"] = runs["faithful"] == "true"
    runs["setting"] = [_setting(o) for o in runs["overrides"]]

    epochs = _read_csv(results_dir / "epochs.csv", EPOCH_COLUMNS, ("run_id", "epoch"))
    trace = _read_csv(results_dir / "trace.csv", TRACE_COLUMNS, ("run_id", "step", "running_loss"))
    all_run_ids = {r["run_id"] for r in records}
    orphan_epochs = int((~epochs["run_id"].isin(all_run_ids)).sum())
    ids = set(runs["run_id"])
    return Results(
        runs=runs.sort_values(["experiment", "device", "engine", "seed"], ignore_index=True),
        epochs=epochs[epochs["run_id"].isin(ids)].apply(_numeric_except_run_id),
        trace=trace[trace["run_id"].isin(ids)].apply(_numeric_except_run_id),
        read=len(records), malformed=len(records) - len(well_formed),
        superseded=len(well_formed) - len(latest), stale=stale, unregistered=unregistered,
        orphan_epochs=orphan_epochs,
    )


def _numeric_except_run_id(column: pd.Series) -> pd.Series:
    return column if column.name == "run_id" else pd.to_numeric(column, errors="coerce")


def _setting(overrides: str) -> str:
    """'faithful', or the quick-run overrides as text ('epochs=300')."""
    if not overrides:
        return "faithful"
    try:
        return ", ".join(f"{k}={v}" for k, v in sorted(json.loads(overrides).items()))
    except (ValueError, AttributeError):
        return overrides


# ---------------------------------------------------------------------------------------------------
# Formatting


def _fmt(metric: str, value: float) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "–"
    return f"{100 * value:.2f}%" if metric.endswith("_acc") else f"{value:.4f}"


def _fmt_diff(metric: str, value: float) -> str:
    if math.isnan(value):
        return "–"
    return f"{100 * value:+.2f} pp" if metric.endswith("_acc") else f"{value:+.4f}"


def _mean_std(metric: str, s: Summary) -> str:
    if s.n == 0:
        return "–"
    return _fmt(metric, s.mean) + ("" if s.n == 1 else f" ± {_fmt(metric, s.std)}")


def _ci(metric: str, s: Summary) -> str:
    return f"[{_fmt(metric, s.ci_low)}, {_fmt(metric, s.ci_high)}]" if s.n > 1 else "–"


def short_source(source: str) -> str:
    """'T1 "..." (...), #7' -> 'T1 #7'; other sources as written."""
    m = re.match(r"(T\d+)\b.*?(#[\w\-]+)?\s*(\(.*\))?$", source)
    return " ".join(p for p in (m.group(1), m.group(2)) if p) if m else source


def headline_metric(exp) -> str:
    return exp.published["metric"] if exp.published else "test_acc"


def _table(rows: list[list], headers: list[str]) -> str:
    return tabulate(rows, headers=headers, tablefmt="github", disable_numparse=True)


# ---------------------------------------------------------------------------------------------------
# Tables


def summary_rows(runs: pd.DataFrame, registry: dict, faithful: bool) -> list[list]:
    """One row per experiment x device x engine (x quick-run setting): statistics of the headline metric."""
    rows = []
    chosen = runs[runs["faithful"] == faithful]
    for (exp_id, device, engine, setting), group in chosen.groupby(["experiment", "device", "engine", "setting"], sort=True):
        exp = registry[exp_id]
        metric = headline_metric(exp)
        ok = group[group["status"] == "ok"]
        s = summarize(ok[metric].dropna())
        published = exp.published["value"] if exp.published else None
        row = [exp_id, device, engine]
        if not faithful:
            row.append(setting)
        not_ok = len(group) - len(ok)
        row += [f"{s.n}" + (f" (+{not_ok} failed)" if not_ok else ""), metric, _mean_std(metric, s), _ci(metric, s),
                _fmt(metric, s.min), _fmt(metric, s.max)]
        if faithful:
            tolerance = exp.published["tolerance"] if exp.published else 0.0
            row += [
                f"{_fmt(metric, published)} ({short_source(exp.source)})" if published is not None else "–",
                _fmt_diff(metric, s.mean - published) if published is not None else "–",
                verdict(s, published, tolerance, metric) or "no runs ok",
            ]
        rows.append(row)
    return rows


def speed_rows(runs: pd.DataFrame) -> list[list]:
    rows = []
    for (exp_id, device, engine, setting), group in runs.groupby(["experiment", "device", "engine", "setting"], sort=True):
        wall, rate = summarize(group["wall_time_s"].dropna()), summarize(group["train_samples_per_s"].dropna())
        rows.append([exp_id, device, engine, setting, len(group),
                     _spread(wall, "{:.1f} s"), _spread(rate, "{:,.0f}")])
    return rows


def _spread(s: Summary, pattern: str) -> str:
    if s.n == 0:
        return "–"
    return pattern.format(s.mean) + ("" if s.n == 1 else " ± " + pattern.format(s.std))


# ---------------------------------------------------------------------------------------------------
# Plots


def plot_selection(runs: pd.DataFrame, exp_id: str) -> tuple[pd.DataFrame, str]:
    """The runs an experiment's plots show: its faithful ok runs, else its most common quick-run setting."""
    mine = runs[(runs["experiment"] == exp_id) & (runs["status"] == "ok")]
    if mine["faithful"].any():
        return mine[mine["faithful"]], "faithful"
    if mine.empty:
        return mine, ""
    setting = mine["setting"].value_counts().index[0]
    return mine[mine["setting"] == setting], f"quick run: {setting}"


def _groups(selection: pd.DataFrame):
    """(label, runs) per device x engine."""
    return [(f"{device}, {engine}", g) for (device, engine), g in selection.groupby(["device", "engine"], sort=True)]


def _mean_std_over_runs(frame: pd.DataFrame, x: str, y: str) -> pd.DataFrame:
    return frame.groupby(x)[y].agg(["mean", "std", "count"]).reset_index().dropna(subset=["mean"])


def _band(ax, stats: pd.DataFrame, x: str, color: str, style: str, label: str) -> None:
    ax.plot(stats[x], stats["mean"], color=color, linestyle=style, label=label)
    std = stats["std"].fillna(0)
    ax.fill_between(stats[x], stats["mean"] - std, stats["mean"] + std, color=color, alpha=0.2, linewidth=0)


def _save(fig, path: Path, title: str | None = None) -> None:
    if title:
        fig.suptitle(title, fontsize=11)
    fig.set_layout_engine("constrained")  # unlike tight_layout, it keeps a tall grid's panel titles off the suptitle
    png = io.BytesIO()
    fig.savefig(png, format="png", dpi=DPI)
    plt.close(fig)
    safe_files.write_atomic(path, png.getvalue(), REPORT_NOT_WRITTEN)


def plot_learning_curves(exp, selection: pd.DataFrame, label: str, epochs: pd.DataFrame, path: Path) -> bool:
    rows = epochs[epochs["run_id"].isin(selection["run_id"])]
    if rows.empty:
        return False
    groups = _groups(selection)
    fig, axes = plt.subplots(1, 2, figsize=(10, 3.8))
    for ax, kind in zip(axes, ("loss", "acc")):
        for style, (group_label, group) in zip(GROUP_STYLES * 4, groups):
            mine = rows[rows["run_id"].isin(group["run_id"])]
            for split, color in SPLIT_COLORS.items():
                stats = _mean_std_over_runs(mine, "epoch", f"{split}_{kind}")
                if not stats.empty:
                    suffix = f" ({group_label})" if len(groups) > 1 else ""
                    _band(ax, stats, "epoch", color, style, f"{split}{suffix}")
        published = exp.published
        if published and published["curve_epochs"] and published["curve_metric"].endswith(f"_{kind}"):
            ax.plot(published["curve_epochs"], published["curve_values"], "kx", markersize=7,
                    label=f"published {published['curve_metric']} ({short_source(exp.source)})")
        ax.set_xlabel("epoch")
        ax.xaxis.set_major_locator(matplotlib.ticker.MaxNLocator(integer=True))
        ax.set_ylabel("mean loss" if kind == "loss" else "accuracy")
        if ax.has_data():
            ax.legend(fontsize=8)
        ax.grid(alpha=0.3)
    n = selection["run_id"].nunique()
    _save(fig, path, f"{exp.id}: learning curves, mean ± 1 std over {n} run(s) ({label})")
    return True


def plot_trace(exp, selection: pd.DataFrame, label: str, trace: pd.DataFrame, path: Path) -> bool:
    rows = trace[trace["run_id"].isin(selection["run_id"])].copy()
    published = exp.published_trace
    if rows.empty:
        return False
    batch = exp.training["batch_size"] or 1
    rows["samples_seen"] = rows["step"] * batch  # every batch is full but possibly an epoch's last
    fig, ax = plt.subplots(figsize=(7, 3.8))
    stats = _mean_std_over_runs(rows, "samples_seen", "running_loss")
    _band(ax, stats, "samples_seen", "C0", "-", f"this harness, mean ± 1 std over {rows['run_id'].nunique()} run(s)")
    if published:
        every = exp.training["trace_every"] * batch
        ax.plot([every * (i + 1) for i in range(len(published))], published, "kx-", markersize=7, linewidth=0.8,
                label=f"published ({short_source(exp.source)})")
    ax.set_xlabel("training samples seen")
    ax.set_ylabel(f"mean loss over {exp.training['trace_every']} steps")
    ax.legend(fontsize=8)
    ax.grid(alpha=0.3)
    ax.set_title(f"{exp.id}: running training loss ({label})", fontsize=11)
    _save(fig, path)
    return True


def plot_final_metric(selections: list[tuple], path: Path) -> bool:
    """One panel per experiment: a dot per run of the headline metric, the published value marked."""
    panels = [(exp, sel, label) for exp, sel, label in selections if not sel.empty]
    if not panels:
        return False
    cols = min(4, len(panels))
    nrows = math.ceil(len(panels) / cols)
    fig, axes = plt.subplots(nrows, cols, figsize=(3.2 * cols, 3.2 * nrows), squeeze=False)
    rng = np.random.default_rng(0)  # jitter only
    for ax, (exp, sel, label) in zip(axes.flat, panels):
        metric = headline_metric(exp)
        groups = _groups(sel)
        for i, (group_label, group) in enumerate(groups):
            values = group[metric].dropna().to_numpy()
            ax.plot(i + rng.uniform(-0.12, 0.12, len(values)), values, "o", color="C0", alpha=0.7, markersize=5)
            if len(values):
                ax.plot([i - 0.25, i + 0.25], [values.mean()] * 2, color="C0", linewidth=2)
        if exp.published:
            value, tol = exp.published["value"], exp.published["tolerance"]
            shown = np.append(sel[metric].dropna().to_numpy(), value)
            pad = max(0.1 * (shown.max() - shown.min()), 0.005)
            ax.set_ylim(shown.min() - pad, shown.max() + pad)  # the tolerance band may run off the panel
            ax.axhline(value, color="C3", linestyle="--", label="published")
            if tol:
                ax.axhspan(value - tol, value + tol, color="C3", alpha=0.1, label="± tolerance")
            ax.legend(fontsize=7, loc="best")
        ax.set_xticks(range(len(groups)), [g for g, _ in groups], fontsize=8)
        ax.set_xlim(-0.6, len(groups) - 0.4)
        ax.set_title(f"{exp.id}" + ("" if label == "faithful" else f"\n({label})"), fontsize=9)
        ax.set_ylabel(metric, fontsize=8)
        ax.tick_params(axis="y", labelsize=8)
        ax.grid(alpha=0.3, axis="y")
    for ax in list(axes.flat)[len(panels):]:
        ax.set_visible(False)
    _save(fig, path, "Final headline metric: one dot per seed, bar = mean")
    return True


def _compact(value: float, _pos=None) -> str:
    """A log axis's tick label kept short enough not to run into its neighbours: 0.5, 20, 50k, 2M."""
    for scale, suffix in ((1e6, "M"), (1e3, "k")):
        if value >= scale:
            return f"{value / scale:g}{suffix}"
    return f"{value:g}"


def plot_speed(runs: pd.DataFrame, path: Path) -> bool:
    ok = runs[runs["status"] == "ok"]
    if ok.empty:
        return False
    grouped = ok.groupby(["experiment", "device", "engine", "setting"], sort=True)
    labels = [f"{e} [{d}, {g}]" + ("" if s == "faithful" else f" ({s})") for (e, d, g, s) in grouped.groups]
    fig, axes = plt.subplots(1, 2, figsize=(11, 1.2 + 0.35 * len(labels)), sharey=True)
    for ax, column, title in ((axes[0], "wall_time_s", "wall time per run (s)"),
                              (axes[1], "train_samples_per_s", "training samples / s")):
        stats = grouped[column].agg(["mean", "std"])
        ax.errorbar(stats["mean"], np.arange(len(stats)), xerr=stats["std"].fillna(0), fmt="o", color="C0", capsize=3)
        ax.set_xscale("log")  # iris and 50-epoch MNIST runs differ by orders of magnitude
        ax.xaxis.set_major_locator(matplotlib.ticker.LogLocator(subs=(1.0, 2.0, 5.0)))
        ax.xaxis.set_major_formatter(matplotlib.ticker.FuncFormatter(_compact))
        ax.xaxis.set_minor_formatter(matplotlib.ticker.NullFormatter())
        ax.set_title(title + ", mean ± 1 std", fontsize=10)
        ax.grid(alpha=0.3, axis="x", which="both")
    axes[0].set_yticks(np.arange(len(labels)), labels, fontsize=8)
    axes[0].invert_yaxis()
    _save(fig, path)
    return True


# ---------------------------------------------------------------------------------------------------
# Over-fitting: train/validation gap with and without dropout


def _gaps(selection: pd.DataFrame, epochs: pd.DataFrame) -> pd.DataFrame:
    rows = epochs[epochs["run_id"].isin(selection["run_id"])].copy()
    rows["acc_gap"] = rows["train_acc"] - rows["valid_acc"]
    rows["loss_gap"] = rows["valid_loss"] - rows["train_loss"]
    return rows.dropna(subset=["acc_gap"])


def overfitting_section(registry: dict, runs: pd.DataFrame, epochs: pd.DataFrame, plots: Path) -> list[str]:
    plain_id, dropout_id = OVERFITTING_PAIR
    lines = ["## Over-fitting: does dropout narrow the train/validation gap?", ""]
    if plain_id not in registry or dropout_id not in registry:
        return lines + [f"Not assessed: {plain_id} and {dropout_id} must both be in the registry.", ""]
    (plain, plain_label), (dropout, dropout_label) = (plot_selection(runs, i) for i in OVERFITTING_PAIR)
    gaps = {plain_id: _gaps(plain, epochs), dropout_id: _gaps(dropout, epochs)}
    missing = [i for i, g in gaps.items() if g.empty]
    if missing:
        return lines + [f"Not assessed yet: no runs with a validation split of {' and '.join(missing)} "
                        f"(`harness run {' '.join(OVERFITTING_PAIR)}`).", ""]
    fig, axes = plt.subplots(1, 2, figsize=(10, 3.8))
    for ax, column, ylabel in ((axes[0], "acc_gap", "train acc − valid acc"), (axes[1], "loss_gap", "valid loss − train loss")):
        for (exp_id, rows), color in zip(gaps.items(), ("C3", "C0")):
            stats = _mean_std_over_runs(rows, "epoch", column)
            _band(ax, stats, "epoch", color, "-", f"{exp_id} ({rows['run_id'].nunique()} runs)")
        ax.axhline(0, color="k", linewidth=0.6)
        ax.set_xlabel("epoch")
        ax.xaxis.set_major_locator(matplotlib.ticker.MaxNLocator(integer=True))
        ax.set_ylabel(ylabel)
        ax.legend(fontsize=8)
        ax.grid(alpha=0.3)
    _save(fig, plots / "dropout-gap.png", "Train/validation gap per epoch, mean ± 1 std over seeds")

    # The gap at the last epoch both have, one value per seed.
    last = int(min(g["epoch"].max() for g in gaps.values()))
    plain_gap = gaps[plain_id].loc[gaps[plain_id]["epoch"] == last, "acc_gap"]
    dropout_gap = gaps[dropout_id].loc[gaps[dropout_id]["epoch"] == last, "acc_gap"]
    p = welch_p_value(plain_gap, dropout_gap)
    a, b = summarize(plain_gap), summarize(dropout_gap)
    def points(s: Summary) -> str:
        return f"{100 * s.mean:.2f}" + ("" if s.n == 1 else f" ± {100 * s.std:.2f}") + f" pp ({s.n} seed{'s' * (s.n > 1)})"

    numbers = (f"At epoch {last}, train accuracy exceeds validation accuracy by {points(a)} without dropout "
               f"and by {points(b)} with it")
    if b.mean < a.mean and p < 0.05:
        conclusion = f"the data support the claim that dropout curbs over-fitting (Welch's t-test p = {p:.2g})."
    elif b.mean < a.mean:
        why = f"p = {p:.2g}" if not math.isnan(p) else "fewer than two seeds on a side"
        conclusion = f"smaller with dropout, but not significantly so ({why}): more seeds are needed to support the claim."
    else:
        conclusion = "the data do not support the claim that dropout narrows the gap."
    if plain_label != "faithful" or dropout_label != "faithful":
        conclusion += f" These are quick runs ({plain_label}; {dropout_label}), not the 50-epoch recipe."
    return lines + [
        f"{numbers}: {conclusion}",
        "",
        "Train accuracy is measured during the training steps, with dropout active in the dropout model, "
        "which lowers its train accuracy and so its gap by itself; the validation curves are the fairer comparison.",
        "",
        "![train/validation gap](plots/dropout-gap.png)",
        "",
    ]


def _faithful_ok(runs: pd.DataFrame, exp_id: str, metric: str) -> pd.Series:
    rows = runs[(runs["experiment"] == exp_id) & runs["faithful"] & (runs["status"] == "ok")]
    return rows[metric].dropna()


COMPARISON_HEADERS = ["metric", "A", "B", "B − A", "Welch p"]


def comparison_row(runs: pd.DataFrame, a_id: str, b_id: str, metric: str) -> list | None:
    """Mean ± std over seeds of one metric for two experiments, their difference and Welch's p-value."""
    a, b = _faithful_ok(runs, a_id, metric), _faithful_ok(runs, b_id, metric)
    if a.empty or b.empty:
        return None
    sa, sb = summarize(a), summarize(b)
    p = welch_p_value(a, b)
    return [metric, f"{_mean_std(metric, sa)} (n={sa.n})", f"{_mean_std(metric, sb)} (n={sb.n})",
            _fmt_diff(metric, sb.mean - sa.mean), "–" if math.isnan(p) else f"{p:.2g}"]


def ablation_section(registry: dict, runs: pd.DataFrame) -> list[str]:
    lines = []
    for base_id, ablation_id, what in ABLATION_PAIRS:
        if base_id not in registry or ablation_id not in registry:
            continue
        rows = [r for m in ("valid_acc", "test_acc", "test_loss") if (r := comparison_row(runs, base_id, ablation_id, m))]
        lines += [f"## Ablation: {what}", "", f"A = `{base_id}` (as published), B = `{ablation_id}`; faithful runs, "
                  "mean ± std over seeds, Welch's t-test on the difference.", ""]
        lines += [_table(rows, COMPARISON_HEADERS), ""] if rows else [f"Not assessed yet: `harness run {base_id} {ablation_id}`.", ""]
    return lines


def dataset_section(registry: dict, runs: pd.DataFrame) -> list[str]:
    """Each MNIST recipe's accuracy on MNIST against the same recipe on Fashion-MNIST."""
    rows = []
    for exp_id in sorted(runs["experiment"].unique()):
        exp = registry[exp_id]
        if not exp.variant_of:
            continue
        row = comparison_row(runs, exp.variant_of, exp_id, "test_acc")
        if row:
            rows.append([exp.variant_of, exp.data["dataset"]] + row[1:])
    if not rows:
        return []
    return ["## MNIST versus Fashion-MNIST", "",
            "The same recipe on both datasets: test accuracy, mean ± std over seeds (faithful runs).", "",
            _table(rows, ["experiment", "other dataset", "MNIST", "other", "other − MNIST", "Welch p"]), ""]


# ---------------------------------------------------------------------------------------------------
# Environment


ENV_COLUMNS = ["host", "device", "device_name", "torch_version", "python_version", "git_commit", "threads"]


def environment_section(runs: pd.DataFrame, registry: dict) -> list[str]:
    lines = ["## Environment", ""]
    env = runs[ENV_COLUMNS].astype(str).replace({"nan": "", "": "?"})
    combos = env.value_counts(sort=False).reset_index(name="runs")
    lines += [_table(combos.values.tolist(), [*ENV_COLUMNS, "runs"]), ""]
    checksums = runs.assign(dataset=[registry[e].data["dataset"] for e in runs["experiment"]])
    md5 = checksums.groupby(["dataset", "dataset_md5"]).size().reset_index(name="runs")
    lines += ["Dataset checksums (`dataset_md5`) the runs were trained on:", "",
              _table(md5.values.tolist(), ["dataset", "dataset_md5", "runs"]), ""]
    mixed = []
    for column in ("torch_version", "python_version", "git_commit", "threads"):
        values = sorted(env[column].unique())
        if len(values) > 1:
            mixed.append(f"{column} ({', '.join(values)})")
    for device, names in env.groupby("device")["device_name"].unique().items():
        if len(names) > 1:
            mixed.append(f"device_name for {device} ({', '.join(sorted(names))})")
    for dataset, sums in md5.groupby("dataset")["dataset_md5"].unique().items():
        if len(sums) > 1:
            mixed.append(f"dataset_md5 of {dataset} ({', '.join(sorted(s or '?' for s in sums))})")
    if mixed:
        lines += ["**Mixed environment**: the runs differ in " + "; ".join(mixed) +
                  ". Numbers pooled across them may not be comparable.", ""]
    else:
        lines += ["All runs share one environment (torch, Python, commit, thread count, device names, data).", ""]
    dirty = sorted({c for c in env["git_commit"] if c.endswith("+dirty")})
    if dirty:
        lines += [f"**Uncommitted code**: runs from {', '.join(dirty)} were made with changes not in any commit.", ""]
    return lines


# ---------------------------------------------------------------------------------------------------
# The report


def _accounting(results: Results, registry: dict) -> list[str]:
    r = results
    lines = [f"- {r.read} row(s) in runs.csv; {len(r.runs)} count (the latest of each cell, current recipe)."]
    if r.superseded:
        lines.append(f"- {r.superseded} row(s) superseded by a later run of the same cell (`--force`) were ignored.")
    if r.stale:
        detail = ", ".join(f"{k} ({v})" for k, v in sorted(r.stale.items()))
        lines.append(f"- {sum(r.stale.values())} stale row(s) from an earlier recipe (config_hash differs) were ignored: {detail}.")
    if r.unregistered:
        detail = ", ".join(f"{k} ({v})" for k, v in sorted(r.unregistered.items()))
        lines.append(f"- {sum(r.unregistered.values())} row(s) of experiments no longer in the registry were ignored: {detail}.")
    if r.malformed:
        lines.append(f"- {r.malformed} malformed row(s) (a key column empty) were ignored.")
    if r.orphan_epochs:
        lines.append(f"- {r.orphan_epochs} epoch row(s) belong to no recorded run (an interrupted write) and were ignored.")
    no_epochs = sorted(set(r.runs["run_id"]) - set(r.epochs["run_id"]))
    if no_epochs:
        lines.append(f"- {len(no_epochs)} run(s) have no epoch rows, so no learning curve: {', '.join(no_epochs)}.")
    failed = r.runs[r.runs["status"] != "ok"]
    for row in failed.itertuples():
        lines.append(f"- {row.experiment} seed {row.seed} [{row.device}, {row.engine}] ended {row.status}: {row.message or 'no message'}.")
    # Dataset variants run on request only: their absence is not worth a line.
    missing = [e for e, exp in registry.items() if not exp.variant_of and not (r.runs["experiment"] == e).any()]
    if missing:
        lines.append(f"- No current runs of: {', '.join(missing)}.")
    return lines + [""]


SUMMARY_HEADERS = ["experiment", "device", "engine", "seeds", "metric", "mean ± std", "95% CI of the mean", "min", "max"]
VERDICT_RULES = (
    f"Verdict: *{REPRODUCED}* when the published value lies inside the 95% confidence interval of the mean "
    "(Student t over seeds) or within the registry's tolerance of the mean; otherwise *better* or *worse* "
    f"(higher accuracy, lower loss is better); *{NO_PUBLISHED}* where the tutorial printed none. "
    "Statistics are over runs that ended ok; failed runs are counted beside the seeds."
)


def build_report(results_dir: Path, registry: dict) -> tuple[str, list[str]]:
    """The report's markdown and the plots written (names under plots/)."""
    results = load_results(results_dir, registry)
    runs, epochs = results.runs, results.epochs
    now = datetime.now(timezone.utc).isoformat(timespec="seconds")
    lines = ["# Results report", "", f"Generated {now} from `{results_dir}` by `harness report`.", "",
             "## What was read", ""] + _accounting(results, registry)
    if runs.empty:
        lines += ["Nothing to report yet: no current runs. `harness run` records some "
                  f"(e.g. `harness run iris-ce --results-dir {results_dir}`).", ""]
        return "\n".join(lines), []

    plots = safe_files.real_dir(results_dir / "plots", REPORT_NOT_WRITTEN)
    # A plot not drawn this time would describe results no longer counted (a link is removed, not followed).
    safe_files.remove_matching(plots, lambda name: name.endswith(".png") or safe_files.is_temporary(name))
    written: list[str] = []

    lines += ["## Reproduced versus published", "", VERDICT_RULES, ""]
    faithful = summary_rows(runs, registry, faithful=True)
    if faithful:
        lines += [_table(faithful, SUMMARY_HEADERS + ["published (source)", "mean − published", "verdict"]), ""]
        sources = sorted({e for e in runs.loc[runs["faithful"], "experiment"] if registry[e].published})
        lines += [f"- {e}: {registry[e].source}: {registry[e].published_text}" for e in sources] + [""]
    else:
        lines += ["No faithful runs yet (every run overrode the recipe): nothing to set against the published numbers.", ""]
    quick = summary_rows(runs, registry, faithful=False)
    if quick:
        lines += ["## Quick runs (not faithful)", "",
                  "Runs with the recipe overridden (`--epochs`, `--train-limit`): not comparable with the published values.", "",
                  _table(quick, SUMMARY_HEADERS[:3] + ["overrides"] + SUMMARY_HEADERS[3:]), ""]

    lines += ["## Learning curves", ""]
    selections = []
    for exp_id in runs["experiment"].unique():
        exp = registry[exp_id]
        selection, label = plot_selection(runs, exp_id)
        selections.append((exp, selection, label))
        if plot_learning_curves(exp, selection, label, epochs, plots / f"curves-{exp_id}.png"):
            written.append(f"curves-{exp_id}.png")
            lines += [f"![{exp_id} learning curves](plots/curves-{exp_id}.png)", ""]
        if plot_trace(exp, selection, label, results.trace, plots / f"trace-{exp_id}.png"):
            written.append(f"trace-{exp_id}.png")
            against = " against the published one" if exp.published_trace else ""
            lines += [f"Running training loss of {exp_id}{against}:", "",
                      f"![{exp_id} running loss](plots/trace-{exp_id}.png)", ""]

    lines += ["## Final headline metric per seed", ""]
    if plot_final_metric(selections, plots / "final-metric.png"):
        written.append("final-metric.png")
        lines += ["![final headline metric per seed](plots/final-metric.png)", ""]

    lines += overfitting_section(registry, runs, epochs, plots)
    lines += ablation_section(registry, runs)
    lines += dataset_section(registry, runs)
    if (plots / "dropout-gap.png").exists():
        written.append("dropout-gap.png")

    lines += ["## Speed", "", "Training samples per second count the training steps only; wall time is the whole run.", "",
              _table(speed_rows(runs), ["experiment", "device", "engine", "setting", "runs", "wall time", "train samples/s"]), ""]
    if plot_speed(runs, plots / "speed.png"):
        written.append("speed.png")
        lines += ["![wall time and throughput](plots/speed.png)", ""]

    lines += environment_section(runs, registry)
    return "\n".join(lines), written


def write_report(results_dir: Path | str, registry: dict, log=print) -> int:
    results_dir = Path(results_dir)
    if not results_dir.is_dir():
        log(f"no results in {results_dir} (no such directory): nothing to report; `harness run` records results there")
        return 0
    try:
        with ResultsStore(results_dir).locked():  # read as no run is recording; no other report writes meanwhile
            text, plots = build_report(results_dir, registry)
            safe_files.write_atomic(results_dir / "REPORT.md", (text + "\n").encode("utf-8"), REPORT_NOT_WRITTEN)
    except OSError as e:
        raise HarnessError(f"{e.filename or results_dir}: cannot write the report ({e.strerror}); check the directory's permissions") from None
    if plots:
        log(f"wrote {results_dir / 'REPORT.md'} and {len(plots)} plot(s) in {results_dir / 'plots'}")
    else:
        log(f"wrote {results_dir / 'REPORT.md'}: no current runs to report yet")
    return 0
