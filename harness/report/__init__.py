"""`harness report`: REPORT.md and plots/*.png in the results directory, from runs/epochs/trace.csv.

The parts, each readable on its own:
- loading.py: which rows count (`load_results`), and the values taken from them;
- tables.py: what was read, the published figures judged as one draw each, the seeds, speed;
- comparisons.py: ablations and dropout paired by seed, datasets as independent samples;
- plots.py: learning curves, running loss, the headline figure per seed, dropout, speed;
- environment.py: hosts, versions, commits, data checksums.
The statistics themselves are in harness/stats.py.
"""

from __future__ import annotations

from datetime import datetime, timezone
from pathlib import Path

from ..errors import HarnessError
from .comparisons import ablation_section, dataset_section, overfitting_section
from .environment import environment_section
from .formatting import table
from .loading import Results, load_results
from .plots import plot_headline, plot_learning_curves, plot_selection, plot_speed, plot_trace
from .tables import (PUBLISHED_HEADERS, PUBLISHED_RULES, SUMMARY_HEADERS, accounting, published_rows, speed_rows,
                     summary_rows, verdict_sentences)

__all__ = ["Results", "build_report", "load_results", "write_report"]


def build_report(results_dir: Path, registry: dict) -> tuple[str, list[str]]:
    """The report's markdown and the plots written (names under plots/)."""
    results = load_results(results_dir, registry)
    runs, epochs = results.runs, results.epochs
    now = datetime.now(timezone.utc).isoformat(timespec="seconds")
    lines = ["# Results report", "", f"Generated {now} from `{results_dir}` by `harness report`.", "",
             "## What was read", ""] + accounting(results, registry)
    if runs.empty:
        lines += ["Nothing to report yet: no current runs. `harness run` records some "
                  f"(e.g. `harness run iris-ce --results-dir {results_dir}`).", ""]
        return "\n".join(lines), []

    plots = results_dir / "plots"
    plots.mkdir(exist_ok=True)
    for old in plots.glob("*.png"):  # a plot not drawn this time would describe results no longer counted
        old.unlink()
    written: list[str] = []

    lines += ["## Published figures, each as one draw from the seeds", "", PUBLISHED_RULES, ""]
    rows, draws = published_rows(results, registry)
    if rows:
        lines += [table(rows, PUBLISHED_HEADERS), ""] + verdict_sentences(draws)
        sources = sorted({e for e in runs.loc[runs["faithful"], "experiment"] if registry[e].published})
        lines += ["As printed:", ""] + [f"- {e}: {registry[e].source}: {registry[e].published_text}" for e in sources] + [""]
    else:
        lines += ["No faithful runs yet of an experiment with a published figure: nothing to set against the published numbers.", ""]
    faithful = summary_rows(runs, registry, faithful=True)
    if faithful:
        lines += ["## The seeds at the end of each recipe", "",
                  "Where the seeds' mean lies, for every faithful experiment (published figure or not): the headline "
                  "metric after the recipe's last epoch, mean ± standard deviation, the 95% confidence interval of "
                  "the mean (Student t, n − 1 degrees of freedom), min and max. A description, not a verdict.", "",
                  table(faithful, SUMMARY_HEADERS), ""]
    quick = summary_rows(runs, registry, faithful=False)
    if quick:
        lines += ["## Quick runs (not faithful)", "",
                  "Runs with the recipe overridden (`--epochs`, `--train-limit`): not comparable with the published values.", "",
                  table(quick, SUMMARY_HEADERS[:3] + ["overrides"] + SUMMARY_HEADERS[3:]), ""]

    lines += ["## Learning curves", ""]
    selections = []
    for exp_id in runs["experiment"].unique():
        exp = registry[exp_id]
        selection, label = plot_selection(runs, exp_id)
        selections.append((exp, selection, label))
        if plot_learning_curves(exp, selection, label, epochs, plots / f"curves-{exp_id}.png"):
            written.append(f"curves-{exp_id}.png")
            lines += [f"![{exp_id} learning curves](plots/curves-{exp_id}.png)", ""]
        if plot_trace(exp, selection, label, results.trace, plots / f"trace-{exp_id}.png"):
            written.append(f"trace-{exp_id}.png")
            against = " against the published one" if exp.published_trace else ""
            lines += [f"Running training loss of {exp_id}{against}:", "",
                      f"![{exp_id} running loss](plots/trace-{exp_id}.png)", ""]

    lines += ["## Headline metric per seed", "",
              "One dot per seed, at the published figure's epoch where there is one (faithful runs), else at the end; "
              "the published value and the 95% prediction interval for one run marked.", ""]
    if plot_headline(selections, epochs, plots / "headline.png"):
        written.append("headline.png")
        lines += ["![headline metric per seed](plots/headline.png)", ""]

    lines += overfitting_section(registry, runs, epochs, plots)
    lines += ablation_section(registry, runs)
    lines += dataset_section(registry, runs)
    if (plots / "dropout.png").exists():
        written.append("dropout.png")

    lines += ["## Speed", "", "Training samples per second count the training steps only; wall time is the whole run.", "",
              table(speed_rows(runs), ["experiment", "device", "engine", "setting", "runs", "wall time", "train samples/s"]), ""]
    if plot_speed(runs, plots / "speed.png"):
        written.append("speed.png")
        lines += ["![wall time and throughput](plots/speed.png)", ""]

    lines += environment_section(runs, registry)
    return "\n".join(lines), written


def write_report(results_dir: Path | str, registry: dict, log=print) -> int:
    results_dir = Path(results_dir)
    if not results_dir.is_dir():
        log(f"no results in {results_dir} (no such directory): nothing to report; `harness run` records results there")
        return 0
    try:
        text, plots = build_report(results_dir, registry)
        (results_dir / "REPORT.md").write_text(text + "\n", encoding="utf-8")
    except OSError as e:
        raise HarnessError(f"{e.filename or results_dir}: cannot write the report ({e.strerror}); check the directory's permissions") from None
    if plots:
        log(f"wrote {results_dir / 'REPORT.md'} and {len(plots)} plot(s) in {results_dir / 'plots'}")
    else:
        log(f"wrote {results_dir / 'REPORT.md'}: no current runs to report yet")
    return 0
