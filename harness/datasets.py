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
import os
import shutil
import zlib
from dataclasses import dataclass
from typing import Callable
from pathlib import Path

import numpy as np
import torch

from torch.utils.data import Dataset, TensorDataset

from . import objects, safe_files
from .errors import DataError, HarnessError, RegistryError
from .named_datasets import IDX_FILES, IDX_SETS, TABLES, IdxSet

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

    cls = getattr(torchvision.datasets, IDX_SETS[name].torchvision_class)
    try:
        cls(root=str(data_dir), train=True, download=True)
        cls(root=str(data_dir), train=False, download=True)
    except Exception as e:  # torchvision raises RuntimeError/URLError/OSError depending on the failure
        reason = " ".join(str(e).split())[:200]  # torchvision's message spans lines: keep the error one line
        raise DataError(f"{name}: download failed ({type(e).__name__}: {reason}); {IDX_SETS[name].how_to_get}") from None


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
    return next((name for name, s in IDX_SETS.items() if s.md5["t10k-labels-idx1-ubyte"] == digest), None)


def mirror_for(name: str, mirror: Path | None = None) -> Path | None:
    """The mirror to fill dataset `name` from; None: download it.

    The mirror given (or HARNESS_DATA_MIRROR) serves unless it holds another dataset, as when it names
    the MNIST mirror and a Fashion-MNIST variant runs; then the dataset's own default mirror (Debian's
    package) does, where installed.
    """
    mirror = Path(mirror) if mirror else default_mirror()
    if mirror is not None and mirror.is_dir() and mirror_dataset(mirror) not in (None, name):
        mirror = None
    default = IDX_SETS[name].default_mirror
    if mirror is None and default and Path(default).is_dir():
        return Path(default)
    return mirror


def ensure_idx(name: str, data_dir: Path | None = None, mirror: Path | None = None) -> Path:
    """Make the four IDX files of `name` present and verified under data_dir; return the raw folder.

    Files that are already there and match are used as they are. Missing or mismatching ones come
    from the mirror (see `mirror_for`), or from a download when there is none. Nothing unverified is
    ever returned.
    """
    source = IDX_SETS[name]
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


def _missing(raw: Path, source: IdxSet) -> list[str]:
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
    source = IDX_SETS[name]
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
    """One checksum naming the exact data a row was trained on (recorded in runs.csv), for a named dataset."""
    if name in TABLES:
        table = _sklearn_table(name)
        digest = hashlib.md5(np.ascontiguousarray(table.data).tobytes() + np.ascontiguousarray(table.target).tobytes())
        return digest.hexdigest()
    md5 = IDX_SETS[name].md5
    return hashlib.md5("".join(md5[f] for f in IDX_FILES).encode()).hexdigest()


def tensors_md5(*tensors: torch.Tensor) -> str:
    """The checksum of data a recipe's own callable or class produced: its tensors' bytes, in order."""
    digest = hashlib.md5()
    for t in tensors:
        digest.update(str(t.dtype).encode() + str(tuple(t.shape)).encode())
        digest.update(t.detach().cpu().contiguous().numpy().tobytes())
    return digest.hexdigest()


@functools.lru_cache(maxsize=None)
def _sklearn_table(name: str):
    import sklearn.datasets

    return getattr(sklearn.datasets, TABLES[name].loader)()


# ---------------------------------------------------------------------------------------------------
# What the engines consume: a recipe's datasets, before its train/validation split


def dtype_of(experiment) -> torch.dtype:
    """The recipe's floating-point type (`training.dtype`): of its model, its floating inputs and real targets."""
    return getattr(torch, experiment.training["dtype"])


@dataclass(frozen=True)
class FreshBatches:
    """A training split drawn afresh, one batch per call of `draw`, `per_epoch` calls an epoch
    (`training.batches_per_epoch`; None where the recipe gives none, which `load_splits` refuses)."""

    draw: Callable[[], tuple]
    where: str  # the recipe's file and key, for errors
    per_epoch: int | None


@dataclass
class Datasets:
    """A recipe's data as torch Datasets: `train` (which a validation split, if any, is taken from),
    an explicit `valid` (a user callable's), `test`."""

    train: Dataset
    test: Dataset | None
    valid: Dataset | None = None
    md5: str = ""  # dataset_md5 of the rows trained on it
    seeded: bool = False  # drawn for one seed (a seeded split): another seed loads its own


def load_datasets(experiment, seed: int, data_dir=None, mirror=None) -> Datasets:
    """The recipe's datasets for `seed`: a named table split by the seed (T1's train_test_split), the IDX
    images over verified files, a torchvision class, or the recipe's own callable."""
    name = experiment.data["dataset"]
    if name in TABLES:
        return _tabular(experiment, seed)
    if name in IDX_SETS:
        train, test = (image_dataset(name, train, image_transform(experiment), data_dir, mirror) for train in (True, False))
        return Datasets(train, test, md5=dataset_md5(name))
    if objects.is_user_module(name.rpartition(":")[0], experiment.directory):
        return _from_callable(experiment, seed)
    return _torchvision(experiment, data_dir)


