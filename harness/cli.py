"""The command line: `harness list | new | validate | run | variance | plan | report | check | compare | bench` (also `python -m harness`).

Exit status: 0 success, 1 a run or check failed (or compare found a difference), 2 bad input (registry, command line, data).
"""

from __future__ import annotations

import argparse
import errno
import functools
import math
import io
import os
import re
import signal
import sys
from pathlib import Path

from .bounds import MAX_BENCH_REPEATS, MAX_BENCH_STEPS, MAX_CPUS_PER_TASK, MAX_SEED, MAX_SEEDS, OVERRIDE_LIMITS, check_count, clipped, parse_seeds, usable_cpus
from . import portable, safe_files
from .errors import HarnessError, Interrupted, Terminated, is_signal

CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")  # C0, DEL and C1: what a terminal may act on
SHOWN_RAW = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]")  # the same, less the line breaks and tabs of a table


def _path(text: str) -> str:
    """A path given on the command line: an empty one would mean the current directory without saying so."""
    if not text.strip():
        raise argparse.ArgumentTypeError("an empty path; name a directory or file")
    return text


def _add_common(p: argparse.ArgumentParser) -> None:
    p.add_argument("--experiments-dir", type=_path, default=None, help="registry directory (default: the project's experiments/)")


def _cmd_list(args) -> int:
    from tabulate import tabulate

    from .registry import load_registry, variants

    registry = load_registry(args.experiments_dir)
    shown = {**registry, **variants(registry)} if args.variants else registry
    rows = []
    for exp in shown.values():
        model = exp.model["class_path"].rpartition(":")[2]
        arguments = " ".join(f"{k}={_short(v)}" for k, v in exp.model["init_args"].items())
        optimizer = exp.optimizer["class_path"].rpartition(":")[2]
        rows.append([exp.id, exp.source, exp.dataset.rpartition(":")[2], f"{model} {arguments}".strip(), optimizer,
                     exp.training["epochs"], exp.seeds, exp.published_text])
    print(tabulate(rows, headers=["id", "source", "dataset", "model", "optimizer", "epochs", "seeds", "published"], tablefmt="github"))
    if not args.variants:
        print("\nEvery MNIST experiment also runs on Fashion-MNIST as <id>@fashion-mnist "
              "(or `harness run ... --dataset fashion-mnist`); `harness list --variants` lists them.")
    return 0


def _short(value) -> str:
    return "-".join(map(str, value)) if isinstance(value, (list, tuple)) else str(value)


def _cmd_run(args) -> int:
    seeds = parse_seeds(args.seeds) if args.seeds is not None else None  # None: each experiment's own default
    _, experiments, options = _run_setup(args)

    from .runner import run_matrix

    return _execute(args, functools.partial(run_matrix, experiments=experiments, seeds=seeds, results_dir=args.results_dir,
                                            options=options, force=args.force, costs_from=args.costs_from))


def _run_setup(args):
    """The experiments and RunOptions of `run` and `variance`, every bound checked before torch is even
    loaded (the registry's class paths import it)."""
    from .registry import load_registry, select

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

    from .options import RunOptions

    # Absolute paths: Ray workers do not share the driver's working directory.
    data_dir, mirror = (str(Path(p).resolve()) if p else None for p in (args.data_dir, args.data_mirror))
    options = RunOptions(data_dir=data_dir, mirror=mirror, epochs=args.epochs, train_limit=args.train_limit,
                         eval_limit=args.eval_limit, save_weights=getattr(args, "save_weights", False),
                         vary=getattr(args, "vary", None), base_seed=args.base_seed)
    return registry, experiments, options


def _execute(args, run) -> int:
    """`run(engine=, devices=, execute=)` with the executor, devices and engine the command line asks for."""
    import torch

    from .runner import InProcesses, check_engine, parse_devices

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

    from .ray_executor import RayExecutor

    with RayExecutor(args.ray_address, cpus_per_task=args.cpus_per_task or 1) as execute:
        return run(engine=engine, devices=execute.parse_devices(args.devices), execute=execute)


