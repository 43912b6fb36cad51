"""`harness validate`: every recipe built and run on one batch, without training."""

from __future__ import annotations

from .arguments import add_common, add_data

HELP = "check recipes end to end without training: imports, arguments, data, one forward pass"


def add_arguments(p) -> None:
    add_common(p)
    p.add_argument("ids", nargs="*", default=["all"], help="experiment ids, or 'all' (default)")
    p.add_argument("--dataset", default=None, metavar="NAME", help="validate on this dataset instead (e.g. fashion-mnist)")
    p.add_argument("--engine", default=None,
                   help="the engine to validate for: reference, fast or multiseed (default fast; script recipes: script)")
    add_data(p)


def run(args) -> int:
    from ..options import RunOptions
    from ..registry import load_registry, select
    from ..engines import default_engine
    from ..runner import check_engine
    from ..validate import validate

    experiments = select(load_registry(args.experiments_dir), args.ids, args.dataset)
    options = RunOptions(data_dir=args.data_dir, mirror=args.data_mirror)
    engines = set()
    for exp in experiments:  # each on the engine asked for, else its own (fast, or script for a script)
        engine = check_engine(args.engine or default_engine(exp))
        engines.add(engine)
        count = validate(exp, options, engine)
        if exp.script:
            script = exp.script
            seeded = (", its generators seeded with each run's seed" if script["seed_globals"] else
                      f", which seeds itself with {script['own_seed']}" if script["own_seed"] is not None else "")
            print(f"ok {exp.id}: script {script['path']} {' '.join(script['args'])}".rstrip() + f"{seeded}, reporting {', '.join(exp.metrics)}")
            continue
        print(f"ok {exp.id}: {exp.model['class_path']} ({count:,} parameters) on {exp.dataset}, "
              f"{exp.loss['class_path'] if exp.loss else 'steps ' + exp.steps['training']}, "
              f"{exp.optimizer['class_path']}" + (f", {exp.scheduler['class_path']}" if exp.scheduler else ""))
    print(f"{len(experiments)} recipe(s) valid for the {' and '.join(sorted(engines))} engine{'s' if len(engines) > 1 else ''}")
    return 0
