"""`harness check`: do the results meet the registry's thresholds, and can the files be believed?"""

from __future__ import annotations

from ..errors import HarnessError, one_line
from .arguments import add_common, path

HELP = "fail where results miss the registry's thresholds"


def add_arguments(p) -> None:
    add_common(p)
    p.add_argument("ids", nargs="*", default=["all"],
                   help="the experiments whose thresholds and rows to check (default all: every experiment's, and each "
                   "variant's where it has results)")
    p.add_argument("--dataset", default=None, metavar="NAME", help="the experiments' variants on this dataset (fashion-mnist)")
    p.add_argument("--results-dir", type=path, default="results", help="where runs.csv is (default results)")


def run(args) -> int:
    from ..check import integrity_failures, threshold_failures
    from ..registry import load_registry, select

    registry = load_registry(args.experiments_dir)
    chosen = args.ids != ["all"] or args.dataset is not None
    only = {exp.id for exp in select(registry, args.ids, args.dataset)} if chosen else None
    failures = integrity_failures(registry, args.results_dir, only)
    try:
        failures += threshold_failures(registry, args.results_dir, only)
    except HarnessError:
        if not failures:  # otherwise integrity_failures has named what makes the files unreadable
            raise
    for line in failures:
        print(f"FAIL {one_line(line)}")
    if failures:
        return 1
    what = "" if only is None else f" for {', '.join(sorted(only))}"
    print(f"results intact and all thresholds met{what} in {args.results_dir}")
    return 0