def _cmd_variance(args) -> int:
    from .seeds import SOURCES

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
    registry, experiments, options = _run_setup(args)

    from .registry import variants
    from .variance import run_variance

    def run(engine, devices, **how) -> int:
        status = run_variance(experiments, sources, args.runs, args.reruns, args.base_seed, options, engine=engine,
                              devices=devices, results_dir=args.results_dir, force=args.force, **how)
        return max(status, _print_variance(args.results_dir, {**registry, **variants(registry)}, experiments, options,
                                           args.base_seed, devices, engine))

    return _execute(args, run)


def _print_variance(results_dir, registry, experiments, options, base_seed, devices, engine) -> int:
    from tabulate import tabulate

    from .variance import METRICS, NOT_ADDITIVE, SPREAD_HEADERS, spread_rows, variance_tables
    from .catalogue import fmt_spread

    found, problems = variance_tables(results_dir, registry, experiments, options, base_seed, devices, engine)
    for design, groups in found:
        for metric in METRICS:
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


def _cmd_plan(args) -> int:
    from .registry import load_registry, select, variants
    from . import rows as counted_rows
    from .catalogue import fmt, fmt_diff, fmt_runs
    from .variance import ordinary_rows, plan_answer

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
    metric = args.metric or experiments[0].published and experiments[0].published["metric"] or "test_acc"
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
    if answer.delta < answer.step:
        print(f"  Noether's formula for P(A > B): –, the difference is below the smallest step between the runs' "
              f"values ({fmt_diff(metric, answer.step).lstrip('+')}), so no run can move by it")
    else:
        print(f"  Noether's formula for P(A > B) (Mann-Whitney; P = {answer.p_greater:.3f} at that shift): "
              f"{fmt_runs(answer.noether)} runs per arm")
    return 0


def _cmd_bench(args) -> int:
    from .registry import load_registry, select

    experiments = select(load_registry(args.experiments_dir), args.ids)
    check_count("--steps", args.steps, MAX_BENCH_STEPS)
    check_count("--repeats", args.repeats, MAX_BENCH_REPEATS)
    check_count("--warmup", args.warmup, MAX_BENCH_REPEATS, least=0)
    check_count("--seeds", args.seeds, MAX_SEEDS)
    out = Path(args.out)
    _check_writable(out)

    from .bench import run_bench
    from .options import RunOptions
    from .runner import check_engine, parse_devices

    engines = [check_engine(e.strip()) for e in args.engines.split(",")]
    options = RunOptions(data_dir=args.data_dir, mirror=args.data_mirror)
    command = "harness " + " ".join(sys.argv[1:])
    run_bench(experiments, engines, parse_devices(args.devices), args.steps, args.repeats, args.warmup, args.seeds,
              options, out, command.strip())
    print(f"wrote {args.out} and its .png and .md")
    return 0


def _check_writable(out: Path) -> None:
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


def _add_data(p: argparse.ArgumentParser) -> None:
    p.add_argument("--data-dir", type=_path, default=os.environ.get("HARNESS_DATA_DIR") or "data",
                   help="where datasets are kept (default data/, or HARNESS_DATA_DIR)")
    p.add_argument("--data-mirror", type=_path, default=os.environ.get("HARNESS_DATA_MIRROR") or None,
                   help="directory with the dataset's *.gz files, used instead of downloading (or HARNESS_DATA_MIRROR)")


def _add_training(p: argparse.ArgumentParser) -> None:
    """What `run` and `variance` share: the experiments, where and how they train, the executor."""
    _add_common(p)
    p.add_argument("ids", nargs="*", default=["all"],
                   help="experiment ids (<id>@fashion-mnist: an MNIST recipe on Fashion-MNIST), or 'all' (default)")
    p.add_argument("--dataset", default=None, metavar="NAME",
                   help="run the recipes on this dataset instead (fashion-mnist for the MNIST experiments)")
    p.add_argument("--base-seed", type=int, default=0, help="with --vary (and for variance): the seed of every source not varied (default 0)")
    p.add_argument("--devices", default="cpu", help="cpu, cuda, cuda:N, comma lists, or auto (default cpu)")
    p.add_argument("--engine", default="fast", help="reference, fast or multiseed (default fast)")
    p.add_argument("--results-dir", type=_path, default="results", help="where runs.csv and epochs.csv go (default results)")
    p.add_argument("--epochs", type=int, default=None, help="override the recipe's epochs (rows marked faithful=false)")
    p.add_argument("--train-limit", type=int, default=None, metavar="N",
                   help="train on the first N training samples only (quick runs; rows marked faithful=false)")
    p.add_argument("--eval-limit", type=int, default=None, metavar="N",
                   help="evaluate on the first N samples of each split only (quick runs; rows marked faithful=false)")
    p.add_argument("--force", action="store_true", help="run cells again even where results exist")
    _add_data(p)
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
    _add_portable(p)


