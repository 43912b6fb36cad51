"""`harness run`: experiments x seeds x devices, trained and recorded."""

from __future__ import annotations

import functools

from ..bounds import parse_seeds
from .arguments import add_training, engine_for, execute, path, training_setup

HELP = "run experiments x seeds x devices and record the results"


def add_arguments(p) -> None:
    add_training(p)
    p.add_argument("--seeds", default=None,
                   help="seeds: ranges and lists, e.g. 0-4 or 0,3,7 (default: each experiment's registry `seeds`, "
                   "0 to N-1, 5 where its file states none)")
    p.add_argument("--vary", default=None, metavar="SOURCE",
                   help="seed one source of randomness with each seed, the others with --base-seed: init, split, order, "
                   "dropout, bit, kernels or none (rows marked faithful=false; docs/variance.md)")
    p.add_argument("--save-weights", action="store_true",
                   help="keep each run's final state_dict at <results-dir>/weights/<run_id>.pt (torch.load(..., weights_only=True))")
    p.add_argument("--costs-from", type=path, default=None, metavar="DIR",
                   help="a results directory whose runs tell what each recipe costs, for the estimate of the time left "
                        "where --results-dir has no run of it yet (make all: the committed results)")


def run(args) -> int:
    seeds = parse_seeds(args.seeds) if args.seeds is not None else None  # None: each experiment's own default
    _, experiments, options = training_setup(args)
    args.engine = engine_for(args, experiments)

    from ..runner import run_matrix

    return execute(args, functools.partial(run_matrix, experiments=experiments, seeds=seeds, results_dir=args.results_dir,
                                            options=options, force=args.force, costs_from=args.costs_from))
