"""The project's reproduced results in results/: they meet the registry's thresholds, the files are sound,
and REPORT.md is what `harness report` makes of them today."""

import re
import shutil

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
