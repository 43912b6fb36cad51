"""`harness settle EXP`: the seeds a printed run's test needs, run where missing, then its verdict.

The count is fixed before any run, from the departure to catch and the power asked for (`stats.seeds_needed`,
for normally spread seeds), never from a p-value watched as seeds come in. Where the printed epochs end
before the recipe does, the missing seeds train only that far: on those epochs such a run is bit for bit
the full-length one, and the verdict counts both.
"""

from __future__ import annotations

import functools
import math
from pathlib import Path

from ..errors import HarnessError
from .arguments import add_common, add_where, engine_for, execute

HELP = "run the seeds a printed run's test needs to decide it, then print its verdict"


def add_arguments(p) -> None:
    add_common(p)
    p.add_argument("experiment", help="an experiment whose tutorial printed a result")
    p.add_argument("--shift", type=float, default=3.0,
                   help="the departure to catch, in the seeds' standard deviations (default 3)")
    p.add_argument("--power", type=float, default=0.8, help="how often to catch it (default 0.8)")
    p.add_argument("--max-runs", type=int, default=None, metavar="N", help="refuse to plan more seeds than this")
    add_where(p)


def run(args) -> int:
    from ..bounds import MAX_SEEDS, check_count
    from ..registry import load_registry, select
    from ..stats import RANK_MIN_VALUES, detectable_shift, full_seed_counts, seeds_needed

    if not (math.isfinite(args.shift) and args.shift > 0):
        raise HarnessError(f"--shift must be a number of standard deviations above 0, got {args.shift}")
    if not 0 < args.power < 1:
        raise HarnessError(f"--power must lie between 0 and 1, got {args.power}")
    check_count("--max-runs", args.max_runs, MAX_SEEDS)
    (exp,) = select(load_registry(args.experiments_dir), [args.experiment])
    if not exp.published:
        raise HarnessError(f"settle: {exp.id}'s tutorial printed no result, so there is nothing to settle; "
                           f"`harness run {exp.id}` trains it")
    needed = seeds_needed(args.shift, args.power)
    if needed is None:
        raise HarnessError(f"settle: no number of seeds catches a run {args.shift:g} sd out {args.power:.0%} of the time "
                           "(one run is a blunt probe: at 80% the rank test's reach ends near 2.8 sd); ask a larger "
                           "--shift or a lower --power")
    if args.max_runs is not None and needed > args.max_runs:
        reach = max(full_seed_counts(args.max_runs), default=None)
        within = (f"{args.max_runs} would catch a run {detectable_shift(reach, args.power):.2f} sd out "
                  f"{args.power:.0%} of the time (with {reach})" if reach
                  else f"{args.max_runs} cannot reject at all ({RANK_MIN_VALUES} can)")
        raise HarnessError(f"settle: {exp.id} needs {needed} seeds to catch {args.shift:g} sd with {args.power:.0%} power; {within}; "
                           "raise --max-runs or ask less")

    from ..options import RunOptions
    from ..report.verdicts import printed_epochs
    from ..runner import run_matrix

    last = max(printed_epochs(exp))
    stop = last if last < exp.training["epochs"] else None  # the printed epochs are all a verdict reads
    options = RunOptions(data_dir=args.data_dir, mirror=args.data_mirror, epochs=stop)
    print(f"{exp.id}: its test needs {needed} seeds (a run {args.shift:g} sd out caught {args.power:.0%} of the time); "
          + (f"missing seeds train to epoch {stop}, the last printed" if stop else "missing seeds train the whole recipe"))
    args.engine = engine_for(args, [exp])
    status = execute(args, functools.partial(_run_missing, exp=exp, needed=needed, options=options,
                                             results_dir=args.results_dir, run_matrix=run_matrix))
    _print_verdicts(exp, args.results_dir)
    return status


def _run_missing(exp, needed: int, options, results_dir, run_matrix, engine, devices, execute=None) -> int:
    """Train the seeds below `needed` that no run reaching the printed epochs holds yet, per device."""
    from ..report.loading import load_results
    from ..report.verdicts import printed_epochs, seeds_reaching

    have: dict[str, set] = {d: set() for d in devices}
    if (Path(results_dir) / "runs.csv").is_file():
        results = load_results(Path(results_dir), {exp.id: exp})
        reaching = seeds_reaching(results.runs, exp, max(printed_epochs(exp)))
        for device in devices:
            mine = reaching[(reaching["device"] == device) & (reaching["engine"] == engine) & (reaching["status"] == "ok")]
            have[device] = {int(s) for s in mine["seed"]}
    status = 0
    for device in devices:
        missing = [s for s in range(needed) if s not in have[device]]
        print(f"{exp.id} [{device}, {engine}]: {needed - len(missing)} of {needed} seeds there; {len(missing)} to run")
        if missing:
            how = {"execute": execute} if execute is not None else {}
            status = max(status, run_matrix([exp], missing, [device], engine, results_dir, options, **how))
    return status


def _print_verdicts(exp, results_dir) -> None:
    from ..report.loading import load_results
    from ..report.tables import verdict_sentence
    from ..report.verdicts import run_verdicts

    results = load_results(Path(results_dir), {exp.id: exp})
    for v in run_verdicts(results, {exp.id: exp}):
        print(verdict_sentence(v))
