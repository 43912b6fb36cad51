"""The runs as experiment trackers show them: `harness export mlflow` and `harness export tensorboard`.

What is exported is what the report counts (`rows.count`, one rule): the latest row of each cell, of
registered experiments under their current recipe. Rows `check` refuses, superseded rows and those of
stale or unregistered recipes are counted in the summary line, never exported.

Per run: its settings (the recipe's, flattened, and the seed, device, engine, threads, overrides) as
parameters; what re-creates and identifies it (run id, configuration hash, commit, weights and code
digests, host, status) as tags; its figures after every logged epoch as series with step = epoch, and
its times. Per group of seeds (experiment, configuration, device, engine, two seeds or more): one
summary run whose series are the seeds' statistics at each epoch (`SUMMARY_FIELDS`), so that a UI that
overlays runs but cannot average them (MLflow's charts aggregate only min, max and average) shows the
mean ± sd over seeds beside the seeds themselves.

Both exports resume: a second one adds only what is not complete there, and one interrupted leaves
nothing a later one mistakes for complete (an MLflow run is complete once terminated, which is the last
thing done to it; a TensorBoard run directory once renamed from its partial name).
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
import os
import re
import shutil
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

import numpy as np

from . import rows as counted_rows
from . import safe_files
from .catalogue import TIMES, cell_key, metric_names
from .errors import HarnessError
from .results import overrides_text
from .stats import summarize

# The statistics of a summary run, each a series per metric: (suffix, what it is, how it is computed
# from one epoch's values over the seeds). The mean keeps the metric's own name, so that a chart of the
# metric overlays it on the seeds' curves. One list, read by both exports and their tests.
SUMMARY_FIELDS = (
    ("", "mean over seeds", lambda s, x: s.mean),
    ("/sd", "standard deviation over seeds", lambda s, x: s.std),
    ("/low", "mean − sd", lambda s, x: s.mean - s.std),
    ("/high", "mean + sd", lambda s, x: s.mean + s.std),
    ("/median", "median over seeds", lambda s, x: float(np.median(x))),
    ("/q1", "first quartile over seeds", lambda s, x: float(np.quantile(x, 0.25))),
    ("/q3", "third quartile over seeds", lambda s, x: float(np.quantile(x, 0.75))),
    ("/seeds", "seeds with a value at the epoch", lambda s, x: float(s.n)),
)
RUN_TIMES = tuple(t for t in TIMES if t in ("wall_time_s", "train_time_s", "train_samples_per_s"))
INSTALL = "`make setup-mlflow` (or `pip install -r requirements-mlflow.txt`)"


@dataclass
class TrackedRun:
    """One counted harness run, as a tracker holds it."""

    experiment: str
    run_id: str  # the harness's
    name: str
    status: str  # the harness's: ok, diverged, error
    params: dict[str, str]
    tags: dict[str, str]
    series: dict[str, list[tuple[int, float]]]  # metric -> (epoch, value), every logged epoch
    start_ms: int
    end_ms: int
    recipe: Path | None = None


@dataclass
class SeedSummary:
    """The seeds of one group (experiment, configuration, device, engine), epoch by epoch."""

    experiment: str
    group: str  # "cpu, fast" or "cpu, fast, epochs=1": what sets the group apart within its experiment
    name: str
    run_ids: list[str]
    seeds: list[int]
    series: dict[str, list[tuple[int, float]]]  # metric + SUMMARY_FIELDS suffix -> (epoch, value)
    digest: str  # of the run ids: a summary of other seeds is replaced
    start_ms: int
    end_ms: int
    plots: list[Path] = field(default_factory=list)


@dataclass
class Export:
    """What an export sends, and what it leaves out and why."""

    runs: list[TrackedRun]
    summaries: list[SeedSummary]
    left_out: str  # a clause: rows not exported, and why


def _ms(started_at: str) -> int:
    return int(datetime.fromisoformat(started_at).timestamp() * 1000)


def _number(text: str) -> float | None:
    try:
        value = float(text)
    except (TypeError, ValueError):
        return None
    return value if math.isfinite(value) else None


def _flattened(config: dict, prefix: str = "") -> dict[str, str]:
    """A recipe's settings as `section.key.subkey = value` (lists and the like as JSON)."""
    found = {}
    for key, value in config.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict) and value:
            found.update(_flattened(value, name + "."))
        else:
            found[name] = value if isinstance(value, str) else json.dumps(value, sort_keys=True)
    return found


