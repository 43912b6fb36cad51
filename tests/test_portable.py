"""--portable: the settings that pin the CPU kernels, recorded in the rows and carried to every worker."""

import math
import os
import platform
import subprocess
import sys

import pytest

from harness import portable
from harness.rows import read

from .conftest import ROOT

EXP = "iris-ce"


@pytest.mark.slow
@pytest.mark.skipif(platform.machine() not in ("x86_64", "AMD64"), reason="the portable settings name x86 instruction sets")
def test_portable_records_its_settings(tmp_path):
    """--portable starts the run again with the settings in force; the rows say so."""
    out = tmp_path / "r"
    env = {k: v for k, v in os.environ.items() if k not in portable.environment()}
    done = subprocess.run([sys.executable, "-m", "harness", "run", EXP, "--seeds", "0", "--epochs", "100", "--portable",
                           "--results-dir", str(out)], capture_output=True, text=True, cwd=ROOT, env=env)
    assert done.returncode == 0, done.stderr
    (row,) = read(out).runs.rows
    assert row["cpu_capability"] == "AVX2"
    assert set(row["kernel_settings"].split()) == {"ATEN_CPU_CAPABILITY=avx2", "MKL_CBWR=AVX2,STRICT", "ONEDNN_MAX_CPU_ISA=AVX2",
                                                 "DNNL_MAX_CPU_ISA=AVX2", "mkldnn=off"}
    assert math.isfinite(float(row["test_acc"]))


def test_portable_settings_reach_workers(monkeypatch):
    """Ray tasks start torch with the driver's settings; any process running cells turns oneDNN off."""
    import torch

    from harness.ray_executor import runtime_env

    assert "env_vars" not in runtime_env()
    for name, value in portable.environment().items():
        monkeypatch.setenv(name, value)
    assert runtime_env()["env_vars"] == portable.environment()
    monkeypatch.setattr(torch.backends.mkldnn, "enabled", True)
    portable.apply_in_process()
    assert torch.backends.mkldnn.enabled is False
