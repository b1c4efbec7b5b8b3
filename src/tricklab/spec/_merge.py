"""Apply a variant's overrides to the base recipe.

Tables deep-merge, except that a component table naming a different component (``{name = "l1",
...}`` over ``{name = "l2", ...}``) replaces the base table, whose arguments belong to the other
component. A list given in a variant replaces the base list whole. A quoted key holding a path
(``"model.layers[1].rate"``) sets (replaces) one item and is an error if the path does not exist,
except under a builder's ``model.args``: its names are the builder's keyword arguments, which a
variant may add (``"model.args.width"`` with no ``args`` in the base recipe).
"""

from __future__ import annotations

import copy
import re
from collections.abc import Mapping
from typing import Any

from tricklab.base.errors import SpecError

_PART = re.compile(r"([A-Za-z_][A-Za-z0-9_]*)|\[(\d+)\]")


def is_path(key: str) -> bool:
    return "." in key or "[" in key


def split_path(path: str) -> list[str | int]:
    """``"model.layers[1].rate"`` -> ``["model", "layers", 1, "rate"]``."""
    parts: list[str | int] = []
    for piece in path.split("."):
        if not piece:
            raise SpecError(f"'{path}' is not a valid path: empty part between dots.")
        end = 0
        for match in _PART.finditer(piece):
            if match.start() != end or (match.group(1) and end):
                break
            parts.append(match.group(1) if match.group(1) else int(match.group(2)))
            end = match.end()
        if end != len(piece):
            raise SpecError(
                f"'{path}' is not a valid path. Write names and list indexes like "
                f'"model.layers[1].rate".'
            )
    return parts


def merge(base: Mapping[str, Any], overrides: Mapping[str, Any]) -> dict[str, Any]:
    """A deep copy of ``base`` with ``overrides`` applied (see module docstring)."""
    out = copy.deepcopy(dict(base))
    _apply(out, overrides, [])
    return out


def _apply(target: dict[str, Any], overrides: Mapping[str, Any], where: list[str | int]) -> None:
    plain = {k: v for k, v in overrides.items() if not is_path(k)}
    paths = {k: v for k, v in overrides.items() if is_path(k)}
    for key, value in plain.items():
        if _mergeable(target.get(key), value):
            child = dict(target[key])
            _apply(child, value, [*where, key])
            target[key] = child
        else:
            target[key] = copy.deepcopy(value)
    for key, value in paths.items():  # after plain keys, so a path can refine a replaced table
        set_path(target, split_path(key), value, where)


def set_path(target: Any, parts: list[str | int], value: Any, where: list[str | int]) -> None:
    """Set one item; every step before the last must exist."""
    node = target
    for depth, part in enumerate(parts):
        last = depth == len(parts) - 1
        here = _show([*where, *parts[: depth + 1]])
        if isinstance(part, int):
            if not isinstance(node, list):
                raise SpecError(f"{here}: cannot index {type(node).__name__} with [{part}].")
            if part >= len(node):
                raise SpecError(
                    f"{here}: no such item; the list has {len(node)} item(s) "
                    f"(indexes 0 to {len(node) - 1})."
                )
        elif not isinstance(node, dict):
            raise SpecError(f"{here}: cannot set a key inside a {type(node).__name__}.")
        elif not last and part not in node:
            if not _opens_args([*where, *parts[: depth + 1]], node):
                raise SpecError(f"{here}: no such key in the base recipe.")
            node[part] = {}
        if last:
            node[part] = copy.deepcopy(value)
            return
        node = node[part]


def _opens_args(path: list[str | int], node: dict[str, Any]) -> bool:
    """``model.args`` of a builder model may be created: it is keyword arguments, not schema."""
    return path == ["model", "args"] and "builder" in node


def check_same_model(base: Mapping[str, Any], merged: Mapping[str, Any]) -> None:
    """A variant keeps the base's kind of model: layers stay layers, a builder stays a builder
    (a variant may name another builder)."""
    before, after = base.get("model"), merged.get("model")
    if not isinstance(before, Mapping) or not isinstance(after, Mapping):
        return
    for kept, added in (("layers", "builder"), ("builder", "layers")):
        if kept in before and added in after and added not in before:
            raise SpecError(
                f"model.{added}: a variant cannot switch the base recipe's {kept} model to "
                f"{added}; a study compares one kind of model (write a second study). "
                f"Received: model.{added}={_show_value(after[added])}."
            )


def _show_value(value: Any) -> str:
    if isinstance(value, list):
        return f"[{len(value)} layer(s)]"
    return repr(value)


def _mergeable(base: Any, value: Any) -> bool:
    if not (isinstance(base, Mapping) and isinstance(value, Mapping)):
        return False
    return "name" not in value or base.get("name") == value["name"]


def _show(parts: list[str | int]) -> str:
    out = ""
    for part in parts:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else part)
    return out
