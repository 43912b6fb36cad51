"""Files the harness keeps inside a directory it was given, never reached through a symbolic link.

The directory the user names (`--results-dir`, `--data-dir`) may itself be a link: it is theirs to
choose. Below it, the harness makes no links, so a link where it keeps a file or folder of its own was
planted there, and following it would write, truncate, delete or print something elsewhere. Every
function here refuses such a link with one line instead (`HarnessError`, exit 2):

- new files are created with O_EXCL | O_NOFOLLOW, so neither a link nor an existing file is opened;
- replaced files are written to a temporary file of an unpredictable name beside them, synced, and
  renamed over the old one (a rename replaces a directory entry, never what a link points to);
- files are read with O_NOFOLLOW | O_NONBLOCK and only when they are regular files (never a FIFO or
  a device, which would hang or never end).

A file system error (full disk, permissions) is one line too, and leaves no temporary file behind.
"""

from __future__ import annotations

import contextlib
import errno
import os
import secrets
import stat
from pathlib import Path

from .errors import HarnessError

TEMP_SUFFIX = ".tmp"
_NO_LINK = os.O_NOFOLLOW | os.O_CLOEXEC


def link_refused(path: Path) -> HarnessError:
    return HarnessError(f"{path}: is a symbolic link, which the harness never makes; it writes only inside the "
                        "directory it was given: remove the link")


def os_error(path: Path, e: OSError, doing: str, fix: str) -> HarnessError:
    if e.errno == errno.ELOOP:
        return link_refused(path)
    return HarnessError(f"{path}: cannot {doing} ({e.strerror}); {fix}")


def real_dir(path: Path, fix: str) -> Path:
    """`path` as a directory of its own (made if missing), not a link nor a file."""
    try:
        os.mkdir(path)
    except FileExistsError:
        pass
    except OSError as e:
        raise os_error(path, e, "create the directory", fix) from None
    mode = os.lstat(path).st_mode
    if stat.S_ISLNK(mode):
        raise link_refused(path)
    if not stat.S_ISDIR(mode):
        raise HarnessError(f"{path}: is not a directory, where the harness keeps one; move it aside")
    return path


def open_regular(path: Path, doing: str = "read it", fix: str = "check its permissions") -> int:
    """A read-only descriptor of the regular file at `path` (never through a link); FileNotFoundError if absent."""
    try:
        fd = os.open(path, os.O_RDONLY | _NO_LINK | os.O_NONBLOCK)
    except FileNotFoundError:
        raise
    except OSError as e:
        if e.errno == errno.EISDIR:
            raise not_a_file(path, stat.S_IFDIR) from None
        raise os_error(path, e, doing, fix) from None
    mode = os.fstat(fd).st_mode
    if not stat.S_ISREG(mode):
        os.close(fd)
        raise not_a_file(path, mode)
    return fd


def not_a_file(path: Path, mode: int) -> HarnessError:
    kind = "a directory" if stat.S_ISDIR(mode) else "not a regular file"
    return HarnessError(f"{path}: is {kind}, where the harness keeps a file; move it aside")


def read_bytes(path: Path) -> bytes | None:
    """The contents of the regular file at `path`; None when there is none."""
    try:
        fd = open_regular(path)
    except FileNotFoundError:
        return None
    try:
        with os.fdopen(fd, "rb") as f:
            return f.read()
    except OSError as e:
        raise os_error(path, e, "read it", "check its permissions") from None


def create_new(path: Path, text: str) -> bool:
    """Write `text` to `path` if nothing (not even a dangling link) is there yet; False if something is."""
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | _NO_LINK, 0o644)
    except FileExistsError:
        return False
    with os.fdopen(fd, "w", encoding="utf-8") as f:
        f.write(text)
    return True


def temporary_beside(path: Path) -> tuple[int, Path]:
    """A new temporary file in `path`'s directory, named after it and unpredictably (`.NAME.<random>.tmp`),
    with the permissions of any new file (unlike mkstemp's owner-only ones)."""
    while True:
        tmp = path.with_name(f".{path.name}.{secrets.token_hex(8)}{TEMP_SUFFIX}")
        try:
            return os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | _NO_LINK, 0o666), tmp
        except FileExistsError:  # as good as impossible; then another name
            continue


def is_temporary(name: str) -> bool:
    return name.startswith(".") and name.endswith(TEMP_SUFFIX)


def write_temporary(path: Path, data: bytes, fix: str) -> Path:
    """`data` in a synced temporary file beside `path`, to be moved over it with `commit`; on failure none
    is left behind."""
    tmp = None
    try:
        fd, tmp = temporary_beside(path)
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
    except OSError as e:
        if tmp is not None:
            tmp.unlink(missing_ok=True)
        raise os_error(path, e, "write it", fix) from None
    except BaseException:
        if tmp is not None:
            tmp.unlink(missing_ok=True)
        raise
    return tmp


def commit(tmp: Path, path: Path, fix: str) -> None:
    """Move a temporary file over `path`, which must not be a link or a directory."""
    try:
        refuse_link_or_dir(path)
        os.replace(tmp, path)
    except OSError as e:
        tmp.unlink(missing_ok=True)
        raise os_error(path, e, "write it", fix) from None
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def refuse_link_or_dir(path: Path) -> None:
    try:
        mode = os.lstat(path).st_mode
    except FileNotFoundError:
        return
    if stat.S_ISLNK(mode):
        raise link_refused(path)
    if stat.S_ISDIR(mode):
        raise not_a_file(path, mode)


def write_atomic(path: Path, data: bytes, fix: str) -> None:
    """Replace `path` with `data` all at once: readers see the old file or the new one."""
    refuse_link_or_dir(path)  # before the work of writing
    commit(write_temporary(path, data, fix), path, fix)


def remove_matching(directory: Path, which) -> None:
    """Delete the files of `directory` whose names `which` accepts, such as the temporary files an
    interrupted process left (only where no live process can be writing one, e.g. under the directory's
    exclusive lock). A link is removed itself, never followed."""
    with contextlib.suppress(FileNotFoundError, NotADirectoryError):
        for name in os.listdir(directory):
            if which(name):
                with contextlib.suppress(FileNotFoundError, IsADirectoryError, PermissionError):
                    os.unlink(directory / name)
