"""The registries of training components, with every argument tricklab accepts.

Names and arguments follow Keras 3 (``keras.losses.BinaryCrossentropy`` is ``binary_crossentropy``
with ``from_logits``, ``label_smoothing``, ...). ``tests/test_components.py`` checks these tables
against the installed Keras, so an argument Keras does not take can never be accepted here.

    >>> from tricklab.spec import components
    >>> components.REGULARIZERS.get({"name": "l2", "l2": 0.01})   # a keras.regularizers.L2
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Annotated, Any, Literal

from annotated_types import Ge, Gt, Le, Lt

from tricklab.spec._registry import Component, Entry, Nested, Registry, build_args, resolve

# Argument types; the bounds appear in error messages ("must be a float >= 0").
Float = float
PosFloat = Annotated[float, Gt(0)]
NonNegFloat = Annotated[float, Ge(0)]
Fraction = Annotated[float, Ge(0), Le(1)]
OpenFraction = Annotated[float, Ge(0), Lt(1)]
PosInt = Annotated[int, Ge(1)]
NonNegInt = Annotated[int, Ge(0)]
Seed = Annotated[int, Ge(0)]


def _entries(
    kind_module: str,
    table: dict[str, tuple[str, dict[str, Any]]],
    required: Mapping[str, tuple[str, ...]] | None = None,
) -> list[Entry]:
    return [
        Entry(name, f"{kind_module}.{cls}", params, required=(required or {}).get(name, ()))
        for name, (cls, params) in table.items()
    ]


# -- regularizers and constraints ---------------------------------------------------------------
REGULARIZERS = Registry(
    "regularizer",
    _entries(
        "keras.regularizers",
        {
            "l1": ("L1", {"l1": NonNegFloat}),
            "l2": ("L2", {"l2": NonNegFloat}),
            "l1_l2": ("L1L2", {"l1": NonNegFloat, "l2": NonNegFloat}),
            "orthogonal_regularizer": (
                "OrthogonalRegularizer",
                {"factor": NonNegFloat, "mode": Literal["rows", "columns"]},
            ),
        },
    ),
)

CONSTRAINTS = Registry(
    "constraint",
    _entries(
        "keras.constraints",
        {
            "max_norm": ("MaxNorm", {"max_value": PosFloat, "axis": int}),
            "unit_norm": ("UnitNorm", {"axis": int}),
            "non_neg": ("NonNeg", {}),
            "min_max_norm": (
                "MinMaxNorm",
                {"min_value": NonNegFloat, "max_value": PosFloat, "rate": Fraction, "axis": int},
            ),
        },
    ),
)

# -- initializers --------------------------------------------------------------------------------
_FAN = {"seed": Seed}
INITIALIZERS = Registry(
    "initializer",
    _entries(
        "keras.initializers",
        {
            "glorot_uniform": ("GlorotUniform", _FAN),
            "glorot_normal": ("GlorotNormal", _FAN),
            "he_uniform": ("HeUniform", _FAN),
            "he_normal": ("HeNormal", _FAN),
            "lecun_uniform": ("LecunUniform", _FAN),
            "lecun_normal": ("LecunNormal", _FAN),
            "orthogonal": ("Orthogonal", {"gain": Float, "seed": Seed}),
            "random_normal": ("RandomNormal", {"mean": Float, "stddev": PosFloat, "seed": Seed}),
            "random_uniform": (
                "RandomUniform",
                {"minval": Float, "maxval": Float, "seed": Seed},
            ),
            "truncated_normal": (
                "TruncatedNormal",
                {"mean": Float, "stddev": PosFloat, "seed": Seed},
            ),
            "variance_scaling": (
                "VarianceScaling",
                {
                    "scale": PosFloat,
                    "mode": Literal["fan_in", "fan_out", "fan_avg"],
                    "distribution": Literal["truncated_normal", "untruncated_normal", "uniform"],
                    "seed": Seed,
                },
            ),
            "identity": ("Identity", {"gain": Float}),
            "zeros": ("Zeros", {}),
            "ones": ("Ones", {}),
            "constant": ("Constant", {"value": Float}),
        },
    ),
)

# -- learning-rate schedules ---------------------------------------------------------------------
_SCHEDULE_TABLE: dict[str, tuple[str, dict[str, Any]]] = {
    "exponential_decay": (
        "ExponentialDecay",
        {
            "initial_learning_rate": PosFloat,
            "decay_steps": PosInt,
            "decay_rate": PosFloat,
            "staircase": bool,
        },
    ),
    "inverse_time_decay": (
        "InverseTimeDecay",
        {
            "initial_learning_rate": PosFloat,
            "decay_steps": PosInt,
            "decay_rate": NonNegFloat,
            "staircase": bool,
        },
    ),
    "cosine_decay": (
        "CosineDecay",
        {
            "initial_learning_rate": NonNegFloat,
            "decay_steps": PosInt,
            "alpha": Fraction,
            "warmup_target": PosFloat,
            "warmup_steps": NonNegInt,
        },
    ),
    "cosine_decay_restarts": (
        "CosineDecayRestarts",
        {
            "initial_learning_rate": PosFloat,
            "first_decay_steps": PosInt,
            "t_mul": PosFloat,
            "m_mul": PosFloat,
            "alpha": Fraction,
        },
    ),
    "piecewise_constant_decay": (
        "PiecewiseConstantDecay",
        {"boundaries": list[int], "values": list[PosFloat]},
    ),
    "polynomial_decay": (
        "PolynomialDecay",
        {
            "initial_learning_rate": PosFloat,
            "decay_steps": PosInt,
            "end_learning_rate": NonNegFloat,
            "power": PosFloat,
            "cycle": bool,
        },
    ),
}
_SCHEDULE_REQUIRED = {
    "exponential_decay": ("initial_learning_rate", "decay_steps", "decay_rate"),
    "inverse_time_decay": ("initial_learning_rate", "decay_steps", "decay_rate"),
    "cosine_decay": ("initial_learning_rate", "decay_steps"),
    "cosine_decay_restarts": ("initial_learning_rate", "first_decay_steps"),
    "piecewise_constant_decay": ("boundaries", "values"),
    "polynomial_decay": ("initial_learning_rate", "decay_steps"),
}
#: tricklab's own schedules (:mod:`tricklab.engines.schedules`), in the same form.
_TRICKLAB_SCHEDULE_TABLE: dict[str, tuple[str, dict[str, Any]]] = {
    "one_cycle": (
        "OneCycle",
        {
            "max_learning_rate": PosFloat,
            "total_steps": PosInt,
            "pct_start": OpenFraction,
            "div_factor": PosFloat,
            "final_div_factor": PosFloat,
            "base_momentum": OpenFraction,
            "max_momentum": OpenFraction,
            "cycle_momentum": bool,
        },
    ),
}
_TRICKLAB_SCHEDULE_REQUIRED = {"one_cycle": ("max_learning_rate", "total_steps")}
SCHEDULES = Registry(
    "schedule",
    _entries("keras.optimizers.schedules", _SCHEDULE_TABLE, _SCHEDULE_REQUIRED)
    + _entries("tricklab.engines.schedules", _TRICKLAB_SCHEDULE_TABLE, _TRICKLAB_SCHEDULE_REQUIRED),
)


# -- optimizers ----------------------------------------------------------------------------------
_LR = Nested(SCHEDULES)
_COMMON = {
    "learning_rate": _LR,
    "weight_decay": NonNegFloat,
    "clipnorm": PosFloat,
    "clipvalue": PosFloat,
    "global_clipnorm": PosFloat,
    "use_ema": bool,
    "ema_momentum": Fraction,
    "gradient_accumulation_steps": PosInt,
}
_ADAM = {"beta_1": OpenFraction, "beta_2": OpenFraction, "epsilon": PosFloat}
OPTIMIZERS = Registry(
    "optimizer",
    _entries(
        "keras.optimizers",
        {
            "adam": ("Adam", {**_COMMON, **_ADAM, "amsgrad": bool}),
            "adamw": ("AdamW", {**_COMMON, **_ADAM, "amsgrad": bool}),
            "sgd": ("SGD", {**_COMMON, "momentum": OpenFraction, "nesterov": bool}),
            "rmsprop": (
                "RMSprop",
                {
                    **_COMMON,
                    "rho": OpenFraction,
                    "momentum": OpenFraction,
                    "epsilon": PosFloat,
                    "centered": bool,
                },
            ),
            "adagrad": (
                "Adagrad",
                {**_COMMON, "initial_accumulator_value": NonNegFloat, "epsilon": PosFloat},
            ),
            "adadelta": ("Adadelta", {**_COMMON, "rho": OpenFraction, "epsilon": PosFloat}),
            "adamax": ("Adamax", {**_COMMON, **_ADAM}),
            "nadam": ("Nadam", {**_COMMON, **_ADAM}),
            "lamb": ("Lamb", {**_COMMON, **_ADAM}),
            "lion": ("Lion", {**_COMMON, "beta_1": OpenFraction, "beta_2": OpenFraction}),
        },
    ),
)

# -- losses --------------------------------------------------------------------------------------
_LOGITS = {"from_logits": bool, "label_smoothing": Fraction}
_FOCAL = {"alpha": Fraction, "gamma": NonNegFloat}
LOSSES = Registry(
    "loss",
    [
        Entry("mean_squared_error", "keras.losses.MeanSquaredError", aliases=("mse",)),
        Entry("mean_absolute_error", "keras.losses.MeanAbsoluteError", aliases=("mae",)),
        Entry(
            "mean_absolute_percentage_error",
            "keras.losses.MeanAbsolutePercentageError",
            aliases=("mape",),
        ),
        Entry(
            "mean_squared_logarithmic_error",
            "keras.losses.MeanSquaredLogarithmicError",
            aliases=("msle",),
        ),
        Entry("binary_crossentropy", "keras.losses.BinaryCrossentropy", _LOGITS),
        Entry(
            "binary_focal_crossentropy",
            "keras.losses.BinaryFocalCrossentropy",
            {**_LOGITS, **_FOCAL, "apply_class_balancing": bool},
        ),
        Entry("categorical_crossentropy", "keras.losses.CategoricalCrossentropy", _LOGITS),
        Entry(
            "categorical_focal_crossentropy",
            "keras.losses.CategoricalFocalCrossentropy",
            {**_LOGITS, **_FOCAL},
        ),
        Entry(
            "categorical_generalized_cross_entropy",
            "keras.losses.CategoricalGeneralizedCrossEntropy",
            {"q": Annotated[float, Gt(0), Le(1)]},
        ),
        Entry(
            "sparse_categorical_crossentropy",
            "keras.losses.SparseCategoricalCrossentropy",
            {"from_logits": bool},
        ),
        Entry("poisson", "keras.losses.Poisson"),
        Entry("kl_divergence", "keras.losses.KLDivergence", aliases=("kld",)),
        Entry("huber", "keras.losses.Huber", {"delta": PosFloat}, aliases=("huber_loss",)),
        Entry("log_cosh", "keras.losses.LogCosh", aliases=("logcosh",)),
        Entry("hinge", "keras.losses.Hinge"),
        Entry("squared_hinge", "keras.losses.SquaredHinge"),
        Entry("categorical_hinge", "keras.losses.CategoricalHinge"),
        Entry("cosine_similarity", "keras.losses.CosineSimilarity"),
        Entry("dice", "keras.losses.Dice"),
        Entry("tversky", "keras.losses.Tversky", {"alpha": Fraction, "beta": Fraction}),
    ],
)
#: Keras losses tricklab does not offer, and why (checked against Keras by the tests).
EXCLUDED_LOSSES = {
    "CTC": "needs sequence outputs and label lengths; tricklab models end in a Dense layer",
    "Circle": "a metric-learning loss on embeddings, not on class predictions",
}
#: Losses that compare per-class probabilities with one-hot targets.
ONE_HOT_LOSSES = frozenset(
    {
        "categorical_crossentropy",
        "categorical_focal_crossentropy",
        "categorical_generalized_cross_entropy",
        "categorical_hinge",
        "kl_divergence",
    }
)
#: Losses meant for real-valued targets (the lecture tries several on a classifier).
REGRESSION_LOSSES = frozenset(
    {
        "mean_squared_error",
        "mean_absolute_error",
        "mean_absolute_percentage_error",
        "mean_squared_logarithmic_error",
        "poisson",
        "huber",
        "log_cosh",
    }
)


# -- metrics -------------------------------------------------------------------------------------
def _named_metric(component: Component) -> Any:
    """Keras resolves "accuracy" by the target's shape; other metrics are built with their name."""
    entry = METRICS.entry(component.name)
    if entry.target == "string":
        return component.name
    return resolve(entry.target)(name=component.name, **build_args(component))


