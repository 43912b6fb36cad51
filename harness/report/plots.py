"""The report's plots: learning curves, running loss, the headline figure per seed, over-fitting, the
spread per source of randomness, speed.

Each function draws one PNG and says whether it drew anything (False: no data to show).
"""

from __future__ import annotations

import io
import math

import matplotlib

matplotlib.use("Agg")  # files only, no display
import matplotlib.ticker  # noqa: E402
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

from .. import safe_files  # noqa: E402
from ..catalogue import ACCURACY, MEASURES, SPLITS, Kind, is_accuracy, kind_of, measure_of, metric_range  # noqa: E402
from ..stats import order_statistic_interval  # noqa: E402
from .formatting import short_source  # noqa: E402
from .loading import at_epoch  # noqa: E402

SPLIT_COLORS = {"train": "C0", "valid": "C1", "test": "C2"}
GROUP_STYLES = ("-", "--", ":", "-.")
DPI = 80
REPORT_NOT_WRITTEN = "free some space or fix the directory's permissions"

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


def _band(ax, stats: pd.DataFrame, x: str, color: str, style: str, label: str, bounds=(0.0, None)) -> None:
    """The mean and a ±1 std band, clipped to what the metric can reach (a loss is >= 0, an accuracy in [0, 1])."""
    ax.plot(stats[x], stats["mean"], color=color, linestyle=style, label=label)
    std = stats["std"].fillna(0)
    ax.fill_between(stats[x], (stats["mean"] - std).clip(*bounds), (stats["mean"] + std).clip(*bounds),
                    color=color, alpha=0.2, linewidth=0)


def _percent_axis(ax, kind: Kind) -> None:
    """Accuracies in percent, as the tables print them."""
    if kind.percent:
        ax.yaxis.set_major_formatter(matplotlib.ticker.PercentFormatter(1.0, decimals=None))


def _save(fig, path: safe_files.FolderFile, title: str | None = None) -> None:
    if title:
        fig.suptitle(title, fontsize=11)
    fig.set_layout_engine("constrained")  # unlike tight_layout, it keeps a tall grid's panel titles off the suptitle
    png = io.BytesIO()
    fig.savefig(png, format="png", dpi=DPI)
    plt.close(fig)
    path.write_atomic(png.getvalue())


def plot_learning_curves(exp, selection: pd.DataFrame, label: str, epochs: pd.DataFrame, path: safe_files.FolderFile) -> bool:
    """A panel per measure the runs record (a classifier's loss and accuracy; a regression's loss and declared
    metrics), each split a color, each group of runs a line style."""
    rows = epochs[epochs["run_id"].isin(selection["run_id"])]
    if rows.empty:
        return False
    groups = _groups(selection)
    measures = [m for m in MEASURES.values()
                if any(f"{split}_{m.short}" in rows and rows[f"{split}_{m.short}"].notna().any() for split in SPLITS)]
    fig, axes = plt.subplots(1, len(measures), figsize=(5 * len(measures), 3.8), squeeze=False)
    for ax, measure in zip(axes[0], measures):
        kind = measure.kind
        for style, (group_label, group) in zip(GROUP_STYLES * 4, groups):
            mine = rows[rows["run_id"].isin(group["run_id"])]
            for split, color in zip(SPLITS, SPLIT_COLORS.values()):
                stats = _mean_std_over_runs(mine, "epoch", f"{split}_{measure.short}")
                if not stats.empty:
                    suffix = f" ({group_label})" if len(groups) > 1 else ""
                    _band(ax, stats, "epoch", color, style, f"{split}{suffix}", (kind.least, kind.most))
        published = exp.published
        if published and published["curve_epochs"] and measure_of(published["curve_metric"]) is measure:
            ax.plot(published["curve_epochs"], published["curve_values"], "kx", markersize=7,
                    label=f"published {published['curve_metric']} ({short_source(exp.source)})")
        judged = [f for f in exp.published_figures if measure_of(f["metric"]) is measure]
        if judged:  # the figures the verdict table judges, at their epochs
            ax.plot([f["epoch"] for f in judged], [f["value"] for f in judged], "*", color="C3", markersize=10,
                    linestyle="none", label="published figures judged")
        ax.set_xlabel("epoch")
        ax.xaxis.set_major_locator(matplotlib.ticker.MaxNLocator(integer=True))
        ax.set_ylabel("mean loss" if measure.short == "loss" else measure.label)
        _percent_axis(ax, kind)
        if ax.has_data():
            ax.legend(fontsize=8)
        ax.grid(alpha=0.3)
    n = selection["run_id"].nunique()
    _save(fig, path, f"{exp.id}: learning curves, mean ± 1 std over {n} run(s) ({label})")
    return True


