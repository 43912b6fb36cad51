"""The commands, one module each (as asv's `commands/`): its `HELP`, its arguments (`add_arguments`) and
what it does (`run(args)`, the exit status), over the libraries of `harness/`, which never import a
command. `harness/cli.py` builds the parser from them and turns every error into one line."""

from __future__ import annotations

import importlib

# In the order `harness --help` lists them: look, write a recipe, check it, train, decide, study, report, browse, compare.
NAMES = ("list", "new", "validate", "run", "settle", "variance", "plan", "report", "export", "bench", "compare", "check")


def modules() -> dict:
    """Each command's module by name (their heavy imports wait inside `run`)."""
    return {name: importlib.import_module(f"{__name__}.{name}") for name in NAMES}
