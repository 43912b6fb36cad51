"""`make gpu-check` where there is no CUDA: a dry run of its five steps on the CPU, run from outside."""

import csv
import importlib.util
import io
import shutil
import subprocess
import sys
import tarfile

import pytest
import torch

from .conftest import ROOT

STEPS = ["tests", "reruns", "bench", "all", "multiseed"]


def test_missing_requirements_are_named_by_their_package(monkeypatch):
    spec = importlib.util.spec_from_file_location("gpu_check", ROOT / "scripts" / "gpu_check.py")
    gpu_check = importlib.util.module_from_spec(spec)
    monkeypatch.setitem(sys.modules, "gpu_check", gpu_check)  # its dataclasses look their module up there
    spec.loader.exec_module(gpu_check)
    assert gpu_check.missing_packages() == []
    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name: None if name in ("sklearn", "pytest") else real(name))
    assert gpu_check.missing_packages() == ["scikit-learn", "pytest"]


def bench_files_in_results():
    return {p.name: p.stat().st_mtime_ns for p in (ROOT / "results").glob("bench_gpu.*")}


@pytest.mark.skipif(torch.cuda.is_available(), reason="with CUDA this is the real check, minutes long (make gpu-check)")
def test_dry_run_reports_every_step_and_goes_on_past_a_timeout_and_a_failure(mnist, tmp_path):
    out, work = tmp_path / "out", tmp_path / "work"
    committed = bench_files_in_results()
    # Step 1 gets a 1-second box (pytest needs longer): it times out. Step 4 is made to fail.
    result = subprocess.run(
        [sys.executable, "scripts/gpu_check.py", "--out", str(out), "--work", str(work), "--data-dir", str(mnist),
         "--box", "tests=1", "--inject-failure", "all", "--results", str(tmp_path / "named")],
        cwd=ROOT, capture_output=True, text=True)
    assert result.returncode == 1, result.stdout + result.stderr
    assert "no CUDA device here" in result.stdout and "dry run" in result.stdout
    assert "3 of 5 steps passed (failed: tests, all)" in result.stdout

    assert sorted(p.name for p in out.iterdir()) == ["bench_gpu.csv", "bench_gpu.md", "bench_gpu.png", "gpu-check.tar.gz", "summary.md"]
    summary = (out / "summary.md").read_text()
    assert "DRY RUN on the CPU" in summary and "no figure below is a GPU figure" in summary
    statuses = {line.split("|")[2].split(":")[0].strip(): line.split("|")[3].strip()
                for line in summary.splitlines() if line.startswith("| ") and line.split("|")[1].strip().isdigit()}
    assert statuses == {"tests": "TIMEOUT (box 1 s)", "reruns": "pass", "bench": "pass", "all": "FAIL (exit 3)", "multiseed": "pass"}
    assert "failure injected" in summary  # the failed step's last log lines
    assert "| mnist-mlp | 0 | fast | 1 | 0 | yes |" in summary  # the rerun identity table
    assert "| mnist-mlp | multiseed | 2 |" in summary and "1.00x" in summary  # the benchmark's figures
    assert "64 runs recorded (64 ok)" in summary  # step 5 ran after step 4 failed

    with tarfile.open(out / "gpu-check.tar.gz") as tar:
        names = set(tar.getnames())
        assert {f"logs/{i}-{s}.log" for i, s in enumerate(STEPS, 1)} <= names
        assert {"reruns/first/runs.csv", "reruns/second/epochs.csv", "results/runs.csv", "results/epochs.csv"} <= names
        assert "out of time" in tar.extractfile("logs/1-tests.log").read().decode()
        runs = list(csv.DictReader(io.TextIOWrapper(tar.extractfile("results/runs.csv"))))
    assert {(r["experiment"], r["engine"], r["device"]) for r in runs} == {("iris-ce", "multiseed", "cpu")} and len(runs) == 64
    # A dry run never writes CPU rows where CUDA ones are asked for, nor touches results/.
    assert "the dry run writes into its scratch directory" in result.stdout and not (tmp_path / "named").exists()
    assert bench_files_in_results() == committed


@pytest.mark.skipif(shutil.which("make") is None, reason="make is not installed")
def test_make_gpu_check_needs_no_setup_and_takes_the_interpreter_given():
    dry = subprocess.run(["make", "-n", "--no-print-directory", "gpu-check", "GPU_PYTHON=python3", "GPU_OUT=/tmp/out", "HARNESS_DATA_MIRROR=data/mnist-mirror"],
                         cwd=ROOT, capture_output=True, text=True, check=True).stdout
    assert dry.startswith("python3 scripts/gpu_check.py --out /tmp/out")
    assert "--data-mirror data/mnist-mirror" in dry and "pip" not in dry and "venv" not in dry
