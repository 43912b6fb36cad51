"""`harness list`: every registered experiment, its recipe and what its tutorial printed."""

from __future__ import annotations

from .arguments import add_common

HELP = "every registered experiment"


def add_arguments(p) -> None:
    add_common(p)
    p.add_argument("--variants", action="store_true", help="also list each MNIST experiment's Fashion-MNIST variant")


def run(args) -> int:
    from tabulate import tabulate

    from ..registry import load_registry, variants

    registry = load_registry(args.experiments_dir)
    shown = {**registry, **variants(registry)} if args.variants else registry
    rows = []
    for exp in shown.values():
        if exp.script:  # its model and optimiser are the script's own
            rows.append([exp.id, exp.source, "(script)", f"script {exp.script['path']}", "(script)", exp.training["epochs"], exp.seeds,
                         exp.published_text])
            continue
        model = exp.model["class_path"].rpartition(":")[2]
        arguments = " ".join(f"{k}={short(v)}" for k, v in exp.model["init_args"].items())
        optimizer = exp.optimizer["class_path"].rpartition(":")[2]
        rows.append([exp.id, exp.source, exp.dataset.rpartition(":")[2], f"{model} {arguments}".strip(), optimizer,
                     exp.training["epochs"], exp.seeds, exp.published_text])
    print(tabulate(rows, headers=["id", "source", "dataset", "model", "optimizer", "epochs", "seeds", "published"], tablefmt="github"))
    if not args.variants:
        print("\nEvery MNIST experiment also runs on Fashion-MNIST as <id>@fashion-mnist "
              "(or `harness run ... --dataset fashion-mnist`); `harness list --variants` lists them.")
    return 0


def short(value) -> str:
    return "-".join(map(str, value)) if isinstance(value, (list, tuple)) else str(value)
