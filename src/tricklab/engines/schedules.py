"""The one-cycle policy: a learning-rate schedule and the momentum cycle that goes with it.

fastai's ``fit_one_cycle`` (Smith 2018, "A disciplined approach to neural network
hyper-parameters"): over the first ``pct_start`` of ``total_steps`` the learning rate rises along a
half cosine from ``max_learning_rate / div_factor`` to ``max_learning_rate``, then falls along a
half cosine to ``max_learning_rate / (div_factor * final_div_factor)`` (PyTorch's ``OneCycleLR``
convention for the final value). Momentum moves the other way: from ``max_momentum`` down to
``base_momentum`` while the learning rate warms up, and back up while it anneals.

In a study file::

    optimizer = {name = "adam", learning_rate = {name = "one_cycle", max_learning_rate = 0.01,
                 total_steps = 5000}}

Momentum cycling cannot be done with a callback that assigns ``optimizer.beta_1``: Keras reads
``beta_1`` / ``momentum`` as Python floats while it traces the train step, so under ``jit`` (JAX,
``tf.function``) the value at compile time is baked into the compiled step and later assignments
are ignored. :func:`apply_momentum_cycle` therefore swaps the optimizer for a small subclass
(:class:`OneCycleAdam`, :class:`OneCycleSGD`, ...) that computes the momentum from the step
counter *inside* the compiled step, with the same cosine schedule as the learning rate, and
records the value each step used in the optimizer variable ``cycled_momentum``.

This module defines Keras classes and so imports Keras: import it lazily.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any

from tricklab.base import backend as _backend

keras = _backend.keras()
ops = keras.ops

# Keras is untyped: its classes are `Any` to mypy, named here so they can be subclassed.
_LearningRateSchedule: Any = keras.optimizers.schedules.LearningRateSchedule
_Adam: Any = keras.optimizers.Adam
_AdamW: Any = keras.optimizers.AdamW
_Adamax: Any = keras.optimizers.Adamax
_Nadam: Any = keras.optimizers.Nadam
_Lamb: Any = keras.optimizers.Lamb
_Lion: Any = keras.optimizers.Lion
_SGD: Any = keras.optimizers.SGD
_RMSprop: Any = keras.optimizers.RMSprop

if TYPE_CHECKING:
    # What _CycledMomentum is mixed into: a Keras optimizer (untyped). At run time the mixin
    # derives from object only; the optimizer comes second in each subclass's bases.
    _MixedIntoOptimizer: Any
else:
    _MixedIntoOptimizer = object

__all__ = [
    "OneCycle",
    "OneCycleAdam",
    "OneCycleAdamW",
    "OneCycleAdamax",
    "OneCycleLamb",
    "OneCycleLion",
    "OneCycleNadam",
    "OneCycleRMSprop",
    "OneCycleSGD",
    "apply_momentum_cycle",
    "cosine_between",
]


def cosine_between(start: float, end: float, fraction: float) -> float:
    """Half-cosine interpolation (fastai's ``sched_cos``): ``start`` at 0, ``end`` at 1."""
    return end + (start - end) * (1.0 + math.cos(math.pi * fraction)) / 2.0


@keras.saving.register_keras_serializable(package="tricklab")
class OneCycle(_LearningRateSchedule):
    """fastai's one-cycle learning rate (and momentum) schedule.

    The step is the optimizer's iteration count, starting at 0. With ``w = pct_start *
    total_steps``: steps ``0..w`` warm up from ``max_learning_rate / div_factor`` to
    ``max_learning_rate`` (reached at step ``w``), steps ``w..total_steps`` anneal to
    ``max_learning_rate / (div_factor * final_div_factor)`` (reached at step ``total_steps``;
    later steps stay there). Positions are ``step / total_steps`` as in fastai, so the last
    step of a run of ``total_steps`` steps uses a rate just above the final one.

    :meth:`momentum` gives the matching momentum (``max_momentum`` -> ``base_momentum`` ->
    ``max_momentum``); it is used when :func:`apply_momentum_cycle` wraps the optimizer and
    ``cycle_momentum`` is true.
    """

    def __init__(
        self,
        max_learning_rate: float,
        total_steps: int,
        pct_start: float = 0.25,
        div_factor: float = 25.0,
        final_div_factor: float = 1e4,
        base_momentum: float = 0.85,
        max_momentum: float = 0.95,
        cycle_momentum: bool = True,
        name: str = "OneCycle",
    ) -> None:
        super().__init__()
        checks = (
            (max_learning_rate > 0, "max_learning_rate", "> 0", max_learning_rate),
            (int(total_steps) == total_steps and total_steps >= 1, "total_steps", "an int >= 1",
             total_steps),
            (0 <= pct_start < 1, "pct_start", "in [0, 1)", pct_start),
            (div_factor > 0, "div_factor", "> 0", div_factor),
            (final_div_factor > 0, "final_div_factor", "> 0", final_div_factor),
            (0 <= base_momentum < 1, "base_momentum", "in [0, 1)", base_momentum),
            (0 <= max_momentum < 1, "max_momentum", "in [0, 1)", max_momentum),
        )  # fmt: skip
        for ok, argument, rule, value in checks:
            if not ok:
                raise ValueError(f"OneCycle: `{argument}` must be {rule}. Received: {value!r}.")
        self.max_learning_rate = float(max_learning_rate)
        self.total_steps = int(total_steps)
        self.pct_start = float(pct_start)
        self.div_factor = float(div_factor)
        self.final_div_factor = float(final_div_factor)
        self.base_momentum = float(base_momentum)
        self.max_momentum = float(max_momentum)
        self.cycle_momentum = bool(cycle_momentum)
        self.name = name

    # -- closed form (Python floats) ----------------------------------------------------------
    @property
    def initial_learning_rate(self) -> float:
        return self.max_learning_rate / self.div_factor

    @property
    def final_learning_rate(self) -> float:
        return self.initial_learning_rate / self.final_div_factor

    @property
    def peak_step(self) -> float:
        """The step at which the learning rate is ``max_learning_rate`` (``pct_start * total``)."""
        return self.pct_start * self.total_steps

    # -- tensors (usable inside jit) ------------------------------------------------------------
    def __call__(self, step: Any) -> Any:
        with keras.name_scope(self.name):
            return self._cycle(
                step, self.initial_learning_rate, self.max_learning_rate, self.final_learning_rate
            )

    def momentum(self, step: Any) -> Any:
        """The momentum (``beta_1`` for Adam-like optimizers) at ``step``, as a float32 tensor."""
        with keras.name_scope(f"{self.name}_momentum"):
            return self._cycle(step, self.max_momentum, self.base_momentum, self.max_momentum)

    def _cycle(self, step: Any, start: float, middle: float, end: float) -> Any:
        step = ops.cast(step, "float32")
        warm = self.peak_step
        rising = ops.clip(step / max(warm, 1e-12), 0.0, 1.0)
        falling = ops.clip((step - warm) / (self.total_steps - warm), 0.0, 1.0)
        up = _cosine(start, middle, rising)
        down = _cosine(middle, end, falling)
        return ops.where(step < warm, up, down)

    def get_config(self) -> dict[str, Any]:
        return {
            "max_learning_rate": self.max_learning_rate,
            "total_steps": self.total_steps,
            "pct_start": self.pct_start,
            "div_factor": self.div_factor,
            "final_div_factor": self.final_div_factor,
            "base_momentum": self.base_momentum,
            "max_momentum": self.max_momentum,
            "cycle_momentum": self.cycle_momentum,
            "name": self.name,
        }


def _cosine(start: float, end: float, fraction: Any) -> Any:
    """:func:`cosine_between` on a tensor ``fraction``."""
    return end + (start - end) * (1.0 + ops.cos(math.pi * fraction)) / 2.0


# -- momentum cycling ----------------------------------------------------------------------------
class _CycledMomentum(_MixedIntoOptimizer):
    """Mixin for a Keras optimizer whose momentum follows ``one_cycle.momentum(step)``.

    The momentum is computed from the optimizer's step counter inside ``_backend_update_step``
    -- part of the traced (jit-compiled) train step on every backend -- and stored in the
    optimizer variable ``cycled_momentum`` (the value the latest step used). Optimizers that
    read ``beta_1`` only as a number (the Adam family, Lion) get a tensor in its place for the
    duration of the step; SGD and RMSprop, which test ``momentum != 0`` in Python, get their own
    ``update_step``.
    """

    _swap_attribute: str | None = "beta_1"

    def __init__(self, *args: Any, one_cycle: Any = None, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        if isinstance(one_cycle, dict):
            one_cycle = keras.saving.deserialize_keras_object(one_cycle)
        if one_cycle is None:
            one_cycle = self._learning_rate
        if not isinstance(one_cycle, OneCycle):
            raise ValueError(
                f"{type(self).__name__} needs a OneCycle schedule (`one_cycle`, or as its "
                f"learning rate). Received: {one_cycle!r}."
            )
        self.one_cycle = one_cycle
        self._step_momentum: Any = None

    def build(self, variables: Any) -> None:
        if self.built:
            return
        super().build(variables)
        self._cycled_momentum = self.add_variable(
            shape=(), initializer="zeros", dtype="float32", name="cycled_momentum"
        )

    @property
    def cycled_momentum(self) -> Any:
        """The optimizer variable holding the momentum the latest step used."""
        return self._cycled_momentum

    def _backend_update_step(self, grads: Any, trainable_variables: Any, learning_rate: Any) -> Any:
        # The same counter the learning rate schedule reads (BaseOptimizer._get_current_...).
        momentum = self.one_cycle.momentum(self._iterations)
        self._cycled_momentum.assign(momentum)
        self._step_momentum = momentum
        attribute = self._swap_attribute
        fixed = getattr(self, attribute) if attribute else None
        try:
            if attribute:
                setattr(self, attribute, momentum)
            return super()._backend_update_step(grads, trainable_variables, learning_rate)
        finally:
            if attribute:
                setattr(self, attribute, fixed)
            self._step_momentum = None

    def get_config(self) -> dict[str, Any]:
        config: dict[str, Any] = super().get_config()
        config["one_cycle"] = keras.saving.serialize_keras_object(self.one_cycle)
        return config


_serializable = keras.saving.register_keras_serializable(package="tricklab")


@_serializable
class OneCycleAdam(_CycledMomentum, _Adam):
    """``keras.optimizers.Adam`` with ``beta_1`` following the one-cycle momentum schedule."""


@_serializable
class OneCycleAdamW(_CycledMomentum, _AdamW):
    """``keras.optimizers.AdamW`` with ``beta_1`` following the one-cycle momentum schedule."""


@_serializable
class OneCycleAdamax(_CycledMomentum, _Adamax):
    """``keras.optimizers.Adamax`` with ``beta_1`` following the one-cycle momentum schedule."""


@_serializable
class OneCycleNadam(_CycledMomentum, _Nadam):
    """``keras.optimizers.Nadam`` with ``beta_1`` following the one-cycle momentum schedule."""


@_serializable
class OneCycleLamb(_CycledMomentum, _Lamb):
    """``keras.optimizers.Lamb`` with ``beta_1`` following the one-cycle momentum schedule."""


@_serializable
class OneCycleLion(_CycledMomentum, _Lion):
    """``keras.optimizers.Lion`` with ``beta_1`` following the one-cycle momentum schedule."""


@_serializable
class OneCycleSGD(_CycledMomentum, _SGD):
    """``keras.optimizers.SGD`` with ``momentum`` following the one-cycle momentum schedule.

    ``momentum`` itself must be non-zero so that Keras creates the momentum slots;
    :func:`apply_momentum_cycle` sets it to ``max_momentum`` when it is 0. Its value is not used.
    """

    _swap_attribute = None

    def update_step(self, gradient: Any, variable: Any, learning_rate: Any) -> None:
        # keras.optimizers.SGD.update_step with the momentum of this step.
        lr = ops.cast(learning_rate, variable.dtype)
        gradient = ops.cast(gradient, variable.dtype)
        momentum = ops.cast(self._step_momentum, variable.dtype)
        m = self.momentums[self._get_variable_index(variable)]
        self.assign(m, ops.subtract(ops.multiply(m, momentum), ops.multiply(gradient, lr)))
        if self.nesterov:
            self.assign_add(
                variable,
                ops.subtract(ops.multiply(m, momentum), ops.multiply(gradient, lr)),
            )
        else:
            self.assign_add(variable, m)


@_serializable
class OneCycleRMSprop(_CycledMomentum, _RMSprop):
    """``keras.optimizers.RMSprop`` with ``momentum`` following the one-cycle momentum schedule.

    As for :class:`OneCycleSGD`, ``momentum`` must be non-zero (slots) and its value is unused.
    """

    _swap_attribute = None

    def update_step(self, gradient: Any, variable: Any, learning_rate: Any) -> None:
        # keras.optimizers.RMSprop.update_step with the momentum of this step.
        lr = ops.cast(learning_rate, variable.dtype)
        gradient = ops.cast(gradient, variable.dtype)
        momentum = ops.cast(self._step_momentum, variable.dtype)
        index = self._get_variable_index(variable)
        velocity = self._velocities[index]
        rho = self.rho
        self.assign(
            velocity,
            ops.add(ops.multiply(rho, velocity), ops.multiply(1 - rho, ops.square(gradient))),
        )
        if self.centered:
            average_grad = self._average_gradients[index]
            self.assign(
                average_grad,
                ops.add(ops.multiply(rho, average_grad), ops.multiply(1 - rho, gradient)),
            )
            denominator = velocity - ops.square(average_grad) + self.epsilon
        else:
            denominator = ops.add(velocity, self.epsilon)
        increment = ops.divide(ops.multiply(lr, gradient), ops.sqrt(denominator))
        buffer = self._momentums[index]
        self.assign(buffer, ops.add(ops.multiply(momentum, buffer), increment))
        self.assign_sub(variable, buffer)


#: Keras optimizer class -> its momentum-cycling twin. Adagrad and Adadelta have no momentum.
CYCLED_OPTIMIZERS: dict[type, type[_CycledMomentum]] = {
    keras.optimizers.AdamW: OneCycleAdamW,  # AdamW subclasses Adam: looked up along the MRO
    keras.optimizers.Adam: OneCycleAdam,
    keras.optimizers.Adamax: OneCycleAdamax,
    keras.optimizers.Nadam: OneCycleNadam,
    keras.optimizers.Lamb: OneCycleLamb,
    keras.optimizers.Lion: OneCycleLion,
    keras.optimizers.SGD: OneCycleSGD,
    keras.optimizers.RMSprop: OneCycleRMSprop,
}


def apply_momentum_cycle(optimizer: Any, schedule: OneCycle | None = None) -> Any:
    """The optimizer to compile with: its one-cycle twin if momentum should cycle, else itself.

    ``schedule`` defaults to the optimizer's own learning rate. The optimizer is returned
    unchanged when that is not a :class:`OneCycle`, when the schedule has
    ``cycle_momentum = false``, when the optimizer has no momentum (Adagrad, Adadelta), or when
    it already cycles. Otherwise a new, unbuilt optimizer with the same configuration is
    returned; while it trains, its own ``beta_1`` / ``momentum`` is replaced by the schedule's.
    """
    if isinstance(optimizer, _CycledMomentum):
        return optimizer
    learning_rate = getattr(optimizer, "_learning_rate", None)  # the schedule object itself
    schedule = schedule if schedule is not None else learning_rate
    if not isinstance(schedule, OneCycle) or not schedule.cycle_momentum:
        return optimizer
    cycled = next(
        (CYCLED_OPTIMIZERS[cls] for cls in type(optimizer).__mro__ if cls in CYCLED_OPTIMIZERS),
        None,
    )
    if cycled is None:
        return optimizer
    if optimizer.built:
        raise ValueError(
            "apply_momentum_cycle: the optimizer is already built; apply it before compile()."
        )
    config = optimizer.get_config()
    if cycled in (OneCycleSGD, OneCycleRMSprop) and not config.get("momentum"):
        config["momentum"] = schedule.max_momentum  # non-zero, so Keras creates the slots
    if schedule is not learning_rate:
        config["one_cycle"] = schedule
    return cycled.from_config(config)
