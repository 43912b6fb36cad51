"""`harness bench`: training throughput per experiment x engine x device."""

from __future__ import annotations

import os
import sys
from pathlib import Path

from ..bounds import MAX_BENCH_REPEATS, MAX_BENCH_STEPS, MAX_SEEDS, check_count, clipped
from ..errors import HarnessError
from .arguments import add_common, add_data, add_portable, path

HELP = "measure training throughput per experiment x engine x device"


def add_arguments(p) -> None:
    add_common(p)
    p.add_argument("ids", nargs="*", default=["all"], help="experiment ids, or 'all' (default)")
    p.add_argument("--engines", default="reference,fast,multiseed", help="comma list (default reference,fast,multiseed)")
    p.add_argument("--devices", default="cpu", help="cpu, cuda, cuda:N, comma lists, or auto (default cpu)")
    p.add_argument("--steps", type=int, default=200, help="training steps per measurement (default 200)")
    p.add_argument("--repeats", type=int, default=10, help="rounds, each measuring every engine once in turn (default 10)")
    p.add_argument("--warmup", type=int, default=1, help="measurements run first in each call and dropped (default 1)")
    p.add_argument("--seeds", type=int, default=None, help="seeds trained together by multiseed (default 64 on CUDA, 5 on the CPU)")
    p.add_argument("--out", type=path, default="results/bench.csv", help="CSV to write; the plot (.png) and markdown (.md) go beside it")
    add_data(p)
    add_portable(p)


def run(args) -> int:
    from ..registry import load_registry, select

    experiments = select(load_registry(args.experiments_dir), args.ids)
    check_count("--steps", args.steps, MAX_BENCH_STEPS)
    check_count("--repeats", args.repeats, MAX_BENCH_REPEATS)
    check_count("--warmup", args.warmup, MAX_BENCH_REPEATS, least=0)
    check_count("--seeds", args.seeds, MAX_SEEDS)
    out = Path(args.out)
    check_writable(out)

    from ..bench import run_bench
    from ..options import RunOptions
    from ..runner import check_engine, parse_devices

    engines = [check_engine(e.strip()) for e in args.engines.split(",")]
    options = RunOptions(data_dir=args.data_dir, mirror=args.data_mirror)
    command = "harness " + " ".join(sys.argv[1:])
    run_bench(experiments, engines, parse_devices(args.devices), args.steps, args.repeats, args.warmup, args.seeds,
              options, out, command.strip())
    print(f"wrote {args.out} and its .png and .md")
    return 0


def check_writable(out: Path) -> None:
    """Refuse an --out that cannot be written before anything is measured (its directory is created)."""
    longest = 255  # NAME_MAX of every common file system; the directory's own is asked once it exists
    try:
        if out.parent.exists():
            longest = os.pathconf(out.parent, "PC_NAME_MAX")
        if max(len(os.fsencode(out.with_suffix(s).name)) for s in (out.suffix, ".png", ".md")) > longest:
            raise HarnessError(f"--out: file name {clipped(out.name)!r} is too long; allowed: {longest} bytes with its .png and .md")
        if out.is_dir():
            raise HarnessError(f"--out {out}: is a directory; name the CSV file to write, e.g. {out / 'bench.csv'}")
        if out.parent.exists() and not out.parent.is_dir():
            raise HarnessError(f"--out {out}: {out.parent} is not a directory; pass another --out")
        out.parent.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise HarnessError(f"--out {clipped(str(out), 80)}: cannot create it or its directory ({e.strerror}); pass another --out") from None
    if not os.access(out.parent, os.W_OK | os.X_OK):
        raise HarnessError(f"--out {out}: directory {out.parent} is not writable; pass another --out")
