"""Datasets: iris from scikit-learn, MNIST and Fashion-MNIST through torchvision, checked before use.

MNIST-style data comes from one of three places, in this order: files already in the data directory,
a local mirror holding the four `*.gz` files (`--data-mirror`, `HARNESS_DATA_MIRROR`), or torchvision's
own download. Whatever the source, every decompressed file is checked against the MD5 sums below before
anything trains on it. Concurrent processes fill one data directory in turn, under a lock, each file
written to a temporary file of its own and renamed into place: a process never reads another one's
partial file, and one killed half-way leaves nothing another could take for data.
"""

from __future__ import annotations

import contextlib
import fcntl
import functools
import gzip
import hashlib
import math
import os
import shutil
import zlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from . import safe_files
from .errors import DataError

IDX_FILES = ("train-images-idx3-ubyte", "train-labels-idx1-ubyte", "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte")


@dataclass(frozen=True)
class IdxSource:
    folder: str  # torchvision's folder name under the data directory
    md5: dict[str, str]
    default_mirror: str | None
    how_to_get: str


IDX_SOURCES = {
    "mnist": IdxSource(
        folder="MNIST",
        md5={
            "train-images-idx3-ubyte": "6bbc9ace898e44ae57da46a324031adb",
            "train-labels-idx1-ubyte": "a25bea736e30d166cdddb491f175f624",
            "t10k-images-idx3-ubyte": "2646ac647ad5339dbf082846283269ea",
            "t10k-labels-idx1-ubyte": "27ae3e4e09519cfbb04c329615203637",
        },
        default_mirror=None,
        how_to_get="connect to the internet, or pass --data-mirror DIR (or set HARNESS_DATA_MIRROR) "
        "naming a directory with the four MNIST *.gz files",
    ),
    "fashion-mnist": IdxSource(
        folder="FashionMNIST",
        md5={
            "train-images-idx3-ubyte": "f4a8712d7a061bf5bd6d2ca38dc4d50a",
            "train-labels-idx1-ubyte": "9018921c3c673c538a1fc5bad174d6f9",
            "t10k-images-idx3-ubyte": "8181f5470baa50b63fa0f6fddb340f0a",
            "t10k-labels-idx1-ubyte": "15d484375f8d13e6eb1aabb0c3f46965",
        },
        default_mirror="/usr/share/datasets/fashion-mnist",
        how_to_get="install Debian's package (`make fashion-mnist`, i.e. apt-get install dataset-fashion-mnist), "
        "connect to the internet, or pass --data-mirror DIR naming a directory with the four Fashion-MNIST *.gz files",
    ),
}


def default_data_dir() -> Path:
    return Path(os.environ.get("HARNESS_DATA_DIR", "data"))


def default_mirror() -> Path | None:
    env = os.environ.get("HARNESS_DATA_MIRROR")
    return Path(env) if env else None


def md5_of(path: Path) -> str:
    digest = hashlib.md5()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


@functools.lru_cache(maxsize=None)
def _verified(path: Path, size: int, mtime_ns: int, expected: str) -> bool:
    # Keyed by size and mtime so a file replaced on disk is checked again.
    return md5_of(path) == expected


def _is_good(path: Path, expected: str) -> bool:
    try:
        st = path.stat()
    except (FileNotFoundError, NotADirectoryError):
        return False
    return _verified(path, st.st_size, st.st_mtime_ns, expected)


def _mirror_file(mirror: Path, name: str) -> Path | None:
    """The mirror may hold `name.gz` (as published) or `name` itself."""
    for candidate in (mirror / f"{name}.gz", mirror / name):
        if candidate.is_file():
            return candidate
    return None


def _extract(src: Path, dest: Path, expected: str) -> None:
    """Decompress (or copy) into a temporary file, check it, then move it into place."""
    fd, tmp = safe_files.temporary_beside(dest)
    os.close(fd)
    try:
        if src.suffix == ".gz":
            with gzip.open(src, "rb") as fin, open(tmp, "wb") as fout:
                shutil.copyfileobj(fin, fout, 1 << 20)
        else:
            shutil.copyfile(src, tmp)
    except (OSError, EOFError, zlib.error) as e:  # BadGzipFile is an OSError
        tmp.unlink(missing_ok=True)
        if getattr(e, "errno", None):  # the system's refusal (a full disk), not a bad archive
            raise DataError(f"{dest}: cannot extract {src} ({e.strerror}); free some space or pass another --data-dir") from None
        raise DataError(f"{src}: cannot decompress ({e}); the file is truncated or corrupt: replace it with a good copy") from None
    actual = md5_of(tmp)
    if actual != expected:
        tmp.unlink(missing_ok=True)
        raise DataError(
            f"{src}: decompresses to data with MD5 {actual}, expected {expected}; the mirror's copy is corrupt: replace it with a good copy"
        )
    os.replace(tmp, dest)


