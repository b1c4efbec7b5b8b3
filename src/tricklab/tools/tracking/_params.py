"""A run's recipe as tracking parameters: the fields the study varies, as dotted keys.

A recipe is nested (``{"model": {"layers": [{...}, {...}]}, "train": {...}}``); trackers want
flat ``key = value`` strings. :func:`flatten` gives every leaf a dotted key with list positions
as numbers (``model.layers.1.rate``, ``train.optimizer.learning_rate``). :func:`varying_keys`
keeps the keys on which some run differs from the study's base recipe, so every run of a study
carries the same parameter names, each with its own value, and the baseline shows its loss next
to the variants' losses. A key that a run's recipe lacks (no early stopping, fewer layers) has
the value :data:`ABSENT`. No tracking library is imported here.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping
from typing import Any

#: The value of a key that a run's recipe does not have.
ABSENT = "None"
#: Characters MLflow accepts in parameter and metric names (besides letters and digits).
_NOT_ALLOWED = re.compile(r"[^/\w.\- ]")


def flatten(value: Any, *, prefix: str = "") -> dict[str, str]:
    """Every leaf of ``value`` by dotted path; empty tables and lists are leaves ``{}``, ``[]``."""
    if isinstance(value, Mapping) and value:
        items: Iterable[tuple[Any, Any]] = value.items()
    elif isinstance(value, list | tuple) and value:
        items = enumerate(value)
    else:
        return {prefix: _text(value)}
    out: dict[str, str] = {}
    for name, item in items:
        key = clean_key(str(name))
        out.update(flatten(item, prefix=f"{prefix}.{key}" if prefix else key))
    return out


def recipe_params(recipe: Mapping[str, Any]) -> dict[str, str]:
    """A stored run recipe flattened, without ``model.bound`` (tricklab's record of a builder's
    file: the same for every run, and a machine's absolute path)."""
    model = recipe.get("model")
    if isinstance(model, Mapping) and "bound" in model:
        recipe = {**recipe, "model": {k: v for k, v in model.items() if k != "bound"}}
    return flatten(recipe)


def clean_key(name: str) -> str:
    """``name`` with the characters MLflow refuses in names replaced by ``_``."""
    return _NOT_ALLOWED.sub("_", name)


def varying_keys(base: Mapping[str, str], runs: Iterable[Mapping[str, str]]) -> list[str]:
    """The keys on which at least one flattened run recipe differs from the flattened ``base``."""
    keys: set[str] = set()
    for flat in runs:
        keys.update(k for k in flat.keys() | base.keys() if flat.get(k) != base.get(k))
    return sorted(keys)


def run_params(flat: Mapping[str, str], keys: Iterable[str], *, limit: int) -> dict[str, str]:
    """``flat``'s value for each of ``keys`` (:data:`ABSENT` where missing), cut to ``limit``."""
    return {key: _cut(flat.get(key, ABSENT), limit) for key in keys}


def _text(value: Any) -> str:
    # Strings as written; numbers, booleans and empty containers as in JSON (true, 0.001, {}).
    return value if isinstance(value, str) else json.dumps(value)


def _cut(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 3] + "..."
