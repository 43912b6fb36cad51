"""The Ray executor: each cell of the matrix becomes a Ray task, on a local Ray instance or a cluster.

The driver (`runner.run_matrix`) still plans the cells and alone writes the CSVs; this module only runs
cells somewhere else and hands their rows back as each task finishes (`ray.wait`), so an interrupted
driver keeps every finished cell and the next `harness run` resumes from there.

What a task gets and needs:
- code: the driver's `harness` package is shipped with the job (Ray's `py_modules`), so workers run the
  very code the driver runs, whatever is installed on the nodes (torch and the other dependencies must
  be installed there);
- user code: the Python files beside a recipe that names them travel with its task, and the worker
  imports them from a copy of its own (whose SHA-256 it checks against the driver's `code_sha256`), so
  workers import exactly the driver's code, with or without a shared filesystem;
- data: the cell's dataset is made present and MD5-verified by the worker itself (`ensure_idx` on
  `--data-dir`, from `--data-mirror` or a download), as the driver names them: on a cluster, paths that
  exist on every node (a shared filesystem), or a mirror present on each;
- resources: `num_cpus=--cpus-per-task` for CPU cells, torch's thread count set to match (recorded in the
  `threads` column); one GPU (and one CPU) for CUDA cells, the GPU being the one Ray assigns.

Ray is imported only here, and this module only for `--executor ray`.
"""

from __future__ import annotations

import logging
import socket
import time
from pathlib import Path

import torch

from . import portable
from .errors import HarnessError
from .objects import user_files
from .machine import git_commit
from .runner import Cell, cell_label, error_rows, parse_devices, run_cell

NOT_INSTALLED = "Ray is not installed; `make setup-ray` or `pip install .[ray]`"
STATUS_EVERY_S = 30.0


def require_ray():
    try:
        import ray
    except ImportError:
        raise HarnessError(NOT_INSTALLED) from None
    return ray


def runtime_env() -> dict:
    """Ship the driver's `harness` package with the job, so every worker runs the driver's code (and
    starts torch with the driver's --portable settings, where they are in force)."""
    env = {"py_modules": [str(Path(__file__).resolve().parent)]}
    if portable.in_force():
        env["env_vars"] = portable.environment()
    return env


def check_reachable(address: str, timeout_s: float = 5.0) -> None:
    """Fail at once on a `host:port` nobody answers at (Ray itself keeps retrying for minutes)."""
    host, sep, port = address.rpartition(":")
    if not sep or not port.isdigit() or "://" in host:
        return  # 'auto', or a form Ray checks itself
    try:
        socket.create_connection((host, int(port)), timeout=timeout_s).close()
    except OSError as e:
        raise HarnessError(
            f"--ray-address {address}: no Ray cluster answers there ({e.strerror or e}); "
            "check the head node's address (`ray status` on it), or leave --ray-address out to start a local Ray instance"
        ) from None


class CellProgress:
    """A Ray actor the tasks tell when they start, so the driver can tell running cells from queued ones."""

    def __init__(self):
        self.started: set[int] = set()

    def start(self, index: int) -> None:
        self.started.add(index)

    def count(self) -> int:
        return len(self.started)


def with_user_code(cell: Cell, files: dict[str, bytes] | None) -> Cell:
    """The cell with its recipe's own modules (shipped from the driver) written where this worker imports
    them: a folder named after their digest, the recipe's path moved into it."""
    if not files:
        return cell
    import dataclasses
    import tempfile

    from .objects import files_digest

    exp = cell.experiment
    digest = files_digest(files)
    if digest != exp.code_sha256:
        raise HarnessError(f"{exp.id}: the code shipped with the task has SHA-256 {digest[:12]}, the recipe's is {exp.code_sha256[:12]}")
    folder = Path(tempfile.gettempdir()) / "harness-user-code" / digest
    for name, data in files.items():
        path = folder / name
        if not path.is_file() or path.read_bytes() != data:
            path.parent.mkdir(parents=True, exist_ok=True)
            tmp = path.with_name(f".{path.name}.{socket.gethostname()}.{time.monotonic_ns()}.tmp")
            tmp.write_bytes(data)
            tmp.replace(path)  # whole, for another task on this node reading it meanwhile
    return dataclasses.replace(cell, experiment=dataclasses.replace(exp, path=folder / exp.path.name))


def run_cell_task(cell: Cell, engine: str, options, threads: int, code_commit: str, index: int, progress,
                  user_code: dict[str, bytes] | None = None) -> list:
    """One cell, inside a Ray worker: verify its data here, train with `threads` threads, return the rows."""
    from .datasets import ensure_idx
    from .named_datasets import IDX_SETS

    progress.start.remote(index)
    torch.set_num_threads(threads)
    try:
        cell = with_user_code(cell, user_code)
        dataset = cell.experiment.dataset
        if dataset in IDX_SETS:
            ensure_idx(dataset, options.data_dir, options.mirror)
        rows = run_cell(cell, engine, options)
    except HarnessError as e:
        raise type(e)(f"on Ray node {socket.gethostname()}: {e}") from None
    # The shipped copy of the package has no git metadata; the code is the driver's commit.
    for run, _, _ in rows:
        run["git_commit"] = code_commit
    return rows


