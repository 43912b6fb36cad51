"""Training throughput of each experiment x engine x device, measured the way runs train.

Each measurement is `steps` optimiser steps of an engine's own training loop (the engine is called
with a training set of `steps` batches, or `steps` epochs for full-batch iris) and timed by it: the
host clock on the CPU, CUDA events on a GPU, the device synchronised before the clock stops. Evaluation
is outside the timed part, and `warmup` more measurements in the same call come first, dropped. The
engines are measured in `repeats` interleaved rounds (every engine once per round), so that a machine's
load drifting over minutes slows them alike; the median, interquartile range and minimum time are
reported, and each engine's speed-up over the reference as the median of the per-round ratios with a
bootstrap interval, on the same device and thread count.
"""

from __future__ import annotations

import io
import math
import statistics
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

import numpy as np
import torch
from scipy import stats as scipy_stats

from . import portable
from . import safe_files
from .engines import ENGINES, MULTI_SEED_ENGINES
from .engines.multiseed import vmap_fallback_is_an_error
from .options import RunOptions
from .errors import HarnessError
from .named_datasets import DATASETS, training_samples
from .results import csv_text
from .machine import device_name, git_commit
from .validate import validate

COLUMNS = [
    "experiment", "engine", "device", "device_name", "seeds", "threads", "batch_size", "steps", "repeats",
    "samples_per_s", "samples_per_s_iqr", "step_time_ms_median", "step_time_ms_min", "epoch_time_s",
    "speedup_vs_reference", "speedup_ci_low", "speedup_ci_high", "torch_version", "git_commit", "measured_at",
]


class MeasurementFailed(HarnessError):
    """A measurement that would not measure what it claims to: exit status 1."""

    exit_status = 1


def _quartiles(values: list[float]) -> tuple[float, float]:
    if len(values) < 2:
        return values[0], values[0]
    q = statistics.quantiles(values, n=4)
    return q[0], q[2]


@dataclass
class Measurement:
    """One engine's time for `steps` training steps (all its seeds), and how many samples that was."""

    seconds: float
    samples: int
    seeds: int


def measure_once(exp, engine: str, device: str, steps: int, warmup: int, seeds: int, options: RunOptions) -> Measurement:
    """One measurement of `steps` training steps, after `warmup` more in the same call (dropped)."""
    portable.apply_in_process()
    batch = exp.training["batch_size"]
    iris = batch is None  # full batch, as T1's iris recipes train
    if iris:  # one full-batch step per epoch: a measurement is `steps` epochs
        run_options = RunOptions(options.data_dir, options.mirror, epochs=steps * (warmup + 1))
    else:  # a measurement is one epoch of `steps` batches; evaluation, outside the timing, kept tiny
        run_options = RunOptions(options.data_dir, options.mirror, epochs=warmup + 1, train_limit=steps * batch, eval_limit=batch)
    seed_list = list(range(seeds)) if engine in MULTI_SEED_ENGINES else [0]
    try:
        with vmap_fallback_is_an_error():
            outcome = ENGINES[engine](exp, seed_list, torch.device(device), run_options)[0]
    except UserWarning as e:
        raise MeasurementFailed(f"{exp.id} {engine} {device}: vmap ran an op seed after seed, not batched ({e})") from None
    if outcome.status != "ok":
        raise MeasurementFailed(f"{exp.id} {engine} {device}: the run ended {outcome.status}: {outcome.message}")
    # Each seed's share of the time, times the number of seeds: the device's time for all of them.
    last = outcome.epoch_train_s[-steps:] if iris else outcome.epoch_train_s[-1:]
    per_epoch = outcome.train_samples // len(outcome.epoch_train_s)
    return Measurement(sum(last) * len(seed_list), per_epoch * len(last) * len(seed_list), len(seed_list))


def interleaved(exp, engines: list[str], device: str, steps: int, repeats: int, warmup: int, seeds: int,
                options: RunOptions) -> dict[str, list[Measurement]]:
    """`repeats` rounds, each measuring every engine once in turn (reference, fast, multiseed, reference, ...):
    load on a shared machine drifts over minutes, and a drift then slows every engine of a round alike,
    where measuring one engine's repeats and then the next's would credit it to whichever ran in the quiet."""
    rounds: dict[str, list[Measurement]] = {engine: [] for engine in engines}
    for _ in range(repeats):
        for engine in engines:
            rounds[engine].append(measure_once(exp, engine, device, steps, warmup, seeds, options))
    return rounds


