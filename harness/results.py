"""The results files: runs.csv (one row per finished run), epochs.csv (one per logged epoch), trace.csv.

Guarantees, whatever happens to the process:
- A run's rows are written only once it has finished, all together, under an exclusive lock on the
  results directory (so concurrent `harness run` processes never interleave or lose rows).
- Each file is replaced atomically (written to a temporary file, synced, renamed over the old one),
  so a crash or Ctrl-C leaves either the old file or the new one, never half a row.
- Ctrl-C and SIGTERM are held back while the files are replaced: a run that finished is recorded.
- epochs.csv and trace.csv are written before runs.csv, and a run counts as finished only once its
  runs.csv row exists: an interruption between the two (possible only by SIGKILL or a power cut)
  leaves orphan epoch rows that nothing reads as a finished run (`harness check` reports them).
- A file whose header is not this version's is never appended to (its columns would not line up).
- Each cell being trained is claimed (see `claim`), so two processes never train the same cell.
"""

from __future__ import annotations

import contextlib
import csv
import fcntl
import hashlib
import io
import json
import os
import signal
import socket
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import IO

from .errors import HarnessError

RUN_COLUMNS = [
    "run_id", "experiment", "seed", "device", "device_name", "engine", "epochs", "faithful", "status",
    "train_loss", "train_acc", "valid_loss", "valid_acc", "test_loss", "test_acc",
    "wall_time_s", "train_time_s", "train_samples_per_s", "started_at", "config_hash", "git_commit",
    "torch_version", "python_version", "host",
    # Beyond SPEC's columns: what else it takes to re-create or explain a row.
    "threads", "overrides", "dataset_md5", "diverged_epoch", "message",
    # What picks the CPU kernels, and so the last bits of every CPU figure: ATen's vector instruction set
    # in force, and the environment settings that steer it, MKL and oneDNN (empty: none set).
    "cpu_capability", "kernel_settings",
]
EPOCH_COLUMNS = [
    "run_id", "epoch", "train_loss", "train_acc", "valid_loss", "valid_acc", "test_loss", "test_acc",
    "epoch_time_s", "samples_per_s",
]
TRACE_COLUMNS = ["run_id", "epoch", "step", "samples", "running_loss"]

TABLES = {"epochs.csv": EPOCH_COLUMNS, "trace.csv": TRACE_COLUMNS, "runs.csv": RUN_COLUMNS}  # write order
STATUSES = ("ok", "diverged", "error")
FINISHED_STATUSES = ("ok", "diverged")  # an `error` row does not stop the cell from running again

CLAIMS = ".claims"
# The directory's own bookkeeping, never results: kept out of version control by a .gitignore
# written into every results directory (whatever its name), so `git add results` is always safe.
BOOKKEEPING = (".lock", f"{CLAIMS}/", ".*.tmp", ".write-test.*")


# Columns of free text, from outside the harness's control (an exception's message, a host or device name).
FREE_TEXT_COLUMNS = ("device_name", "host", "message")
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")  # what makes a spreadsheet read a cell as a formula


def spreadsheet_safe(text: str | None) -> str | None:
    """Free text a spreadsheet opening the CSV shows as text: a leading ' where it would start a formula."""
    return "'" + text if text and text.startswith(FORMULA_STARTS) else text


def cell_key(row: dict) -> tuple:
    """What identifies a cell of the matrix: a finished one is skipped unless --force."""
    return (row["experiment"], int(row["seed"]), row["device"], row["engine"], row["config_hash"])


def latest_rows(rows: list[dict], also: tuple[str, ...] = ()) -> list[dict]:
    """One row per cell: the most recent (a --force re-run supersedes the earlier row). With `also`,
    one per cell and value of those columns (the latest of each torch version, say)."""
    latest: dict[tuple, dict] = {}
    for row in rows:
        key = cell_key(row) + tuple(row.get(c) or "" for c in also)
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


def overrides_text(overrides: str) -> str:
    """A row's quick-run overrides as text ('epochs=1, train_limit=5000'); '' for a faithful run."""
    try:
        return ", ".join(f"{k}={v}" for k, v in sorted(json.loads(overrides).items())) if overrides else ""
    except (ValueError, AttributeError):
        return overrides


def _parsed_key(row: dict) -> tuple | None:
    """`cell_key`, or None for a row too damaged to name its cell (`harness check` reports it)."""
    try:
        return cell_key(row)
    except (KeyError, TypeError, ValueError):
        return None


def _format(value) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return repr(value)  # shortest text that reads back as the same float: bit-exact round trip
    return str(value)


def read_table(path: Path) -> tuple[list[str] | None, list[list[str]]]:
    """A CSV file's header and its data records as lists of fields; (None, []) when it does not exist."""
    if not path.exists():
        return None, []
    try:
        with open(path, newline="", encoding="utf-8") as f:
            records = list(csv.reader(f))
    except (csv.Error, UnicodeDecodeError) as e:
        raise HarnessError(f"{path}: not a readable CSV file ({e}); `harness check` names the damage, "
                           "move the file aside to start afresh") from None
    if not records:
        return None, []
    return records[0], records[1:]


def _read_rows(path: Path) -> list[dict]:
    header, records = read_table(path)
    if header is None:
        return []
    expected = TABLES[path.name]
    if header != expected:
        raise HarnessError(f"{path}: header is not this version's columns; `harness check` names the damage, "
                           "move the file aside to start afresh")
    # A short (damaged) record reads with empty trailing fields rather than missing keys.
    return [{c: record[i] if i < len(record) else None for i, c in enumerate(expected)} for record in records]