def _tabular(experiment, seed: int) -> Datasets:
    """T1's `train_test_split(iris.data, iris.target)`, its unseeded shuffle fixed by the run's seed."""
    from sklearn.model_selection import train_test_split

    name = experiment.data["dataset"]
    table = _sklearn_table(name)
    x_train, x_test, y_train, y_test = train_test_split(table.data, table.target, test_size=experiment.data["test_fraction"],
                                                        random_state=seed)
    dtype = dtype_of(experiment)
    as_x, as_y = (lambda a: torch.from_numpy(a).to(dtype)), torch.from_numpy  # noqa: E731
    return Datasets(TensorDataset(as_x(x_train), as_y(y_train)), TensorDataset(as_x(x_test), as_y(y_test)),
                    md5=dataset_md5(name), seeded=True)


def _torchvision(experiment, data_dir) -> Datasets:
    """A torchvision dataset class over `data_dir`, downloaded (and checked, where torchvision has checksums)
    as torchvision does; a data directory already holding its files needs no network."""
    root = str(Path(data_dir) if data_dir else default_data_dir())
    transform = image_transform(experiment)
    name = experiment.data["dataset"]
    spec = {"class_path": name, "init_args": experiment.data["init_args"]}
    takes = {k for k in ("root", "transform", "download") if objects.accepts(spec, "dataset", experiment, k)}
    if not objects.accepts(spec, "dataset", experiment, "train"):
        raise RegistryError(f"{experiment.path}: 'data.dataset' {name} takes no `train` argument, so the harness cannot ask it for "
                            "a training and a test set; wrap it in a callable beside the recipe (docs/recipes.md)")
    made = []
    for train in (True, False):
        given = {"root": root, "transform": transform, "download": True}
        try:
            made.append(objects.instantiate(spec, "dataset", "data", experiment, train=train, **{k: v for k, v in given.items() if k in takes}))
        except HarnessError as e:
            raise DataError(f"{e}; connect to the internet, or pass --data-dir DIR naming a directory that holds "
                            "the dataset's files as torchvision lays them out") from None
    train, test = made
    parts = [torch.as_tensor(np.asarray(getattr(d, a))) for d in made for a in ("data", "targets") if hasattr(d, a)]
    return Datasets(train, test, md5=tensors_md5(*parts) if parts else "")


SPLIT_NAMES = ("train", "valid", "test")


def _from_callable(experiment, seed: int) -> Datasets:
    """The recipe's own callable: returns {"train": ..., "test": ..., "valid": ...} ("valid" and "test"
    optional), each an (inputs, labels) pair of tensors or arrays, or a torch Dataset."""
    spec = {"class_path": experiment.data["dataset"], "init_args": experiment.data["init_args"]}
    takes_seed = objects.accepts(spec, "dataset", experiment, "seed")
    returned = objects.instantiate(spec, "dataset", "data", experiment, **({"seed": seed} if takes_seed else {}))
    where = f"{experiment.path}: 'data.dataset' {spec['class_path']}"
    dtype = dtype_of(experiment)  # floating inputs and real targets: the recipe's type
    fix = 'return a dict {"train": (x, y), "test": (x, y)} of tensors (or torch Datasets); "valid" may be given too'
    if not isinstance(returned, dict) or "train" not in returned or set(returned) - set(SPLIT_NAMES):
        shown = sorted(returned) if isinstance(returned, dict) else type(returned).__name__
        raise RegistryError(f"{where} returned {shown}; {fix}")
    made, parts = {}, []
    for split, value in returned.items():
        if isinstance(value, Dataset):
            made[split] = value
            continue
        if split == "train" and callable(value):  # a function drawing one fresh batch per call
            made[split] = FreshBatches(value, where, experiment.training["batches_per_epoch"])
            continue
        if not (isinstance(value, (tuple, list)) and len(value) == 2):
            raise RegistryError(f"{where} returned a {type(value).__name__} for {split!r}; {fix}")
        x, y = (_numbers(v, f"{where}: the {what} of {split!r}") for v, what in zip(value, ("inputs", "labels")))
        if len(x) != len(y) or len(x) == 0:
            raise RegistryError(f"{where}: {split!r} has {len(x)} inputs and {len(y)} labels; give as many of each, at least one")
        if experiment.real_targets:
            y = y.to(dtype) if y.is_floating_point() else y
        elif y.dtype.is_floating_point:
            raise RegistryError(f"{where}: the labels of {split!r} are {y.dtype}: class indices are integers; for real-valued "
                                "targets (a regression) set 'data.targets' = \"values\"")
        else:
            y = y.to(torch.int64)
        x = x.to(dtype) if x.is_floating_point() else x
        made[split] = TensorDataset(x, y)
        parts += [x, y]
    return Datasets(made["train"], made.get("test"), made.get("valid"), md5=tensors_md5(*parts) if parts else "", seeded=takes_seed)


