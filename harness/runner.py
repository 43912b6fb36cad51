"""The runner: experiments x seeds x devices through one engine, each finished run appended to the CSVs."""

from __future__ import annotations

import concurrent.futures
import contextlib
import ctypes
import functools
import io
import multiprocessing
import os
import re
import signal
import sys
import threading
import time
import traceback
import uuid
from dataclasses import dataclass, replace
from datetime import datetime, timezone
from pathlib import Path

import torch

from . import portable, safe_files
from . import rows as counted_rows
from .datasets import ensure_idx
from .named_datasets import IDX_SETS
from .engines import ENGINES, MULTI_SEED_ENGINES
from .engines import script as script_engine
from .machine import device_name, environment
from .options import RunOptions
from .objects import describe
from .errors import HarnessError, is_signal
from .progress import MatrixProgress, work
from .catalogue import FREE_TEXT_COLUMNS, MEASURES, METRIC_NAMES, cell_key, id_prefix, split_columns
from .results import ResultsStore, free_text, overrides_json
from .training import RunOutcome, state_sha256
from .validate import validate



def parse_devices(text: str, cuda_count: int | None = None, where: str = "this machine") -> list[str]:
    """'cpu', 'cuda', 'cuda:1', comma lists, or 'auto' (the CPU, and CUDA where present).

    `cuda_count` is how many CUDA devices `where` has (default: this process's).
    """
    if cuda_count is None:
        cuda_count = torch.cuda.device_count() if torch.cuda.is_available() else 0
    devices: list[str] = []
    for part in (p.strip() for p in text.split(",")):
        if part == "auto":
            candidates = ["cpu"] + (["cuda"] if cuda_count else [])
        elif re.fullmatch(r"cpu|cuda(:\d+)?", part):
            if part.startswith("cuda") and not cuda_count:
                raise HarnessError(
                    f"--devices: {part!r} requested but {where} has no CUDA device (torch {torch.__version__}); "
                    "use --devices cpu or --devices auto"
                )
            if ":" in part and int(part.split(":")[1]) >= cuda_count:
                raise HarnessError(f"--devices: {part!r} does not exist; {where} has {cuda_count} CUDA device(s)")
            candidates = [part]
        else:
            raise HarnessError(f"--devices: unknown device {part!r}; use cpu, cuda, cuda:N or auto")
        devices += [d for d in candidates if d not in devices]
    return devices


def check_engine(name: str) -> str:
    if name not in ENGINES:
        raise HarnessError(f"--engine: unknown engine {name!r}; available: {', '.join(ENGINES)}")
    return name


# ---------------------------------------------------------------------------------------------------
# The matrix


@dataclass(frozen=True)
class Cell:
    """What one task trains: an experiment's seeds (one, or several for a multi-seed engine) on a device."""

    experiment: object
    seeds: tuple[int, ...]
    device: str

    @property
    def key(self) -> tuple:
        """The cell as a dict key (the recipe's dicts make the dataclass itself unhashable)."""
        return (self.experiment.id, self.device, self.seeds)

    def seed_cells(self, engine: str, options: RunOptions) -> dict[tuple, int]:
        """Each seed by its cell in the results (`catalogue.CELL`), as this engine and these options record it."""
        config_hash = self.experiment.config_hash(options.overrides)
        return {cell_key({"experiment": self.experiment.id, "config_hash": config_hash, "device": self.device,
                          "engine": engine, "seed": seed}): seed for seed in self.seeds}


def plan(experiments, seeds, devices, engine, options: RunOptions, finished: set, force: bool) -> tuple[list[Cell], int]:
    """The cells still to run, and how many were skipped as already finished.

    `seeds` None: each experiment's own default, seeds 0 to its registry file's `seeds` - 1 (`default_seeds`).
    """
    cells, skipped = [], 0
    for exp in experiments:
        exp_seeds = exp.default_seeds if seeds is None else seeds
        for device in devices:
            every = Cell(exp, tuple(exp_seeds), device).seed_cells(engine, options)
            todo = [s for key, s in every.items() if force or key not in finished]
            skipped += len(exp_seeds) - len(todo)
            if not todo:
                continue
            if engine in MULTI_SEED_ENGINES:
                cells.append(Cell(exp, tuple(todo), device))
            else:
                cells.extend(Cell(exp, (s,), device) for s in todo)
    return cells, skipped