class RayExecutor:
    """`with RayExecutor(address) as execute: run_matrix(..., execute=execute)`.

    address None starts a local Ray instance (stopped on exit; Ray joins RAY_ADDRESS's cluster instead
    where that is set); 'auto' or 'host:port' joins a running
    cluster. A process already connected to Ray (ray.init done) uses that connection as it is.
    """

    def __init__(self, address: str | None = None, cpus_per_task: int = 1, status_every_s: float = STATUS_EVERY_S):
        self.ray = require_ray()
        if cpus_per_task < 1:
            raise HarnessError("--cpus-per-task must be a positive integer")
        self.address = address
        self.cpus_per_task = cpus_per_task
        self.status_every_s = status_every_s
        self.connected_here = False

    def __enter__(self) -> RayExecutor:
        ray = self.ray
        if ray.is_initialized():
            return self
        if self.address:
            check_reachable(self.address)
        try:
            ray.init(address=self.address, runtime_env=runtime_env(), logging_level=logging.WARNING,
                     **({} if self.address else {"include_dashboard": False}))
        except (ConnectionError, ValueError, RuntimeError) as e:
            where = f"--ray-address {self.address}" if self.address else "a local Ray instance"
            raise HarnessError(f"{where}: cannot connect ({' '.join(str(e).split())})") from None
        self.connected_here = True
        return self

    def __exit__(self, *exc) -> None:
        if self.connected_here:
            self.ray.shutdown()
            self.connected_here = False

    def parse_devices(self, text: str) -> list[str]:
        """`--devices` against the cluster's GPUs; Ray picks each task's GPU, so no `cuda:N`."""
        gpus = int(self.ray.cluster_resources().get("GPU", 0))
        devices = parse_devices(text, cuda_count=gpus, where="the Ray cluster")
        indexed = [d for d in devices if ":" in d]
        if indexed:
            raise HarnessError(f"--devices: {indexed[0]!r}: with --executor ray, Ray assigns each task its GPU; use --devices cuda")
        return devices

    def resources(self, cell: Cell) -> dict:
        if cell.device.startswith("cuda"):
            return {"num_cpus": 1, "num_gpus": 1}
        return {"num_cpus": self.cpus_per_task, "num_gpus": 0}

    def __call__(self, cells, engine: str, options, log=print):
        """Submit every cell, then yield (cell, rows) as tasks finish, in whatever order they do."""
        cells = list(cells)  # taking them all claims them all: every one is submitted at once
        ray = self.ray
        task = ray.remote(run_cell_task)
        progress = ray.remote(CellProgress).options(num_cpus=0).remote()
        commit = git_commit()
        pending, shipped = {}, {}
        for index, cell in enumerate(cells):
            resources = self.resources(cell)
            threads = max(1, int(resources["num_cpus"]))
            exp = cell.experiment
            if exp.code_sha256 and exp.directory not in shipped:  # once per directory, as one object in Ray's store
                shipped[exp.directory] = ray.put(user_files(exp.directory))
            code = shipped.get(exp.directory) if exp.code_sha256 else None
            ref = task.options(**resources).remote(cell, engine, options, threads, commit, index, progress, code)
            pending[ref] = cell
        log(f"ray: {len(cells)} cell(s) submitted to {ray.cluster_resources().get('CPU', 0):g} CPU(s), "
            f"{ray.cluster_resources().get('GPU', 0):g} GPU(s); {self.cpus_per_task} CPU(s) per CPU cell")
        finished = failed = 0
        last_status = time.monotonic()
        try:
            while pending:
                ready, _ = ray.wait(list(pending), num_returns=1, timeout=min(self.status_every_s, 5.0))
                for ref in ready:
                    cell = pending.pop(ref)
                    rows = self._rows(ref, cell, engine, options, log)
                    finished += 1
                    failed += any(run["status"] != "ok" for run, _, _ in rows)
                    yield cell, rows
                if time.monotonic() - last_status >= self.status_every_s:
                    last_status = time.monotonic()
                    log(self._status_line(progress, len(cells), finished, failed))
        finally:
            for ref in pending:  # interrupted or failed: nothing more to wait for
                ray.cancel(ref, force=True)
            ray.kill(progress)

    def _rows(self, ref, cell: Cell, engine: str, options, log) -> list:
        ray = self.ray
        try:
            return ray.get(ref)
        except ray.exceptions.RayTaskError as e:
            if isinstance(e.cause, HarnessError):
                raise e.cause from None  # bad input (data, registry): every other cell would hit it too
            message = f"{type(e.cause).__name__}: {e.cause}"
        except ray.exceptions.RayError as e:  # the worker died (out of memory, node lost), task cancelled
            message = f"{type(e).__name__}: {' '.join(str(e).split())[:300]}"
        log(f"error in {cell_label(cell, engine)}: {message}")
        return error_rows(cell, engine, options, message)

    def _status_line(self, progress, total: int, finished: int, failed: int) -> str:
        try:
            started = self.ray.get(progress.count.remote(), timeout=5)
            running = f"{started - finished} running, {total - started} queued"
        except self.ray.exceptions.RayError:
            running = f"{total - finished} running or queued"
        return f"ray: {finished}/{total} cells finished, {running}, {failed} failed"