def _add_portable(p: argparse.ArgumentParser) -> None:
    p.add_argument("--portable", action="store_true",
                   help="pin the CPU kernels: ATen and MKL (strict CNR mode) at AVX2, oneDNN off, whatever the "
                   "machine would choose; recorded in kernel_settings (see docs/portable.md)")


def _cmd_validate(args) -> int:
    from .options import RunOptions
    from .registry import load_registry, select
    from .runner import check_engine
    from .validate import validate

    experiments = select(load_registry(args.experiments_dir), args.ids, args.dataset)
    engine = check_engine(args.engine)
    options = RunOptions(data_dir=args.data_dir, mirror=args.data_mirror)
    for exp in experiments:
        count = validate(exp, options, engine)
        print(f"ok {exp.id}: {exp.model['class_path']} ({count:,} parameters) on {exp.dataset}, {exp.loss['class_path']}, "
              f"{exp.optimizer['class_path']}" + (f", {exp.scheduler['class_path']}" if exp.scheduler else ""))
    print(f"{len(experiments)} recipe(s) valid for the {engine} engine")
    return 0


NEW_RECIPE = """id = "{id}"
title = "{id}: a small MLP on scikit-learn's digits"
source = "written by `harness new`: edit every section to your recipe"
seeds = 5

# A dataset the harness knows by name (iris, digits, wine, breast_cancer, mnist, fashion-mnist), a torchvision
# class ("KMNIST"), or a function of your own beside this file returning the splits ("data:load").
[data]
dataset = "digits"

# Your model: a class (or function returning an nn.Module) in {module}.py, beside this file.
[model]
class_path = "{module}:Model"
init_args = {{ inputs = 64, hidden = 32, classes = 10 }}

[loss]
class_path = "CrossEntropyLoss"

[optimizer]
class_path = "Adam"
init_args = {{ lr = 0.01 }}

# An LR scheduler is optional; "interval" says when it steps ("epoch", after evaluation, or "step").
[scheduler]
class_path = "StepLR"
init_args = {{ step_size = 10, gamma = 0.5 }}
interval = "epoch"

[training]
batch_size = 32
epochs = 20
log_every = 5

# What `make test`'s smoke run (a short run) must reach, and the bar `harness check` holds full runs to.
[smoke]
epochs = 5
metric = "test_acc"
min = 0.80

[thresholds]
test_acc = 0.90
"""

NEW_MODEL = '''"""The model of the recipe {id}.toml: importing this file runs it, as any module does."""

from torch import nn


class Model(nn.Module):
    def __init__(self, inputs: int, hidden: int, classes: int):
        super().__init__()
        self.layers = nn.Sequential(nn.Linear(inputs, hidden), nn.ReLU(), nn.Linear(hidden, classes))

    def forward(self, x):
        return self.layers(x.flatten(1))
'''