def _download(name: str, data_dir: Path) -> None:
    import torchvision

    cls = torchvision.datasets.MNIST if name == "mnist" else torchvision.datasets.FashionMNIST
    try:
        cls(root=str(data_dir), train=True, download=True)
        cls(root=str(data_dir), train=False, download=True)
    except Exception as e:  # torchvision raises RuntimeError/URLError/OSError depending on the failure
        reason = " ".join(str(e).split())[:200]  # torchvision's message spans lines: keep the error one line
        raise DataError(f"{name}: download failed ({type(e).__name__}: {reason}); {IDX_SOURCES[name].how_to_get}") from None


def mirror_dataset(mirror: Path) -> str | None:
    """Which dataset a mirror holds, told by its small test-label file (MNIST's and Fashion-MNIST's
    files have the same names); None when that file is missing or matches no known dataset."""
    src = _mirror_file(mirror, "t10k-labels-idx1-ubyte")
    if src is None:
        return None
    try:
        data = gzip.decompress(src.read_bytes()) if src.suffix == ".gz" else src.read_bytes()
    except (OSError, EOFError, zlib.error):  # unreadable: _extract reports it by name
        return None
    digest = hashlib.md5(data).hexdigest()
    return next((name for name, s in IDX_SOURCES.items() if s.md5["t10k-labels-idx1-ubyte"] == digest), None)


def mirror_for(name: str, mirror: Path | None = None) -> Path | None:
    """The mirror to fill dataset `name` from; None: download it.

    The mirror given (or HARNESS_DATA_MIRROR) serves unless it holds another dataset, as when it names
    the MNIST mirror and a Fashion-MNIST variant runs; then the dataset's own default mirror (Debian's
    package) does, where installed.
    """
    mirror = Path(mirror) if mirror else default_mirror()
    if mirror is not None and mirror.is_dir() and mirror_dataset(mirror) not in (None, name):
        mirror = None
    default = IDX_SOURCES[name].default_mirror
    if mirror is None and default and Path(default).is_dir():
        return Path(default)
    return mirror


def ensure_idx(name: str, data_dir: Path | None = None, mirror: Path | None = None) -> Path:
    """Make the four IDX files of `name` present and verified under data_dir; return the raw folder.

    Files that are already there and match are used as they are. Missing or mismatching ones come
    from the mirror (see `mirror_for`), or from a download when there is none. Nothing unverified is
    ever returned.
    """
    source = IDX_SOURCES[name]
    data_dir = Path(data_dir) if data_dir else default_data_dir()
    raw = data_dir / source.folder / "raw"
    if not _missing(raw, source):
        return raw  # the usual case, read-only: nothing to lock
    try:
        raw.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise DataError(f"{raw}: cannot create the data directory ({e.strerror}); pass a writable --data-dir") from None
    with _preparing(raw):
        missing = _missing(raw, source)  # again: another process may have filled it meanwhile
        if missing:
            _fill(name, missing, data_dir, mirror)
    return raw


def _missing(raw: Path, source: IdxSource) -> list[str]:
    return [f for f in IDX_FILES if not _is_good(raw / f, source.md5[f])]


@contextlib.contextmanager
def _preparing(raw: Path):
    """An exclusive lock on a dataset's folder while it is filled; the temporary files a killed process
    left there are removed under it (no live process can be writing them)."""
    try:
        lock = open(raw.parent / ".lock", "a")  # beside raw/, which holds the data files only
    except OSError as e:
        raise DataError(f"{raw}: cannot create the data directory's lock ({e.strerror}); pass a writable --data-dir") from None
    with lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        safe_files.remove_matching(raw, lambda n: safe_files.is_temporary(n) or n.endswith(".part"))
        yield


