"""Objects a registry file names: a `class_path` and its `init_args`, resolved and checked at load.

A class path is `"package.module:Name"`, or a short `"Name"` looked up in the namespaces allowed for its
slot (an optimiser in torch.optim, a loss in torch.nn, ...). Besides those namespaces, a class path may
name a module in the registry directory itself (`"net:Net"` for `net.py` beside the recipe): the
directory is imported as a package of its own (`harness_registry_<digest>`), so two directories'
`net.py` never collide and no PYTHONPATH is needed. Importing a module runs it: a registry directory is
trusted code, as a conftest.py is.

The TOML file is not trusted: what it names is judged before anything is called, by where the object
lives (its own module, not the name it was reached by) and by what it is. Outside the registry
directory a slot takes only a class of its kind from its own namespaces (`SLOTS`), or one of the few
functions `FUNCTIONS` lists; never a private name or a test module. So a module's imports
(`sklearn.datasets:clear_data_home`, `torch.nn:os`) are out of reach, as jsonargparse narrows a class
path to subclasses of the type it expects.
"""

from __future__ import annotations

import functools
import hashlib
import importlib
import importlib.util
import inspect
import os
import re
import sys
import traceback
import types
from pathlib import Path

from . import safe_files
from .errors import HarnessError, RegistryError, did_you_mean, is_signal

# slot -> the namespaces a short name is looked up in, in order
NAMESPACES = {
    "model": ("harness.models", "torch.nn"),
    "loss": ("torch.nn",),
    "optimizer": ("torch.optim",),
    "scheduler": ("torch.optim.lr_scheduler",),
    "dataset": ("torchvision.datasets",),
    "transform": ("torchvision.transforms",),
    "step": (),  # a step of the recipe's own: only a function beside it
    "metric": (),  # a metric of the recipe's own: only a function beside it
}
# slot -> where a full class path outside the registry directory may point, and where the object it
# reaches must itself be defined (its `__module__`)
SLOTS = {**NAMESPACES, "scheduler": ("torch.optim",)}  # torch.optim.swa_utils:SWALR is a scheduler too
# slot -> what a class it names must be a subclass of, as text for messages
KINDS = {"model": "torch.nn.Module", "loss": "torch.nn.Module", "optimizer": "torch.optim.Optimizer",
         "scheduler": "torch.optim.lr_scheduler.LRScheduler", "dataset": "torch.utils.data.Dataset",
         "transform": "a torchvision.transforms class", "step": "function", "metric": "function"}
# The only functions a recipe may name outside its registry directory (a function can do anything).
FUNCTIONS = {"model": ("harness.models:mlp",)}
_PACKAGE_PREFIX = "harness_registry_"
_TEST_PART = re.compile(r"tests?|testing|conftest|test_.*|.*_tests?")


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


def describe(exc: BaseException, directory: Path | None, doing: str = "") -> str:
    """An exception as one bounded line: where in the user's file (if it came from there), what, and while
    doing what (where `doing` says). An exit is an error like any other: `SystemExit(0)` from a forward pass
    is no success."""
    where = user_frame(exc, directory) if directory is not None else ""
    if isinstance(exc, SystemExit):
        what = f"SystemExit({exc.code!r}): the code called sys.exit"
    elif isinstance(exc, KeyboardInterrupt):
        what = "KeyboardInterrupt raised by the code itself, not by Ctrl-C"
    else:
        what = f"{type(exc).__name__}: {' '.join(str(exc).split())[:300]}"
    what += f" (raised {doing})" if doing else ""
    return f"{where}: {what}" if where else what


def raise_from_user_code(exc: BaseException, directory: Path, doing: str) -> None:
    """Re-raise an exception from user code as one line: where in the user's file, what, and while doing what."""
    raise UserCodeError(describe(exc, directory, doing)) from None


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
    if name.startswith("_"):
        raise RegistryError(f"{where} {class_path!r} is a private name; {allowed(slot)}")
    for namespace in NAMESPACES[slot]:
        found = getattr(_import_allowed(namespace, slot, where, directory), name, None)
        if callable(found):  # not a submodule of the same name (torchvision.datasets.cifar)
            return f"{namespace}:{name}"
    known = sorted({n for ns in NAMESPACES[slot] for n in dir(_import_allowed(ns, slot, where, directory)) if n[:1].isupper()})
    hint = did_you_mean(name, known)
    raise RegistryError(f"{where} {class_path!r}: no such name in {', '.join(NAMESPACES[slot])}{hint}; "
                        "or give a full class path 'module:Name' (a module beside the recipe, e.g. 'net:Net')")