def _group_label(row: dict) -> str:
    """'cpu, fast', or 'cpu, fast, epochs=1': what sets a group apart within its experiment."""
    return ", ".join(filter(None, (row["device"], row["engine"], overrides_text(row["overrides"]))))


def collect(results_dir: Path | str, registry: dict, plots_dir: Path | None = None) -> Export:
    """The runs and seed summaries of `results_dir` to export."""
    counted = counted_rows.count(results_dir, registry)
    epochs: dict[str, list[dict]] = {}
    names = metric_names()  # the catalogue's and the loaded recipes' own
    for e in counted.epochs:
        epochs.setdefault(e["run_id"], []).append(e)
    runs, groups = [], {}
    for row in sorted(counted.runs, key=lambda r: (r["experiment"], r["device"], r["engine"], r["config_hash"], int(r["seed"]))):
        exp = registry[row["experiment"]]
        series: dict[str, list[tuple[int, float]]] = {}
        for e in sorted(epochs.get(row["run_id"], []), key=lambda e: int(e["epoch"])):
            for metric in names:
                value = _number(e.get(metric, ""))
                if value is not None:
                    series.setdefault(metric, []).append((int(e["epoch"]), value))
        last = int(row["epochs"])
        for name in RUN_TIMES:
            value = _number(row[name])
            if value is not None:
                series[name] = [(last, value)]
        start, group = _ms(row["started_at"]), _group_label(row)
        params = {**_flattened(exp.config), "seed": row["seed"], "device": row["device"], "engine": row["engine"],
                  "threads": row["threads"], "epochs": row["epochs"], "faithful": row["faithful"],
                  "overrides": row["overrides"] or "(none)"}
        tags = {"harness.run_id": row["run_id"], "harness.config_hash": row["config_hash"], "harness.status": row["status"],
                "harness.weights_sha256": row["weights_sha256"], "harness.code_sha256": row["code_sha256"],
                "harness.dataset_md5": row["dataset_md5"], "mlflow.source.git.commit": row["git_commit"],
                "harness.host": row["host"], "harness.device_name": row["device_name"],
                "harness.torch_version": row["torch_version"], "harness.python_version": row["python_version"],
                "harness.cpu_capability": row["cpu_capability"], "harness.message": row["message"],
                "harness.group": group}
        tracked = TrackedRun(row["experiment"], row["run_id"], f"seed {row['seed']} [{group}]", row["status"],
                             params, {k: v for k, v in tags.items() if v}, series, start,
                             start + int(1000 * (_number(row["wall_time_s"]) or 0)), exp.path)
        runs.append(tracked)
        if row["status"] == "ok":
            groups.setdefault(cell_key(row)[:-1], []).append(tracked)  # CELL ends with the seed
    summaries = [_summary(members, plots_dir) for members in groups.values() if len(members) >= 2]
    left_out = []
    if counted.refused:
        left_out.append(f"{len(counted.refused)} refused by `harness check`")
    if counted.superseded:
        left_out.append(f"{counted.superseded} superseded by a later run of their cell")
    if counted.stale:
        left_out.append(f"{sum(counted.stale.values())} of an earlier recipe")
    if counted.unregistered:
        left_out.append(counted.unregistered_note())
    return Export(runs, summaries, "; ".join(left_out))


