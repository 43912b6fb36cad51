"""`harness plan`: how many runs would detect a difference of a given size, from the spread recorded."""

from __future__ import annotations

import math

from ..bounds import OVERRIDE_LIMITS, check_count
from ..errors import HarnessError
from .arguments import add_common, path

HELP = "how many runs would detect a difference of a given size, from the spread recorded"


def add_arguments(p) -> None:
    add_common(p)
    p.add_argument("ids", nargs="+", help="one experiment, or two (A B) to compare, paired over their shared seeds")
    p.add_argument("--delta", type=float, required=True, help="the difference to detect, in the metric's units (0.001 = 0.1 pp)")
    p.add_argument("--metric", default=None,
                   help="default: the recipe's headline metric (the published one, else test_acc; a regression's first declared metric)")
    p.add_argument("--power", type=float, default=0.8, help="default 0.8")
    p.add_argument("--device", default="cpu", help="the runs' device (default cpu)")
    p.add_argument("--engine", default="fast", help="the runs' engine (default fast)")
    p.add_argument("--epochs", type=int, default=None, help="use the runs shortened to this many epochs (default: full recipes)")
    p.add_argument("--results-dir", type=path, default="results", help="where the runs are (default results)")


def run(args) -> int:
    from ..registry import load_registry, select, variants
    from .. import rows as counted_rows
    from ..catalogue import fmt, fmt_diff, fmt_runs
    from ..variance import ordinary_rows, plan_answer

    check_count("--epochs", args.epochs, OVERRIDE_LIMITS["epochs"])
    if not 0 < args.power < 1:
        raise HarnessError(f"--power must lie between 0 and 1, got {args.power}")
    if not (math.isfinite(args.delta) and args.delta > 0):
        raise HarnessError(f"--delta must be a number above 0 in the metric's units (0.001 = 0.1 pp), got {args.delta}")
    if len(args.ids) > 2:
        raise HarnessError(f"plan: give one experiment, or two to compare; got {len(args.ids)}")
    registry = load_registry(args.experiments_dir)
    registry = {**registry, **variants(registry)}
    experiments = select(registry, args.ids)
    counted = counted_rows.count(args.results_dir, registry)
    setting = {"epochs": args.epochs} if args.epochs else {}
    arms = [ordinary_rows(counted.runs, e.id, args.device, args.engine, setting) for e in experiments]
    metric = args.metric or experiments[0].headline_metric
    answer = plan_answer(arms[0], metric, args.delta, arms[1] if len(arms) > 1 else None, args.power)
    ids = " vs ".join(e.id for e in experiments)
    print(f"{ids} [{args.device}, {args.engine}{', epochs=' + str(args.epochs) if args.epochs else ''}], {metric}: "
          f"to detect a difference of {fmt_diff(metric, args.delta)} at 5% two-sided with {args.power:.0%} power")
    n = ", ".join(str(len(a)) for a in arms)
    print(f"  from {n} run(s): sd {fmt(metric, answer.sd)}" +
          (f"; sd of the paired differences {fmt(metric, answer.sd_difference)}" if not math.isnan(answer.sd_difference) else ""))

    print(f"  two-sample t (statsmodels TTestIndPower): {fmt_runs(answer.two_sample)} runs per arm")
    if len(arms) > 1:
        print(f"  paired t over shared seeds (TTestPower): {fmt_runs(answer.paired)} seeds, each run in both arms")
    return 0
