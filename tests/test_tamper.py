"""Hand-edited results: `harness check` refuses every row the harness could not have written, naming it,
and `harness report` counts none of them. Free text that reaches a CSV cannot start a spreadsheet formula.

docs/results-files.md, "Guarantees", sentence by sentence:
- "Tampering: `harness check` refuses every row the harness could not have written": FAULTS, through
  test_check_names_each_tampered_row and test_check_names_tampered_epoch_rows; "`harness report` counts
  only the rows `check` accepts": test_report_counts_only_rows_check_accepts; "nor does `harness run`
  take one for a finished run": test_run_trains_again_a_cell_whose_row_was_tampered.
- "Ids are plain names" (free text written with a leading '): test_free_text_cannot_start_a_formula.
- "Output" (every `FAIL` line is one line): test_check_output_stays_one_line_per_failure.
"""

import csv
import io
import shutil
import socket
import subprocess
import sys

import pytest

from harness import runner
from harness.cli import main
from harness.rows import run_row_problem

from .conftest import ROOT

HOSTILE_HOST = "=cmd|' /C calc'!A0"
LATER = "2099-01-01T00:00:00+00:00"  # a row this recent would supersede the cell's real one, were it counted


def read(path):
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def write(path, rows):
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=list(rows[0]), lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    path.write_text(buf.getvalue())


@pytest.fixture(scope="module")
def clean(tmp_path_factory):
    """Two real runs of iris-mse (2 epochs: overrides {"epochs": 2}, not faithful), on a host whose name
    a spreadsheet would read as a formula; and the registry they ran from."""
    root = tmp_path_factory.mktemp("tamper")
    reg = root / "reg"
    reg.mkdir()
    text = (ROOT / "experiments" / "iris-mse.toml").read_text()
    (reg / "iris-mse.toml").write_text(text.replace("[thresholds]\ntest_acc = 0.90\n", ""))
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(socket, "gethostname", lambda: HOSTILE_HOST)
        assert main(["run", "iris-mse", "--seeds", "0-1", "--epochs", "2", "--results-dir", str(root / "res"),
                     "--experiments-dir", str(reg)]) == 0
    return root / "res", reg


def check(results, reg) -> subprocess.CompletedProcess:
    """`harness check` in a process of its own."""
    return subprocess.run([sys.executable, "-m", "harness", "check", "--results-dir", str(results), "--experiments-dir", str(reg)],
                          cwd=ROOT, capture_output=True, text=True, timeout=120)


def check_here(capsys, results, reg) -> subprocess.CompletedProcess:
    """`harness check`, the same command line run in this process (quicker, for the many faults)."""
    status = main(["check", "--results-dir", str(results), "--experiments-dir", str(reg)])
    out, err = capsys.readouterr()
    return subprocess.CompletedProcess("check", status, out, err)


def tampered_copy(clean, tmp_path, table, edit):
    source, _ = clean
    results = tmp_path / "res"
    shutil.copytree(source, results)
    rows = read(results / table)
    rows[0].update(edit)
    write(results / table, rows)
    return results


# Edits of a runs.csv row, and what `harness check` says of each.
FAULTS = {
    "faithful relabelled": ({"faithful": "true"}, """faithful 'true' with overrides '{"epochs": 2}': a run is faithful exactly when nothing is overridden"""),
    "overrides dropped": ({"overrides": ""}, "faithful 'false' with overrides ''"),
    "negative time": ({"wall_time_s": "-1.5"}, "wall_time_s '-1.5' is not a finite time or rate of 0 or more"),
    "infinite time": ({"train_time_s": "inf"}, "train_time_s 'inf' is not a finite time or rate of 0 or more"),
    "nan rate": ({"train_samples_per_s": "nan"}, "train_samples_per_s 'nan' is not a finite time or rate"),
    "unparsable timestamp": ({"started_at": "yesterday"}, "started_at 'yesterday' is not a UTC time as the harness writes it"),
    "timestamp without a zone": ({"started_at": "2099-01-01T00:00:00"}, "started_at '2099-01-01T00:00:00' is not a UTC time"),
    "timestamp in another zone": ({"started_at": "2099-01-01T09:00:00+09:00"}, "started_at '2099-01-01T09:00:00+09:00' is not a UTC time"),
    "day that does not exist": ({"started_at": "2099-02-30T00:00:00+00:00"}, "started_at '2099-02-30T00:00:00+00:00' is not a UTC time"),
    "negative seed": ({"seed": "-1"}, "seed '-1' is negative"),
    "seed beyond any seed": ({"seed": "4294967296"}, "seed '4294967296' is beyond 4294967295"),
    "unknown status": ({"status": "OK"}, "status 'OK' is not one of ok, diverged, error"),
    "finished after no epochs": ({"epochs": "0"}, "status ok after 0 epochs"),
    "epochs beyond any recipe": ({"epochs": "100001"}, "epochs '100001' is beyond 100000"),
    "negative loss": ({"train_loss": "-0.5"}, "train_loss '-0.5' is negative"),
    "overrides not an object": ({"overrides": "[2]"}, "overrides '[2]' is not a JSON object of overrides"),
    "overrides cut short": ({"overrides": '{"epochs": 2'}, """overrides '{"epochs": 2' is not a JSON object"""),
    "overrides of no option": ({"overrides": '{"lr": 1}'}, """overrides '{"lr": 1}': 'lr' is not one of epochs, train_limit, eval_limit"""),
    "overrides out of bounds": ({"overrides": '{"epochs": -2}'}, """overrides '{"epochs": -2}': epochs is not an integer from 1 to 100000"""),
    "overrides not as written": ({"overrides": '{"epochs":2}'}, """overrides '{"epochs":2}' is not as the harness writes it ({"epochs": 2})"""),
    "experiment as a formula": ({"experiment": '=HYPERLINK("http://x")'}, """experiment '=HYPERLINK("http://x")' is not an experiment id"""),
    "diverged after its last epoch": ({"status": "diverged", "diverged_epoch": "5"}, "diverged_epoch 5 is not one of the run's 2 epochs"),
}