def _cmd_new(args) -> int:
    from .schema import ID_PATTERN

    if not ID_PATTERN.fullmatch(args.name) or "@" in args.name:
        raise HarnessError(f"new: {args.name!r} is not a plain name: allowed: 1 to 64 of a-z 0-9 . _ -, starting with a letter or digit")
    directory = Path(args.experiments_dir or "experiments")
    module = args.name.replace("-", "_").replace(".", "_") + "_model"
    recipe, code = directory / f"{args.name}.toml", directory / f"{module}.py"
    for path in (recipe, code):
        if os.path.lexists(path):  # a dangling link too: never written through
            raise HarnessError(f"new: {path} already exists; choose another name or edit it")
    written = []
    try:
        directory.mkdir(parents=True, exist_ok=True)
        for path, text in ((code, NEW_MODEL.format(id=args.name)), (recipe, NEW_RECIPE.format(id=args.name, module=module))):
            if not safe_files.create_new(path, text):  # created exclusively, never through a link planted meanwhile
                raise HarnessError(f"new: {path} already exists; choose another name or edit it")
            written.append(path)
    except OSError as e:
        for path in written:
            path.unlink(missing_ok=True)
        raise HarnessError(f"new: cannot write into {directory} ({e.strerror}); pass another --experiments-dir") from None
    except HarnessError:
        for path in written:
            path.unlink(missing_ok=True)
        raise
    print(f"wrote {recipe} and {code}; try: harness validate {args.name} --experiments-dir {directory}")
    return 0


def _cmd_report(args) -> int:
    from .registry import load_registry, variants
    from .report import write_report

    registry = load_registry(args.experiments_dir)
    return write_report(args.results_dir, {**registry, **variants(registry)})


def _one_line(text: str) -> str:
    """A message as one line, whatever a file name or a results field it quotes holds: line breaks and
    every other control character (a terminal's escape codes) shown as escapes, never sent raw."""
    return CONTROL.sub(lambda m: repr(m.group())[1:-1], text)


def _cmd_check(args) -> int:
    from .check import integrity_failures, threshold_failures
    from .registry import load_registry

    registry = load_registry(args.experiments_dir)
    failures = integrity_failures(registry, args.results_dir)
    try:
        failures += threshold_failures(registry, args.results_dir)
    except HarnessError:
        if not failures:  # otherwise integrity_failures has named what makes the files unreadable
            raise
    for line in failures:
        print(f"FAIL {_one_line(line)}")
    if failures:
        return 1
    print(f"results intact and all thresholds met in {args.results_dir}")
    return 0


def _cmd_compare(args) -> int:
    from .compare import compare_directories, parse_margins, render, write_csv
    from .registry import load_registry, variants

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


