"""Training throughput of each experiment x engine x device, measured the way runs train.

Each measurement is `steps` optimiser steps of an engine's own training loop (the engine is called
with a training set of `steps` batches, or `steps` epochs for full-batch iris) and timed by it: the
host clock on the CPU, CUDA events on a GPU, the device synchronised before the clock stops. Evaluation
is outside the timed part. The first `warmup` measurements are dropped; of the `repeats` kept, the
median, interquartile range and minimum time are reported. Speed-ups are over the reference engine
measured in the same invocation, on the same device and thread count.
"""

from __future__ import annotations

import csv
import io
import statistics
from datetime import datetime, timezone
from pathlib import Path

import torch

from . import portable
from . import safe_files
from .engines import ENGINES, MULTI_SEED_ENGINES
from .engines.multiseed import vmap_fallback_is_an_error
from .engines.sources import RunOptions
from .errors import HarnessError
from .registry import TRAINING_SET_SIZES, training_samples
from .runner import device_name, git_commit

COLUMNS = [
    "experiment", "engine", "device", "device_name", "seeds", "threads", "batch_size", "steps", "repeats",
    "samples_per_s", "samples_per_s_iqr", "step_time_ms_median", "step_time_ms_min", "epoch_time_s",
    "speedup_vs_reference", "torch_version", "git_commit", "measured_at",
]


class MeasurementFailed(HarnessError):
    """A measurement that would not measure what it claims to: exit status 1."""

    exit_status = 1


def _quartiles(values: list[float]) -> tuple[float, float]:
    if len(values) < 2:
        return values[0], values[0]
    q = statistics.quantiles(values, n=4)
    return q[0], q[2]


def measure(exp, engine: str, device: str, steps: int, repeats: int, warmup: int, seeds: int, options: RunOptions) -> dict:
    """Time `repeats` measurements of `steps` training steps (after `warmup` more) and summarise them."""
    portable.apply_in_process()
    batch = exp.training["batch_size"]
    iris = batch is None  # full batch, as T1's iris recipes train
    measurements = warmup + repeats
    if iris:  # one full-batch step per epoch: a measurement is `steps` epochs
        run_options = RunOptions(options.data_dir, options.mirror, epochs=steps * measurements)
    else:  # a measurement is one epoch of `steps` batches; evaluation, outside the timing, kept tiny
        run_options = RunOptions(options.data_dir, options.mirror, epochs=measurements, train_limit=steps * batch, eval_limit=batch)
    seed_list = list(range(seeds)) if engine in MULTI_SEED_ENGINES else [0]
    try:
        with vmap_fallback_is_an_error():
            outcome = ENGINES[engine](exp, seed_list, torch.device(device), run_options)[0]
    except UserWarning as e:
        raise MeasurementFailed(f"{exp.id} {engine} {device}: vmap ran an op seed after seed, not batched ({e})") from None
    if outcome.status != "ok":
        raise MeasurementFailed(f"{exp.id} {engine} {device}: the run ended {outcome.status}: {outcome.message}")
    # Each seed's share of the time, times the number of seeds: the device's time for all of them.
    epoch_times = [t * len(seed_list) for t in outcome.epoch_train_s]
    if iris:
        epoch_times = [sum(epoch_times[i : i + steps]) for i in range(0, len(epoch_times), steps)]
    kept = epoch_times[warmup:]
    samples = outcome.train_samples // len(outcome.epoch_train_s) * (steps if iris else 1) * len(seed_list)
    median = statistics.median(kept)
    rates = [samples / t for t in kept]
    q1, q3 = _quartiles(rates)
    # A whole epoch of the recipe: 60k MNIST-style samples less the validation share; iris: one step.
    full_epoch = samples / len(seed_list) / steps if iris else int(60000 * (1 - exp.data["valid_fraction"]))
    return {
        "experiment": exp.id, "engine": engine, "device": device, "device_name": device_name(device),
        "seeds": len(seed_list), "threads": torch.get_num_threads(), "batch_size": batch or samples // len(seed_list),
        "steps": steps, "repeats": repeats, "samples_per_s": samples / median, "samples_per_s_iqr": q3 - q1,
        "step_time_ms_median": median / steps * 1000, "step_time_ms_min": min(kept) / steps * 1000,
        "torch_version": torch.__version__, "git_commit": git_commit(),
        "epoch_time_s": full_epoch * len(seed_list) / (samples / median), "speedup_vs_reference": None,
        "measured_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
    }


