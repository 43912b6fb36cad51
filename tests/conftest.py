import os
from pathlib import Path

import pytest

from harness.errors import DataError
from harness.registry import load_registry

ROOT = Path(__file__).resolve().parent.parent


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