def allowed(slot: str) -> str:
    """What a slot may name, as the end of a refusal."""
    if slot == "step":
        return "allowed: a function defined in a module beside the recipe ('steps:training_step'), or a method of the model"
    if slot == "metric":
        return "allowed: a function defined in a module beside the recipe ('metrics:top5'), taking (outputs, targets)"
    functions = "".join(f", the function {f}" for f in FUNCTIONS.get(slot, ()))
    kind = KINDS[slot] if slot == "transform" else f"a {KINDS[slot]} class"
    return (f"allowed: {kind} from {' or '.join(SLOTS[slot])}{functions}, "
            "or a class or function defined in a module beside the recipe")


def _split(class_path: str, where: str) -> tuple[str, str]:
    module, sep, name = class_path.rpartition(":")
    if not name.isidentifier() or (sep and not all(part.isidentifier() for part in module.split("."))):
        raise RegistryError(f"{where} {class_path!r} is not a class path: write 'package.module:Name' or a short 'Name'")
    return module, name


def _within(module: str, roots) -> bool:
    return any(module == root or module.startswith(root + ".") for root in roots)


def _import_allowed(module: str, slot: str, where: str, directory: Path | None):
    """The module a class path names, imported only where the slot's objects may come from."""
    if is_user_module(module, directory):
        return _import_user(module, where, directory)
    if not _within(module, SLOTS[slot]):
        beside = f"not beside the recipe (no {directory / (module.split('.')[0] + '.py')}) and " if directory else ""
        raise RegistryError(f"{where}: module {module!r} is {beside}outside the namespaces a {slot} comes from; {allowed(slot)}")
    private = [part for part in module.split(".") if part.startswith("_") or _TEST_PART.fullmatch(part)]
    if private:  # never imported: a test module may run anything, a private one is no one's interface
        raise RegistryError(f"{where}: module {module!r} is private or a test module ({private[0]!r}); {allowed(slot)}")
    try:
        return importlib.import_module(module)
    except ImportError as e:
        raise RegistryError(f"{where}: cannot import {module!r} ({e}); check the module name") from None


@functools.lru_cache(maxsize=None)
def _imported_user_module(module: str, directory: Path):
    user_files(directory)  # every file checked (regular, small) before any is imported: a FIFO would hang the import
    return importlib.import_module(f"{_registry_package(directory)}.{module}")


def _import_user(module: str, where: str, directory: Path):
    try:
        return _imported_user_module(module, directory.resolve())
    except HarnessError:
        raise
    except ModuleNotFoundError as e:
        where_file = directory / (module.replace(".", "/") + ".py")
        if e.name and e.name.startswith(_PACKAGE_PREFIX):
            raise RegistryError(f"{where}: no module {module!r} beside the recipe (looked for {where_file})") from None
        raise_from_user_code(e, directory, f"importing {module!r} for {where.split(': ', 1)[-1]}")
    except BaseException as e:  # the user's module failed (or exited) while it ran
        if is_signal(e):
            raise
        raise_from_user_code(e, directory, f"importing {module!r} for {where.split(': ', 1)[-1]}")


def resolve(class_path: str, slot: str, where: str, directory: Path | None):
    """The object a class path names, once it is known to be one the slot may call; `where` ('file: key')
    heads every error."""
    module, name = _split(canonical_path(class_path, slot, where, directory), where)
    user = is_user_module(module, directory)
    if name.startswith("_") and not user:
        raise RegistryError(f"{where} {class_path!r} is a private name; {allowed(slot)}")
    found = _import_allowed(module, slot, where, directory)
    target = getattr(found, name, None)
    if not callable(target):  # a submodule or a constant
        hint = did_you_mean(name, [n for n in dir(found) if not n.startswith("_")])
        raise RegistryError(f"{where}: module {module!r} has no class or function {name!r}{hint}")
    _check_kind(target, slot, f"{where} {class_path!r}", directory)
    return target