def outcome_rows(exp, seed, device, engine, options: RunOptions, outcome: RunOutcome, started_at: str, wall: float, env: dict):
    run_id = id_prefix(uuid.uuid4().hex)
    final = outcome.final
    run = {
        "run_id": run_id, "experiment": exp.id, "seed": seed, "device": device, "device_name": device_name(device),
        "engine": engine, "epochs": final.get("epoch", 0), "faithful": not options.overrides, "status": outcome.status,
        **{m: final.get(m) for m in (*METRIC_NAMES, *split_columns(exp.own_metrics))},
        "wall_time_s": wall, "train_time_s": outcome.train_time_s,
        # None where nothing counted the samples (a script's run)
        "train_samples_per_s": outcome.train_samples / outcome.train_time_s if outcome.train_time_s and outcome.train_samples else None,
        "started_at": started_at, "config_hash": exp.config_hash(options.overrides),
        **env,
        "overrides": overrides_json(options.overrides),
        "dataset_md5": outcome.dataset_md5,
        "diverged_epoch": outcome.diverged_epoch, "message": outcome.message,
        "weights_sha256": state_sha256(outcome.state) if outcome.state else "", "code_sha256": exp.code_sha256,
        **{f"seed_{source}": value for source, value in (options.seeds_of(seed) or {}).items()},
    }
    run.update({column: free_text(run[column]) for column in FREE_TEXT_COLUMNS})
    if options.save_weights and outcome.state:
        run[WEIGHTS] = {name: t.detach().cpu().clone() for name, t in outcome.state.items()}  # saved by the driver, then dropped
    epochs = [{"run_id": run_id, **e} for e in outcome.epochs]
    trace = [{"run_id": run_id, **t} for t in outcome.trace]
    return run, epochs, trace


def _progress_bar(total_epochs: int, label: str):
    """A per-run progress bar on a terminal; nothing when output is redirected."""
    if not sys.stderr.isatty():
        return None
    from tqdm import tqdm

    return tqdm(total=total_epochs, desc=label, unit="epoch", leave=False, file=sys.stderr, position=1)


def run_cell(cell: Cell, engine: str, options: RunOptions, on_epoch=None, log=print) -> list[tuple[dict, list, list]]:
    """Train one cell and return its rows (run, epochs, trace) per seed; writes nothing.

    A crash inside the cell becomes `status=error` rows carrying the message; bad input (HarnessError)
    propagates, since every other cell would hit it too.
    """
    portable.apply_in_process()
    started_at = datetime.now(timezone.utc).isoformat(timespec="seconds")
    start = time.perf_counter()
    try:
        outcomes = ENGINES[engine](cell.experiment, list(cell.seeds), torch.device(cell.device), options, on_epoch=on_epoch)
    except HarnessError:
        raise
    except BaseException as e:  # an exit or KeyboardInterrupt that user code raised is its error too, never a success
        if is_signal(e):
            raise
        message = describe(e, cell.experiment.directory)
        outcomes = [RunOutcome(status="error", message=message) for _ in cell.seeds]
        log(f"error in {cell_label(cell, engine)}: {message}")
        log("".join(traceback.format_exception(e, limit=-3)).rstrip())
    wall = (time.perf_counter() - start) / len(cell.seeds)
    return cell_rows(cell, engine, options, outcomes, started_at, wall)


def cell_rows(cell: Cell, engine: str, options: RunOptions, outcomes: list[RunOutcome], started_at: str, wall: float):
    env = environment()
    return [outcome_rows(cell.experiment, s, cell.device, engine, options, o, started_at, wall, env) for s, o in zip(cell.seeds, outcomes)]


def error_rows(cell: Cell, engine: str, options: RunOptions, message: str):
    """`status=error` rows for a cell that never returned any (its process died): it runs again next time."""
    started_at = datetime.now(timezone.utc).isoformat(timespec="seconds")
    return cell_rows(cell, engine, options, [RunOutcome(status="error", message=message) for _ in cell.seeds], started_at, 0.0)