def _fill(name: str, missing: list[str], data_dir: Path, mirror: Path | None) -> None:
    """Make the `missing` files of dataset `name` present and verified: from the mirror, else a download."""
    source = IDX_SOURCES[name]
    raw = data_dir / source.folder / "raw"
    given = Path(mirror) if mirror else default_mirror()
    mirror = mirror_for(name, given)
    if mirror is None and given is not None:
        raise DataError(f"{given}: the data mirror holds {mirror_dataset(given)}, not {name}; {source.how_to_get}")
    if mirror is not None:
        if not mirror.is_dir():
            raise DataError(f"{mirror}: the data mirror is not a directory; {source.how_to_get}")
        for f in missing:
            src = _mirror_file(mirror, f)
            if src is None:
                raise DataError(f"{mirror}: {f}.gz is missing from the data mirror; {source.how_to_get}")
            _extract(src, raw / f, source.md5[f])
        return
    # No mirror: a file that is present but wrong is not silently replaced by a download.
    present_bad = [f for f in missing if (raw / f).exists()]
    if present_bad:
        f = present_bad[0]
        raise DataError(
            f"{raw / f}: MD5 {md5_of(raw / f)} does not match {source.md5[f]}; the file is corrupt: "
            f"delete it and run again with a --data-mirror or internet access"
        )
    _download(name, data_dir)
    for f in IDX_FILES:
        if not _is_good(raw / f, source.md5[f]):
            raise DataError(f"{raw / f}: downloaded file fails its MD5 check; delete {raw} and try again")


def dataset_md5(name: str) -> str:
    """One checksum naming the exact data a row was trained on (recorded in runs.csv)."""
    if name == "iris":
        from sklearn.datasets import load_iris

        iris = load_iris()
        digest = hashlib.md5(np.ascontiguousarray(iris.data).tobytes() + np.ascontiguousarray(iris.target).tobytes())
        return digest.hexdigest()
    md5 = IDX_SOURCES[name].md5
    return hashlib.md5("".join(md5[f] for f in IDX_FILES).encode()).hexdigest()


# ---------------------------------------------------------------------------------------------------
# What the engines consume


IRIS_SAMPLES = 150
IDX_TRAIN_SAMPLES, IDX_TEST_SAMPLES = 60_000, 10_000  # MNIST and Fashion-MNIST


def train_size(n: int, valid_fraction: float) -> int:
    """How many of `n` samples `random_split` keeps for training when `valid_fraction` are held out."""
    return int(n * (1 - valid_fraction))


def split_sizes(data: dict) -> dict[str, int]:
    """Samples in each split of a recipe's [data]: what an accuracy on that split is counted over."""
    if data["dataset"] == "iris":
        test = math.ceil(IRIS_SAMPLES * data["test_fraction"])  # train_test_split rounds the test share up
        return {"train": IRIS_SAMPLES - test, "test": test}
    train = train_size(IDX_TRAIN_SAMPLES, data["valid_fraction"])
    sizes = {"train": train, "valid": IDX_TRAIN_SAMPLES - train, "test": IDX_TEST_SAMPLES}
    return {split: n for split, n in sizes.items() if n}


def iris_split(test_fraction: float, seed: int):
    """T1's `train_test_split(iris.data, iris.target)`, its unseeded shuffle fixed by the run's seed."""
    from sklearn.datasets import load_iris
    from sklearn.model_selection import train_test_split

    iris = load_iris()
    return train_test_split(iris.data, iris.target, test_size=test_fraction, random_state=seed)


def image_transform(kind: str):
    """The per-sample torchvision transform the tutorials use."""
    import torchvision.transforms as T

    if kind == "normalize":
        return T.Compose([T.ToTensor(), T.Normalize((0.5,), (0.5,))])
    return T.ToTensor()


def image_dataset(name: str, train: bool, transform: str, data_dir: Path | None = None, mirror: Path | None = None):
    """A torchvision dataset over verified files (the tutorials' per-sample pipeline)."""
    import torchvision

    data_dir = Path(data_dir) if data_dir else default_data_dir()
    ensure_idx(name, data_dir, mirror)
    cls = torchvision.datasets.MNIST if name == "mnist" else torchvision.datasets.FashionMNIST
    return cls(root=str(data_dir), train=train, transform=image_transform(transform), download=False)


def transform_tensor(images: torch.Tensor, kind: str) -> torch.Tensor:
    """The whole uint8 image tensor through the same arithmetic as ToTensor (+ Normalize), at once.

    ToTensor divides by 255 in float32, Normalize subtracts 0.5 and divides by 0.5: done element-wise
    on the whole tensor this gives the very same float32 values as the per-sample pipeline.
    """
    x = images.unsqueeze(1).to(torch.float32).div(255)
    if kind == "normalize":
        x = x.sub(0.5).div(0.5)
    return x.contiguous()