class _Parser(argparse.ArgumentParser):
    """argparse, with a bad command line said in one line like every other error (not usage, then the error)."""

    def error(self, message: str):
        self.exit(2, f"{self.prog}: error: {_one_line(message)} (`{self.prog} --help` lists the options)\n")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="harness", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("list", help="every registered experiment")
    _add_common(p)
    p.add_argument("--variants", action="store_true", help="also list each MNIST experiment's Fashion-MNIST variant")
    p.set_defaults(func=_cmd_list)

    p = sub.add_parser("run", help="run experiments x seeds x devices and record the results")
    _add_training(p)
    p.add_argument("--seeds", default=None,
                   help="seeds: ranges and lists, e.g. 0-4 or 0,3,7 (default: each experiment's registry `seeds`, "
                   "0 to N-1, 5 where its file states none)")
    p.add_argument("--vary", default=None, metavar="SOURCE",
                   help="seed one source of randomness with each seed, the others with --base-seed: init, split, order, "
                   "dropout, bit, kernels or none (rows marked faithful=false; docs/variance.md)")
    p.add_argument("--save-weights", action="store_true",
                   help="keep each run's final state_dict at <results-dir>/weights/<run_id>.pt (torch.load(..., weights_only=True))")
    p.add_argument("--costs-from", type=_path, default=None, metavar="DIR",
                   help="a results directory whose runs tell what each recipe costs, for the estimate of the time left "
                        "where --results-dir has no run of it yet (make all: the committed results)")
    p.set_defaults(func=_cmd_run)

    p = sub.add_parser("variance", help="where the spread over seeds comes from: each source of randomness varied alone")
    _add_training(p)
    p.add_argument("--sources", default="init,split,order,dropout,bit",
                   help="comma list of sources to vary one at a time: init, split, order, dropout, bit, kernels (CUDA only) "
                   "(default: the first five)")
    p.add_argument("--runs", type=int, default=20, help="runs per source, and ordinary seeds varying all (default 20)")
    p.add_argument("--reruns", type=int, default=3, help="runs with every seed fixed, whose spread must be 0 on the CPU (default 3)")
    p.set_defaults(func=_cmd_variance)

    p = sub.add_parser("plan", help="how many runs would detect a difference of a given size, from the spread recorded")
    _add_common(p)
    p.add_argument("ids", nargs="+", help="one experiment, or two (A B) to compare, paired over their shared seeds")
    p.add_argument("--delta", type=float, required=True, help="the difference to detect, in the metric's units (0.001 = 0.1 pp)")
    p.add_argument("--metric", default=None, help="default: the published metric, else test_acc")
    p.add_argument("--power", type=float, default=0.8, help="default 0.8")
    p.add_argument("--device", default="cpu", help="the runs' device (default cpu)")
    p.add_argument("--engine", default="fast", help="the runs' engine (default fast)")
    p.add_argument("--epochs", type=int, default=None, help="use the runs shortened to this many epochs (default: full recipes)")
    p.add_argument("--results-dir", type=_path, default="results", help="where the runs are (default results)")
    p.set_defaults(func=_cmd_plan)

    p = sub.add_parser("validate", help="check recipes end to end without training: imports, arguments, data, one forward pass")
    _add_common(p)
    p.add_argument("ids", nargs="*", default=["all"], help="experiment ids, or 'all' (default)")
    p.add_argument("--dataset", default=None, metavar="NAME", help="validate on this dataset instead (e.g. fashion-mnist)")
    p.add_argument("--engine", default="fast", help="the engine to validate for: reference, fast or multiseed (default fast)")
    _add_data(p)
    p.set_defaults(func=_cmd_validate)

    p = sub.add_parser("new", help="write a recipe and a model module beside it that run as they stand")
    p.add_argument("name", help="the experiment id (and file name)")
    p.add_argument("--experiments-dir", type=_path, default=None, help="the registry directory to write into (default experiments/)")
    p.set_defaults(func=_cmd_new)

    p = sub.add_parser("report", help="write REPORT.md and plots/*.png: reproduced versus published, with statistics")
    _add_common(p)
    p.add_argument("--results-dir", type=_path, default="results", help="where runs.csv is; REPORT.md and plots/ go there (default results)")
    p.set_defaults(func=_cmd_report)

    p = sub.add_parser("bench", help="measure training throughput per experiment x engine x device")
    _add_common(p)
    p.add_argument("ids", nargs="*", default=["all"], help="experiment ids, or 'all' (default)")
    p.add_argument("--engines", default="reference,fast,multiseed", help="comma list (default reference,fast,multiseed)")
    p.add_argument("--devices", default="cpu", help="cpu, cuda, cuda:N, comma lists, or auto (default cpu)")
    p.add_argument("--steps", type=int, default=200, help="training steps per measurement (default 200)")
    p.add_argument("--repeats", type=int, default=10, help="rounds, each measuring every engine once in turn (default 10)")
    p.add_argument("--warmup", type=int, default=1, help="measurements run first in each call and dropped (default 1)")
    p.add_argument("--seeds", type=int, default=None, help="seeds trained together by multiseed (default 64 on CUDA, 5 on the CPU)")
    p.add_argument("--out", type=_path, default="results/bench.csv", help="CSV to write; the plot (.png) and markdown (.md) go beside it")
    _add_data(p)
    _add_portable(p)
    p.set_defaults(func=_cmd_bench)

    p = sub.add_parser("compare", help="did results B reproduce results A? bitwise, over seeds, and speed")
    _add_common(p)
    p.add_argument("dirs", nargs="+", type=_path, metavar="DIR", help="two results directories A B, or one with --by")
    p.add_argument("--by", default=None, metavar="COLUMN",
                   help="compare the groups of one directory: engine, device, torch_version, git_commit, host or cpu_capability")
    p.add_argument("--margin", action="append", default=[], metavar="METRIC=VALUE",
                   help="equivalence margin, absolute (test_acc=0.01) or relative to A's mean (test_loss=2%%); repeatable")
    p.add_argument("--markdown", action="store_true", help="markdown (a report section) instead of terminal tables")
    p.add_argument("--csv", type=_path, default=None, metavar="FILE", help="also write every result as CSV rows to FILE")
    p.add_argument("--out", type=_path, default=None, metavar="FILE",
                   help="write the whole comparison to FILE and print only the summary line(s)")
    p.set_defaults(func=_cmd_compare)

    p = sub.add_parser("check", help="fail where results miss the registry's thresholds")
    _add_common(p)
    p.add_argument("--results-dir", type=_path, default="results")
    p.set_defaults(func=_cmd_check)
    return parser


