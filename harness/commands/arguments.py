"""What several commands share: the options naming registries, data and training, and the setup of a
training command (`run`, `variance`): its experiments, options, executor, devices and engine."""

from __future__ import annotations

import argparse
import os
from pathlib import Path

from ..bounds import MAX_CPUS_PER_TASK, MAX_SEED, OVERRIDE_LIMITS, check_count, usable_cpus
from ..errors import HarnessError


def path(text: str) -> str:
    """A path given on the command line: an empty one would mean the current directory without saying so."""
    if not text.strip():
        raise argparse.ArgumentTypeError("an empty path; name a directory or file")
    return text


def add_common(p: argparse.ArgumentParser) -> None:
    p.add_argument("--experiments-dir", type=path, default=None, help="registry directory (default: the project's experiments/)")


def add_data(p: argparse.ArgumentParser) -> None:
    p.add_argument("--data-dir", type=path, default=os.environ.get("HARNESS_DATA_DIR") or "data",
                   help="where datasets are kept (default data/, or HARNESS_DATA_DIR)")
    p.add_argument("--data-mirror", type=path, default=os.environ.get("HARNESS_DATA_MIRROR") or None,
                   help="directory with the dataset's *.gz files, used instead of downloading (or HARNESS_DATA_MIRROR)")


def add_training(p: argparse.ArgumentParser) -> None:
    """What `run` and `variance` share: the experiments, how they train, where, and the executor."""
    add_common(p)
    p.add_argument("ids", nargs="*", default=["all"],
                   help="experiment ids (<id>@fashion-mnist: an MNIST recipe on Fashion-MNIST), or 'all' (default)")
    p.add_argument("--dataset", default=None, metavar="NAME",
                   help="run the recipes on this dataset instead (fashion-mnist for the MNIST experiments)")
    p.add_argument("--base-seed", type=int, default=0, help="with --vary (and for variance): the seed of every source not varied (default 0)")
    p.add_argument("--epochs", type=int, default=None, help="override the recipe's epochs (rows marked faithful=false)")
    p.add_argument("--train-limit", type=int, default=None, metavar="N",
                   help="train on the first N training samples only (quick runs; rows marked faithful=false)")
    p.add_argument("--eval-limit", type=int, default=None, metavar="N",
                   help="evaluate on the first N samples of each split only (quick runs; rows marked faithful=false)")
    p.add_argument("--force", action="store_true", help="run cells again even where results exist")
    add_where(p)


def add_where(p: argparse.ArgumentParser) -> None:
    """Where runs train and are recorded, and by which executor."""
    p.add_argument("--devices", default="cpu", help="cpu, cuda, cuda:N, comma lists, or auto (default cpu)")
    p.add_argument("--engine", default=None, help="reference, fast or multiseed (default fast; script recipes run on script)")
    p.add_argument("--results-dir", type=path, default="results", help="where runs.csv and epochs.csv go (default results)")
    add_data(p)
    p.add_argument("--jobs", type=int, default=None, metavar="N",
                   help="with the local executor: N cells at once in worker processes, torch's threads shared "
                   "out among them (default 1: one cell after another in this process)")
    p.add_argument("--executor", choices=("local", "ray"), default="local",
                   help="local: cell after cell in this process (default); ray: each cell a Ray task (`make setup-ray`)")
    p.add_argument("--ray-address", default=None, metavar="ADDRESS",
                   help="with --executor ray: 'auto' or host:port joins a running cluster "
                   "(default: RAY_ADDRESS's cluster where set, else a new local Ray instance)")
    p.add_argument("--cpus-per-task", type=int, default=None, metavar="N",
                   help="with --executor ray: CPUs (and torch threads) each CPU cell asks for (default 1)")
    add_portable(p)


def add_portable(p: argparse.ArgumentParser) -> None:
    p.add_argument("--portable", action="store_true",
                   help="pin the CPU kernels: ATen and MKL (strict CNR mode) at AVX2, oneDNN off, whatever the "
                   "machine would choose; recorded in kernel_settings (see docs/engines.md#portable-mode)")


def training_setup(args):
    """The experiments and RunOptions of `run` and `variance`, every bound checked before torch is even
    loaded (the registry's class paths import it)."""
    from ..registry import load_registry, select

    for key, most in OVERRIDE_LIMITS.items():  # --epochs, --train-limit, --eval-limit
        check_count("--" + key.replace("_", "-"), getattr(args, key), most)
    # Each job is a whole training process: more than the cores only share them out thinner.
    check_count("--jobs", args.jobs, usable_cpus())
    check_count("--cpus-per-task", args.cpus_per_task, MAX_CPUS_PER_TASK)
    check_count("--base-seed", args.base_seed, MAX_SEED, least=0)
    registry = load_registry(args.experiments_dir)
    experiments = select(registry, args.ids, args.dataset)
    if getattr(args, "costs_from", None) is not None and not Path(args.costs_from).is_dir():
        raise HarnessError(f"--costs-from {args.costs_from}: not a directory; name a results directory (or leave it out)")

    from ..options import RunOptions

    # Absolute paths: Ray workers do not share the driver's working directory.
    data_dir, mirror = (str(Path(p).resolve()) if p else None for p in (args.data_dir, args.data_mirror))
    options = RunOptions(data_dir=data_dir, mirror=mirror, epochs=args.epochs, train_limit=args.train_limit,
                         eval_limit=args.eval_limit, save_weights=getattr(args, "save_weights", False),
                         vary=getattr(args, "vary", None), base_seed=args.base_seed)
    return registry, experiments, options


def engine_for(args, experiments) -> str:
    """The engine asked for, else the experiments' own: fast for recipes, script for scripts; a selection of both
    is refused, since one command runs one engine, and so are scripts on Ray."""
    from ..engines import SCRIPT_ENGINE, default_engine
    from ..runner import check_engine

    scripts = [e.id for e in experiments if e.script]
    if scripts and len(scripts) < len(experiments):
        raise HarnessError(f"{', '.join(scripts)} {'is a script' if len(scripts) == 1 else 'are scripts'} and run on the {SCRIPT_ENGINE} "
                           "engine, the other recipes on another: name the scripts in a command of their own")
    if scripts and args.executor == "ray":
        raise HarnessError(f"{', '.join(scripts)}: a script runs on the local executor (--jobs N runs N at once), not on Ray")
    return check_engine(args.engine or (default_engine(experiments[0]) if experiments else "fast"))


def execute(args, run) -> int:
    """`run(engine=, devices=, execute=)` with the executor, devices and engine the command line asks for."""
    import torch

    from ..runner import InProcesses, check_engine, parse_devices

    engine = check_engine(args.engine)
    if args.executor == "local":
        for flag, value in (("--ray-address", args.ray_address), ("--cpus-per-task", args.cpus_per_task)):
            if value is not None:
                raise HarnessError(f"{flag} applies to --executor ray only")
        devices = parse_devices(args.devices)
        if args.jobs and args.jobs > 1:
            threads = max(1, torch.get_num_threads() // args.jobs)
            return run(engine=engine, devices=devices, execute=InProcesses(args.jobs, threads))
        return run(engine=engine, devices=devices)
    if args.jobs is not None:
        raise HarnessError("--jobs applies to --executor local only; with Ray, --cpus-per-task sets each cell's share")

    from ..ray_executor import RayExecutor

    with RayExecutor(args.ray_address, cpus_per_task=args.cpus_per_task or 1) as execute:
        return run(engine=engine, devices=execute.parse_devices(args.devices), execute=execute)
