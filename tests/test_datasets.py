import gzip
import shutil
from dataclasses import replace
from pathlib import Path

import pytest
import torch

from harness.named_datasets import IDX_FILES, IDX_SETS as IDX_SOURCES
from harness.datasets import ensure_idx, image_dataset, md5_of, mirror_dataset, mirror_for, transform_tensor
from harness.errors import DataError


@pytest.fixture
def mirror_copy(mnist, tmp_path):
    """A writable mirror made from the verified MNIST files (small files copied, big ones linked)."""
    raw = mnist / "MNIST" / "raw"
    mirror = tmp_path / "mirror"
    mirror.mkdir()
    for name in IDX_FILES:
        with open(raw / name, "rb") as fin, gzip.open(mirror / f"{name}.gz", "wb", compresslevel=1) as fout:
            shutil.copyfileobj(fin, fout)
    return mirror


def test_mirror_is_decompressed_and_verified(mirror_copy, tmp_path):
    raw = ensure_idx("mnist", tmp_path / "data", mirror_copy)
    assert sorted(p.name for p in raw.iterdir()) == sorted(IDX_FILES)


def test_corrupted_mirror_file_is_rejected_by_name(mirror_copy, tmp_path):
    bad = mirror_copy / "t10k-labels-idx1-ubyte.gz"
    data = bytearray(gzip.decompress(bad.read_bytes()))
    data[100] ^= 0xFF  # one flipped byte: still a valid gzip, wrong content
    bad.write_bytes(gzip.compress(bytes(data)))
    with pytest.raises(DataError, match=r"t10k-labels-idx1-ubyte.gz: decompresses to data with MD5 .* corrupt"):
        ensure_idx("mnist", tmp_path / "data", mirror_copy)
    # Nothing unverified is left where training would pick it up.
    assert not (tmp_path / "data" / "MNIST" / "raw" / "t10k-labels-idx1-ubyte").exists()


def test_truncated_mirror_file_is_rejected(mirror_copy, tmp_path):
    bad = mirror_copy / "train-labels-idx1-ubyte.gz"
    bad.write_bytes(bad.read_bytes()[:1000])
    with pytest.raises(DataError, match="train-labels-idx1-ubyte.gz: cannot decompress.*truncated or corrupt"):
        ensure_idx("mnist", tmp_path / "data", mirror_copy)


def test_missing_mirror_file_names_it(mirror_copy, tmp_path):
    (mirror_copy / "train-images-idx3-ubyte.gz").unlink()
    with pytest.raises(DataError, match="train-images-idx3-ubyte.gz is missing from the data mirror"):
        ensure_idx("mnist", tmp_path / "data", mirror_copy)


def test_corrupt_file_in_data_dir_is_replaced_from_mirror(mirror_copy, tmp_path):
    raw = ensure_idx("mnist", tmp_path / "data", mirror_copy)
    target = raw / "t10k-labels-idx1-ubyte"
    target.write_bytes(b"\0" * target.stat().st_size)
    ensure_idx("mnist", tmp_path / "data", mirror_copy)
    assert md5_of(target) == "27ae3e4e09519cfbb04c329615203637"


def test_corrupt_file_without_mirror_is_an_error(mirror_copy, tmp_path, monkeypatch):
    monkeypatch.delenv("HARNESS_DATA_MIRROR", raising=False)
    raw = ensure_idx("mnist", tmp_path / "data", mirror_copy)
    (raw / "t10k-labels-idx1-ubyte").write_bytes(b"junk")
    with pytest.raises(DataError, match="t10k-labels-idx1-ubyte: MD5 .* does not match .* delete it"):
        ensure_idx("mnist", tmp_path / "data", None)


TO_TENSOR = {"class_path": "torchvision.transforms:ToTensor", "init_args": {}}


def normalize(mean, std):
    return {"class_path": "torchvision.transforms:Normalize", "init_args": {"mean": mean, "std": std}}


@pytest.mark.parametrize("specs", [[TO_TENSOR], [TO_TENSOR, normalize([0.5], [0.5])],
                                   [TO_TENSOR, normalize([0.1307], [0.3081])],  # pytorch/examples' mnist
                                   [TO_TENSOR, normalize([0.5], [0.5]), normalize([0.1], [3.0])]])
def test_whole_tensor_transform_equals_per_sample_pipeline(mnist, specs):
    import torchvision.transforms as T

    made = [T.ToTensor()] + [T.Normalize(**s["init_args"]) for s in specs[1:]]
    ds = image_dataset("mnist", False, T.Compose(made), mnist)
    x = transform_tensor(ds.data[:64], specs)
    per_sample = torch.stack([ds[i][0] for i in range(64)])
    assert torch.equal(x, per_sample)


def test_mirror_tells_which_dataset_it_holds(mirror_copy, fashion_mnist):
    assert mirror_dataset(mirror_copy) == "mnist"
    assert mirror_dataset(Path(IDX_SOURCES["fashion-mnist"].default_mirror)) == "fashion-mnist"
    (mirror_copy / "t10k-labels-idx1-ubyte.gz").unlink()
    assert mirror_dataset(mirror_copy) is None


def test_mnist_mirror_does_not_serve_fashion_mnist(mirror_copy, tmp_path, monkeypatch):
    # HARNESS_DATA_MIRROR naming the MNIST mirror must not feed MNIST files to a Fashion-MNIST run
    # (the files have the same names): Debian's package serves where installed, else a clear error.
    debian = tmp_path / "debian-fashion-mnist"
    fashion = replace(IDX_SOURCES["fashion-mnist"], default_mirror=str(debian))
    monkeypatch.setitem(IDX_SOURCES, "fashion-mnist", fashion)
    assert mirror_for("fashion-mnist", mirror_copy) is None
    with pytest.raises(DataError, match=r"the data mirror holds mnist, not fashion-mnist; install Debian's package"):
        ensure_idx("fashion-mnist", tmp_path / "data", mirror_copy)
    debian.mkdir()
    assert mirror_for("fashion-mnist", mirror_copy) == debian
    assert mirror_for("mnist", mirror_copy) == mirror_copy


def test_fashion_mnist_is_verified_and_not_mnist(fashion_mnist):
    raw = ensure_idx("fashion-mnist", fashion_mnist)
    assert raw.parent.name == "FashionMNIST"
    assert md5_of(raw / "t10k-labels-idx1-ubyte") == "15d484375f8d13e6eb1aabb0c3f46965"
    ds = image_dataset("fashion-mnist", False, None, fashion_mnist)
    assert len(ds) == 10000 and ds.classes[0] == "T-shirt/top"


def test_a_third_idx_set_is_one_entry_read_by_its_own_class(mnist, monkeypatch):
    """A new IDX dataset is one entry of harness.named_datasets: its files, sums and torchvision class. An
    entry that names MNIST's class reads MNIST, whatever it is called (never Fashion-MNIST by default)."""
    import torchvision

    monkeypatch.setitem(IDX_SOURCES, "digits-idx", replace(IDX_SOURCES["mnist"]))
    ds = image_dataset("digits-idx", False, None, mnist)
    assert type(ds) is torchvision.datasets.MNIST and len(ds) == 10_000
    assert ensure_idx("digits-idx", mnist) == mnist / "MNIST" / "raw"  # its files where its class looks for them