def cell_label(cell: Cell, engine: str) -> str:
    seeds = ",".join(map(str, cell.seeds))
    return f"{cell.experiment.id} seed{'s' if len(cell.seeds) > 1 else ''}={seeds} {cell.device} {engine}"


def claim_cell(store: ResultsStore, cell: Cell, engine: str, options: RunOptions, known_run_ids: set, log=print):
    """The cell less the seeds another process finished or is running, and this process's claims on the rest."""
    keys = cell.seed_cells(engine, options)
    def finished_elsewhere() -> set[tuple]:  # under the directory lock, so no other process is writing
        runs = counted_rows.accepted(counted_rows.read(store.dir, lock_held=True))
        return counted_rows.finished_keys([r for r in runs if r["run_id"] not in known_run_ids])

    claims, notes = store.claim(list(keys), finished_elsewhere)
    for key, note in notes.items():
        log(f"{cell.experiment.id} seed={keys[key]} {cell.device} {engine}: {note}")
    return replace(cell, seeds=tuple(keys[c.key] for c in claims)), claims


def run_locally(cells: list[Cell], engine: str, options: RunOptions, log=print):
    """The local executor: one cell after another in this process, yielding (cell, rows) as each ends."""
    for cell in cells:
        bar = _progress_bar(options.epochs_for(cell.experiment), cell_label(cell, engine))
        try:
            rows = run_cell(cell, engine, options, on_epoch=functools.partial(_epoch_done, bar) if bar else None, log=log)
        finally:
            if bar:
                bar.close()
        yield cell, rows


def _epoch_done(bar, row: dict) -> None:
    bar.update(row["epoch"] - bar.n)


def _start_worker(threads: int, driver: int) -> None:
    """A worker of `InProcesses`: its torch threads; Ctrl-C is the driver's to handle."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    _end_with(driver)
    torch.set_num_threads(threads)


PR_SET_PDEATHSIG = 1  # from <linux/prctl.h>


def _end_with(driver: int) -> None:
    """End this worker when its driver ends, however: a driver killed with SIGKILL cannot stop its
    workers itself, and they would train on for nothing, holding memory. On Linux the kernel sends
    the signal (when the thread that started the worker ends: the one running the matrix, which
    outlives its workers); elsewhere, and for a driver gone before that was asked, a thread watches
    for the worker being handed to another parent."""
    if sys.platform.startswith("linux"):
        with contextlib.suppress(OSError, AttributeError):
            ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGKILL)
    threading.Thread(target=_watch_driver, args=(driver,), name="driver-watch", daemon=True).start()


def _watch_driver(driver: int) -> None:
    while os.getppid() == driver:
        time.sleep(1)
    os._exit(1)


class InProcesses:
    """The local executor over `jobs` worker processes, each with `threads` torch threads.

    Small models leave a second core mostly idle however many threads they are given; whole cells side
    by side use it (two one-thread cells train about 1.6x faster than one two-thread cell after the
    other on two cores). Each worker takes its next cell only when it is free, so concurrent `harness
    run`s still split the matrix. Rows return to the driver, which alone writes them.
    """

    def __init__(self, jobs: int, threads: int):
        self.jobs, self.threads = jobs, threads

    def _new_pool(self) -> concurrent.futures.ProcessPoolExecutor:
        # spawn, not fork: a forked copy of a process that has started torch's thread pools can hang.
        return concurrent.futures.ProcessPoolExecutor(self.jobs, mp_context=multiprocessing.get_context("spawn"),
                                                      initializer=_start_worker, initargs=(self.threads, os.getpid()))

    def __call__(self, cells, engine: str, options: RunOptions, log=print):
        cells = iter(cells)
        pool = self._new_pool()
        log(f"running cells in {self.jobs} processes of {self.threads} thread(s) each")
        pending: dict = {}

        def submit_next() -> None:
            nonlocal pool
            cell = next(cells, None)
            if cell is None:
                return
            try:
                future = pool.submit(run_cell, cell, engine, options)
            except concurrent.futures.BrokenExecutor:  # a worker died: the others went with it
                _stop(pool)  # and what is left of them ends here, not some time after
                pool = self._new_pool()
                future = pool.submit(run_cell, cell, engine, options)
            pending[future] = cell

        try:
            for _ in range(self.jobs):
                submit_next()
            while pending:
                done, _ = concurrent.futures.wait(pending, return_when=concurrent.futures.FIRST_COMPLETED)
                for future in done:
                    cell = pending.pop(future)
                    try:
                        rows = future.result()
                    except HarnessError:
                        raise
                    except concurrent.futures.BrokenExecutor:  # the worker died: the cell runs again next time
                        message = ("the worker process training it ended without a result (os._exit or a crash in the "
                                   "recipe's code, a signal, or out of memory)")
                        log(f"error in {cell_label(cell, engine)}: {message}")
                        rows = error_rows(cell, engine, options, message)
                    except Exception as e:  # a cell's rows that cannot come back (unpicklable, say)
                        message = f"{type(e).__name__}: {e}".replace("\n", " ")
                        log(f"error in {cell_label(cell, engine)}: {message}")
                        rows = error_rows(cell, engine, options, message)
                    yield cell, rows
                    submit_next()
        except BaseException:  # interrupted, closed or failed: stop the cells still training, now
            _stop(pool)
            raise
        pool.shutdown()


def _stop(pool: concurrent.futures.ProcessPoolExecutor) -> None:
    """End a pool's workers now, whatever they are doing, and wait until each is gone."""
    workers = list((pool._processes or {}).values())  # the pool offers no other way to reach them
    pool.shutdown(wait=False, cancel_futures=True)
    for worker in workers:
        worker.terminate()
    for worker in workers:  # gone before the driver goes on: a loaded machine can take seconds to end one
        worker.join(timeout=30)
        if worker.is_alive():
            worker.kill()
            worker.join()


