"""`harness variance`: where the spread over seeds comes from: each source of randomness varied alone."""

from __future__ import annotations

from ..bounds import MAX_SEEDS, check_count, clipped
from ..errors import HarnessError
from .arguments import add_training, execute, training_setup

HELP = "where the spread over seeds comes from: each source of randomness varied alone"


def add_arguments(p) -> None:
    add_training(p)
    p.add_argument("--sources", default="init,split,order,dropout,bit",
                   help="comma list of sources to vary one at a time: init, split, order, dropout, bit, kernels (CUDA only) "
                   "(default: the first five)")
    p.add_argument("--runs", type=int, default=20, help="runs per source, and ordinary seeds varying all (default 20)")
    p.add_argument("--reruns", type=int, default=3, help="runs with every seed fixed, whose spread must be 0 on the CPU (default 3)")


def run(args) -> int:
    from ..seeds import SOURCES

    sources = [s.strip() for s in args.sources.split(",") if s.strip()]
    unknown = [s for s in sources if s not in (*SOURCES, "kernels")]
    if unknown or not sources:
        raise HarnessError(f"--sources: {clipped(','.join(unknown) or args.sources)!r} is not a list of sources; "
                           f"choose from {', '.join((*SOURCES, 'kernels'))}")
    check_count("--runs", args.runs, MAX_SEEDS, least=2)
    check_count("--reruns", args.reruns, MAX_SEEDS, least=2)
    if "kernels" in sources and "cpu" in args.devices:
        raise HarnessError("--sources kernels: the CPU's kernels are deterministic, so there is nothing to vary there; "
                           "use it with --devices cuda")
    registry, experiments, options = training_setup(args)
    scripts = [e.id for e in experiments if e.script]
    if scripts:
        raise HarnessError(f"{', '.join(scripts)}: a script takes one seed, which drives every source of randomness at once; "
                           "variance by source needs a recipe the harness builds (docs/variance.md)")
    args.engine = args.engine or "fast"

    from ..registry import variants
    from ..variance import run_variance

    def run(engine, devices, **how) -> int:
        status = run_variance(experiments, sources, args.runs, args.reruns, args.base_seed, options, engine=engine,
                              devices=devices, results_dir=args.results_dir, force=args.force, **how)
        return max(status, print_variance(args.results_dir, {**registry, **variants(registry)}, experiments, options,
                                           args.base_seed, devices, engine))

    return execute(args, run)


def print_variance(results_dir, registry, experiments, options, base_seed, devices, engine) -> int:
    from tabulate import tabulate

    from ..variance import NOT_ADDITIVE, SPREAD_HEADERS, metrics_of, spread_rows, variance_tables
    from ..catalogue import fmt_spread

    found, problems = variance_tables(results_dir, registry, experiments, options, base_seed, devices, engine)
    for design, groups in found:
        for metric in metrics_of(registry[design.experiment]):
            rows = spread_rows(groups, metric, lambda v, m=metric: fmt_spread(m, v))
            if rows:
                print(f"\n{design.label}: {metric}")
                print(tabulate(rows, headers=SPREAD_HEADERS, tablefmt="simple", disable_numparse=True))
    print("\n" + NOT_ADDITIVE)
    for problem in problems:
        print(f"FAIL {problem}")
    if not problems:
        print("reruns with every seed fixed: identical" + (" (weights and metrics)" if "cpu" in devices else ""))
    return 1 if problems else 0
