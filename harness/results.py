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
- A file whose header is not this version's is never appended to (its columns would not line up); a
  last row cut short (inside a quoted field, say) is ended first, so new rows never vanish into it.
- Each cell being trained is claimed (see `claim`), so two processes never train the same cell.
- Nothing is written, truncated, deleted or read through a symbolic link (see `safe_files`), and a
  full disk or unwritable file is one line that leaves no temporary file behind.
"""

from __future__ import annotations

import codecs
import contextlib
import csv
import errno
import fcntl
import hashlib
import io
import json
import os
import signal
import socket
import stat
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import IO, Callable

from . import safe_files
from .catalogue import CELL, MAX_FIELD, TABLES, table_columns
from .errors import HarnessError

STATUSES = ("ok", "diverged", "error")
FINISHED_STATUSES = ("ok", "diverged")  # an `error` row does not stop the cell from running again

CLAIMS = ".claims"
LOCK = ".lock"
WRITE_TEST = "write-test"
# The directory's own bookkeeping, never results: kept out of version control by a .gitignore
# written into every results directory (whatever its name), so `git add results` is always safe.
BOOKKEEPING = (".lock", f"{CLAIMS}/", ".*.tmp", ".write-test.*")


FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")  # what makes a spreadsheet read a cell as a formula
CUT = " [cut]"
# Any field is read, whatever its size, so that one oversized field (written by an earlier version, or by
# hand) costs its row only: rows.field_problem refuses a field over MAX_FIELD.
csv.field_size_limit(2**31 - 1)


def free_text(text: str | None) -> str | None:
    """Free text as a row holds it: at most MAX_FIELD characters, and shown by a spreadsheet as text (a
    leading ' where it would start a formula)."""
    if text and text.startswith(FORMULA_STARTS):
        text = "'" + text
    if text and len(text) > MAX_FIELD:
        text = text[: MAX_FIELD - len(CUT)] + CUT
    return text


def overrides_json(overrides: dict) -> str:
    """A run's overrides as runs.csv holds them: a JSON object with sorted keys; '' for a faithful run."""
    return json.dumps(overrides, sort_keys=True) if overrides else ""


def overrides_text(overrides: str) -> str:
    """A row's quick-run overrides as text ('epochs=1, train_limit=5000'); '' for a faithful run."""
    try:
        return ", ".join(f"{k}={v}" for k, v in sorted(json.loads(overrides).items())) if overrides else ""
    except (ValueError, AttributeError):
        return overrides


def _format(value) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return repr(value)  # shortest text that reads back as the same float: bit-exact round trip
    return str(value)


def csv_text(columns: list[str], rows: list[dict], header: bool = True) -> str:
    """Rows as the harness writes every CSV file: these columns in order, LF line ends, each value as
    `_format` writes it (a float's shortest exact text, booleans in lower case, None empty)."""
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=columns, extrasaction="raise", lineterminator="\n")
    if header:
        writer.writeheader()
    writer.writerows({c: _format(row.get(c)) for c in columns} for row in rows)
    return buf.getvalue()


def table_bytes(path: Path) -> bytes | None:
    """A results table's bytes, None where there is none. A re-save by another program is read as the same
    table: a UTF-8 byte-order mark dropped, Windows' and old Macs' line ends (CRLF, CR) read as LF (the
    harness writes no line break inside a field)."""
    data = safe_files.read_bytes(path)
    if data is None:
        return None
    if data.startswith(codecs.BOM_UTF8):
        data = data[len(codecs.BOM_UTF8):]
    if b"\r" in data:
        data = data.replace(b"\r\n", b"\n").replace(b"\r", b"\n")
    return data


