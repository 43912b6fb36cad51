"""Objects a registry file names: a `class_path` and its `init_args`, resolved and checked at load.

A class path is `"package.module:Name"`, or a short `"Name"` looked up in the namespaces allowed for its
slot (an optimiser in torch.optim, a loss in torch.nn, ...). Besides those namespaces, a class path may
name a module in the registry directory itself (`"net:Net"` for `net.py` beside the recipe): the
directory is imported as a package of its own (`harness_registry_<digest>`), so two directories'
`net.py` never collide and no PYTHONPATH is needed. Importing a module runs it: a registry directory is
trusted code, as a conftest.py is.
"""

from __future__ import annotations

import functools
import hashlib
import importlib
import importlib.util
import inspect
import sys
import traceback
import types
from pathlib import Path

from .errors import RegistryError, did_you_mean

# slot -> the namespaces a short name is looked up in, in order
NAMESPACES = {
    "model": ("harness.models", "torch.nn"),
    "loss": ("torch.nn",),
    "optimizer": ("torch.optim",),
    "scheduler": ("torch.optim.lr_scheduler",),
    "dataset": ("torchvision.datasets",),
    "transform": ("torchvision.transforms",),
}
# A full class path must lie in one of these (or in the registry directory).
ALLOWED_ROOTS = ("harness.models", "torch.nn", "torch.optim", "torchvision.datasets", "torchvision.transforms", "sklearn.datasets")
_PACKAGE_PREFIX = "harness_registry_"


class UserCodeError(RegistryError):
    """An exception raised inside a user's module, reported at the user's own file and line."""


def user_frame(exc: BaseException, directory: Path) -> str:
    """`file:line` of the innermost frame of `exc`'s traceback inside `directory`, or '' if none is."""
    directory = directory.resolve()
    found = ""
    for frame in traceback.extract_tb(exc.__traceback__):
        try:
            Path(frame.filename).resolve().relative_to(directory)
        except ValueError:
            continue
        found = f"{frame.filename}:{frame.lineno}"
    if not found and isinstance(exc, SyntaxError) and exc.filename:
        found = f"{exc.filename}:{exc.lineno}"
    return found


def raise_from_user_code(exc: BaseException, directory: Path, doing: str) -> None:
    """Re-raise an exception from user code as one line: where in the user's file, what, and while doing what."""
    where = user_frame(exc, directory)
    message = " ".join(str(exc).split())[:300]
    prefix = f"{where}: " if where else ""
    raise UserCodeError(f"{prefix}{type(exc).__name__}: {message} (raised {doing})") from None


def package_name(directory: Path) -> str:
    return _PACKAGE_PREFIX + hashlib.sha256(str(directory.resolve()).encode()).hexdigest()[:12]


def _registry_package(directory: Path) -> str:
    """The registry directory as an importable package (created once per process); its name."""
    name = package_name(directory)
    if name not in sys.modules:
        package = types.ModuleType(name)
        package.__path__ = [str(directory.resolve())]
        package.__package__ = name
        sys.modules[name] = package
    return name


def is_user_module(module: str, directory: Path | None) -> bool:
    """Whether `module` names a module in the registry directory (`net` for net.py or net/__init__.py)."""
    if directory is None:
        return False
    top = module.split(".")[0]
    if top in ("torch", "torchvision", "sklearn", "harness"):
        return False
    return (directory / f"{top}.py").is_file() or (directory / top / "__init__.py").is_file()


def canonical_path(class_path: str, slot: str, where: str, directory: Path | None) -> str:
    """The class path as the config hash records it: a short name gets the namespace it was found in."""
    module, name = _split(class_path, where)
    if module:
        return class_path
    for namespace in NAMESPACES[slot]:
        found = getattr(_import_allowed(namespace, where, directory), name, None)
        if callable(found):  # not a submodule of the same name (torchvision.datasets.cifar)
            return f"{namespace}:{name}"
    known = sorted({n for ns in NAMESPACES[slot] for n in dir(_import_allowed(ns, where, directory)) if n[:1].isupper()})
    hint = did_you_mean(name, known)
    raise RegistryError(f"{where} {class_path!r}: no such name in {', '.join(NAMESPACES[slot])}{hint}; "
                        "or give a full class path 'module:Name' (a module beside the recipe, e.g. 'net:Net')")


def _split(class_path: str, where: str) -> tuple[str, str]:
    module, sep, name = class_path.rpartition(":")
    if not name.isidentifier() or (sep and not all(part.isidentifier() for part in module.split("."))):
        raise RegistryError(f"{where} {class_path!r} is not a class path: write 'package.module:Name' or a short 'Name'")
    return module, name


def _import_allowed(module: str, where: str, directory: Path | None):
    if is_user_module(module, directory):
        return _import_user(module, where, directory)
    if not any(module == root or module.startswith(root + ".") for root in ALLOWED_ROOTS):
        beside = f"not beside the recipe (no {directory / (module.split('.')[0] + '.py')}) and " if directory else ""
        raise RegistryError(f"{where}: module {module!r} is {beside}outside the allowed namespaces ({', '.join(ALLOWED_ROOTS)}); "
                            "put your own code in a module beside the recipe")
    try:
        return importlib.import_module(module)
    except ImportError as e:
        raise RegistryError(f"{where}: cannot import {module!r} ({e}); check the module name") from None