def run_matrix(experiments, seeds, devices, engine: str, results_dir, options: RunOptions, force: bool = False, log=print,
               execute=run_locally, costs_from=None) -> int:
    """Run every unfinished cell, recording each as it finishes; 0 when all ended ok, 1 otherwise.

    `costs_from`: another results directory whose runs say what each recipe costs, for the estimate of
    the time left where `results_dir` has no run of it yet.

    `execute(cells, engine, options, log)` runs the cells and yields (cell, rows) as each finishes, in
    any order: `run_locally`, or `ray_executor.RayExecutor`. Only this function writes the results.
    """
    for exp in experiments:  # every recipe built and run on one batch first: a bad one stops everything, nothing written
        validate(exp, options, engine)
        reason = exp.script and script_engine.matrix_refusal(exp, seeds, devices)
        if reason:
            raise HarnessError(reason)
    store = ResultsStore(results_dir)
    with store.locked():  # also proves the directory writable before anything trains
        tables = counted_rows.read(results_dir, lock_held=True)
        if options.save_weights:  # a link at weights/ refused now, not once a run has trained
            safe_files.Folder(store.dir / "weights", WEIGHTS_NOT_WRITTEN).close()
    counted_rows.refuse_unreadable(tables)
    known_run_ids = {r["run_id"] for r in tables.runs.rows}
    judged = counted_rows.judge(tables)
    accepted = judged.accepted
    finished = counted_rows.finished_keys(accepted)
    if judged.refused:
        log(f"{len(judged.refused)} row(s) in {store.dir / 'runs.csv'} fail `harness check` (which names them): "
            "they count as no finished run")
    cells, skipped = plan(experiments, seeds, devices, engine, options, finished, force)
    if skipped:
        log(f"skipping {skipped} finished run(s) in {results_dir} (--force runs them again)")
    if not cells:
        log("nothing to run")
        return 0
    # Fail on missing or corrupt data before any training, not in the middle of the matrix.
    for name in sorted({c.experiment.dataset for c in cells} & set(IDX_SETS)):
        ensure_idx(name, options.data_dir, options.mirror)

    failures = 0
    held: dict[tuple, list] = {}  # this process's claims, by cell, until its rows are recorded
    rates = known_rates(accepted, experiments, engine)
    if costs_from is not None:
        elsewhere = counted_rows.accepted(counted_rows.read(costs_from))
        rates = {**known_rates(elsewhere, experiments, engine), **rates}
    progress = MatrixProgress(cells, options, lambda c: cell_label(c, engine), rates, log)
    say = progress.write  # a line that leaves a terminal's progress bar in place

    def claimed_cells():
        """Each cell claimed just as the executor takes it (less seeds another process has), so
        concurrent `harness run`s on one directory split the matrix instead of repeating it."""
        for planned in cells:
            cell, claims = claim_cell(store, planned, engine, options, known_run_ids, say)
            progress.started(planned, cell)
            if cell.seeds:
                held[cell.key] = claims
                yield cell

    try:
        # closing(): an interruption while a row is recorded still lets the executor stop what it started.
        with contextlib.closing(execute(claimed_cells(), engine, options, say)) as as_they_finish:
            for cell, rows in as_they_finish:
                claims = held.get(cell.key, [])
                save_weights(store.dir, [r[0] for r in rows])
                store.append([r[0] for r in rows], [e for r in rows for e in r[1]], [t for r in rows for t in r[2]], release=claims)
                held.pop(cell.key, None)  # released with the rows; until then, by `finally` if they cannot be written
                known_run_ids.update(run["run_id"] for run, _, _ in rows)  # this process's own: claims need not re-check them
                progress.finished(cell, [run for run, _, _ in rows])
                for run, _, _ in rows:
                    failures += run["status"] != "ok"
                    say(summary_line(run, progress))
    finally:
        progress.close()
        for claims in held.values():  # a crash or an interruption leaves unfinished cells free for the next run
            store.release(claims)
    say(f"done: {progress.line()}" + (f"; {failures} run(s) failed" if failures else ""))
    return 1 if failures else 0


