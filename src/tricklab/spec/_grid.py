"""Expand a study's ``[grid]`` table into named variants.

Each key of ``[grid]`` is an axis; the variants are the product of the axes. An axis is one of:

``"model.layers[0].activation" = ["relu", "tanh"]``
    a path and its values; the axis label is the path's last name (``activation``).
``width = {path = "model.layers[1].units", values = [32, 64]}``
    the same with a label of your choice.
``act = {paths = ["model.layers[1].activation", "model.layers[2].activation"], values = [...]}``
    one value set in several fields at once (the same activation in every hidden layer).
``opt = {options = {adam = {"train.optimizer" = "adam"}, sgd = {...}}}``
    named options, each a table of overrides like a variant's.

With one axis a variant is named by its value (``relu``); with several, by ``label=value`` joined
with ``_`` (``width=64_depth=2``). A component table as a value is named by its name and argument
values (``{name = "leaky_relu", negative_slope = 0.1}`` -> ``leaky_relu-0.1``).
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Mapping
from typing import Any

from tricklab.base.errors import SpecError
from tricklab.spec._limits import name_problem, received_name

Axis = tuple[str, list[tuple[str, dict[str, Any]]]]  # label, [(value label, overrides)]


def count(grid: Any) -> int:
    """How many variants ``grid`` expands into: the product of its axes' lengths, computed
    without building them (a malformed axis counts 1; :func:`expand` reports it)."""
    if not grid or not isinstance(grid, Mapping):
        return 0
    return math.prod(_length(value) for value in grid.values())


def _length(axis: Any) -> int:
    if isinstance(axis, Mapping):
        axis = axis.get("options") if "options" in axis else axis.get("values")
    return len(axis) if isinstance(axis, Mapping | list) else 1


def expand(grid: Any, *, taken: set[str]) -> dict[str, dict[str, Any]]:
    """Variant name -> overrides, in grid order."""
    if not grid:
        return {}
    if not isinstance(grid, Mapping):
        raise SpecError("grid: must be a table of axes (see the README, 'Grids').")
    axes = [_axis(key, value) for key, value in grid.items()]
    variants: dict[str, dict[str, Any]] = {}
    for combination in itertools.product(*(choices for _, choices in axes)):
        if len(axes) == 1:
            name = combination[0][0]
        else:
            name = "_".join(
                f"{label}={value}" for (label, _), (value, _) in zip(axes, combination, strict=True)
            )
        _check_name("grid", name)
        overrides: dict[str, Any] = {}
        for _, choice in combination:
            overrides.update(choice)
        if name in taken or name in variants:
            raise SpecError(
                f"grid: the variant name '{name}' is used twice; rename a [variants] table or "
                "give the axis a label, e.g. width = {path = ..., values = [...]}."
            )
        variants[name] = overrides
    return variants


def _axis(key: str, value: Any) -> Axis:
    where = f"grid.{key}" if "." not in key else f'grid."{key}"'
    if isinstance(value, list):
        return _paths_axis(where, key.rsplit(".", 1)[-1], [key], value)
    if not isinstance(value, Mapping):
        raise SpecError(
            f"{where}: must be a list of values, or a table with path/paths and values, or "
            f"options. Received: {value!r}."
        )
    unknown = set(value) - {"path", "paths", "values", "options"}
    if unknown:
        raise SpecError(
            f"{where}: unknown key '{sorted(unknown)[0]}'. Expected one of: options, path, "
            "paths, values."
        )
    if "options" in value:
        return key, _options(where, value["options"])
    if "path" in value:
        paths = [value["path"]]
    elif "paths" in value:
        paths = value["paths"]
    else:
        raise SpecError(f"{where}: needs path (or paths) and values, or options.")
    if not isinstance(paths, list) or not paths or not all(isinstance(p, str) for p in paths):
        raise SpecError(f"{where}.paths: must be a non-empty list of paths. Received: {paths!r}.")
    return _paths_axis(where, key, paths, value.get("values"))


def _paths_axis(where: str, label: str, paths: list[str], values: Any) -> Axis:
    if not isinstance(values, list) or not values:
        raise SpecError(f"{where}: values must be a non-empty list. Received: {values!r}.")
    choices = [(_check_name(where, _label(where, v)), {p: v for p in paths}) for v in values]
    labels = [c[0] for c in choices]
    if len(set(labels)) != len(labels):
        raise SpecError(f"{where}: values must be distinct. Received: {values!r}.")
    return label, choices


def _options(where: str, options: Any) -> list[tuple[str, dict[str, Any]]]:
    if not isinstance(options, Mapping) or not options:
        raise SpecError(f"{where}.options: must be a table of named override tables.")
    out = []
    for name, overrides in options.items():
        if not isinstance(overrides, Mapping):
            raise SpecError(
                f"{where}.options.{name}: must be a table of overrides. Received: {overrides!r}."
            )
        out.append((_check_name(where, name), dict(overrides)))
    return out


def _check_name(where: str, name: str) -> str:
    """A value label or a variant name made of labels: it names a run directory."""
    problem = name_problem(name)
    if problem is not None:
        raise SpecError(
            f"{where}: variant names may use {problem} (they name run directories). "
            f"Received: {received_name(name)}."
        )
    return name


def _label(where: str, value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str | int | float):
        return str(value)
    if isinstance(value, Mapping) and isinstance(value.get("name"), str):
        args = [_label(where, v) for k, v in sorted(value.items()) if k != "name"]
        return "-".join([value["name"], *args])
    raise SpecError(
        f"{where}: cannot name a variant after the value {value!r}; use named options "
        "instead: {options = {name = {...}}}."
    )