METRICS = Registry(
    "metric",
    [
        Entry(name, "string", build=_named_metric)
        for name in (
            "accuracy",
            "mean_squared_error",
            "mean_absolute_error",
            "mean_absolute_percentage_error",
            "mean_squared_logarithmic_error",
        )
    ]
    + [
        Entry(name, f"keras.metrics.{cls}", params, build=_named_metric)
        for name, cls, params in (
            ("auc", "AUC", {"num_thresholds": PosInt, "curve": Literal["ROC", "PR"]}),
            ("precision", "Precision", {"thresholds": Fraction}),
            ("recall", "Recall", {"thresholds": Fraction}),
            ("top_k_categorical_accuracy", "TopKCategoricalAccuracy", {"k": PosInt}),
            ("sparse_top_k_categorical_accuracy", "SparseTopKCategoricalAccuracy", {"k": PosInt}),
            ("root_mean_squared_error", "RootMeanSquaredError", {}),
            ("r2_score", "R2Score", {}),
        )
    ],
)


# -- activations ---------------------------------------------------------------------------------
#: Activations that take arguments, the Keras layer that carries them (so a model with them
#: saves to and loads from a ``.keras`` file with plain Keras), and the defaults tricklab uses.
PARAMETERISED_ACTIVATIONS: dict[str, tuple[str, dict[str, Any]]] = {
    "leaky_relu": ("LeakyReLU", {"negative_slope": 0.2}),
    "elu": ("ELU", {"alpha": 1.0}),
    "relu": ("ReLU", {"negative_slope": 0.0, "max_value": None, "threshold": 0.0}),
    "softmax": ("Softmax", {"axis": -1}),
}
_ACTIVATION_PARAMS: dict[str, dict[str, Any]] = {
    "leaky_relu": {"negative_slope": NonNegFloat},
    "elu": {"alpha": PosFloat},
    "relu": {"negative_slope": NonNegFloat, "max_value": PosFloat, "threshold": Float},
    "softmax": {"axis": int},
}
ACTIVATION_NAMES = (
    "celu", "elu", "exponential", "gelu", "glu", "hard_shrink", "hard_sigmoid", "hard_silu",
    "hard_tanh", "leaky_relu", "linear", "log_sigmoid", "log_softmax", "mish", "relu", "relu6",
    "selu", "sigmoid", "silu", "soft_shrink", "softmax", "softplus", "softsign", "sparse_plus",
    "sparse_sigmoid", "sparsemax", "squareplus", "tanh", "tanh_shrink",
)  # fmt: skip
#: Keras activations tricklab does not offer by name, and why.
EXCLUDED_ACTIVATIONS = {
    "threshold": "needs two required arguments and has no Keras layer to save them in",
}


def _activation(component: Component) -> Any:
    """A Keras activation function, or for a table with arguments its Keras layer."""
    if not component.args:
        return resolve(f"keras.activations.{component.name}")
    layer_class, defaults = PARAMETERISED_ACTIVATIONS[component.name]
    return resolve(f"keras.layers.{layer_class}")(**{**defaults, **component.args})


ACTIVATIONS = Registry(
    "activation",
    [
        Entry(
            name,
            f"keras.activations.{name}",
            _ACTIVATION_PARAMS.get(name, {}),
            aliases={"silu": ("swish",), "hard_silu": ("hard_swish",)}.get(name, ()),
            build=_activation,
        )
        for name in ACTIVATION_NAMES
    ],
)

#: Every component registry by kind (the datasets registry lives in :mod:`tricklab.data`).
REGISTRIES: dict[str, Registry] = {
    r.kind: r
    for r in (
        REGULARIZERS,
        CONSTRAINTS,
        INITIALIZERS,
        SCHEDULES,
        OPTIMIZERS,
        LOSSES,
        METRICS,
        ACTIVATIONS,
    )
}