def read_table(path: Path) -> tuple[list[str] | None, list[list[str]]]:
    """A CSV file's header and its data records as lists of fields; (None, []) when it does not exist."""
    data = table_bytes(path)
    if data is None:
        return None, []
    try:
        records = list(csv.reader(io.StringIO(data.decode("utf-8"), newline="")))
    except (csv.Error, UnicodeDecodeError) as e:
        raise HarnessError(f"{path}: not a readable CSV file ({e}); `harness check` names the damage, "
                           "move the file aside to start afresh") from None
    if not records:
        return None, []
    return records[0], records[1:]


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
    """One cell taken by this process: the claim file, held open with an exclusive flock, in the claims
    folder, held open too (the file is removed from that folder, not from whatever its path names later)."""

    key: tuple
    path: Path
    file: IO
    folder: safe_files.Folder


OWN_FILES = (*TABLES, "REPORT.md", WRITE_TEST)
NOT_WRITABLE = "free some space or fix its permissions, or pass another --results-dir"


def _own_temporary(name: str) -> bool:
    """A temporary file of this harness in the results directory (user files are left alone)."""
    return safe_files.is_temporary(name) and any(name.startswith(f".{own}.") for own in OWN_FILES)


class ResultsStore:
    def __init__(self, directory: Path | str):
        self.dir = Path(directory)

    def _not_writable(self, e: OSError) -> HarnessError:
        return HarnessError(f"{self.dir}: results directory is not writable ({e.strerror}); pass another --results-dir")

    def _lock_file(self) -> int:
        """The directory's lock file, opened for flock; made, with the directory, where missing."""
        lock = self.dir / LOCK
        try:
            self.dir.mkdir(parents=True, exist_ok=True)
            fd = os.open(lock, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC | os.O_NONBLOCK, 0o644)
        except OSError as e:
            if e.errno == errno.EISDIR:
                raise safe_files.not_a_file(lock, stat.S_IFDIR) from None
            if e.errno == errno.ELOOP or (e.errno == errno.EACCES and os.path.lexists(lock)):
                raise safe_files.os_error(lock, e, "open the directory's lock", "fix its permissions or pass another --results-dir") from None
            raise self._not_writable(e) from None
        mode = os.fstat(fd).st_mode
        if not stat.S_ISREG(mode):  # a FIFO, say
            os.close(fd)
            raise safe_files.not_a_file(lock, mode)
        return fd

    @contextlib.contextmanager
    def locked(self):
        """An exclusive lock on the directory, held across read-check-write sequences. Every temporary
        file of the harness is made under it, so any found on taking it was left by a killed process
        (and might keep a disk full): it is removed."""
        fd = self._lock_file()
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            safe_files.remove_matching(self.dir, _own_temporary)
            self._prove_writable()
            for table in TABLES:  # refused now, not once a run has trained and its rows are due
                safe_files.refuse_link_or_dir(self.dir / table)
            yield
        finally:
            os.close(fd)  # drops the lock

    def _prove_writable(self) -> None:
        try:
            with _signals_held():  # an interruption leaves no probe behind
                fd, probe = safe_files.temporary_beside(self.dir / WRITE_TEST)
                os.close(fd)
                probe.unlink()
            # Never over a file (or link) already there: that one is the user's.
            safe_files.create_new(self.dir / ".gitignore", "# harness bookkeeping, not results\n" + "\n".join(BOOKKEEPING) + "\n")
        except OSError as e:
            raise self._not_writable(e) from None

    @contextlib.contextmanager
    def reading(self):
        """A shared lock while the files are read, so that a run recording rows meanwhile is not seen
        half-way (between its epochs.csv and runs.csv rows). Creates nothing but the lock file, and
        reads unlocked where even that cannot be made (a read-only directory: nobody writes there)."""
        try:
            fd = os.open(self.dir / LOCK, os.O_RDONLY | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC | os.O_NONBLOCK, 0o644)
        except OSError as e:
            if e.errno == errno.ELOOP:
                raise safe_files.link_refused(self.dir / LOCK) from None
            yield  # no directory, or not ours to write in
            return
        try:
            if stat.S_ISREG(os.fstat(fd).st_mode):
                fcntl.flock(fd, fcntl.LOCK_SH)
            yield
        finally:
            os.close(fd)

    # -----------------------------------------------------------------------------------------------
    # Claims. Before training a cell, a process creates `.claims/<cell>.json` (its pid and host, for
    # people) under the directory lock and keeps it open with an exclusive flock until the cell's rows
    # are written or the cell fails. Another process skips a cell whose claim file is locked. Whether
    # the owner is alive is the kernel's answer, not a guess from the pid: the flock goes with the
    # process however it ends (even SIGKILL), so a claim whose flock can be taken is stale and is
    # taken over (deleted and made anew: an existing file is never written into); no pid reuse or
    # clock can make a dead claim look alive. Done under the directory lock, claiming also re-reads
    # runs.csv, so a cell another process finished meanwhile is not trained again.

    def _claim_path(self, key: tuple) -> Path:
        digest = hashlib.sha1(json.dumps(key).encode()).hexdigest()[:16]
        cell = dict(zip(CELL, key))
        return self.dir / CLAIMS / f"{cell['experiment']}-seed{cell['seed']}-{digest}.json"

    def claim(self, keys: list[tuple], finished_elsewhere: Callable[[], set[tuple]]) -> tuple[list[Claim], dict[tuple, str]]:
        """Claim the cells `keys` for this process; return the claims and, per cell not claimed, why.

        A cell is not claimed when another process finished it (among `finished_elsewhere()`, called
        under the lock) or holds its claim. A stale claim is taken over; its note says so.
        """
        claims, notes = [], {}
        try:
            self._claim_under_lock(keys, finished_elsewhere, claims, notes)
        except BaseException:  # an interruption held back until the claims were made: give them up
            self.release(claims)
            raise
        return claims, notes

    def _claim_under_lock(self, keys, finished_elsewhere, claims: list[Claim], notes: dict) -> None:
        with self.locked(), _signals_held():
            with safe_files.Folder(self.dir / CLAIMS, NOT_WRITABLE) as folder:
                done_elsewhere = finished_elsewhere()
                for key in keys:
                    if key in done_elsewhere:
                        notes[key] = "finished meanwhile by another process"
                        continue
                    path = self._claim_path(key)
                    owner, alive = self._existing_claim(folder, path.name)
                    if alive:
                        notes[key] = f"being run by another process ({owner})"
                        continue
                    if owner:
                        notes[key] = f"taking over a stale claim ({owner}): that process is gone"
                    claims.append(Claim(key, path, self._new_claim(folder, path.name), folder.duplicate()))

    @staticmethod
    def _existing_claim(folder: safe_files.Folder, name: str) -> tuple[str | None, bool]:
        """Who holds the claim file `name` (None: there is none) and whether they are alive. A stale
        file is removed, to be made anew."""
        try:
            fd = folder.open_regular(name, doing="read the claim")
        except FileNotFoundError:
            return None, False
        with os.fdopen(fd, "rb") as f:
            owner = _claim_owner(f.read(4096))
            try:
                fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                return owner, True
            folder.remove(name)
        return owner, False

    @staticmethod
    def _new_claim(folder: safe_files.Folder, name: str) -> IO:
        f = os.fdopen(folder.open_new(name, doing="create the claim"), "w+", encoding="utf-8")
        fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)  # a new file: nobody else has it
        try:
            f.write(json.dumps({"pid": os.getpid(), "host": socket.gethostname(),
                                "since": datetime.now(timezone.utc).isoformat(timespec="seconds")}))
            f.flush()
        except OSError as e:
            with contextlib.suppress(OSError):  # closing flushes again, and fails again on a full disk
                f.close()
            folder.remove(name)
            raise safe_files.os_error(folder.path / name, e, "write the claim", NOT_WRITABLE) from None
        return f

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
                c.folder.remove(c.path.name)
                c.file.close()
                c.folder.close()

    def _prepare(self, table: str, new_rows: list[dict]) -> Path:
        """The table with `new_rows` appended, in a temporary file beside it (see `_commit`)."""
        path = self.dir / table
        old = table_bytes(path) or b""
        columns = table_columns(table, _header(old), new_rows)  # the catalogue's, and recipes' own metrics'
        old = _widened(old, columns, path)
        text = csv_text(columns, new_rows, header=not old)
        return safe_files.write_temporary(path, _ended(old, path) + text.encode("utf-8"), _UNRECORDED)

    def append(self, runs: list[dict], epochs: list[dict], trace: list[dict], release: list[Claim] = ()) -> None:
        """Record finished runs with their epoch and trace rows, all or nothing per file; then give up
        the cells' claims, under the same lock, so no other process sees them neither claimed nor done.
        Every file is written in full before any replaces its old copy, so a full disk changes nothing."""
        with self.locked(), _signals_held():
            tables = [("epochs.csv", epochs), ("trace.csv", trace), ("runs.csv", runs)]
            prepared: list[tuple[Path, Path]] = []
            try:
                for table, rows in tables:
                    if rows or table == "runs.csv":
                        prepared.append((self._prepare(table, rows), self.dir / table))
                for tmp, path in prepared:
                    safe_files.commit(tmp, path, _UNRECORDED)
            finally:
                for tmp, _ in prepared:
                    tmp.unlink(missing_ok=True)
            self._release(list(release))