def _summary(members: list[TrackedRun], plots_dir: Path | None) -> SeedSummary:
    first = members[0]
    by_metric: dict[str, dict[int, list[float]]] = {}
    for run in members:
        for metric, points in run.series.items():
            if metric not in RUN_TIMES:  # a metric's points, not the run's times
                for epoch, value in points:
                    by_metric.setdefault(metric, {}).setdefault(epoch, []).append(value)
    series: dict[str, list[tuple[int, float]]] = {}
    for metric, at in by_metric.items():
        for epoch in sorted(at):
            values = np.asarray(at[epoch])
            if len(values) < 2:
                continue
            stats = summarize(values)
            for suffix, _, compute in SUMMARY_FIELDS:
                series.setdefault(metric + suffix, []).append((epoch, float(compute(stats, values))))
    ids = sorted(r.run_id for r in members)
    group = first.tags["harness.group"]
    plots = []
    if plots_dir is not None:
        plots = [p for p in (plots_dir / f"curves-{first.experiment}.png", plots_dir / f"overfitting-{first.experiment}.png")
                 if p.is_file()]
    return SeedSummary(first.experiment, group, f"mean ± sd over {len(members)} seeds [{group}]", ids,
                       sorted(int(r.params["seed"]) for r in members), series,
                       hashlib.sha256(",".join(ids).encode()).hexdigest()[:16],
                       min(r.start_ms for r in members), max(r.end_ms for r in members), plots)


# ---------------------------------------------------------------------------------------------------
# MLflow


def default_mlflow_store(results_dir: Path) -> str:
    return f"sqlite:///{(results_dir / 'mlflow' / 'mlflow.db').resolve()}"


def _mlflow_client(tracking_uri: str):
    try:
        import mlflow  # noqa: F401
        from mlflow.tracking import MlflowClient
    except ImportError:
        raise HarnessError(f"export mlflow: MLflow is not installed; {INSTALL} installs it") from None
    scheme = urllib.parse.urlparse(tracking_uri).scheme
    if scheme not in ("sqlite", "http", "https"):
        raise HarnessError(f"--tracking-uri {tracking_uri!r}: use sqlite:///PATH (a local store) or http(s)://HOST:PORT "
                           "(an MLflow server)")
    if scheme in ("http", "https"):
        try:
            with urllib.request.urlopen(tracking_uri.rstrip("/") + "/health", timeout=10) as reply:
                reply.read()
        except (urllib.error.URLError, OSError, ValueError) as e:
            reason = getattr(e, "reason", e)
            raise HarnessError(f"--tracking-uri {tracking_uri}: no MLflow server answers there ({reason}); start one "
                               "(`mlflow server --host 127.0.0.1 --port 5000`) or name another") from None
    for name in ("mlflow", "alembic"):  # their start-up notes would bury the export's own lines
        logging.getLogger(name).setLevel(logging.WARNING)
    return MlflowClient(tracking_uri=tracking_uri)


def _artifacts_beside(tracking_uri: str) -> Path | None:
    """Where a store named by `--tracking-uri` keeps the artifacts of the experiments the export creates: a sqlite
    store beside its database, in `artifacts/` as the harness's own store does (MLflow's default, `./mlruns`, would
    land in whatever folder the command ran from); a server, where it keeps them."""
    parsed = urllib.parse.urlparse(tracking_uri)
    database = parsed.path[1:]  # sqlite:///relative.db, sqlite:////absolute.db
    if parsed.scheme != "sqlite" or not database:
        return None
    folder = Path(database).parent
    if not folder.is_dir():
        raise HarnessError(f"--tracking-uri {tracking_uri}: the folder {str(folder)!r} of its database does not exist; "
                           "create it or name another")
    return folder / "artifacts"


def _chunks(items: list, size: int):
    for i in range(0, len(items), size):
        yield items[i:i + size]


def _existing(client, experiment_id: str) -> list:
    """Every active run of an experiment (MLflow pages its search)."""
    found, token = [], None
    while True:
        page = client.search_runs([experiment_id], max_results=5000, page_token=token)
        found += list(page)
        token = page.token
        if not token:
            return found


TERMINAL = ("FINISHED", "FAILED")
OWN_FOLDER = "move it aside; the export makes it anew"


