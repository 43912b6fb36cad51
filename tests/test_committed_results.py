"""The project's reproduced results in results/: they meet the registry's thresholds, the files are sound,
and REPORT.md is what `harness report` makes of them today."""

import re
import shutil

import pytest

from harness.cli import main

from .conftest import ROOT

RESULTS = ROOT / "results"


def body(report_path):
    """The report without its first lines' generation time and directory."""
    return [line for line in report_path.read_text().splitlines() if not line.startswith("Generated ")]


def test_committed_results_pass_harness_check(capsys):
    status = main(["check", "--results-dir", str(RESULTS)])
    out = capsys.readouterr()
    assert status == 0, out.out + out.err


@pytest.mark.slow
def test_committed_report_is_current_and_its_plots_exist(tmp_path):
    committed = (RESULTS / "REPORT.md").read_text()
    for name in ("runs.csv", "epochs.csv", "trace.csv"):
        shutil.copy(RESULTS / name, tmp_path / name)
    assert main(["report", "--results-dir", str(tmp_path)]) == 0
    assert body(tmp_path / "REPORT.md") == body(RESULTS / "REPORT.md"), "results/REPORT.md is stale: run `make report RESULTS=results`"
    plots = re.findall(r"\]\((plots/[^)]+\.png)\)", committed)
    assert plots, "the report references no plots"
    for plot in plots:
        assert (RESULTS / plot).is_file(), f"REPORT.md references {plot}, which is not in results/"


def test_the_readme_states_the_committed_answer():
    """The README's result is the committed report's first line, in the same numbers."""
    answer = re.search(r"\*\*(\d+) of (\d+) printed runs \(([^)]*)\) are consistent", (RESULTS / "REPORT.md").read_text())
    assert answer, "REPORT.md's first screen states no answer"
    consistent, runs, _ = answer.groups()
    readme = " ".join((ROOT / "README.md").read_text().split())
    claim = re.search(r"could have printed\*\*: (\d+) of (\d+) printed runs \(T1 and T4: (\d+) figures and (\d+) whole curves\)", readme)
    assert claim and claim.groups()[:2] == (consistent, runs), "README's result differs from results/REPORT.md"
    figures = re.search(r"\((\d+) published figures and (\d+) whole curves", (RESULTS / "REPORT.md").read_text())
    assert figures and claim.groups()[2:] == figures.groups()
    few = re.search(r"(\d+) of the \d+ runs have [\d-]+ seeds, too few for a rank test", (RESULTS / "REPORT.md").read_text())
    words = dict(enumerate(["No", "One", "Two", "Three", "Four", "Five", "Six", "Seven"]))
    assert few and f"{words[int(few.group(1))]} of the seven have fewer than 39 seeds" in readme
