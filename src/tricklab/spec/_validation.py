"""Turn pydantic validation errors into tricklab's messages.

Every message has the form ``<path>: <rule>. Received: <field>=<value>.``: the path is written as a
user writes it in a study file (``model.layers[2].units``), the rule comes from the field's
declared type and bounds, so the same field always states the same rule whichever check failed.
"""

from __future__ import annotations

import difflib
import math
import types
import typing
from collections.abc import Mapping, Sequence
from typing import Any, TypeGuard

import annotated_types
from pydantic import BaseModel, ValidationError
from pydantic.fields import FieldInfo
from pydantic_core import PydanticCustomError

from tricklab.base.errors import SpecError

#: Error type used by tricklab's own validators: their message is already complete.
OWN_ERROR = "tricklab"


def own_error(message: str, at: str | int | None = None) -> PydanticCustomError:
    """An error raised from a validator whose message is final.

    ``at`` names the part of the validated value the message is about (``"name"`` for a
    component's name, ``"l2"`` for one of its arguments); it is appended to the located path.
    """
    return PydanticCustomError(OWN_ERROR, "{message}", {"message": message, "at": at})


def check_finite(data: Any) -> None:
    """Refuse inf and nan anywhere in a study (TOML allows them): no field accepts them, and
    Keras would fail on them only when the run trains. The walk is iterative (depth is bounded
    by :func:`tricklab.spec._limits.check_depth`, which runs first)."""
    stack: list[tuple[Any, tuple[str | int, ...]]] = [(data, ())]
    while stack:
        value, path = stack.pop()
        if isinstance(value, float) and not math.isfinite(value):
            raise SpecError(f"{join_path(path)}: must be a finite number. Received: {value}.")
        if isinstance(value, Mapping):
            stack.extend((child, (*path, str(key))) for key, child in value.items())
        elif isinstance(value, list | tuple):
            stack.extend((child, (*path, i)) for i, child in enumerate(value))


def join_path(loc: Sequence[str | int]) -> str:
    """``("model", "layers", 2, "units")`` -> ``"model.layers[2].units"``."""
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += f".{part}" if out else str(part)
    return out


def show(value: Any) -> str:
    """A received value as the user would have typed it."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return repr(value)
    if isinstance(value, dict):
        inner = ", ".join(f"{k} = {show(v)}" for k, v in value.items())
        return "{" + inner + "}"
    if isinstance(value, list | tuple):
        return "[" + ", ".join(show(v) for v in value) + "]"
    return repr(value)


def did_you_mean(word: str, choices: Sequence[str]) -> str:
    close = difflib.get_close_matches(word, list(choices), n=1, cutoff=0.7)
    return f" Did you mean '{close[0]}'?" if close else ""


def one_of(choices: Sequence[str]) -> str:
    return ", ".join(sorted(choices))


def describe_field(info: FieldInfo | None) -> str | None:
    """The rule a field enforces (``"an int >= 0"``); None when it cannot be stated simply."""
    if info is None:
        return None
    annotation, metadata = info.annotation, list(info.metadata)
    if typing.get_origin(annotation) in (typing.Union, types.UnionType):
        args = [a for a in typing.get_args(annotation) if a is not type(None)]
        if len(args) != 1:
            return None
        annotation = args[0]
    if typing.get_origin(annotation) is typing.Annotated:
        annotation, *extra = typing.get_args(annotation)
        metadata += extra
    noun = _NOUNS.get(annotation)
    if noun is None and typing.get_origin(annotation) is typing.Literal:
        noun = "one of " + ", ".join(show(v) for v in typing.get_args(annotation))
    if noun is None:
        return None
    bounds = _bounds(metadata)
    return noun + (" " + bounds if bounds else "")


_NOUNS: dict[Any, str] = {int: "an int", float: "a float", bool: "a bool", str: "a string"}


def _bounds(metadata: list[Any]) -> str:
    lo = hi = None
    for m in metadata:
        if isinstance(m, annotated_types.Ge):
            lo = f"[{m.ge}"
        elif isinstance(m, annotated_types.Gt):
            lo = f"({m.gt}"
        elif isinstance(m, annotated_types.Le):
            hi = f"{m.le}]"
        elif isinstance(m, annotated_types.Lt):
            hi = f"{m.lt})"
    if lo and hi:
        return f"in {lo}, {hi}"
    if lo:
        return (">= " if lo[0] == "[" else "> ") + lo[1:]
    if hi:
        return ("<= " if hi[-1] == "]" else "< ") + hi[:-1]
    return ""


def model_at(
    model: type[BaseModel], raw: Any, loc: Sequence[str | int]
) -> tuple[Any, list[str | int]]:
    """Walk ``loc`` through the model classes and the raw input together.

    Returns the model class (or None) that validates the innermost mapping on the path, and the
    path with pydantic's union-tag elements removed (they are not part of what the user wrote).
    """
    current: Any = model
    data = raw
    clean: list[str | int] = []
    for part in loc:
        if isinstance(data, dict) and part not in data and data.get("type") == part:
            continue  # a discriminated-union tag inserted by pydantic
        clean.append(part)
        annotation = _field_annotation(current, part, data)
        data = _child(data, part)
        current = _resolve(annotation, data)
    return current, clean


def _field_annotation(current: Any, part: str | int, data: Any) -> Any:
    if isinstance(part, int):
        args = typing.get_args(current) if current is not None else ()
        return args[0] if args else None
    if isinstance(current, type) and issubclass(current, BaseModel):
        field = current.model_fields.get(part)
        return field.annotation if field else None
    return None


def _child(data: Any, part: str | int) -> Any:
    if isinstance(data, dict):
        return data.get(part)
    if isinstance(data, list | tuple) and isinstance(part, int) and part < len(data):
        return data[part]
    return None


def _resolve(annotation: Any, data: Any) -> Any:
    """Pick the concrete model out of Optional/Union/Annotated for this data."""
    while typing.get_origin(annotation) is typing.Annotated:
        annotation = typing.get_args(annotation)[0]
    if typing.get_origin(annotation) in (typing.Union, types.UnionType):
        models = [
            a
            for a in typing.get_args(annotation)
            if isinstance(a, type) and issubclass(a, BaseModel)
        ]
        for candidate in models:
            tag = candidate.model_fields.get("type")
            if isinstance(data, dict) and tag is not None and tag.default == data.get("type"):
                return candidate
        others = [a for a in typing.get_args(annotation) if a not in models and a is not type(None)]
        if len(models) == 1:
            return models[0]
        # an optional list (``layers: tuple[Layer, ...] | None``): walk into the list
        return _resolve(others[0], data) if others else None
    return annotation


def translate(error: ValidationError, model: type[BaseModel], raw: Any) -> list[str]:
    """One ``"<path>: <message>"`` line per pydantic error, located by the user's path."""
    return [f"{path}: {text}" if path else text for path, text in problems(error, model, raw)]