def export_mlflow(results_dir: Path | str, registry: dict, tracking_uri: str | None = None, log=print) -> int:
    """Every counted run and seed summary of `results_dir` in MLflow; how many runs were added."""
    results_dir = counted_rows.require_results(results_dir)
    export = collect(results_dir, registry, results_dir / "plots")
    local = tracking_uri is None
    tracking_uri = tracking_uri or default_mlflow_store(results_dir)
    if local:  # the store is the harness's own folder in the results directory: never reached through a link
        store = safe_files.real_dir(results_dir / "mlflow", OWN_FOLDER)
        if (store / "mlflow.db").is_symlink():
            raise safe_files.link_refused(store / "mlflow.db")
        artifacts = safe_files.real_dir(store / "artifacts", OWN_FOLDER)
    else:
        artifacts = _artifacts_beside(tracking_uri)
    client = _mlflow_client(tracking_uri)
    from mlflow.entities import Metric, Param, RunTag

    by_experiment: dict[str, list] = {}
    for item in [*export.runs, *export.summaries]:
        by_experiment.setdefault(item.experiment, []).append(item)
    added = kept = 0
    total = len(export.runs) + len(export.summaries)
    for experiment, items in by_experiment.items():
        found = client.get_experiment_by_name(experiment)
        if local:
            safe_files.real_dir(artifacts / experiment, OWN_FOLDER)
        if found is None:
            location = (artifacts / experiment).resolve().as_uri() if artifacts is not None else None
            experiment_id = client.create_experiment(experiment, artifact_location=location,
                                                     tags={"harness.results_dir": str(results_dir.resolve())})
        else:
            experiment_id = found.experiment_id
        there: dict[str, object] = {}
        for run in _existing(client, experiment_id):
            key = run.data.tags.get("harness.run_id") or run.data.tags.get("harness.summary_of")
            if key:
                there.setdefault(key, []).append(run)
        for item in items:
            summary = isinstance(item, SeedSummary)
            key = (item.experiment + "/" + item.group) if summary else item.run_id
            complete = False
            for old in there.get(key, []):
                if (old.info.status in TERMINAL and (not summary or old.data.tags.get("harness.summary_digest") == item.digest)
                        and not complete):
                    complete = True
                else:  # an interrupted export's run, or a summary of other seeds
                    client.delete_run(old.info.run_id)
            if complete:
                kept += 1
                continue
            _log_run(client, experiment_id, item, key, Metric, Param, RunTag)
            added += 1
            if added % 100 == 0:
                log(f"exported {added + kept} of {total} runs and summaries ({added} added)")
    where = f"{tracking_uri}" + (f" (artifacts of new experiments in {artifacts})" if artifacts is not None else "")
    left = f"; not exported: {export.left_out}" if export.left_out else ""
    log(f"MLflow at {where}: {len(export.runs)} runs and {len(export.summaries)} seed summaries of {len(by_experiment)} "
        f"experiments; {added} added, {kept} already there{left}")
    if local:
        log(f"browse: mlflow ui --backend-store-uri {tracking_uri} --host 127.0.0.1")
    return added


def _log_run(client, experiment_id: str, item, key: str, Metric, Param, RunTag) -> None:
    summary = isinstance(item, SeedSummary)
    if summary:
        tags = {"harness.summary_of": key, "harness.summary_digest": item.digest, "harness.group": item.group,
                "harness.seeds": ",".join(map(str, item.seeds)), "harness.run_ids": ",".join(item.run_ids)}
        params = {"seeds": str(len(item.seeds)), **{f"statistic{suffix or '/mean'}": what for suffix, what, _ in SUMMARY_FIELDS}}
    else:
        tags, params = item.tags, item.params
    # The key goes in with the run itself, so that an export killed before the tags below leaves a run the
    # next export recognises (and redoes), not one without a name.
    key_tag = "harness.summary_of" if summary else "harness.run_id"
    run = client.create_run(experiment_id, start_time=item.start_ms, tags={"mlflow.runName": item.name, key_tag: key},
                            run_name=item.name)
    rid = run.info.run_id
    metrics = [Metric(name, value, item.start_ms, epoch) for name, points in item.series.items() for epoch, value in points]
    # MLflow takes at most 1000 metrics, 100 parameters and 100 tags in one call.
    for part in _chunks([Param(k, str(v)[:6000]) for k, v in params.items()], 100):
        client.log_batch(rid, params=part)
    for part in _chunks([RunTag(k, str(v)[:5000]) for k, v in tags.items()], 100):
        client.log_batch(rid, tags=part)
    for part in _chunks(metrics, 1000):
        client.log_batch(rid, metrics=part)
    for path in ([item.recipe] if not summary and item.recipe else item.plots if summary else []):
        client.log_artifact(rid, str(path))
    # Last: a terminated run is a complete one (an export killed before this leaves a running one, redone).
    client.set_terminated(rid, "FAILED" if not summary and item.status != "ok" else "FINISHED", end_time=item.end_ms)


