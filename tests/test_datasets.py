import gzip
import shutil
from pathlib import Path

import pytest
import torch

from harness.datasets import IDX_FILES, ensure_idx, image_dataset, md5_of, transform_tensor
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


def test_whole_tensor_transform_equals_per_sample_pipeline(mnist):
    for kind in ("to-tensor", "normalize"):
        ds = image_dataset("mnist", False, kind, mnist)
        x = transform_tensor(ds.data[:64], kind)
        per_sample = torch.stack([ds[i][0] for i in range(64)])
        assert torch.equal(x, per_sample)
