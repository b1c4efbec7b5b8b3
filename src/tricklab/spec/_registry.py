"""Registries: one ``get()`` per kind of training component.

A registry maps names to Keras classes and knows each one's arguments, so a study file is checked
completely when it is read, without importing Keras. Like ``keras.regularizers.get`` but stricter:
``get`` accepts a name (``"l2"``), a table (``{"name": "l2", "l2": 0.01}``), a :class:`Component`
or a Keras object; an unknown name or argument lists what is accepted.

``parse`` validates and returns a :class:`Component` (plain data, used in specs and run keys);
``get`` and ``build`` return the Keras object and import Keras on first use.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from pydantic import BaseModel, ConfigDict, ValidationError, create_model

from tricklab.base.errors import TricklabError
from tricklab.spec import _validation


@dataclass(frozen=True)
class Component:
    """A validated component: a registered name and the arguments given for it."""

    kind: str
    name: str
    args: Mapping[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        """The canonical table form, ``{"name": ..., **args}`` (nested components as tables)."""
        out: dict[str, Any] = {"name": self.name}
        for key, value in sorted(self.args.items()):
            out[key] = value.to_dict() if isinstance(value, Component) else value
        return out

    def __str__(self) -> str:
        if not self.args:
            return self.name
        inner = ", ".join(
            f"{k}={_validation.show(v)}" for k, v in sorted(self.to_dict().items()) if k != "name"
        )
        return f"{self.name}({inner})"


class ComponentError(TricklabError):
    """A bad component; ``at`` is the part of the value it is about (``"name"``, an argument)."""

    def __init__(self, message: str, at: str | None = None) -> None:
        self.message = message
        self.at = at
        super().__init__(f"{at}: {message}" if at else message)


@dataclass(frozen=True)
class Nested:
    """An argument whose value is itself a component of another registry (or a plain number)."""

    registry: Registry
    number_ok: bool = True


@dataclass(frozen=True)
class Entry:
    """One registered component.

    ``target`` is the dotted path of the Keras callable; ``params`` maps each accepted argument to
    its type (``Annotated`` bounds become part of the error message) or a :class:`Nested`.
    ``build`` replaces the default construction ``target(**args)``.
    """

    name: str
    target: str
    params: Mapping[str, Any] = field(default_factory=dict)
    aliases: tuple[str, ...] = ()
    required: tuple[str, ...] = ()
    build: Callable[[Component], Any] | None = None


class _Args(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)


class Registry:
    """Named components of one kind (``"regularizer"``, ``"loss"``, ...).

    Every registry is findable by its kind (:meth:`of_kind`), so a component nested in another
    (a schedule as an optimizer's learning rate) is built by its own registry without this
    module importing the registries themselves.
    """

    _by_kind: dict[str, Registry] = {}  # noqa: RUF012 - the registries, filled as they are made

    def __init__(self, kind: str, entries: Iterable[Entry]) -> None:
        self.kind = kind
        Registry._by_kind[kind] = self
        self._entries: dict[str, Entry] = {}
        self._aliases: dict[str, str] = {}
        self._arg_models: dict[str, type[BaseModel]] = {}
        for entry in entries:
            self.register(entry)

    @classmethod
    def of_kind(cls, kind: str) -> Registry:
        """The registry of ``kind`` (``"schedule"``, ...)."""
        return cls._by_kind[kind]

    def register(self, entry: Entry) -> None:
        if entry.name in self._entries or entry.name in self._aliases:
            raise ValueError(f"{self.kind} '{entry.name}' is registered twice")
        self._entries[entry.name] = entry
        for alias in entry.aliases:
            self._aliases[alias] = entry.name
        plain = {k: v for k, v in entry.params.items() if not isinstance(v, Nested)}
        # Any values: mypy checks a **dict against create_model's own __config__, __doc__, ...
        fields: dict[str, Any] = {k: (v | None, None) for k, v in plain.items()}
        self._arg_models[entry.name] = create_model(f"{entry.name}_args", __base__=_Args, **fields)

    # -- lookup ---------------------------------------------------------------------------
    def names(self) -> list[str]:
        return sorted(self._entries)

    def __contains__(self, name: object) -> bool:
        return name in self._entries or name in self._aliases

    def entry(self, name: str) -> Entry:
        canonical = self._aliases.get(name, name)
        if canonical not in self._entries:
            raise ComponentError(self._unknown(name))
        return self._entries[canonical]

    def _unknown(self, name: Any) -> str:
        hint = _validation.did_you_mean(str(name), self.names()) if isinstance(name, str) else ""
        return (
            f"unknown {self.kind} {_validation.show(name)}.{hint} "
            f"Expected one of: {', '.join(self.names())}."
        )

    # -- validation (no Keras) -------------------------------------------------------------
    def parse(self, value: Any) -> Component:
        """Validate a name, table, Component or Keras object into a :class:`Component`."""
        if isinstance(value, Component):
            if value.kind != self.kind:
                raise ComponentError(f"expected a {self.kind}, received a {value.kind}")
            return value
        if isinstance(value, str):
            self.entry(value)  # an unknown name is reported at the field itself
            return self._parse_table({"name": value})
        if isinstance(value, Mapping):
            return self._parse_table(value)
        if _is_keras_object(value):
            return self._from_object(value)
        raise ComponentError(
            f"must be a {self.kind} name or a table {{name = ..., ...}}. "
            f"Received: {_validation.show(value)}."
        )

    def _parse_table(self, table: Mapping[str, Any]) -> Component:
        if "name" not in table:
            raise ComponentError(
                f"is required (a {self.kind} table needs a name). "
                f"Expected one of: {', '.join(self.names())}.",
                at="name",
            )
        name = table["name"]
        if not isinstance(name, str) or name not in self:
            raise ComponentError(self._unknown(name), at="name")
        entry = self.entry(name)
        given = {k: v for k, v in table.items() if k != "name"}
        missing = [key for key in entry.required if key not in given]
        if missing:
            raise ComponentError(
                f"{self.kind} '{entry.name}' needs {', '.join(missing)}. "
                f'Give it as a table, e.g. {{name = "{entry.name}", {missing[0]} = ...}}.',
                at=missing[0],
            )
        for key in given:
            if key not in entry.params:
                accepted = ", ".join(sorted(entry.params)) or "no arguments"
                hint = _validation.did_you_mean(key, list(entry.params))
                raise ComponentError(
                    f"unknown argument '{key}' for {self.kind} '{entry.name}'.{hint} "
                    f"Accepted: {accepted}.",
                    at=key,
                )
        args: dict[str, Any] = {}
        plain = {}
        for key, value in given.items():
            kind = entry.params[key]
            if isinstance(kind, Nested):
                args[key] = self._parse_nested(kind, key, value)
            else:
                plain[key] = value
        try:
            checked = self._arg_models[entry.name].model_validate(plain)
        except ValidationError as exc:
            path, message = _validation.problems(exc, self._arg_models[entry.name], plain)[0]
            raise ComponentError(message, at=path) from None
        args.update({k: getattr(checked, k) for k in plain})
        return Component(self.kind, entry.name, args)

    @staticmethod
    def _parse_nested(kind: Nested, key: str, value: Any) -> Any:
        if kind.number_ok and isinstance(value, int | float) and not isinstance(value, bool):
            if value <= 0:
                raise ComponentError(
                    f"must be a number > 0 or a {kind.registry.kind} table. "
                    f"Received: {key}={_validation.show(value)}.",
                    at=key,
                )
            return float(value)
        try:
            return kind.registry.parse(value)
        except ComponentError as exc:
            at = f"{key}.{exc.at}" if exc.at else key
            raise ComponentError(exc.message, at=at) from None

    def _from_object(self, obj: Any) -> Component:
        cls = obj if isinstance(obj, type) else type(obj)
        for entry in self._entries.values():
            if entry.target.rsplit(".", 1)[-1] in (cls.__name__, getattr(obj, "__name__", None)):
                config = obj.get_config() if hasattr(obj, "get_config") else {}
                table = {k: v for k, v in config.items() if k in entry.params and v is not None}
                return self._parse_table({"name": entry.name, **table})
        raise ComponentError(
            f"{cls.__name__} is not a registered {self.kind}. "
            f"Expected one of: {', '.join(self.names())}."
        )

    # -- construction (imports Keras) ------------------------------------------------------
    def get(self, value: Any) -> Any:
        """The Keras object for a name, table, Component or Keras object."""
        if _is_keras_object(value) and not isinstance(value, type):
            self.parse(value)  # only registered kinds are accepted
            return value
        return self.build(self.parse(value))

    def build(self, component: Component) -> Any:
        entry = self.entry(component.name)
        if entry.build is not None:
            return entry.build(component)
        return resolve(entry.target)(**build_args(component))


def build_args(component: Component) -> dict[str, Any]:
    """Keyword arguments for the Keras constructor, nested components built."""
    out = {}
    for key, value in component.args.items():
        if isinstance(value, Component):
            value = Registry.of_kind(value.kind).build(value)
        out[key] = value
    return out


def resolve(target: str) -> Any:
    """Import ``"keras.regularizers.L2"`` (Keras with tricklab's backend choice)."""
    from tricklab.base import backend as _backend

    _backend.keras()
    module, _, attr = target.rpartition(".")
    return getattr(importlib.import_module(module), attr)


def _is_keras_object(value: Any) -> bool:
    module = getattr(value if isinstance(value, type) else type(value), "__module__", "") or ""
    if callable(value) and getattr(value, "__module__", "").startswith("keras"):
        return True
    return module.startswith(("keras", "tricklab"))
