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


def test_the_readme_quotes_the_committed_answer_as_it_stands():
    """The README's result is the committed report's answer, word for word: the quoted paragraph under the
    marker equals the report's first bold paragraph (a report drawn anew with another answer fails this)."""
    report = (RESULTS / "REPORT.md").read_text().splitlines()
    answer = next(line for line in report if line.startswith("**"))
    readme = (ROOT / "README.md").read_text().splitlines()
    marker = next(i for i, line in enumerate(readme) if line.startswith("<!-- the answer of results/REPORT.md"))
    assert readme[marker + 1] == f"> {answer}"
