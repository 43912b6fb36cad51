"""The results files: runs.csv (one row per finished run), epochs.csv (one per logged epoch), trace.csv.

Guarantees, whatever happens to the process:
- A run's rows are written only once it has finished, all together, under an exclusive lock on the
  results directory (so concurrent `harness run` processes never interleave or lose rows).
- Each file is replaced atomically (written to a temporary file, synced, renamed over the old one),
  so a crash or Ctrl-C leaves either the old file or the new one, never half a row.
- Ctrl-C and SIGTERM are held back while the files are replaced: a run that finished is recorded.
- epochs.csv and trace.csv are written before runs.csv, and a run counts as finished only once its
  runs.csv row exists: an interruption between the two leaves orphan epoch rows that nothing reads
  as a finished run (`harness check` reports them).
"""

from __future__ import annotations

import contextlib
import csv
import fcntl
import io
import json
import os
import signal
from pathlib import Path

from .errors import HarnessError

RUN_COLUMNS = [
    "run_id", "experiment", "seed", "device", "device_name", "engine", "epochs", "faithful", "status",
    "train_loss", "train_acc", "valid_loss", "valid_acc", "test_loss", "test_acc",
    "wall_time_s", "train_time_s", "train_samples_per_s", "started_at", "config_hash", "git_commit",
    "torch_version", "python_version", "host",
    # Beyond SPEC's columns: what else it takes to re-create or explain a row.
    "threads", "overrides", "dataset_md5", "diverged_epoch", "message",
]
EPOCH_COLUMNS = [
    "run_id", "epoch", "train_loss", "train_acc", "valid_loss", "valid_acc", "test_loss", "test_acc",
    "epoch_time_s", "samples_per_s",
]
TRACE_COLUMNS = ["run_id", "epoch", "step", "samples", "running_loss"]

TABLES = {"epochs.csv": EPOCH_COLUMNS, "trace.csv": TRACE_COLUMNS, "runs.csv": RUN_COLUMNS}  # write order
FINISHED_STATUSES = ("ok", "diverged")  # an `error` row does not stop the cell from running again


def cell_key(row: dict) -> tuple:
    """What identifies a cell of the matrix: a finished one is skipped unless --force."""
    return (row["experiment"], int(row["seed"]), row["device"], row["engine"], row["config_hash"])


def latest_rows(rows: list[dict]) -> list[dict]:
    """One row per cell: the most recent (a --force re-run supersedes the earlier row)."""
    latest: dict[tuple, dict] = {}
    for row in rows:
        key = cell_key(row)
        if key not in latest or row["started_at"] >= latest[key]["started_at"]:
            latest[key] = row
    return list(latest.values())


def is_current(row: dict, experiment) -> bool:
    """Whether a row was produced by the experiment's recipe as the registry states it now (with the
    row's own quick-run overrides): an edited recipe makes its earlier rows stale."""
    try:
        overrides = json.loads(row["overrides"]) if row.get("overrides") else None
    except ValueError:
        return False
    return row["config_hash"] == experiment.config_hash(overrides)


def _format(value) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return repr(value)  # shortest text that reads back as the same float: bit-exact round trip
    return str(value)


def _read_rows(path: Path) -> list[dict]:
    if not path.exists():
        return []
    with open(path, newline="", encoding="utf-8") as f:
        return list(csv.DictReader(f))


@contextlib.contextmanager
def _signals_held():
    """Defer SIGINT/SIGTERM until the block is done (main thread only; elsewhere a no-op)."""
    held = {signal.SIGINT, signal.SIGTERM}
    try:
        old = signal.pthread_sigmask(signal.SIG_BLOCK, held)
    except (ValueError, OSError):
        yield
        return
    try:
        yield
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, old)


class ResultsStore:
    def __init__(self, directory: Path | str):
        self.dir = Path(directory)

    def _ensure_dir(self) -> None:
        try:
            self.dir.mkdir(parents=True, exist_ok=True)
            probe = self.dir / ".write-test"
            probe.write_text("")
            probe.unlink()
        except OSError as e:
            raise HarnessError(f"{self.dir}: results directory is not writable ({e.strerror}); pass another --results-dir") from None

    @contextlib.contextmanager
    def locked(self):
        """An exclusive lock on the directory, held across read-check-write sequences."""
        self._ensure_dir()
        with open(self.dir / ".lock", "a") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(lock, fcntl.LOCK_UN)

    def rows(self, table: str = "runs.csv") -> list[dict]:
        return _read_rows(self.dir / table)

    def finished_cells(self) -> set[tuple]:
        return {cell_key(r) for r in self.rows() if r.get("status") in FINISHED_STATUSES}

    def _replace(self, table: str, new_rows: list[dict]) -> None:
        path = self.dir / table
        columns = TABLES[table]
        old = path.read_bytes() if path.exists() else b""
        if old and not old.endswith(b"\n"):
            old += b"\n"
        buf = io.StringIO()
        writer = csv.DictWriter(buf, fieldnames=columns, extrasaction="raise", lineterminator="\n")
        if not old:
            writer.writeheader()
        for row in new_rows:
            writer.writerow({c: _format(row.get(c)) for c in columns})
        tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
        with open(tmp, "wb") as f:
            f.write(old + buf.getvalue().encode("utf-8"))
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)

    def append(self, runs: list[dict], epochs: list[dict], trace: list[dict]) -> None:
        """Record finished runs with their epoch and trace rows, all or nothing per file."""
        with self.locked(), _signals_held():
            if epochs:
                self._replace("epochs.csv", epochs)
            if trace:
                self._replace("trace.csv", trace)
            self._replace("runs.csv", runs)