def summarise(exp, engine: str, device: str, steps: int, measurements: list[Measurement]) -> dict:
    """One row: the median samples/s over the rounds, its interquartile range, the median and fastest step."""
    times = [m.seconds for m in measurements]
    samples, n_seeds = measurements[0].samples, measurements[0].seeds
    median = statistics.median(times)
    q1, q3 = _quartiles([samples / t for t in times])
    batch = exp.training["batch_size"]
    # A whole epoch of the recipe: its training samples; full-batch (iris): one step.
    full_epoch = samples / n_seeds / steps if batch is None else training_samples(exp.data)
    return {
        "experiment": exp.id, "engine": engine, "device": device, "device_name": device_name(device),
        "seeds": n_seeds, "threads": torch.get_num_threads(), "batch_size": batch or samples // n_seeds // steps,
        "steps": steps, "repeats": len(times), "samples_per_s": samples / median, "samples_per_s_iqr": q3 - q1,
        "step_time_ms_median": median / steps * 1000, "step_time_ms_min": min(times) / steps * 1000,
        "torch_version": torch.__version__, "git_commit": git_commit(),
        "epoch_time_s": full_epoch * n_seeds / (samples / median),
        "speedup_vs_reference": None, "speedup_ci_low": None, "speedup_ci_high": None,
        "measured_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
    }


def speedup(engine: list[Measurement], reference: list[Measurement]) -> tuple[float, float, float]:
    """An engine's samples/s over the reference's, round by round (the two measured minutes apart at most,
    under the same load): the median of the per-round ratios and its 95% bootstrap interval (scipy,
    percentile method, fixed generator; NaN below three rounds)."""
    ratios = np.array([(e.samples / e.seconds) / (r.samples / r.seconds) for e, r in zip(engine, reference)])
    median = float(np.median(ratios))
    if len(ratios) < 3 or np.ptp(ratios) == 0:
        return median, math.nan, math.nan
    ci = scipy_stats.bootstrap((ratios,), np.median, confidence_level=0.95, n_resamples=9999, method="percentile",
                               random_state=np.random.default_rng(0)).confidence_interval
    return median, float(ci.low), float(ci.high)


NOT_WRITTEN = "free some space or fix the permissions, or pass another --out"


