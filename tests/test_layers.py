"""The layout is the architecture: libraries below, commands above. A library module (anything in harness/
but cli.py, __main__.py and harness/commands/) never imports a command, and the modules that read results
import no torch when they are imported."""

import ast
import subprocess
import sys
from pathlib import Path

import pytest

from .conftest import ROOT

COMMAND_LAYER = ("harness.cli", "harness.__main__", "harness.commands")


def module_name(path: Path, root: Path) -> str:
    parts = path.relative_to(root).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imported(path: Path, root: Path) -> set[str]:
    """Every module `path` imports, at its top or inside a function, relative imports made absolute."""
    name = module_name(path, root)
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parts = package.split(".")
                base = ".".join(parts[: len(parts) - node.level + 1] + ([base] if base else []))
            found.add(base)
            found |= {f"{base}.{alias.name}" for alias in node.names}  # `from . import commands` names a module
    return found


def in_command_layer(name: str) -> bool:
    return any(name == layer or name.startswith(layer + ".") for layer in COMMAND_LAYER)


def layer_violations(root: Path) -> dict[str, list[str]]:
    """Each library module of root/harness that imports the command layer, with what it imports of it."""
    found = {}
    for path in sorted((root / "harness").rglob("*.py")):
        name = module_name(path, root)
        if not in_command_layer(name):
            names = sorted(n for n in imported(path, root) if in_command_layer(n))
            if names:
                found[name] = names
    return found


def test_no_library_module_imports_a_command():
    assert layer_violations(ROOT) == {}


def test_the_rule_names_the_module_that_breaks_it(tmp_path):
    """The check above can fail: a library importing a command, relatively or not, is named with what it imports."""
    for name, text in {"harness/__init__.py": "", "harness/report/__init__.py": "",
                       "harness/report/loading.py": "def load():\n    from ..commands import compare\n",
                       "harness/rows.py": "import harness.cli\n", "harness/commands/__init__.py": "from .. import rows\n"}.items():
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text(text)
    assert layer_violations(tmp_path) == {"harness.report.loading": ["harness.commands", "harness.commands.compare"],
                                          "harness.rows": ["harness.cli"]}


@pytest.mark.slow
@pytest.mark.parametrize("module", ["harness.report", "harness.compare", "harness.check", "harness.rows", "harness.catalogue",
                                    "harness.schema", "harness.registry", "harness.cli"])
def test_modules_that_read_results_load_without_torch(module):
    probe = f"import sys, {module}; print('torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", probe], cwd=ROOT, capture_output=True, text=True, check=True).stdout
    assert out.strip() == "False", f"importing {module} imports torch"