def fresh_batch(experiment, batches: FreshBatches) -> tuple[torch.Tensor, torch.Tensor]:
    """One batch drawn by a recipe's training-split function: (inputs, targets) of numbers, as many of each."""
    drawn = objects.build(batches.draw, {}, experiment.directory, f"{batches.where}: drawing a training batch")
    if not (isinstance(drawn, (tuple, list)) and len(drawn) == 2):
        raise RegistryError(f"{batches.where}: its training split's function returned a {type(drawn).__name__}; return one batch "
                            "as an (inputs, targets) pair of tensors")
    x, y = (_numbers(v, f"{batches.where}: the {what} of a drawn training batch") for v, what in zip(drawn, ("inputs", "targets")))
    if len(x) != len(y) or len(x) == 0:
        raise RegistryError(f"{batches.where}: a drawn training batch has {len(x)} inputs and {len(y)} targets; give as many of each")
    return x, y


def _numbers(value, what: str) -> torch.Tensor:
    """A split's inputs or labels as a tensor; anything but numbers (strings, objects) refused in one line."""
    if torch.is_tensor(value):
        return value
    try:
        array = np.asarray(value)
    except ValueError as e:  # ragged lists
        raise RegistryError(f"{what} are not an array ({e}); give a tensor or an array of numbers") from None
    if array.dtype.kind not in "biuf":  # bool, signed, unsigned, float
        raise RegistryError(f"{what} are {array.dtype} values, not numbers; give a tensor or an array of numbers "
                            "(class indices as integers: e.g. numpy.unique(labels, return_inverse=True)[1])")
    return torch.as_tensor(array)


def image_transform(experiment):
    """The recipe's per-sample transforms (`data.transforms`; ToTensor where none are given), composed."""
    import torchvision.transforms as T

    specs = experiment.data["transforms"] or ({"class_path": "torchvision.transforms:ToTensor", "init_args": {}},)
    made = [objects.instantiate(spec, "transform", f"data.transforms[{i}]", experiment) for i, spec in enumerate(specs)]
    return made[0] if len(made) == 1 else T.Compose(made)


def image_dataset(name: str, train: bool, transform, data_dir: Path | None = None, mirror: Path | None = None):
    """A torchvision dataset over verified IDX files (the tutorials' per-sample pipeline)."""
    import torchvision

    data_dir = Path(data_dir) if data_dir else default_data_dir()
    ensure_idx(name, data_dir, mirror)
    cls = getattr(torchvision.datasets, IDX_SETS[name].torchvision_class)
    return cls(root=str(data_dir), train=train, transform=transform, download=False)


# Transforms the tensor path computes for a whole uint8 image tensor at once, bit for bit as per sample.
BULK_TRANSFORMS = ("torchvision.transforms:ToTensor", "torchvision.transforms:Normalize")


def as_tensors(dataset: Dataset, indices, experiment) -> tuple[torch.Tensor, torch.Tensor]:
    """The inputs and labels of `dataset[indices]`, as the per-sample pipeline gives them, stacked.

    A TensorDataset is indexed; an IDX-style image set (uint8 `.data`) under ToTensor and Normalize goes
    through the same arithmetic on the whole tensor at once; anything else is read sample by sample,
    which needs transforms that draw nothing (a random one would be frozen at its first draw).
    """
    idx = torch.as_tensor(list(indices), dtype=torch.int64)
    if isinstance(dataset, TensorDataset):
        x, y = dataset.tensors[:2]
        return x[idx], y[idx]
    specs = [t["class_path"] for t in experiment.data["transforms"] or ()]
    data, targets = getattr(dataset, "data", None), getattr(dataset, "targets", None)
    if (torch.is_tensor(data) and data.dtype == torch.uint8 and data.dim() == 3 and torch.is_tensor(targets)
            and all(s in BULK_TRANSFORMS for s in specs) and (not specs or specs[0] == BULK_TRANSFORMS[0])):
        return transform_tensor(data[idx], experiment.data["transforms"]), targets[idx]
    random = [s for s in specs if s.rpartition(":")[2].startswith("Random") or "Augment" in s]
    if random:
        raise RegistryError(f"{experiment.path}: 'data.transforms' {random[0]} draws anew for every sample, which a dataset "
                            "held as tensors cannot do; use --engine reference")
    samples = [dataset[i] for i in idx.tolist()]
    x = torch.stack([torch.as_tensor(s[0]) for s in samples])
    y = torch.as_tensor([int(s[1]) for s in samples], dtype=torch.int64)
    return x, y


def transform_tensor(images: torch.Tensor, transforms=None) -> torch.Tensor:
    """A uint8 image tensor (N, H, W) through ToTensor and any Normalize in `transforms`, all at once.

    ToTensor divides by 255 in float32; Normalize subtracts its mean and divides by its std, both as
    float32 tensors. Element-wise on the whole tensor this gives the very same float32 values as the
    per-sample pipeline.
    """
    x = images.unsqueeze(1).to(torch.float32).div(255)
    for spec in transforms or ():
        if spec["class_path"].endswith(":Normalize"):
            args = spec["init_args"]
            mean = torch.as_tensor(args["mean"], dtype=torch.float32).view(1, -1, 1, 1)
            std = torch.as_tensor(args["std"], dtype=torch.float32).view(1, -1, 1, 1)
            x = x.sub(mean).div(std)
    return x.contiguous()
