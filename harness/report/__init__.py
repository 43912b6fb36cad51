"""`harness report`: REPORT.md and plots/*.png in the results directory, from runs/epochs/trace.csv.

The parts, each readable on its own:
- loading.py: which rows count (`load_results`), and the values taken from them;
- verdicts.py: each printed run's verdict by its one declared test; tables.py: the answer, what was read, the
  verdicts and the other printed figures, the seeds, speed;
- comparisons.py: ablations (the registry's [ablation] sections) paired by seed, datasets as independent samples;
- variance.py: where the spread comes from (`harness variance` rows), and the runs a difference needs;
- plots.py: learning curves, running loss, the headline figure per seed, over-fitting, speed;
- environment.py: hosts, versions, commits, data checksums;
- across environments (devices, engines, torch versions side by side): harness/compare.py.
The statistics themselves are in harness/stats.py.
"""

from __future__ import annotations

from datetime import datetime, timezone
from pathlib import Path

from .. import rows as counted_rows
from .. import safe_files
from ..compare import across_environments_section
from ..errors import HarnessError
from ..results import ResultsStore
from .comparisons import ablation_section, dataset_section, overfitting_section
from .environment import environment_section
from .formatting import table
from .loading import Results, load_results
from .plots import REPORT_NOT_WRITTEN, plot_headline, plot_learning_curves, plot_selection, plot_speed, plot_trace
from .variance import variance_section
from .tables import accounting, answer, published_section, seeds_sections, speed_rows
from .verdicts import run_verdicts

__all__ = ["Results", "build_report", "load_results", "write_report"]


def build_report(results_dir: Path, registry: dict, results: Results | None = None) -> tuple[str, list[str]]:
    """The report's markdown and the plots written (names under plots/)."""
    results = results or load_results(results_dir, registry)
    runs, epochs = results.runs, results.epochs
    now = datetime.now(timezone.utc).isoformat(timespec="seconds")
    verdicts = run_verdicts(results, registry) if not runs.empty else []
    source = f"`{results_dir}`" + (f" (and `{results.added_from}` for the seeds not run there)" if results.added_from else "")
    lines = ["# Results report", "", f"Generated {now} from {source} by `harness report`.", ""]
    lines += answer(verdicts, registry)
    lines += ["## What was read", ""] + accounting(results, registry)
    if runs.empty:
        lines += ["Nothing to report yet: no current runs. `harness run` records some "
                  f"(e.g. `harness run iris-ce --results-dir {results_dir}`).", ""]
        for note in (results.refused, results.unregistered_note):
            if note:
                lines += [f"{note}.", ""]
        return "\n".join(lines), []

    with safe_files.Folder(results_dir / "plots", REPORT_NOT_WRITTEN) as plots:
        # A plot not drawn this time would describe results no longer counted (a link is removed, not followed).
        plots.remove_matching(lambda name: name.endswith(".png") or safe_files.is_temporary(name))
        lines += published_section(results, registry, verdicts)
        lines += seeds_sections(runs, registry)
        lines += _curves_and_headline(results, registry, plots)
        lines += overfitting_section(registry, runs, epochs, plots)
        lines += ablation_section(registry, runs)
        lines += dataset_section(registry, runs)
        lines += variance_section(results.rows, registry, plots)
        lines += _speed_section(runs, plots)
        across = across_environments_section(runs, registry, epochs)
        lines += [across] if across else []
        lines += environment_section(runs, registry)
        return "\n".join(lines), sorted(name for name in plots.names() if name.endswith(".png"))


def _curves_and_headline(results: Results, registry: dict, plots: safe_files.Folder) -> list[str]:
    """Each experiment's learning curves and running loss, then the headline metric per seed."""
    lines = ["## Learning curves", ""]
    selections = []
    for exp_id in results.runs["experiment"].unique():
        exp = registry[exp_id]
        selection, label = plot_selection(results.runs, exp_id)
        selections.append((exp, selection, label))
        if plot_learning_curves(exp, selection, label, results.epochs, plots / f"curves-{exp_id}.png"):
            lines += [f"![{exp_id} learning curves](plots/curves-{exp_id}.png)", ""]
        if plot_trace(exp, selection, label, results.trace, plots / f"trace-{exp_id}.png"):
            against = " against the published one" if exp.published_trace else ""
            lines += [f"Running training loss of {exp_id}{against}:", "",
                      f"![{exp_id} running loss](plots/trace-{exp_id}.png)", ""]
    lines += ["## Headline metric per seed", "",
              "One dot per seed, at the published figure's epoch where there is one (faithful runs), else at the end; "
              "the median, the published value and the seeds' range that holds one run (order statistics) marked.", ""]
    if plot_headline(selections, results.epochs, plots / "headline.png"):
        lines += ["![headline metric per seed](plots/headline.png)", ""]
    return lines


def _speed_section(runs, plots: safe_files.Folder) -> list[str]:
    rows = speed_rows(runs)
    shared = sum(int(r[5]) for r in rows)
    lines = ["## Speed", "",
             "A record of how long these runs took, not a benchmark: training samples per second count the training "
             "steps only, wall time is the whole run; median [quartiles]. *Overlapped*: runs whose time span surely overlaps "
             f"another run's on the same host (start times are to the second), so that they shared its cores ({shared} of {len(runs)} here): a difference "
             "between experiments is then partly contention. `harness bench` measures engines side by side.", "",
             table(rows, ["experiment", "device", "engine", "setting", "runs", "overlapped", "wall time", "train samples/s"]), ""]
    if plot_speed(runs, plots / "speed.png"):
        lines += ["![wall time and throughput](plots/speed.png)", ""]
    return lines


def write_report(results_dir: Path | str, registry: dict, log=print, add_from: Path | str | None = None) -> int:
    """REPORT.md and plots/ in `results_dir`, from its counted rows (and `add_from`'s, for the cells it lacks)."""
    results_dir = counted_rows.require_results(results_dir)
    add_from = counted_rows.require_results(add_from) if add_from is not None else None
    if add_from is not None and add_from.resolve() == results_dir.resolve():
        add_from = None  # its own rows: nothing to add
    try:
        with ResultsStore(results_dir).locked():  # read as no run is recording; no other report writes meanwhile
            results = load_results(results_dir, registry, lock_held=True, add_from=add_from)
            text, plots = build_report(results_dir, registry, results)
            safe_files.write_atomic(results_dir / "REPORT.md", (text + "\n").encode("utf-8"), REPORT_NOT_WRITTEN)
    except OSError as e:
        raise HarnessError(f"{e.filename or results_dir}: cannot write the report ({e.strerror}); check the directory's permissions") from None
    if plots:
        log(f"wrote {results_dir / 'REPORT.md'} and {len(plots)} plot(s) in {results_dir / 'plots'}")
    else:
        notes = "; ".join(n for n in (results.refused, results.unregistered_note) if n)
        log(f"wrote {results_dir / 'REPORT.md'}: no current runs to report yet" + (f" ({notes})" if notes else ""))
    return 0