def plot_trace(exp, selection: pd.DataFrame, label: str, trace: pd.DataFrame, path: safe_files.FolderFile) -> bool:
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


def plot_headline(selections: list[tuple], epochs: pd.DataFrame, path: safe_files.FolderFile) -> bool:
    """One panel per experiment: every seed's headline metric as a dot, at the published figure's epoch
    (faithful runs; otherwise at the run's end), the median as a bar, the published value, and the
    seeds' range that holds one new run (the order-statistic interval the verdict table gives), which
    cannot pass the metric's range as a t interval can."""
    panels = [(exp, sel, label) for exp, sel, label in selections if not sel.empty]
    if not panels:
        return False
    cols = min(4, len(panels))
    nrows = math.ceil(len(panels) / cols)
    fig, axes = plt.subplots(nrows, cols, figsize=(3.2 * cols, 3.4 * nrows), squeeze=False)
    rng = np.random.default_rng(0)  # jitter only
    for ax, (exp, sel, label) in zip(axes.flat, panels):
        metric = exp.headline_metric
        figure = exp.published_figures[0] if exp.published and label == "faithful" else None
        groups = _groups(sel)
        for i, (_, group) in enumerate(groups):
            if figure:
                values = at_epoch(group, epochs, metric, figure["epoch"]).to_numpy()
            else:
                values = group[metric].dropna().to_numpy()
            if figure and len(values) >= 2:
                low, high, coverage = order_statistic_interval(values)
                ax.fill_between([i - 0.3, i + 0.3], low, high, color="C0", alpha=0.12, linewidth=0,
                                label=f"range holding one run ({100 * coverage:.0f}%)" if i == 0 else None)
            ax.plot(i + rng.uniform(-0.12, 0.12, len(values)), values, "o", color="C0", alpha=0.6, markersize=4,
                    label=f"a seed ({len(values)})" if i == 0 else None, zorder=3)
            if len(values):
                ax.plot([i - 0.25, i + 0.25], [np.median(values)] * 2, color="C0", linewidth=2,
                        label="median" if i == 0 else None)
        if figure:
            ax.axhline(figure["value"], color="C3", linestyle="--", label="published")
        ax.set_xticks(range(len(groups)), [g for g, _ in groups], fontsize=8)
        ax.set_xlim(-0.6, len(groups) - 0.4)
        where = f" @{figure['epoch']}" if figure else " at the end"
        ax.set_title(f"{exp.id}" + ("" if label == "faithful" else f"\n({label})"), fontsize=9)
        ax.set_ylabel(metric + where, fontsize=8)
        _percent_axis(ax, kind_of(metric))
        ax.margins(y=0.08)  # the published line off the frame
        ax.tick_params(axis="y", labelsize=8)
        ax.grid(alpha=0.3, axis="y")
        # Below the axes: a legend inside would sit on seeds, and a stalled seed is what matters most.
        ax.legend(fontsize=6, loc="upper center", bbox_to_anchor=(0.5, -0.12), ncol=2, frameon=False)
    for ax in list(axes.flat)[len(panels):]:
        ax.set_visible(False)
    _save(fig, path, "Headline metric at the published epoch: one dot per seed, bar = median")
    return True


def _compact(value: float, _pos=None) -> str:
    """A log axis's tick label kept short enough not to run into its neighbours: 0.5, 20, 50k, 2M."""
    for scale, suffix in ((1e6, "M"), (1e3, "k")):
        if value >= scale:
            return f"{value / scale:g}{suffix}"
    return f"{value:g}"


def plot_speed(runs: pd.DataFrame, path: safe_files.FolderFile) -> bool:
    ok = runs[runs["status"] == "ok"]
    if ok.empty:
        return False
    grouped = ok.groupby(["experiment", "device", "engine", "setting"], sort=True)
    labels = [f"{e} [{d}, {g}]" + ("" if s == "faithful" else f" ({s})") for (e, d, g, s) in grouped.groups]
    fig, axes = plt.subplots(1, 2, figsize=(11, 1.2 + 0.35 * len(labels)), sharey=True)
    for ax, column, title in ((axes[0], "wall_time_s", "wall time per run (s)"),
                              (axes[1], "train_samples_per_s", "training samples / s")):
        # Medians and quartiles: one run slowed by another process on the machine moves a mean, not these.
        q1, median, q3 = (grouped[column].quantile(q) for q in (0.25, 0.5, 0.75))
        ax.errorbar(median, np.arange(len(median)), xerr=[median - q1, q3 - median], fmt="o", color="C0", capsize=3)
        if not (median > 0).any():  # a script's runs count no training samples: no throughput to plot
            ax.set_title(title + ": none recorded", fontsize=10)
            continue
        ax.set_xscale("log")  # iris and 50-epoch MNIST runs differ by orders of magnitude
        ax.xaxis.set_major_locator(matplotlib.ticker.LogLocator(subs=(1.0, 2.0, 5.0)))
        ax.xaxis.set_major_formatter(matplotlib.ticker.FuncFormatter(_compact))
        ax.xaxis.set_minor_formatter(matplotlib.ticker.NullFormatter())
        ax.set_title(title + ", median and quartiles", fontsize=10)
        ax.grid(alpha=0.3, axis="x", which="both")
    axes[0].set_yticks(np.arange(len(labels)), labels, fontsize=8)
    axes[0].invert_yaxis()
    _save(fig, path)
    return True




