"""The datasets the harness knows by name, as data: a new one is one entry here.

Scikit-learn's bundled tables are split by the run's seed with `train_test_split` (as T1 splits iris);
the IDX image sets (MNIST's format) come as four files checked against their MD5 sums, read by the
torchvision class named here. Any other dataset is a class path: a torchvision dataset class, or a
callable beside the recipe. Also here, the arithmetic of a recipe's splits. Plain data: no torch.
"""

from __future__ import annotations

import math
from dataclasses import dataclass


@dataclass(frozen=True)
class Table:
    """A table of numbers scikit-learn ships."""

    loader: str  # the sklearn.datasets function that loads it
    samples: int  # before the test split
    classes: int


@dataclass(frozen=True)
class IdxSet:
    """Images and labels in four IDX files, as MNIST publishes them."""

    torchvision_class: str  # the torchvision.datasets class that reads them
    md5: dict[str, str]  # of each decompressed file
    default_mirror: str | None  # a directory holding the *.gz files where a package installs them
    how_to_get: str  # what to do when they cannot be had
    train_samples: int = 60_000
    test_samples: int = 10_000
    classes: int = 10

    @property
    def folder(self) -> str:
        """torchvision's folder for it under the data directory."""
        return self.torchvision_class


TABLES = {
    "iris": Table("load_iris", 150, 3),
    "digits": Table("load_digits", 1797, 10),
    "wine": Table("load_wine", 178, 3),
    "breast_cancer": Table("load_breast_cancer", 569, 2),
}
IDX_FILES = ("train-images-idx3-ubyte", "train-labels-idx1-ubyte", "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte")
IDX_SETS = {
    "mnist": IdxSet(
        torchvision_class="MNIST",
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
    "fashion-mnist": IdxSet(
        torchvision_class="FashionMNIST",
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
DATASETS = (*TABLES, *IDX_SETS)


def classes(name: str) -> int:
    return TABLES[name].classes if name in TABLES else IDX_SETS[name].classes


def train_share(n: int, valid_fraction: float) -> int:
    """How many of `n` samples `random_split` keeps for training when `valid_fraction` are held out (the
    tutorials' int(n * 0.8))."""
    return int(n * (1 - valid_fraction))


def test_share(n: int, test_fraction: float) -> int:
    """How many of a table's `n` samples `train_test_split` holds out for testing: ceil(fraction * n)."""
    return math.ceil(test_fraction * n)


def split_sizes(data: dict) -> dict[str, int]:
    """Samples in each split of a recipe's [data] on a named dataset (what an accuracy is counted over): train,
    valid (where held out) and test; {} for a dataset known by class path only."""
    if data["dataset"] not in DATASETS:
        return {}
    return {split: k for split, k in zip(("train", "valid", "test"), split_counts(data)) if k}


def training_samples(data: dict) -> int:
    """How many samples a recipe on a named dataset trains on: what its test and validation splits leave."""
    return split_counts(data)[0]


def split_counts(data: dict) -> tuple[int, int, int]:
    """(train, valid, test): the samples in each split of a recipe on a named dataset, 0 where there is none."""
    name = data["dataset"]
    if name in TABLES:
        n = TABLES[name].samples
        test = test_share(n, data["test_fraction"])
        before_valid = n - test
    else:
        before_valid, test = IDX_SETS[name].train_samples, IDX_SETS[name].test_samples
    train = train_share(before_valid, data["valid_fraction"])
    return train, before_valid - train, test
