"""Results files that another program read and wrote back: values that mean the same are read as the
same; what changed is refused with one line naming it and the command that lists every such row."""

import csv
import io
import shutil
import uuid
from types import SimpleNamespace

import pandas as pd
import pytest

from harness.catalogue import id_prefix
from harness.cli import main
from harness.registry import load_registry
from harness.rows import canonical, count

from .conftest import ROOT

EXP = "iris-ce"


@pytest.fixture(scope="module")
def registry_dir(tmp_path_factory):
    """iris-ce, and iris-mse at a learning rate that diverges (so diverged_epoch is empty in some rows only)."""
    directory = tmp_path_factory.mktemp("registry")
    shutil.copy(ROOT / "experiments" / f"{EXP}.toml", directory)
    text = (ROOT / "experiments" / "iris-mse.toml").read_text()
    (directory / "iris-diverges.toml").write_text(text.replace('id = "iris-mse"', 'id = "iris-diverges"').replace("lr = 0.003", "lr = 10.0"))
    return directory


@pytest.fixture(scope="module")
def written(tmp_path_factory, registry_dir):
    """Two seeds of a quick iris run and one diverged run, as the harness wrote them."""
    out = tmp_path_factory.mktemp("written") / "res"
    common = ["--seeds", "0,1", "--epochs", "200", "--results-dir", str(out), "--experiments-dir", str(registry_dir)]
    assert main(["run", EXP, *common]) == 0
    assert main(["run", "iris-diverges", *common]) == 1
    return out


def resave_with_pandas(directory):
    """What `pd.read_csv(f).to_csv(f, index=False)` makes of each table."""
    for name in ("runs.csv", "epochs.csv"):
        path = directory / name
        pd.read_csv(path).to_csv(path, index=False)


def test_a_pandas_resave_reads_as_before(written, registry_dir, tmp_path, capsys):
    resaved = tmp_path / "resaved"
    shutil.copytree(written, resaved)
    resave_with_pandas(resaved)
    text = (resaved / "runs.csv").read_text()
    assert ",False," in text and ",false," not in text, "pandas writes booleans its own way"
    resaved_rows = list(csv.DictReader(io.StringIO(text)))
    assert {r["diverged_epoch"] for r in resaved_rows} - {""} <= {f"{n}.0" for n in range(1, 201)}, "integers with empties become floats"
    assert any(r["diverged_epoch"] for r in resaved_rows)

    registry = load_registry(registry_dir)
    before, after = count(written, registry), count(resaved, registry)
    assert not after.refused and len(after.runs) == len(before.runs) == 4
    assert after.runs == before.runs and after.epochs == before.epochs

    capsys.readouterr()
    reg = ["--experiments-dir", str(registry_dir)]
    assert main(["compare", str(written), str(resaved), *reg]) == 0
    first = capsys.readouterr().out.splitlines()[0]
    assert first.endswith("2 of 2 cells bit for bit; experiments 1 identical, 0 equivalent, 0 undecided, 0 different"), first
    assert main(["check", "--results-dir", str(resaved), *reg]) == 1  # thresholds: no faithful runs; nothing else
    out = capsys.readouterr().out
    assert all("no faithful results" in line for line in out.splitlines()), out


def test_identifiers_are_written_so_that_a_resave_keeps_them_as_text(registry_dir, tmp_path, monkeypatch):
    """Twelve hex digits can be all digits, or digits around one `e`: pandas then reads a number
    (`76658e040003` became infinity, `012345678901` lost its zero). Such a run_id or commit is written
    one digit longer, and the rows survive a resave as they were."""
    planted = iter(["76658e040003" + "f" * 20, "012345678901" + "2a" * 10])
    monkeypatch.setattr("harness.runner.uuid", SimpleNamespace(uuid4=lambda: uuid.UUID(hex=next(planted))))
    out = tmp_path / "res"
    assert main(["run", EXP, "--seeds", "0,1", "--epochs", "20", "--results-dir", str(out), "--experiments-dir", str(registry_dir)]) == 0
    written = [r["run_id"] for r in csv.DictReader(open(out / "runs.csv"))]
    assert written == ["76658e040003f", "0123456789012a"]
    assert id_prefix("9361700204e6" + "d" * 28) == "9361700204e6d"  # a commit's, as git_commit records it
    resaved = tmp_path / "resaved"
    shutil.copytree(out, resaved)
    resave_with_pandas(resaved)
    registry = load_registry(registry_dir)
    before, after = count(out, registry), count(resaved, registry)
    assert not after.refused and after.runs == before.runs and after.epochs == before.epochs


def test_a_changed_value_is_refused_and_compare_says_how_many_and_where(written, registry_dir, tmp_path, capsys):
    edited = tmp_path / "edited"
    shutil.copytree(written, edited)
    frame = pd.read_csv(edited / "runs.csv", dtype=str, keep_default_na=False)
    frame["started_at"] = frame["started_at"].str.replace("T", " ").str.replace("+00:00", "", regex=False)  # a spreadsheet's dates
    frame.to_csv(edited / "runs.csv", index=False)
    capsys.readouterr()
    reg = ["--experiments-dir", str(registry_dir)]
    assert main(["compare", str(written), str(edited), *reg]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "nothing to compare" in err, err
    assert "4 of 4 row(s) in" in err and "started_at" in err and f"harness check --results-dir {edited}" in err, err
    assert main(["check", "--results-dir", str(edited), *reg]) == 1
    assert "is not a UTC time as the harness writes it" in capsys.readouterr().out


@pytest.mark.parametrize("column,text,expected", [
    ("faithful", "True", "true"), ("faithful", "FALSE", "false"), ("faithful", "yes", "yes"),
    ("seed", "12.0", "12"), ("seed", "12", "12"), ("seed", "12.5", "12.5"), ("seed", "-3.0", "-3.0"),
    ("test_acc", "0.10000000000000001", "0.10000000000000001"), ("message", "True", "True"),
])
def test_canonical_reads_a_value_as_the_harness_writes_it(column, text, expected):
    assert canonical(column, text) == expected
