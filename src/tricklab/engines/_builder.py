"""Calling a study's model builder (``builder = "models.py:build"``, README "[model]: builder").

The builder is imported (a file by its path, a module normally) and called as
``build(input_shape, outputs, **args)`` right where a layers model is built: after the run's
seed is set. Whatever goes wrong (the import, the call, what it returns) is one located
:class:`SpecError` line naming the file, the function and what it returned, so the command line
exits 2 without a traceback; the model must be a ``keras.Model`` whose output shape is
``(None, outputs)``. tricklab adds no output activation: the builder's model carries its own.
"""

from __future__ import annotations

import hashlib
import importlib
import importlib.util
import sys
from collections.abc import Callable
from pathlib import Path
from types import ModuleType
from typing import Any

from tricklab.base import backend as _backend
from tricklab.base.errors import SpecError
from tricklab.spec import ModelSpec

#: Imported builder files, by path and source digest (an edited file is imported again).
_MODULES: dict[tuple[str, str], ModuleType] = {}


def call_builder(model: ModelSpec, input_shape: tuple[int, ...]) -> Any:
    """The builder's model for ``input_shape``, checked (see the module docstring)."""
    bound = model.bound
    if bound is None or bound.outputs is None:  # bound when the study is read and resolved
        raise SpecError(
            f"model.builder: {model.builder!r} was not located and resolved on a dataset "
            "(build a builder recipe from a study: tricklab.data.resolve)."
        )
    outputs = bound.outputs
    args = model.builder_args()
    shown = _shown(model, bound.file)
    call = ", ".join(
        [f"input_shape={input_shape}", f"outputs={outputs}"]
        + [f"{k}={v!r}" for k, v in args.items()]
    )
    function = _function(model, bound.file, shown)
    try:
        built = function(input_shape, outputs, **args)
    except Exception as exc:  # the user's code: one line, not a traceback
        raise _error(f"{shown}({call}) raised {type(exc).__name__}: {_first_line(exc)}") from None
    _check(built, shown, call, outputs, input_shape)
    return built


def _check(built: Any, shown: str, call: str, outputs: int, input_shape: tuple[int, ...]) -> None:
    keras = _backend.keras()
    expected = f"an uncompiled keras.Model with output shape (None, {outputs})"
    if not isinstance(built, keras.Model):
        received = f"{type(built).__name__} {_short(built)}"
        raise _error(f"{shown}({call}) returned {received}; expected {expected}.")
    try:
        shape = built.output_shape
    except (AttributeError, ValueError, RuntimeError):  # a subclassed model not yet built
        try:
            shape = built.compute_output_shape((None, *input_shape))
        except Exception:
            shape = None
    if not _is_shape(shape, outputs):
        raise _error(
            f"{shown}({call}) returned a model with output shape {shape}; expected {expected}."
        )


def _is_shape(shape: Any, outputs: int) -> bool:
    if not isinstance(shape, tuple | list) or len(shape) != 2:
        return False
    return shape[0] is None and shape[1] == outputs


def _function(model: ModelSpec, file: str | None, shown: str) -> Callable[..., Any]:
    reference = str(model.builder)
    target, _, name = reference.rpartition(":")
    module = _module(target, file, shown)
    function = getattr(module, name, None)
    if function is None:
        raise _error(f"{shown}: the module defines no '{name}'.")
    if not callable(function):
        kind = type(function).__name__
        raise _error(f"{shown}: '{name}' is a {kind} {_short(function)}, not a function.")
    return function  # type: ignore[no-any-return]


def _module(target: str, file: str | None, shown: str) -> Any:
    try:
        if file is None:  # a dotted module path, imported normally
            return importlib.import_module(target)
        digest = hashlib.sha256(Path(file).read_bytes()).hexdigest()
        key = (file, digest)
        if key not in _MODULES:  # once per process and source: an edited file is new
            _MODULES[key] = _import_file(file, f"tricklab_builder_{digest[:16]}")
        return _MODULES[key]
    except OSError as exc:
        raise _error(f"{shown}: cannot read {file} ({exc.strerror}).") from None
    except Exception as exc:  # the user's module failed while importing
        raise _error(
            f"{shown}: importing it raised {type(exc).__name__}: {_first_line(exc)}"
        ) from None


def _import_file(file: str, module_name: str) -> ModuleType:
    spec = importlib.util.spec_from_file_location(module_name, file)
    if spec is None or spec.loader is None:
        raise ImportError(f"cannot import {file}")
    module = importlib.util.module_from_spec(spec)
    sys.modules[module_name] = module  # dataclasses and pickling look modules up by name
    try:
        spec.loader.exec_module(module)
    except BaseException:
        del sys.modules[module_name]
        raise
    return module


def _shown(model: ModelSpec, file: str | None) -> str:
    """``/path/models.py:build`` (the file as found), or the dotted reference as written."""
    name = str(model.builder).rpartition(":")[2]
    return f"{file}:{name}" if file else str(model.builder)


def _error(message: str) -> SpecError:
    return SpecError(f"model.builder: {message}")


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[0] if text else "(no message)"


def _short(value: Any) -> str:
    text = " ".join(repr(value).split())  # one line, whatever the object prints
    return f"({text[:60]}...)" if len(text) > 60 else f"({text})"