@pytest.mark.slow
def test_clean_results_pass_check(clean):
    proc = check(*clean)
    assert proc.returncode == 0 and "results intact" in proc.stdout, proc


@pytest.mark.parametrize("fault", list(FAULTS))
def test_check_names_each_tampered_row(clean, tmp_path, capsys, fault):
    edit, expect = FAULTS[fault]
    run0 = read(clean[0] / "runs.csv")[0]["run_id"]
    results = tampered_copy(clean, tmp_path, "runs.csv", edit)
    proc = check_here(capsys, results, clean[1])
    assert proc.returncode == 1 and "Traceback" not in proc.stderr
    assert f"FAIL {results / 'runs.csv'} line 2: run {run0}: {expect}" in proc.stdout, proc.stdout


@pytest.mark.parametrize("edit,expect", [
    ({"epoch_time_s": "-3"}, "epoch_time_s '-3' is not a finite time or rate of 0 or more"),
    ({"samples_per_s": "inf"}, "samples_per_s 'inf' is not a finite time or rate of 0 or more"),
    ({"test_loss": "-1"}, "test_loss '-1' is negative"),
])
def test_check_names_tampered_epoch_rows(clean, tmp_path, capsys, edit, expect):
    results = tampered_copy(clean, tmp_path, "epochs.csv", edit)
    proc = check_here(capsys, results, clean[1])
    assert proc.returncode == 1 and "epochs.csv line 2: run " in proc.stdout and expect in proc.stdout, proc.stdout


@pytest.mark.slow
def test_check_output_stays_one_line_per_failure(clean, tmp_path):
    results = tampered_copy(clean, tmp_path, "runs.csv", {"run_id": "x\nFAIL nothing is wrong"})
    proc = check(results, clean[1])
    assert proc.returncode == 1 and proc.stdout
    assert all(line.startswith("FAIL ") for line in proc.stdout.splitlines())
    assert "run x\\nFAIL nothing is wrong has no rows in epochs.csv" in proc.stdout


def test_report_counts_only_rows_check_accepts(clean, tmp_path, capsys):
    # Every tampered row a copy of a real one, more recent than it: counted, it would supersede it.
    source, reg = clean
    results = tmp_path / "res"
    shutil.copytree(source, results)
    rows = read(results / "runs.csv")
    tampered = [{**rows[0], "run_id": f"tampered{i:04d}", "started_at": LATER, **edit} for i, (edit, _) in enumerate(FAULTS.values())]
    write(results / "runs.csv", rows + tampered)
    assert main(["report", "--results-dir", str(results), "--experiments-dir", str(reg)]) == 0
    assert "Traceback" not in capsys.readouterr().err
    text = (results / "REPORT.md").read_text()
    assert f"- {len(rows) + len(tampered)} row(s) in runs.csv; {len(rows)} count" in text
    assert f"- {len(tampered)} of {len(rows) + len(tampered)} row(s) in" in text and "superseded" not in text


def test_run_trains_again_a_cell_whose_row_was_tampered(clean, tmp_path, capsys):
    source, reg = clean
    results = tampered_copy(clean, tmp_path, "runs.csv", FAULTS["negative time"][0])  # seed 0's row
    before = read(results / "runs.csv")
    assert main(["run", "iris-mse", "--seeds", "0-1", "--epochs", "2", "--results-dir", str(results),
                 "--experiments-dir", str(reg)]) == 0
    out, err = capsys.readouterr()
    assert "1 row(s) in" in out + err and "fail `harness check`" in out + err and "skipping 1 finished run(s)" in out + err
    after = read(results / "runs.csv")
    assert after[:len(before)] == before  # the tampered row stays, for `check` to name
    (again,) = after[len(before):]
    assert again["seed"] == before[0]["seed"] and again["run_id"] != before[0]["run_id"]
    # the same seed trained again: the same numbers, bit for bit, in a row that check accepts (a time as written)
    assert all(again[m] == before[0][m] for m in ("train_loss", "test_loss", "test_acc", "config_hash"))
    assert run_row_problem(again) is None


@pytest.mark.slow
def test_free_text_cannot_start_a_formula(clean, tmp_path, monkeypatch, capsys):
    source, reg = clean
    assert {row["host"] for row in read(source / "runs.csv")} == {"'" + HOSTILE_HOST}
    # A crash whose message would start with '@', recorded as an error row.
    monkeypatch.setattr(runner, "device_name", lambda device: "-2+3")
    crash = type("@SUM(1+1)", (RuntimeError,), {})

    def crashing_engine(*args, **kwargs):
        raise crash("*cmd")
    monkeypatch.setitem(runner.ENGINES, "fast", crashing_engine)
    assert main(["run", "iris-mse", "--seeds", "0", "--results-dir", str(tmp_path / "res"), "--experiments-dir", str(reg)]) == 1
    (row,) = read(tmp_path / "res" / "runs.csv")
    assert row["status"] == "error" and row["message"] == "'@SUM(1+1): *cmd" and row["device_name"] == "'-2+3"
    assert check(tmp_path / "res", reg).returncode == 0  # the harness's own rows, as written