# ---------------------------------------------------------------------------------------------------
# TensorBoard


def _tensorboard_writer():
    try:
        import tensorboard  # noqa: F401
        from torch.utils.tensorboard import SummaryWriter
        from torch.utils.tensorboard.summary import hparams
    except ImportError:
        raise HarnessError(f"export tensorboard: TensorBoard is not installed; {INSTALL} installs it") from None
    return SummaryWriter, hparams


def _safe(text: str) -> str:
    """A directory name: each run of other characters one dash ("cpu, fast, epochs=1" → "cpu-fast-epochs=1")."""
    return re.sub(r"[^A-Za-z0-9_.@=-]+", "-", text)


PARTIAL = ".partial"
SUMMARY_MARK = "harness-summary.txt"


def export_tensorboard(results_dir: Path | str, registry: dict, logdir: Path | str | None = None, log=print) -> int:
    """Every counted run and seed summary of `results_dir` as TensorBoard event files under `logdir`
    (default: results_dir/tensorboard), one run directory each: <experiment>/<group>/seed-<n> and
    <experiment>/<group>/mean-over-seeds. How many were written."""
    results_dir = counted_rows.require_results(results_dir)
    export = collect(results_dir, registry)
    SummaryWriter, hparams = _tensorboard_writer()
    if logdir is None:  # the harness's own folder in the results directory: never reached through a link
        logdir = safe_files.real_dir(results_dir / "tensorboard", OWN_FOLDER)
    else:  # where the user said, as they said it
        logdir = Path(logdir)
        try:
            logdir.mkdir(parents=True, exist_ok=True)
        except OSError as e:
            raise HarnessError(f"--logdir {logdir}: cannot create it ({e.strerror}); name a writable directory") from None
    written = kept = 0
    for item in [*export.runs, *export.summaries]:
        summary = isinstance(item, SeedSummary)
        group = item.group if summary else item.tags["harness.group"]
        leaf = "mean-over-seeds" if summary else f"seed-{item.params['seed']}"
        parent = logdir
        for name in (_safe(item.experiment), _safe(group)):
            parent = safe_files.real_dir(parent / name, OWN_FOLDER)
        final = parent / leaf
        partial = final.with_name(final.name + PARTIAL)
        for path in (final, partial):
            if path.is_symlink():
                raise safe_files.link_refused(path)
        if final.is_dir():
            mark = final / SUMMARY_MARK
            if not summary or (mark.is_file() and mark.read_text() == item.digest):
                kept += 1
                continue
            shutil.rmtree(final)  # a summary of other seeds
        if partial.exists():
            shutil.rmtree(partial)  # an interrupted export's
        partial.mkdir()
        writer = SummaryWriter(log_dir=str(partial))
        wall = item.start_ms / 1000
        for name, points in item.series.items():
            for epoch, value in points:
                writer.add_scalar(name, value, global_step=epoch, walltime=wall)
        if not summary:  # the run's settings beside its own scalars (TensorBoard's HPARAMS tab)
            finals = {f"hparam/{m}": pts[-1][1] for m, pts in item.series.items() if m not in RUN_TIMES and pts}
            for event in hparams({k: v for k, v in item.params.items()}, finals):
                writer.file_writer.add_summary(event, walltime=wall)
            for name, value in finals.items():
                writer.add_scalar(name, value, global_step=int(item.params["epochs"]), walltime=wall)
        writer.close()
        if summary:
            (partial / SUMMARY_MARK).write_text(item.digest)
        os.replace(partial, final)  # last: a complete run directory has its final name
        written += 1
    left = f"; not exported: {export.left_out}" if export.left_out else ""
    log(f"TensorBoard event files in {logdir}: {len(export.runs)} runs and {len(export.summaries)} seed summaries; "
        f"{written} written, {kept} already there{left}")
    log(f"browse: tensorboard --logdir {logdir} --host 127.0.0.1")
    return written
