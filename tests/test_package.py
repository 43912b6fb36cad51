"""The package as a user installs it: a wheel built from this tree, installed into a fresh virtual
environment (no editable install, no network; the dependencies are the ones already installed here),
run from a directory that is not the checkout."""

import os
import subprocess
import sys
import sysconfig
import zipfile
from pathlib import Path

import pytest

PROJECT = Path(__file__).resolve().parent.parent


def sh(*args, cwd=None, env=None, check=True) -> subprocess.CompletedProcess:
    done = subprocess.run([str(a) for a in args], cwd=cwd, env=env, capture_output=True, text=True)
    if check and done.returncode:
        pytest.fail(f"{' '.join(map(str, args))} exited {done.returncode}:\n{done.stdout}\n{done.stderr}")
    return done


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("wheel")
    sh(sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps", "--no-build-isolation", "--no-index", "-w", out, PROJECT)
    (built,) = out.glob("torch_repro_harness-*.whl")
    return built


@pytest.fixture(scope="module")
def installed(wheel, tmp_path_factory) -> Path:
    """A fresh environment holding the wheel; the dependencies come from this interpreter's site-packages,
    added after the environment's own (a path in a .pth file), so the wheel's harness is the one imported."""
    venv = tmp_path_factory.mktemp("venv") / "env"
    sh(sys.executable, "-m", "venv", "--without-pip", venv)
    python = venv / "bin" / "python"
    site = Path(sh(python, "-c", "import sysconfig; print(sysconfig.get_path('purelib'))").stdout.strip())
    (site / "dependencies.pth").write_text(sysconfig.get_path("purelib") + "\n")
    sh(sys.executable, "-m", "pip", "--python", python, "install", "--quiet", "--no-deps", "--no-index", wheel)
    return venv


def test_the_wheel_holds_every_subpackage_and_the_registry(wheel):
    names = zipfile.ZipFile(wheel).namelist()
    packages = sorted(str(p.parent.relative_to(PROJECT)) for p in (PROJECT / "harness").rglob("__init__.py"))
    for package in packages:
        assert f"{package}/__init__.py" in names, f"{package} is missing from the wheel"
    registry = sorted(p.name for p in (PROJECT / "experiments").glob("*.toml"))
    shipped = sorted(Path(n).name for n in names if n.endswith(".toml") and "/share/torch-repro-harness/experiments/" in n)
    assert shipped == registry
    metadata = zipfile.ZipFile(wheel).read(next(n for n in names if n.endswith("/METADATA"))).decode()
    assert "Requires-Python: >=3.11" in metadata and "Operating System :: POSIX :: Linux" in metadata


@pytest.mark.slow
def test_the_installed_package_lists_runs_reports_checks_and_compares(installed, tmp_path):
    work = tmp_path / "work"
    work.mkdir()
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "HARNESS_EXPERIMENTS")}
    harness = installed / "bin" / "harness"

    where = sh(installed / "bin" / "python", "-c", "import harness; print(harness.__file__)", cwd=work, env=env).stdout
    assert where.startswith(str(installed)), f"harness imported from {where}, not the installed wheel"

    listed = sh(harness, "list", cwd=work, env=env).stdout
    assert "iris-ce" in listed and "mnist-cnn-50" in listed  # the registry the wheel carries

    # a registry of one recipe, copied from the one installed, so that `check` can be satisfied by one run
    registry = work / "registry"
    registry.mkdir()
    (registry / "iris-ce.toml").write_bytes((installed / "share/torch-repro-harness/experiments/iris-ce.toml").read_bytes())
    one = ("--experiments-dir", registry)

    for name in ("a", "b"):  # the same run twice: the installed harness reproduces itself bit for bit
        sh(harness, "run", "iris-ce", "--seeds", "0", "--results-dir", name, *one, cwd=work, env=env)
    assert (work / "a" / "runs.csv").is_file()

    report = sh(harness, "report", "--results-dir", "a", *one, cwd=work, env=env)
    assert (work / "a" / "REPORT.md").is_file(), report.stdout
    checked = sh(harness, "check", "--results-dir", "a", *one, cwd=work, env=env)
    assert "all thresholds met" in checked.stdout

    compared = sh(harness, "compare", "a", "b", *one, cwd=work, env=env).stdout
    assert compared.splitlines()[0].endswith("1 of 1 cells bit for bit; experiments 1 identical, 0 equivalent, 0 undecided, 0 different")
    assert not (work / "results").exists()  # nothing written where it was not asked
