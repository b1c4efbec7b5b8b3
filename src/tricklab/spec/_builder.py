"""A model builder named in a study: ``builder = "models.py:build"`` or ``"package.module:build"``.

A file path is relative to the study file's folder (the cwd for a study given as a dictionary),
like a CSV path; a dotted module path is imported normally. What can be checked without running
the user's code is checked when the study is read: the file exists, parses as Python and defines
the function at its top level. The file's sha256 is bound into the recipe
(:class:`~tricklab.spec.BuilderBinding`), so a run's key changes when the builder's source does,
while ``builder`` stays as written (the store does not depend on where it lives). Calling the
builder needs Keras: :func:`tricklab.engines.build.build_model`.
"""

from __future__ import annotations

import ast
import hashlib
import importlib.util
import re
from pathlib import Path
from typing import NamedTuple

from tricklab.base.errors import SpecError
from tricklab.spec import _validation

_NAME = r"[A-Za-z_][A-Za-z0-9_]*"
_MODULE = re.compile(rf"{_NAME}(\.{_NAME})*")
_FUNCTION = re.compile(_NAME)
#: Arguments tricklab passes itself: ``args`` may not set them.
RESERVED_ARGS = ("input_shape", "outputs")
FORMAT = '"models.py:build" (a file, relative to the study file) or "package.module:build"'


class Reference(NamedTuple):
    """``builder`` split: a file path or a dotted module path, and the function's name."""

    target: str
    function: str
    is_file: bool


def parse(text: str) -> Reference:
    """``"models.py:build"`` -> (``"models.py"``, ``"build"``, file); raises ValueError with the
    rule (the spec's validator words it)."""
    target, colon, function = text.rpartition(":")
    if not colon or not target or not _FUNCTION.fullmatch(function):
        raise ValueError(f"must be {FORMAT}. Received: builder={text!r}.")
    is_file = target.endswith(".py") or "/" in target or "\\" in target
    if not is_file and not _MODULE.fullmatch(target):
        raise ValueError(f"must be {FORMAT}. Received: builder={text!r}.")
    return Reference(target, function, is_file)


def locate(text: str, base_dir: Path | None) -> tuple[Path | None, str | None]:
    """The builder's source file (None for a module that has none) and its sha256; a missing
    file, module or function is a :class:`SpecError` located at ``model.builder``."""
    ref = parse(text)
    if ref.is_file:
        path = Path(ref.target).expanduser()
        if not path.is_absolute():
            path = (base_dir or Path.cwd()) / path
        path = path.resolve()
        if not path.is_file():
            what = "not a file" if path.exists() else "no such file"
            raise _error(text, f"{path}: {what} (a builder file is relative to the study file).")
    else:
        found = _module_file(text, ref.target)
        if found is None:  # a compiled or namespace module: checked when it is imported
            return None, None
        path = found
    try:
        source = path.read_bytes()
    except OSError as exc:
        raise _error(text, f"{path}: cannot read ({exc.strerror}).") from None
    _check_defines(text, path, source, ref.function)
    return (path if ref.is_file else None), hashlib.sha256(source).hexdigest()


def _module_file(text: str, module: str) -> Path | None:
    try:  # imports the parent packages, as the import at build time will
        found = importlib.util.find_spec(module)
    except (ImportError, ValueError) as exc:
        raise _error(text, f"cannot find module '{module}' ({exc}).") from None
    except Exception as exc:  # a parent package's __init__ failed: the user's code
        raise _error(text, f"importing '{module}' raised {type(exc).__name__}: {exc}") from None
    if found is None:
        raise _error(text, f"no module named '{module}' (is it installed or on PYTHONPATH?).")
    origin = found.origin
    if origin and origin.endswith(".py") and Path(origin).is_file():
        return Path(origin)
    return None


def _check_defines(text: str, path: Path, source: bytes, function: str) -> None:
    """The file parses and binds ``function`` at its top level (no code of it runs)."""
    try:
        tree = ast.parse(source, filename=str(path))
    except (SyntaxError, ValueError) as exc:
        line = f" line {exc.lineno}" if isinstance(exc, SyntaxError) and exc.lineno else ""
        message = exc.msg if isinstance(exc, SyntaxError) else str(exc)
        raise _error(text, f"{path}:{line} is not valid Python ({message}).") from None
    names: list[str] = []
    defined: list[str] = []  # functions and classes, listed when the name is not found
    uncertain = False  # if/try/with blocks may bind it: left to the import at build time
    for node in tree.body:
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
            names.append(node.name)
            defined += [] if node.name.startswith("_") else [node.name]
        elif isinstance(node, ast.Assign):
            names += [t.id for t in node.targets if isinstance(t, ast.Name)]
        elif isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name):
            names.append(node.target.id)
        elif isinstance(node, ast.Import | ast.ImportFrom):
            # what a star import binds is known only by running it
            uncertain |= any(alias.name == "*" for alias in node.names)
            names += [(a.asname or a.name).split(".")[0] for a in node.names]
        elif isinstance(node, ast.If | ast.Try | ast.With | ast.For | ast.While):
            uncertain = True
    if function not in names and not uncertain:
        listed = f" It defines: {', '.join(defined)}." if defined else ""
        raise _error(
            text,
            f"{path}: defines no function '{function}'."
            f"{_validation.did_you_mean(function, defined)}{listed}",
        )


def _error(text: str, message: str) -> SpecError:
    return SpecError(f"model.builder: {message} Received: builder={text!r}.")
