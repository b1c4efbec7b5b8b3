"""Fields holding a validated component of a registry (activation, initializer, ...), shared by
the layer specs (:mod:`tricklab.spec._layers`) and the recipe (:mod:`tricklab.spec._recipe`)."""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import BeforeValidator, PlainSerializer

from tricklab.spec import _validation, components
from tricklab.spec._registry import Component, ComponentError, Registry


def _parse(registry: Registry) -> BeforeValidator:
    """Validates a field's value as a component of ``registry``."""

    def parse(value: Any) -> Component:
        try:
            return registry.parse(value)
        except ComponentError as exc:
            raise _validation.own_error(exc.message, exc.at) from None

    return BeforeValidator(parse)


def _dump(component: Component) -> Any:
    return component.to_dict() if component.args else component.name


# A field holding a validated component of a registry; serialised as name or table.
_DUMP = PlainSerializer(_dump)
Activation = Annotated[Component, _parse(components.ACTIVATIONS), _DUMP]
Regularizer = Annotated[Component, _parse(components.REGULARIZERS), _DUMP]
Constraint = Annotated[Component, _parse(components.CONSTRAINTS), _DUMP]
Initializer = Annotated[Component, _parse(components.INITIALIZERS), _DUMP]
Loss = Annotated[Component, _parse(components.LOSSES), _DUMP]
Optimizer = Annotated[Component, _parse(components.OPTIMIZERS), _DUMP]
Metric = Annotated[Component, _parse(components.METRICS), _DUMP]
