"""Files the harness keeps inside a directory it was given, never reached through a symbolic link.

The directory the user names (`--results-dir`, `--data-dir`) may itself be a link: it is theirs to
choose. Below it, the harness makes no links, so a link where it keeps a file or folder of its own was
planted there, and following it would write, truncate, delete or print something elsewhere. Every
function here refuses such a link with one line instead (`HarnessError`, exit 2):

- new files are created with O_EXCL | O_NOFOLLOW, so neither a link nor an existing file is opened;
- replaced files are written to a temporary file of an unpredictable name beside them, synced, and
  renamed over the old one (a rename replaces a directory entry, never what a link points to);
- files are read with O_NOFOLLOW | O_NONBLOCK and only when they are regular files (never a FIFO or
  a device, which would hang or never end);
- in a folder of the harness's own (`plots/`, `.claims/`), held open as a `Folder`, every file is
  named relative to the folder's descriptor, so a link swapped in for the folder after it was opened
  changes nothing: the harness goes on working in the folder it checked.

A file system error (full disk, permissions) is one line too, and leaves no temporary file behind.
"""

from __future__ import annotations

import contextlib
import copy
import errno
import os
import secrets
import stat
from dataclasses import dataclass
from pathlib import Path

from .errors import HarnessError, RegistryError

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


def open_regular(path: Path, doing: str = "read it", fix: str = "check its permissions", dir_fd: int | None = None) -> int:
    """A read-only descriptor of the regular file at `path` (never through a link); FileNotFoundError if absent."""
    try:
        fd = os.open(_at(path, dir_fd), os.O_RDONLY | _NO_LINK | os.O_NONBLOCK, dir_fd=dir_fd)
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
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text)
    except BaseException:  # a full disk, say: no empty or partial file left where the next try would find it
        with contextlib.suppress(OSError):
            os.unlink(path)
        raise
    return True


def _at(path: Path, dir_fd: int | None) -> Path | str:
    """What the system calls are given: the path itself, or its name in the folder held as `dir_fd`."""
    return path if dir_fd is None else path.name


def temporary_beside(path: Path, dir_fd: int | None = None) -> tuple[int, Path]:
    """A new temporary file in `path`'s directory, named after it and unpredictably (`.NAME.<random>.tmp`),
    with the permissions of any new file (unlike mkstemp's owner-only ones)."""
    while True:
        tmp = path.with_name(f".{path.name}.{secrets.token_hex(8)}{TEMP_SUFFIX}")
        try:
            return os.open(_at(tmp, dir_fd), os.O_WRONLY | os.O_CREAT | os.O_EXCL | _NO_LINK, 0o666, dir_fd=dir_fd), tmp
        except FileExistsError:  # as good as impossible; then another name
            continue


def _remove(path: Path, dir_fd: int | None) -> None:
    with contextlib.suppress(FileNotFoundError):
        os.unlink(_at(path, dir_fd), dir_fd=dir_fd)


def is_temporary(name: str) -> bool:
    return name.startswith(".") and name.endswith(TEMP_SUFFIX)


def write_temporary(path: Path, data: bytes, fix: str, dir_fd: int | None = None) -> Path:
    """`data` in a synced temporary file beside `path`, to be moved over it with `commit`; on failure none
    is left behind."""
    tmp = None
    try:
        fd, tmp = temporary_beside(path, dir_fd)
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
    except OSError as e:
        if tmp is not None:
            _remove(tmp, dir_fd)
        raise os_error(path, e, "write it", fix) from None
    except BaseException:
        if tmp is not None:
            _remove(tmp, dir_fd)
        raise
    return tmp


def commit(tmp: Path, path: Path, fix: str, dir_fd: int | None = None) -> None:
    """Move a temporary file over `path`, which must not be a link or a directory."""
    try:
        refuse_link_or_dir(path, dir_fd)
        os.replace(_at(tmp, dir_fd), _at(path, dir_fd), src_dir_fd=dir_fd, dst_dir_fd=dir_fd)
    except OSError as e:
        _remove(tmp, dir_fd)
        raise os_error(path, e, "write it", fix) from None
    except BaseException:
        _remove(tmp, dir_fd)
        raise


def refuse_link_or_dir(path: Path, dir_fd: int | None = None) -> None:
    try:
        mode = os.lstat(_at(path, dir_fd), dir_fd=dir_fd).st_mode
    except FileNotFoundError:
        return
    if stat.S_ISLNK(mode):
        raise link_refused(path)
    if stat.S_ISDIR(mode):
        raise not_a_file(path, mode)


