"""`harness report`: REPORT.md and its plots, from the rows that count."""

from __future__ import annotations

from .arguments import add_common, path

HELP = "write REPORT.md and plots/*.png: reproduced versus published, with statistics"


def add_arguments(p) -> None:
    add_common(p)
    p.add_argument("--results-dir", type=path, default="results", help="where runs.csv is; REPORT.md and plots/ go there (default results)")
    p.add_argument("--add-seeds-from", type=path, metavar="DIR",
                   help="also count DIR's rows for the cells (seeds) the results directory lacks: a re-made subset "
                        "of the committed seeds judged with all of them (`make all`)")


def run(args) -> int:
    from ..registry import load_registry, variants
    from ..report import write_report

    registry = load_registry(args.experiments_dir)
    return write_report(args.results_dir, {**registry, **variants(registry)}, add_from=args.add_seeds_from)