def problems(error: ValidationError, model: type[BaseModel], raw: Any) -> list[tuple[str, str]]:
    """``(path, message)`` per pydantic error; a union can repeat a complaint, kept once."""
    items = error.errors(include_url=False)
    deeper = {tuple(item["loc"][:n]) for item in items for n in range(len(item["loc"]))}
    # A list whose items failed also reports "too short": the item errors say more.
    items = [i for i in items if not (i["type"] == "too_short" and tuple(i["loc"]) in deeper)]
    return list(dict.fromkeys(_problem(item, model, raw) for item in items))


def _problem(item: Any, model: type[BaseModel], raw: Any) -> tuple[str, str]:
    kind = item["type"]
    loc = tuple(item["loc"])
    received = item.get("input")
    if kind == OWN_ERROR:
        _, clean = model_at(model, raw, loc)
        at = item["ctx"].get("at")
        return join_path(clean if at is None else [*clean, at]), item["ctx"]["message"]
    if kind == "extra_forbidden":
        parent, clean = model_at(model, raw, loc[:-1])
        key = str(loc[-1])
        known = _fields(parent)
        expected = f" Expected one of: {one_of(known)}." if known else ""
        return join_path(clean), f"unknown key '{key}'.{did_you_mean(key, known)}{expected}"
    if kind == "union_tag_invalid":
        _, clean = model_at(model, raw, loc)
        tags = [t.strip(" '") for t in item["ctx"]["expected_tags"].split(",")]
        tag = item["ctx"]["tag"]
        return join_path([*clean, "type"]), (
            f"unknown layer type '{tag}'.{did_you_mean(tag, tags)} Expected one of: {one_of(tags)}."
        )
    if kind == "union_tag_not_found":
        _, clean = model_at(model, raw, loc)
        return join_path([*clean, "type"]), "is required (the kind of layer, e.g. 'dense')."
    parent, clean = model_at(model, raw, loc[:-1]) if loc else (None, [])
    name = loc[-1] if loc else ""
    path = join_path([*clean, name]) if loc else ""
    if kind == "missing":
        return path, "is required."
    fields = parent.model_fields if _is_model(parent) else {}
    rule = describe_field(fields.get(name)) if isinstance(name, str) else None
    shown = f"{name}={show(received)}" if isinstance(name, str) else show(received)
    if rule is None:
        text = item["msg"].removeprefix("Value error, ")
        text = text[:1].lower() + text[1:]
        return path, f"{text.rstrip('.')}. Received: {shown}."
    return path, f"must be {rule}. Received: {shown}."


def _is_model(value: object) -> TypeGuard[type[BaseModel]]:
    return isinstance(value, type) and issubclass(value, BaseModel)


def _fields(model: Any) -> list[str]:
    """The keys a user may write for ``model`` (a model can hide internal fields)."""
    if not _is_model(model):
        return []
    return list(getattr(model, "USER_KEYS", None) or model.model_fields)
