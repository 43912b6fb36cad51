"""`harness check`: do the results meet the registry's thresholds, and can the files be believed?"""

from __future__ import annotations

from ..errors import HarnessError, one_line
from .arguments import add_common, path

HELP = "fail where results miss the registry's thresholds"


def add_arguments(p) -> None:
    add_common(p)
    p.add_argument("--results-dir", type=path, default="results", help="where runs.csv is (default results)")


def run(args) -> int:
    from ..check import integrity_failures, threshold_failures
    from ..registry import load_registry

    registry = load_registry(args.experiments_dir)
    failures = integrity_failures(registry, args.results_dir)
    try:
        failures += threshold_failures(registry, args.results_dir)
    except HarnessError:
        if not failures:  # otherwise integrity_failures has named what makes the files unreadable
            raise
    for line in failures:
        print(f"FAIL {one_line(line)}")
    if failures:
        return 1
    print(f"results intact and all thresholds met in {args.results_dir}")
    return 0