@contextlib.contextmanager
def _signals_held():
    """Defer SIGINT/SIGTERM until the block is done (main thread only; elsewhere a no-op).

    The handlers are swapped at the Python level rather than masked with pthread_sigmask: a mask set in
    the main thread does not cover torch's worker threads, which would still take the signal.
    """
    received: list[int] = []
    try:
        previous = {s: signal.signal(s, lambda signum, frame: received.append(signum)) for s in (signal.SIGINT, signal.SIGTERM)}
    except ValueError:  # not the main thread, where Python runs every handler
        yield
        return
    try:
        yield
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, signal.SIG_DFL if handler is None else handler)
        if received:
            signal.raise_signal(received[0])  # delivered now, to the handler it was meant for


@dataclass
class Claim:
    """One cell taken by this process: the claim file, held open with an exclusive flock."""

    key: tuple
    path: Path
    file: IO


class ResultsStore:
    def __init__(self, directory: Path | str):
        self.dir = Path(directory)

    def _ensure_dir(self) -> None:
        try:
            self.dir.mkdir(parents=True, exist_ok=True)
            probe = self.dir / f".write-test.{os.getpid()}"  # per process: another one may probe at once
            probe.write_text("")
            probe.unlink()
            ignore = self.dir / ".gitignore"
            if not ignore.exists():
                ignore.write_text("# harness bookkeeping, not results\n" + "\n".join(BOOKKEEPING) + "\n")
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

    def finished_cells(self, rows: list[dict] | None = None, known_run_ids: set[str] = frozenset()) -> set[tuple]:
        """Cells with an ok or diverged row, leaving out the rows in `known_run_ids`."""
        rows = self.rows() if rows is None else rows
        keys = {_parsed_key(r) for r in rows if r["status"] in FINISHED_STATUSES and r["run_id"] not in known_run_ids}
        return keys - {None}

    # -----------------------------------------------------------------------------------------------
    # Claims. Before training a cell, a process creates `.claims/<cell>.json` (its pid and host, for
    # people) under the directory lock and keeps it open with an exclusive flock until the cell's rows
    # are written or the cell fails. Another process skips a cell whose claim file is locked. Whether
    # the owner is alive is the kernel's answer, not a guess from the pid: the flock goes with the
    # process however it ends (even SIGKILL), so a claim whose flock can be taken is stale and is
    # taken over; no pid reuse or clock can make a dead claim look alive. Done under the directory
    # lock, claiming also re-reads runs.csv, so a cell another process finished meanwhile is not
    # trained again.

    def _claim_path(self, key: tuple) -> Path:
        digest = hashlib.sha1(json.dumps(key).encode()).hexdigest()[:16]
        return self.dir / CLAIMS / f"{key[0]}-seed{key[1]}-{digest}.json"

    def claim(self, keys: list[tuple], known_run_ids: set[str]) -> tuple[list[Claim], dict[tuple, str]]:
        """Claim the cells `keys` for this process; return the claims and, per cell not claimed, why.

        A cell is not claimed when another process finished it (a runs.csv row not in `known_run_ids`)
        or holds its claim. A stale claim is taken over; its note says so.
        """
        claims, notes = [], {}
        try:
            self._claim_under_lock(keys, known_run_ids, claims, notes)
        except BaseException:  # an interruption held back until the claims were made: give them up
            self.release(claims)
            raise
        return claims, notes

    def _claim_under_lock(self, keys, known_run_ids, claims: list[Claim], notes: dict) -> None:
        with self.locked(), _signals_held():
            (self.dir / CLAIMS).mkdir(exist_ok=True)
            done_elsewhere = self.finished_cells(known_run_ids=known_run_ids)
            for key in keys:
                if key in done_elsewhere:
                    notes[key] = "finished meanwhile by another process"
                    continue
                path = self._claim_path(key)
                f = open(path, "a+", encoding="utf-8")
                f.seek(0)
                owner = f.read().strip()
                try:
                    fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
                except BlockingIOError:
                    f.close()
                    notes[key] = f"being run by another process ({owner})"
                    continue
                if owner:
                    notes[key] = f"taking over a stale claim ({owner}): that process is gone"
                f.truncate(0)
                f.write(json.dumps({"pid": os.getpid(), "host": socket.gethostname(),
                                    "since": datetime.now(timezone.utc).isoformat(timespec="seconds")}))
                f.flush()
                claims.append(Claim(key, path, f))

    def release(self, claims: list[Claim]) -> None:
        """Give claims up (idempotent). Removing the file under the lock keeps claiming race-free."""
        if all(c.file.closed for c in claims):
            return
        with self.locked():
            self._release(claims)

    @staticmethod
    def _release(claims: list[Claim]) -> None:
        for c in claims:
            if not c.file.closed:
                c.path.unlink(missing_ok=True)
                c.file.close()

    def _replace(self, table: str, new_rows: list[dict]) -> None:
        path = self.dir / table
        columns = TABLES[table]
        old = path.read_bytes() if path.exists() else b""
        if old and old.split(b"\n", 1)[0].rstrip(b"\r").decode("utf-8", "replace") != ",".join(columns):
            raise HarnessError(f"{path}: header is not this version's columns, so new rows would not line up; "
                               "move the file aside (or pass another --results-dir)")
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

    def append(self, runs: list[dict], epochs: list[dict], trace: list[dict], release: list[Claim] = ()) -> None:
        """Record finished runs with their epoch and trace rows, all or nothing per file; then give up
        the cells' claims, under the same lock, so no other process sees them neither claimed nor done."""
        with self.locked(), _signals_held():
            if epochs:
                self._replace("epochs.csv", epochs)
            if trace:
                self._replace("trace.csv", trace)
            self._replace("runs.csv", runs)
            self._release(list(release))
