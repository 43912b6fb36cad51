import functools
import json
import os
from pathlib import Path

import pytest
import torch

from harness.errors import DataError
from harness.registry import load_registry

ROOT = Path(__file__).resolve().parent.parent


def pytest_collection_modifyitems(config, items):
    """A test that trains on MNIST (it asks for the data) is `slow`: `make test-fast` leaves those out.
    Tests marked `cuda` skip where there is no CUDA device; `-m cuda` selects exactly them. Under
    `make mutate` the quickest tests run first, so that most mutants fail in a second rather than after
    the slow tests that happen to come first (mutmut hands them over in no particular order)."""
    for item in items:
        if {"mnist", "fashion_mnist"} & set(getattr(item, "fixturenames", ())):
            item.add_marker(pytest.mark.slow)
    if os.environ.get("MUTANT_UNDER_TEST"):
        durations = _mutation_test_durations()
        items.sort(key=lambda item: durations.get(item.nodeid, 0.0))
    if torch.cuda.is_available():
        return
    no_cuda = pytest.mark.skip(reason="needs a CUDA device")
    for item in items:
        if "cuda" in item.keywords:
            item.add_marker(no_cuda)


@functools.cache
def _mutation_test_durations() -> dict[str, float]:
    """Each test's duration as mutmut measured it (its stats file, in the directory it runs the tests from)."""
    try:
        return json.loads(Path("mutmut-stats.json").read_text())["duration_by_test"]
    except (OSError, ValueError, KeyError):
        return {}


@pytest.fixture(scope="session")
def registry():
    return load_registry(ROOT / "experiments")


@pytest.fixture(scope="session")
def data_dir(tmp_path_factory):
    """One data directory for the whole session, filled from HARNESS_DATA_MIRROR (or a download)."""
    return Path(os.environ.get("HARNESS_TEST_DATA_DIR") or tmp_path_factory.mktemp("data"))


@pytest.fixture(scope="session")
def mnist(data_dir):
    """MNIST verified in the session's data directory; a broken mirror fails, no data at all skips."""
    from harness.datasets import ensure_idx

    try:
        ensure_idx("mnist", data_dir)
    except DataError as e:
        if os.environ.get("HARNESS_DATA_MIRROR"):
            raise
        pytest.skip(f"MNIST unavailable (set HARNESS_DATA_MIRROR): {e}")
    return data_dir


@pytest.fixture(scope="session")
def fashion_mnist(data_dir):
    """Fashion-MNIST verified in the session's data directory, from Debian's package, a mirror holding
    it, or a download; skipped only where none of these can supply it (failed instead where
    HARNESS_REQUIRE_FASHION_MNIST is set, as CI sets it where it can install the package), failed where
    one can but its files are bad."""
    from harness.datasets import ensure_idx, mirror_for

    try:
        ensure_idx("fashion-mnist", data_dir)
    except DataError as e:
        if mirror_for("fashion-mnist") is not None:
            raise
        if os.environ.get("HARNESS_REQUIRE_FASHION_MNIST"):
            pytest.fail(f"Fashion-MNIST is required here (HARNESS_REQUIRE_FASHION_MNIST is set) but unavailable: {e}")
        pytest.skip(f"Fashion-MNIST unavailable (`make fashion-mnist` installs Debian's package): {e}")
    return data_dir
