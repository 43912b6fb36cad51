"""`harness compare`: did results B reproduce results A? Bitwise, over seeds, and speed."""

from __future__ import annotations

from pathlib import Path

from ..errors import HarnessError
from .arguments import add_common, path

HELP = "did results B reproduce results A? bitwise, over seeds, and speed"


def add_arguments(p) -> None:
    add_common(p)
    p.add_argument("dirs", nargs="+", type=path, metavar="DIR", help="two results directories A B, or one with --by")
    p.add_argument("--by", default=None, metavar="COLUMN",
                   help="compare the groups of one directory: engine, device, torch_version, git_commit, host or cpu_capability")
    p.add_argument("--margin", action="append", default=[], metavar="METRIC=VALUE",
                   help="equivalence margin, absolute (test_acc=0.01) or relative to A's mean (test_loss=2%%); repeatable")
    p.add_argument("--markdown", action="store_true", help="markdown (a report section) instead of terminal tables")
    p.add_argument("--csv", type=path, default=None, metavar="FILE", help="also write every result as CSV rows to FILE")
    p.add_argument("--out", type=path, default=None, metavar="FILE",
                   help="write the whole comparison to FILE and print only the summary line(s)")


def run(args) -> int:
    from ..compare import compare_directories, parse_margins, render, write_csv
    from ..registry import load_registry, variants

    registry = load_registry(args.experiments_dir)
    reports = compare_directories(args.dirs, {**registry, **variants(registry)}, parse_margins(args.margin), args.by)
    if args.out:
        text = render(reports, markdown=args.markdown) + "\n"
        try:
            Path(args.out).write_text(text, encoding="utf-8")
        except OSError as e:
            raise HarnessError(f"--out {args.out}: cannot write ({e.strerror}); pass a writable path") from None
        print(f"the whole comparison: {args.out}")
        for report in reports:  # the answer last, where a log's reader looks first
            print(report.summary())
    else:
        print(render(reports, markdown=args.markdown))
    if args.csv:
        write_csv(reports, args.csv)
    return 1 if any(r.any_different for r in reports) else 0