def _raise_terminated(signum, frame):
    raise Terminated()


def _raise_interrupted(signum, frame):
    raise Interrupted()


def main(argv: list[str] | None = None) -> int:
    if sys.stdout is None:  # started with stdout closed: the next file opened would take its place
        print("harness: error: standard output is closed; redirect it instead (e.g. >/dev/null)", file=sys.stderr)
        return 2
    if hasattr(sys.stdout, "reconfigure"):  # a terminal or pipe that cannot show a title gets escapes, not a crash
        sys.stdout.reconfigure(errors="backslashreplace")
    stdout, sys.stdout = sys.stdout, _Output(sys.stdout)
    try:
        status = _run(argv)
        sys.stdout.flush()
        return status
    except _OutputFailed as e:
        _to_devnull(stdout)
        if e.errno != errno.EPIPE:  # a closed pipe (`harness list | head -1`) is the reader's choice: no word
            print(f"harness: error: cannot write to standard output ({e.strerror})", file=sys.stderr)
        return 1
    finally:
        sys.stdout = stdout


class _OutputFailed(OSError):
    """Standard output could not be written: its reader is gone, or its device full."""


class _Output:
    """Standard output, with its write errors told apart from those of the files the harness writes."""

    def __init__(self, stream):
        self._stream = stream

    def write(self, text: str) -> int:
        text = SHOWN_RAW.sub(lambda m: repr(m.group())[1:-1], text)  # a title or host name's escape codes, never acted on
        try:
            return self._stream.write(text)
        except OSError as e:
            raise _OutputFailed(e.errno, e.strerror) from None

    def flush(self) -> None:
        try:
            self._stream.flush()
        except OSError as e:
            raise _OutputFailed(e.errno, e.strerror) from None

    def __getattr__(self, name):
        return getattr(self._stream, name)


def _to_devnull(stream) -> None:
    """Point a failed stream at /dev/null, so that the interpreter's last flush has nowhere to fail."""
    try:
        os.dup2(os.open(os.devnull, os.O_WRONLY), stream.fileno())
    except (OSError, ValueError, io.UnsupportedOperation):
        pass


def _run(argv: list[str] | None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    args = build_parser().parse_args(argv)
    if getattr(args, "portable", False) and not portable.in_force():
        portable.restart_with_settings(argv)  # ATen and MKL read their settings when torch starts
    # SIGTERM (kill, a scheduler's time limit) takes Ctrl-C's clean way out instead of dying mid-write; both
    # raise the harness's own exceptions, so that an interrupt user code raises itself is not taken for one.
    previous = {}
    for signum, handler in ((signal.SIGTERM, _raise_terminated), (signal.SIGINT, _raise_interrupted)):
        try:
            previous[signum] = signal.signal(signum, handler)
        except ValueError:  # not the main thread: leave signals to whoever owns it
            pass
    try:
        return args.func(args)
    except HarnessError as e:
        print(f"harness: error: {_one_line(str(e))}", file=sys.stderr)
        return e.exit_status
    except KeyboardInterrupt as e:
        if not is_signal(e):
            print("harness: error: KeyboardInterrupt raised by code, not by Ctrl-C; nothing was interrupted, "
                  "the command failed", file=sys.stderr)
            return 1
        signum = signal.SIGTERM if isinstance(e, Terminated) else signal.SIGINT
        print(f"harness: interrupted ({signum.name}); finished runs are recorded, `harness run` again resumes",
              file=sys.stderr)
        return 128 + signum
    except SystemExit as e:  # the harness never exits from inside a command: this came from a recipe's code
        print(f"harness: error: the code a recipe names called sys.exit({e.code!r}) outside any run; "
              "the command failed", file=sys.stderr)
        return 1
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, signal.SIG_DFL if handler is None else handler)


if __name__ == "__main__":
    sys.exit(main())