def _check_kind(target, slot: str, where: str, directory: Path | None) -> None:
    """Refuse what a slot may not call, judged by what `target` is and where it is defined, whatever
    name reached it: anything defined beside the recipe is trusted code; anything else must be a class
    of the slot's kind defined in its namespaces, or a function `FUNCTIONS` lists."""
    home = getattr(target, "__module__", None)
    home = home if isinstance(home, str) else ""
    if directory is not None and _within(home, (package_name(directory),)):
        return
    name = getattr(target, "__qualname__", None) or type(target).__name__
    if not _within(home, SLOTS[slot]) or any(_TEST_PART.fullmatch(part) for part in home.split(".")):
        outside = " and ".join((*SLOTS[slot], "the recipe's own modules"))
        raise RegistryError(f"{where} is {home or 'an object'}.{name}, defined outside {outside}; {allowed(slot)}")
    if name.startswith("_"):
        raise RegistryError(f"{where} is a private name ({home}.{name}); {allowed(slot)}")
    if inspect.isclass(target):
        if issubclass(target, _kind_classes(slot)):
            return
        raise RegistryError(f"{where} is a class, but not a {KINDS[slot]}; {allowed(slot)}")
    if any(target is _listed(function) for function in FUNCTIONS.get(slot, ())):
        return
    raise RegistryError(f"{where} is a function, which a recipe may name only beside it; {allowed(slot)}")


def _listed(function: str):
    module, _, name = function.partition(":")
    return getattr(importlib.import_module(module), name)


def _kind_classes(slot: str) -> tuple[type, ...]:
    import torch
    from torch.optim import lr_scheduler

    schedulers = tuple(c for c in (getattr(lr_scheduler, "LRScheduler", None), getattr(lr_scheduler, "_LRScheduler", None),
                                   lr_scheduler.ReduceLROnPlateau) if c is not None)  # not one base before torch 2.2
    return {"model": (torch.nn.Module,), "loss": (torch.nn.Module,), "optimizer": (torch.optim.Optimizer,),
            "scheduler": schedulers, "dataset": (torch.utils.data.Dataset,), "transform": (object,)}[slot]


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
    """Call `target(*args, **harness_args, **init_args)`; whatever it raises (or exits with) becomes one
    line, at the user's file and line where the error came from the user's code."""
    try:
        return target(*args, **harness_args, **init_args)
    except HarnessError:
        raise
    except BaseException as e:
        if is_signal(e):
            raise
        if directory is not None and user_frame(e, directory) or isinstance(e, (SystemExit, KeyboardInterrupt)):
            raise UserCodeError(describe(e, directory, doing)) from None
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


MAX_CODE_FILES = 10_000  # Python files under one registry directory (a link to / would otherwise walk the disk)


def user_files(directory: Path) -> dict[str, bytes]:
    """The Python files of a registry directory, by path relative to it: the code its recipes import.

    Linked folders are followed, as the import follows them (each real folder once), so a package linked
    in is part of the digest; every file is read only if it is a small regular file, as a recipe is."""
    from .schema import MAX_FILE_BYTES

    root = directory.resolve()
    files: dict[str, bytes] = {}
    seen: set[str] = set()
    for folder, subfolders, names in os.walk(root, followlinks=True):
        real = os.path.realpath(folder)
        if real in seen:
            subfolders[:] = []
            continue
        seen.add(real)
        subfolders[:] = sorted(d for d in subfolders if d != "__pycache__")
        for name in sorted(n for n in names if n.endswith(".py")):
            if len(files) == MAX_CODE_FILES:
                raise RegistryError(f"{directory}: more than {MAX_CODE_FILES:,} Python files under it; keep a recipe's code "
                                    "in a directory of its own")
            path = Path(folder) / name
            files[str(path.relative_to(root))] = safe_files.read_user_file(
                path, MAX_FILE_BYTES, "a module beside a recipe is a Python text file", "a module beside a recipe")
    return files


def code_digest(directory: Path) -> str:
    """SHA-256 of every Python file in a registry directory (path and bytes), the code its recipes import."""
    return files_digest(user_files(directory))


def files_digest(files: dict[str, bytes]) -> str:
    digest = hashlib.sha256()
    for name, data in sorted(files.items()):
        digest.update(name.encode() + b"\0" + data + b"\0")
    return digest.hexdigest()