def _header(old: bytes) -> list[str]:
    """A table's header, from its bytes (none: [])."""
    return old.split(b"\n", 1)[0].rstrip(b"\r").decode("utf-8", "replace").split(",") if old else []


def _widened(old: bytes, columns: list[str], path: Path) -> bytes:
    """A table's bytes with this version's header: an earlier version's file (its columns a prefix of
    today's) rewritten with the later columns empty in every record, which is what it reads as; any other
    header is refused, since new rows would not line up."""
    if not old:
        return old
    header = _header(old)
    if header == columns:
        return old
    refusal = HarnessError(f"{path}: header is not this version's columns, so new rows would not line up; "
                           "move the file aside (or pass another --results-dir)")
    if header != columns[: len(header)]:
        raise refusal
    records = list(csv.reader(io.StringIO(_ended(old, path).decode("utf-8"), newline="")))[1:]
    if any(len(record) != len(header) for record in records):  # a damaged record: `harness check` names it
        raise refusal
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(columns)
    writer.writerows(record + [""] * (len(columns) - len(header)) for record in records)
    return buf.getvalue().encode("utf-8")


_UNRECORDED = "the run was not recorded: free some space (or fix the permissions) and run it again"


def _claim_owner(data: bytes) -> str:
    """What a claim file says about its owner, as the harness wrote it; nothing else read from it is shown."""
    try:
        owner = json.loads(data)
    except ValueError:
        owner = None
    if (isinstance(owner, dict) and owner and set(owner) <= {"pid", "host", "since"} and isinstance(owner.get("pid", 0), int)
            and all(isinstance(owner.get(k, ""), str) and len(owner.get(k, "")) <= 255 for k in ("host", "since"))):
        return json.dumps(owner)
    return "a claim file the harness did not write"


_SENTINEL = "\x00end"


def _ended(old: bytes, path: Path) -> bytes:
    """`old` with its last record ended, so that rows written after it are records of their own.

    A last row cut short (a copy or an edit interrupted) may end inside a quoted field, where anything
    appended would become part of that field. It is ended, not dropped: `harness check` names it as a
    partial row, and the rows after it count.
    """
    if not old:
        return old
    text = old.decode("utf-8", "replace")
    for ending in ("" if text.endswith("\n") else "\n", '"\n'):
        records = list(csv.reader(io.StringIO(text + ending + _SENTINEL + "\n", newline="")))
        if records[-1] == [_SENTINEL]:
            return old + ending.encode()
    raise HarnessError(f"{path}: its last row cannot be ended (the file is damaged); `harness check` names the damage, "
                       "move the file aside to start afresh")