def plot_source_spreads(panels: list[tuple], path: safe_files.FolderFile) -> bool:
    """One panel per variance design, (title, metric, spreads): each source's sd alone with its 95% interval,
    against the all-sources sd (line, its interval shaded) and the reruns' (nothing varied)."""
    if not panels:
        return False
    cols = min(2, len(panels))
    nrows = math.ceil(len(panels) / cols)
    height = max(len([s for s in spreads if s.group not in ("all", "none")]) for _, _, spreads in panels)
    fig, axes = plt.subplots(nrows, cols, figsize=(6 * cols, (1.4 + 0.4 * height) * nrows), squeeze=False)
    for ax, (title, metric, spreads) in zip(axes.flat, panels):
        scale = 100 if is_accuracy(metric) else 1  # accuracies in percentage points
        by_group = {s.group: s.spread for s in spreads}
        alone = [s for s in spreads if s.group not in ("all", "none")]
        y = np.arange(len(alone))
        sd = np.array([s.spread.sd for s in alone]) * scale
        low = np.array([s.spread.low for s in alone]) * scale
        high = np.array([s.spread.high for s in alone]) * scale
        ax.errorbar(sd, y, xerr=[sd - low, high - sd], fmt="o", color="C0", capsize=3, label="this source alone")
        if "all" in by_group:
            every = by_group["all"]
            ax.axvline(every.sd * scale, color="C3", label=f"all sources ({every.n} runs)")
            ax.axvspan(every.low * scale, every.high * scale, color="C3", alpha=0.12, linewidth=0)
        if "none" in by_group:
            ax.axvline(by_group["none"].sd * scale, color="0.3", linestyle="--", label=f"none (reruns, {by_group['none'].n})")
        ax.set_yticks(y, [s.group for s in alone], fontsize=8)
        ax.invert_yaxis()
        ax.set_xlim(left=-0.02 * ax.get_xlim()[1])
        ax.set_xlabel(f"sd of {metric}" + (" (pp)" if scale == 100 else ""), fontsize=8)
        ax.set_title(title, fontsize=9)
        ax.legend(fontsize=7, loc="lower right")
        ax.grid(alpha=0.3, axis="x")
    for ax in list(axes.flat)[len(panels):]:
        ax.set_visible(False)
    _save(fig, path, "Spread over runs when only one source of randomness changes: sd with its 95% interval")
    return True


def plot_overfitting(arms: dict[str, pd.DataFrame], path: safe_files.FolderFile) -> bool:
    """Validation loss and accuracy per epoch of two arms (epoch rows by id), mean ± 1 std over seeds, and
    the train − validation accuracy gap, labelled as measured with dropout active during training."""
    if any(rows.empty for rows in arms.values()):
        return False
    panels = (("valid_loss", "validation loss"), ("valid_acc", "validation accuracy"),
              ("acc_gap", "train acc − valid acc\n(train acc with dropout active)"))
    fig, axes = plt.subplots(1, 3, figsize=(13, 3.8))
    for ax, (column, ylabel) in zip(axes, panels):
        for (exp_id, rows), color in zip(arms.items(), ("C3", "C0")):
            rows = rows.assign(acc_gap=rows["train_acc"] - rows["valid_acc"])
            _band(ax, _mean_std_over_runs(rows, "epoch", column), "epoch", color, "-",
                  f"{exp_id} ({rows['run_id'].nunique()} runs)", (-1.0, 1.0) if column == "acc_gap" else metric_range(column))
        _percent_axis(ax, ACCURACY if column == "acc_gap" else kind_of(column))
        ax.set_xlabel("epoch")
        ax.xaxis.set_major_locator(matplotlib.ticker.MaxNLocator(integer=True))
        ax.set_ylabel(ylabel)
        ax.legend(fontsize=8)
        ax.grid(alpha=0.3)
    _save(fig, path, "A and B per epoch: mean ± 1 std over seeds")
    return True