@functools.lru_cache(maxsize=None)
def _imported_user_module(module: str, directory: Path):
    return importlib.import_module(f"{_registry_package(directory)}.{module}")


def _import_user(module: str, where: str, directory: Path):
    try:
        return _imported_user_module(module, directory.resolve())
    except ModuleNotFoundError as e:
        where_file = directory / (module.replace(".", "/") + ".py")
        if e.name and e.name.startswith(_PACKAGE_PREFIX):
            raise RegistryError(f"{where}: no module {module!r} beside the recipe (looked for {where_file})") from None
        raise_from_user_code(e, directory, f"importing {module!r} for {where.split(': ', 1)[-1]}")
    except Exception as e:  # the user's module failed while it ran
        raise_from_user_code(e, directory, f"importing {module!r} for {where.split(': ', 1)[-1]}")


def resolve(class_path: str, slot: str, where: str, directory: Path | None):
    """The object a class path names; `where` ('file: key') heads every error."""
    module, name = _split(canonical_path(class_path, slot, where, directory), where)
    found = _import_allowed(module, where, directory)
    target = getattr(found, name, None)
    if callable(target):  # a class or function, not a submodule or a constant
        return target
    hint = did_you_mean(name, [n for n in dir(found) if not n.startswith("_")])
    raise RegistryError(f"{where}: module {module!r} has no class or function {name!r}{hint}")


def check_arguments(target, init_args: dict, given: tuple[str, ...], file: Path, key: str, shown: str) -> None:
    """`[key].init_args` (plus the arguments the harness passes itself, `given`) against `target`'s signature."""
    try:
        signature = inspect.signature(target)
    except (TypeError, ValueError):  # a builtin without a signature: the call itself will tell
        return
    parameters = signature.parameters
    takes_any = any(p.kind is inspect.Parameter.VAR_KEYWORD for p in parameters.values())
    named = [n for n, p in parameters.items() if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY) and n not in given]
    for name in init_args:
        if name in given:
            raise RegistryError(f"{file}: '{key}.init_args.{name}': the harness passes {name!r} itself; remove it")
        if name not in named and not takes_any:
            raise RegistryError(f"{file}: '{key}.init_args.{name}' is not an argument of {shown}{did_you_mean(name, named)}; "
                                f"allowed: {', '.join(named) or 'none'}")
    for name, p in parameters.items():
        required = p.default is inspect.Parameter.empty and p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)
        if required and name not in init_args and name not in given:
            raise RegistryError(f"{file}: {shown} needs argument {name!r}: add it to [{key}] init_args")


def build(target, init_args: dict, directory: Path | None, doing: str, *args, **harness_args):
    """Call `target(*args, **harness_args, **init_args)`; whatever it raises becomes one line, at the
    user's file and line where the error came from the user's code."""
    try:
        return target(*args, **harness_args, **init_args)
    except RegistryError:
        raise
    except Exception as e:
        if directory is not None and user_frame(e, directory):
            raise_from_user_code(e, directory, doing)
        message = " ".join(str(e).split())[:300]
        raise RegistryError(f"{doing}: {type(e).__name__}: {message}") from None


def instantiate(spec: dict, slot: str, key: str, experiment, *args, **harness_args):
    """The object a recipe's [key] section names, built with its init_args (after `args`, `harness_args`)."""
    where = f"{experiment.path}: '{key}.class_path'"
    target = resolve(spec["class_path"], slot, where, experiment.directory)
    return build(target, spec["init_args"], experiment.directory, f"{experiment.path}: building [{key}] {spec['class_path']}",
                 *args, **harness_args)


def accepts(spec: dict, slot: str, experiment, name: str) -> bool:
    """Whether the object [spec] names takes argument `name`."""
    return takes(resolve(spec["class_path"], slot, f"{experiment.path}: '{slot}.class_path'", experiment.directory), name)


def takes(target, name: str) -> bool:
    """Whether `target`'s signature has a parameter `name` (False where it has no signature to read)."""
    try:
        return name in inspect.signature(target).parameters
    except (TypeError, ValueError):
        return False


def user_files(directory: Path) -> dict[str, bytes]:
    """The Python files of a registry directory, by path relative to it: the code its recipes import."""
    root = directory.resolve()
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*.py")) if "__pycache__" not in p.parts}


def code_digest(directory: Path) -> str:
    """SHA-256 of every Python file in a registry directory (path and bytes), the code its recipes import."""
    return files_digest(user_files(directory))


def files_digest(files: dict[str, bytes]) -> str:
    digest = hashlib.sha256()
    for name, data in sorted(files.items()):
        digest.update(name.encode() + b"\0" + data + b"\0")
    return digest.hexdigest()