def write_atomic(path: Path, data: bytes, fix: str, dir_fd: int | None = None) -> None:
    """Replace `path` with `data` all at once: readers see the old file or the new one."""
    refuse_link_or_dir(path, dir_fd)  # before the work of writing
    commit(write_temporary(path, data, fix, dir_fd), path, fix, dir_fd)


def remove_matching(directory: Path, which, dir_fd: int | None = None) -> None:
    """Delete the files of `directory` (or of the folder held as `dir_fd`) whose names `which` accepts,
    such as the temporary files an interrupted process left (only where no live process can be writing
    one, e.g. under the directory's exclusive lock). A link is removed itself, never followed."""
    with contextlib.suppress(FileNotFoundError, NotADirectoryError):
        for name in os.listdir(directory if dir_fd is None else dir_fd):
            if which(name):
                with contextlib.suppress(FileNotFoundError, IsADirectoryError, PermissionError):
                    os.unlink(_at(directory / name, dir_fd), dir_fd=dir_fd)


class Folder:
    """A folder of the harness's own inside the directory it was given, made if missing and held open by
    a descriptor while the harness works in it: files in it are made, replaced, listed and deleted by
    name relative to that descriptor (openat and its kin), never through the folder's path again. The
    open itself refuses a link (O_NOFOLLOW), and a link swapped in afterwards is never looked at."""

    def __init__(self, path: Path, fix: str):
        self.path, self.fix = real_dir(path, fix), fix
        try:
            self.fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY | _NO_LINK)
        except OSError as e:
            raise os_error(path, e, "open the directory", fix) from None

    def __enter__(self) -> "Folder":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def close(self) -> None:
        if self.fd >= 0:
            os.close(self.fd)
            self.fd = -1

    def duplicate(self) -> "Folder":
        """Another hold on the same folder (not looked up again), to be closed on its own."""
        twin = copy.copy(self)
        twin.fd = os.dup(self.fd)
        return twin

    def __truediv__(self, name: str) -> "FolderFile":
        return FolderFile(self, name)

    def names(self) -> list[str]:
        return os.listdir(self.fd)

    def remove_matching(self, which) -> None:
        remove_matching(self.path, which, self.fd)

    def open_new(self, name: str, doing: str = "create it") -> int:
        """A new file `name`, opened for reading and writing; FileExistsError if anything is there."""
        try:
            return os.open(name, os.O_RDWR | os.O_CREAT | os.O_EXCL | _NO_LINK, 0o644, dir_fd=self.fd)
        except FileExistsError:
            raise
        except OSError as e:
            raise os_error(self.path / name, e, doing, self.fix) from None

    def open_regular(self, name: str, doing: str = "read it") -> int:
        """A read-only descriptor of the regular file `name`; FileNotFoundError if absent."""
        return open_regular(self.path / name, doing, self.fix, self.fd)

    def remove(self, name: str) -> None:
        _remove(self.path / name, self.fd)


@dataclass(frozen=True)
class FolderFile:
    """A file's name in a held `Folder`: its path for people, its name for the system calls."""

    folder: Folder
    name: str

    @property
    def path(self) -> Path:
        return self.folder.path / self.name

    def write_atomic(self, data: bytes) -> None:
        write_atomic(self.path, data, self.folder.fix, self.folder.fd)


def read_user_file(path: Path, limit: int, kind: str, what: str) -> bytes:
    """A file the user gave the harness to read (a recipe, the code beside it): links are followed, since
    the file is theirs, but nothing is read unless it is a regular file of at most `limit` bytes (a FIFO
    would block for ever, a link to /dev/zero never end). `kind` and `what` name such a file in refusals."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)  # O_NONBLOCK: opening a FIFO does not wait for a writer
    except OSError as e:
        raise RegistryError(f"{path}: cannot read: {e.strerror}") from None
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            raise RegistryError(f"{path}: not a regular file; {kind}")
        if info.st_size > limit:
            raise RegistryError(f"{path}: {info.st_size:,} bytes; {what} is at most {limit:,}")
        with open(fd, "rb", closefd=False) as f:
            data = f.read(limit + 1)  # the size may have grown since fstat
    except OSError as e:
        raise RegistryError(f"{path}: cannot read: {e.strerror}") from None
    finally:
        os.close(fd)
    if len(data) > limit:
        raise RegistryError(f"{path}: more than {limit:,} bytes; {what} is at most that")
    return data