def add_speedups(rows: list[dict]) -> None:
    """Each row's samples/s over the reference engine's for the same experiment and device, where measured."""
    reference = {(r["experiment"], r["device"]): r["samples_per_s"] for r in rows if r["engine"] == "reference"}
    for r in rows:
        base = reference.get((r["experiment"], r["device"]))
        r["speedup_vs_reference"] = r["samples_per_s"] / base if base else None


NOT_WRITTEN = "free some space or fix the permissions, or pass another --out"


def write_csv(rows: list[dict], path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    text = io.StringIO()
    writer = csv.DictWriter(text, fieldnames=COLUMNS, lineterminator="\r\n")  # csv's own line ends, as before
    writer.writeheader()
    writer.writerows(rows)
    safe_files.write_atomic(path, text.getvalue().encode("utf-8"), NOT_WRITTEN)


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


def markdown(rows: list[dict], command: str) -> str:
    """A section for the report: every measurement, its speed-up over reference beside it."""
    from tabulate import tabulate

    table = [[r["experiment"], r["engine"], r["seeds"], r["device"], f"{r['samples_per_s']:,.0f}", f"±{r['samples_per_s_iqr'] / 2:,.0f}",
              f"{r['step_time_ms_median']:.3f}", f"{r['epoch_time_s']:.3g}",
              f"{r['speedup_vs_reference']:.2f}x" if r["speedup_vs_reference"] else ""] for r in rows]
    headers = ["experiment", "engine", "seeds", "device", "samples/s (median)", "IQR/2", "ms/step", "s/epoch", "vs reference"]
    devices = "; ".join(sorted({f"{r['device']} = {r['device_name']}, {r['threads']} threads" for r in rows}))
    first = rows[0]
    return (f"## Training throughput\n\n`{command}`\n\n{devices}; torch {first['torch_version']}, commit {first['git_commit']}; "
            f"median of {first['repeats']} measurements of {first['steps']} steps each, after warm-up. "
            "samples/s counts every seed's samples; s/epoch is a whole epoch of the recipe (all seeds for multiseed).\n\n"
            + tabulate(table, headers=headers, tablefmt="github") + "\n")


def run_bench(experiments, engines: list[str], devices: list[str], steps: int, repeats: int, warmup: int,
              seeds: int | None, options: RunOptions, out: Path, command: str, log=print) -> list[dict]:
    """Measure every combination, then write `out` (CSV), its plot (.png) and markdown (.md) beside it."""
    for exp in experiments:  # a measurement of more batches than there are would time fewer steps than it says
        batch = exp.training["batch_size"]
        if batch and exp.dataset in TRAINING_SET_SIZES and steps * batch > (samples := training_samples(exp.data)):
            batches = samples // batch
            raise HarnessError(f"--steps {steps}: {exp.id} has {batches} batches in its training set; allowed: 1 to {batches}")
    rows = []
    for device in devices:
        for exp in experiments:
            for engine in engines:
                s = seeds or (64 if device.startswith("cuda") else 5)
                row = measure(exp, engine, device, steps, repeats, warmup, s, options)
                rows.append(row)
                log(f"{exp.id} {engine} {device} seeds={row['seeds']}: {row['samples_per_s']:,.0f} samples/s "
                    f"({row['step_time_ms_median']:.3f} ms/step)")
    add_speedups(rows)
    try:
        write_csv(rows, out)
        plot(rows, out.with_suffix(".png"))
        safe_files.write_atomic(out.with_suffix(".md"), markdown(rows, command).encode("utf-8"), NOT_WRITTEN)
    except OSError as e:  # checked before measuring, but the place can change (or fill) meanwhile
        raise MeasurementFailed(f"--out {out}: cannot write {e.filename or out} ({e.strerror})") from None
    return rows