def write_csv(rows: list[dict], path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    safe_files.write_atomic(path, csv_text(COLUMNS, rows).encode("utf-8"), NOT_WRITTEN)


def plot(rows: list[dict], path: Path) -> None:
    """Samples/s per experiment, one bar per engine (log scale), one panel per device."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    devices = sorted({r["device"] for r in rows})
    experiments = list(dict.fromkeys(r["experiment"] for r in rows))
    engines = list(dict.fromkeys(r["engine"] for r in rows))
    fig, axes = plt.subplots(1, len(devices), figsize=(1.6 + 1.2 * len(experiments) * len(devices), 4), squeeze=False)
    width = 0.8 / len(engines)
    for ax, device in zip(axes[0], devices):
        for k, engine in enumerate(engines):
            found = {r["experiment"]: r for r in rows if r["device"] == device and r["engine"] == engine}
            xs = [i + k * width for i, e in enumerate(experiments) if e in found]
            ys = [found[e]["samples_per_s"] for e in experiments if e in found]
            label = engine + (f" (S={found[next(iter(found))]['seeds']})" if found and engine in MULTI_SEED_ENGINES else "")
            ax.bar(xs, ys, width, label=label)
        ax.set_xticks([i + width * (len(engines) - 1) / 2 for i in range(len(experiments))], experiments, rotation=30, ha="right")
        ax.set_yscale("log")
        ax.set_ylabel("training samples/s (all seeds)")
        name = next(r["device_name"] for r in rows if r["device"] == device)
        ax.set_title(f"{device}: {name}", fontsize=9)
        ax.legend(fontsize=8)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    png = io.BytesIO()
    fig.savefig(png, format="png", dpi=120)
    plt.close(fig)
    safe_files.write_atomic(path, png.getvalue(), NOT_WRITTEN)


def _speedup_text(row: dict, pattern: str = "{}") -> str:
    """'4.49x [4.31, 4.60]' (the ratio and its interval), or '' without a reference."""
    ratio, low, high = row["speedup_vs_reference"], row.get("speedup_ci_low"), row.get("speedup_ci_high")
    if ratio is None:
        return ""
    interval = f" [{low:.2f}, {high:.2f}]" if low is not None and not math.isnan(low) else ""
    return pattern.format(f"{ratio:.2f}x{interval}")


def markdown(rows: list[dict], command: str) -> str:
    """A section for the report: every measurement, its speed-up over reference beside it."""
    from tabulate import tabulate

    table = [[r["experiment"], r["engine"], r["seeds"], r["device"], f"{r['samples_per_s']:,.0f}", f"±{r['samples_per_s_iqr'] / 2:,.0f}",
              f"{r['step_time_ms_median']:.3f}", f"{r['epoch_time_s']:.3g}", _speedup_text(r)] for r in rows]
    headers = ["experiment", "engine", "seeds", "device", "samples/s (median)", "IQR/2", "ms/step", "s/epoch",
               "vs reference [95% CI]"]
    devices = "; ".join(sorted({f"{r['device']} = {r['device_name']}, {r['threads']} threads" for r in rows}))
    first = rows[0]
    return (f"## Training throughput\n\n`{command}`\n\n{devices}; torch {first['torch_version']}, commit {first['git_commit']}; "
            f"{first['repeats']} rounds, each measuring every engine once in turn for {first['steps']} steps after warm-up; "
            "the median over the rounds. *vs reference*: the median of the per-round ratios to the reference engine, "
            "with its bootstrap 95% interval. samples/s counts every seed's samples; s/epoch is a whole epoch of the "
            "recipe (all seeds for multiseed).\n\n" + tabulate(table, headers=headers, tablefmt="github") + "\n")


def run_bench(experiments, engines: list[str], devices: list[str], steps: int, repeats: int, warmup: int,
              seeds: int | None, options: RunOptions, out: Path, command: str, log=print) -> list[dict]:
    """Measure every combination, then write `out` (CSV), its plot (.png) and markdown (.md) beside it."""
    for exp in experiments:  # a measurement of more batches than there are would time fewer steps than it says
        batch = exp.training["batch_size"]
        if batch and exp.dataset in DATASETS and steps * batch > (samples := training_samples(exp.data)):
            batches = samples // batch
            raise HarnessError(f"--steps {steps}: {exp.id} has {batches} batches in its training set; allowed: 1 to {batches}")
    for exp in experiments:  # every recipe built and run on one batch first, as `harness run` does (the size guard too)
        for engine in engines:
            validate(exp, options, engine)
    rows = []
    for device in devices:
        for exp in experiments:
            s = seeds or (64 if device.startswith("cuda") else 5)
            rounds = interleaved(exp, engines, device, steps, repeats, warmup, s, options)
            mine = {engine: summarise(exp, engine, device, steps, rounds[engine]) for engine in engines}
            for engine, row in mine.items():
                if "reference" in rounds:
                    row["speedup_vs_reference"], row["speedup_ci_low"], row["speedup_ci_high"] = speedup(rounds[engine], rounds["reference"])
                rows.append(row)
                log(f"{exp.id} {engine} {device} seeds={row['seeds']}: {row['samples_per_s']:,.0f} samples/s "
                    f"({row['step_time_ms_median']:.3f} ms/step)" + _speedup_text(row, " ({} over reference)"))
    try:
        write_csv(rows, out)
        plot(rows, out.with_suffix(".png"))
        safe_files.write_atomic(out.with_suffix(".md"), markdown(rows, command).encode("utf-8"), NOT_WRITTEN)
    except OSError as e:  # checked before measuring, but the place can change (or fill) meanwhile
        raise MeasurementFailed(f"--out {out}: cannot write {e.filename or out} ({e.strerror})") from None
    return rows
