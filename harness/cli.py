"""The command line: `harness list | run | check` (also `python -m harness`).

Exit status: 0 success, 1 a run or check failed, 2 bad input (registry, command line, data).
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from .errors import HarnessError


def _add_common(p: argparse.ArgumentParser) -> None:
    p.add_argument("--experiments-dir", default=None, help="registry directory (default: the project's experiments/)")


def _cmd_list(args) -> int:
    from tabulate import tabulate

    from .registry import load_registry

    registry = load_registry(args.experiments_dir)
    rows = []
    for exp in registry.values():
        m, t = exp.model, exp.training
        model = f"mlp {'-'.join(map(str, m['sizes']))}" if m["arch"] == "mlp" else "cnn" + (f" dropout {m['dropout']}" if m["dropout"] else "")
        if m["layer"] == "mylinear":
            model += " MyLinear"
        if m["output"] == "softmax":
            model += " +softmax"
        rows.append([exp.id, exp.source, exp.data["dataset"], model, t["epochs"], exp.published_text])
    print(tabulate(rows, headers=["id", "source", "dataset", "model", "epochs", "published"], tablefmt="github"))
    return 0


def _cmd_run(args) -> int:
    from .engines.sources import RunOptions
    from .registry import load_registry, select
    from .runner import check_engine, parse_devices, parse_seeds, run_matrix

    registry = load_registry(args.experiments_dir)
    experiments = select(registry, args.ids)
    seeds = parse_seeds(args.seeds)
    engine = check_engine(args.engine)
    if args.epochs is not None and args.epochs <= 0:
        raise HarnessError("--epochs must be a positive integer")
    # Absolute paths: Ray workers do not share the driver's working directory.
    data_dir, mirror = (str(Path(p).resolve()) if p else None for p in (args.data_dir, args.data_mirror))
    options = RunOptions(data_dir=data_dir, mirror=mirror, epochs=args.epochs, train_limit=args.train_limit)
    matrix = dict(experiments=experiments, seeds=seeds, engine=engine, results_dir=args.results_dir, options=options, force=args.force)
    if args.executor == "local":
        for flag, value in (("--ray-address", args.ray_address), ("--cpus-per-task", args.cpus_per_task)):
            if value is not None:
                raise HarnessError(f"{flag} applies to --executor ray only")
        return run_matrix(devices=parse_devices(args.devices), **matrix)

    from .ray_executor import RayExecutor

    with RayExecutor(args.ray_address, cpus_per_task=args.cpus_per_task or 1) as execute:
        return run_matrix(devices=execute.parse_devices(args.devices), execute=execute, **matrix)


def _cmd_check(args) -> int:
    from .check import threshold_failures
    from .registry import load_registry

    failures = threshold_failures(load_registry(args.experiments_dir), args.results_dir)
    for line in failures:
        print(f"FAIL {line}")
    if failures:
        return 1
    print(f"all thresholds met in {args.results_dir}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="harness", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("list", help="every registered experiment")
    _add_common(p)
    p.set_defaults(func=_cmd_list)

    p = sub.add_parser("run", help="run experiments x seeds x devices and record the results")
    _add_common(p)
    p.add_argument("ids", nargs="*", default=["all"], help="experiment ids, or 'all' (default)")
    p.add_argument("--seeds", default="0-4", help="seeds: ranges and lists, e.g. 0-4 or 0,3,7 (default 0-4)")
    p.add_argument("--devices", default="cpu", help="cpu, cuda, cuda:N, comma lists, or auto (default cpu)")
    p.add_argument("--engine", default="fast", help="reference or fast (default fast)")
    p.add_argument("--results-dir", default="results", help="where runs.csv and epochs.csv go (default results)")
    p.add_argument("--epochs", type=int, default=None, help="override the recipe's epochs (rows marked faithful=false)")
    p.add_argument("--train-limit", type=int, default=None, metavar="N",
                   help="train on the first N training samples only (quick runs; rows marked faithful=false)")
    p.add_argument("--force", action="store_true", help="run cells again even where results exist")
    p.add_argument("--data-dir", default=os.environ.get("HARNESS_DATA_DIR", "data"),
                   help="where datasets are kept (default data/, or HARNESS_DATA_DIR)")
    p.add_argument("--data-mirror", default=os.environ.get("HARNESS_DATA_MIRROR"),
                   help="directory with the dataset's *.gz files, used instead of downloading (or HARNESS_DATA_MIRROR)")
    p.add_argument("--executor", choices=("local", "ray"), default="local",
                   help="local: cell after cell in this process (default); ray: each cell a Ray task (`make setup-ray`)")
    p.add_argument("--ray-address", default=None, metavar="ADDRESS",
                   help="with --executor ray: 'auto' or host:port joins a running cluster "
                   "(default: RAY_ADDRESS's cluster where set, else a new local Ray instance)")
    p.add_argument("--cpus-per-task", type=int, default=None, metavar="N",
                   help="with --executor ray: CPUs (and torch threads) each CPU cell asks for (default 1)")
    p.set_defaults(func=_cmd_run)

    p = sub.add_parser("check", help="fail where results miss the registry's thresholds")
    _add_common(p)
    p.add_argument("--results-dir", default="results")
    p.set_defaults(func=_cmd_check)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except HarnessError as e:
        print(f"harness: error: {e}", file=sys.stderr)
        return e.exit_status
    except KeyboardInterrupt:
        print("harness: interrupted; finished runs are recorded, `harness run` again resumes", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
