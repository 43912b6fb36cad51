"""`harness export mlflow | tensorboard`: the counted runs, and the mean ± sd over their seeds, where users
browse runs."""

from __future__ import annotations

from ..errors import HarnessError
from .arguments import add_common, path

HELP = "export runs and their seeds' mean ± sd to MLflow or TensorBoard"


def add_arguments(p) -> None:
    add_common(p)
    p.add_argument("target", choices=("mlflow", "tensorboard"), help="where to: an MLflow store or server, or TensorBoard event files")
    p.add_argument("--results-dir", type=path, default="results", help="where runs.csv is (default results)")
    p.add_argument("--tracking-uri", default=None, metavar="URI",
                   help="mlflow: sqlite:///PATH or http(s)://HOST:PORT (default: sqlite in <results-dir>/mlflow/)")
    p.add_argument("--logdir", type=path, default=None, metavar="DIR",
                   help="tensorboard: where the event files go (default <results-dir>/tensorboard)")


def run(args) -> int:
    from ..registry import load_registry, variants
    from ..tracking import export_mlflow, export_tensorboard

    if args.target == "mlflow" and args.logdir is not None:
        raise HarnessError("--logdir is for `export tensorboard`; MLflow takes --tracking-uri")
    if args.target == "tensorboard" and args.tracking_uri is not None:
        raise HarnessError("--tracking-uri is for `export mlflow`; TensorBoard takes --logdir")
    registry = load_registry(args.experiments_dir)
    registry = {**registry, **variants(registry)}
    if args.target == "mlflow":
        export_mlflow(args.results_dir, registry, args.tracking_uri)
    else:
        export_tensorboard(args.results_dir, registry, args.logdir)
    return 0