WEIGHTS_NOT_WRITTEN = "free some space or drop --save-weights"
WEIGHTS = "_weights"  # a run row's final state, on its way from the executor to `save_weights`; never a column


def save_weights(results_dir: Path, runs: list[dict]) -> None:
    """Each run's final state_dict (where it carries one) at <results_dir>/weights/<run_id>.pt, a plain
    `torch.save` loadable with `weights_only=True`; written whole, then renamed, before its row is."""
    states = {run["run_id"]: run.pop(WEIGHTS) for run in runs if run.get(WEIGHTS) is not None}
    if not states:
        return
    # The folder held open and checked, as every folder of the harness's own: a link there is refused.
    with safe_files.Folder(results_dir / "weights", WEIGHTS_NOT_WRITTEN) as folder:
        for run_id, state in states.items():
            buffer = io.BytesIO()
            torch.save(state, buffer)
            (folder / f"{run_id}.pt").write_atomic(buffer.getvalue())


def summary_line(run: dict, progress: MatrixProgress) -> str:
    """A finished run, and where the matrix stands."""
    # The accuracy of a classifier, the first declared metric of a regression (else its loss).
    measured = [short for short in MEASURES if short != "loss" and run.get(f"test_{short}") is not None]
    short = measured[0] if measured else "loss"
    shown = [m for m in (f"valid_{short}", f"test_{short}") if run.get(m) is not None] or [f"train_{short}"]  # no held-out split
    headline = "  ".join(f"{m} {run[m]:.4f}" for m in shown if run.get(m) is not None)
    counts, rest = progress.status(with_cells=False)
    return (f"[{counts}] {run['experiment']} seed={run['seed']} {run['device']} {run['engine']}: "
            f"{run['status']}  {headline}  ({run['wall_time_s']:.1f} s; {rest})")


def known_rates(rows: list[dict], experiments, engine: str) -> dict[str, list[float]]:
    """Seconds per unit of work (`progress.work`) of each experiment's finished runs with this engine."""
    by_id = {e.id: e for e in experiments}
    rates: dict[str, list[float]] = {}
    for row in rows:
        exp = by_id.get(row["experiment"])
        if exp is None or row["engine"] != engine or row["status"] != "ok" or not row["wall_time_s"]:
            continue
        overrides = counted_rows.row_overrides(row) or {}
        cell = Cell(exp, (0,), row["device"])
        units = work(cell, RunOptions(epochs=int(row["epochs"]), train_limit=overrides.get("train_limit")))
        rates.setdefault(exp.id, []).append(float(row["wall_time_s"]) / units)
    return rates
