"""The linter's rules, their severities and the :class:`Finding` they produce."""

from __future__ import annotations

from dataclasses import dataclass, replace

from tricklab.base.errors import SpecError
from tricklab.spec import (
    BatchNormLayer,
    DropoutLayer,
    FlattenLayer,
    GaussianNoiseLayer,
)

#: Rule code -> what it finds, in one line (the README and ``tricklab lint`` list these).
RULES: dict[str, str] = {
    "TL001": "a Dense layer without activation feeds another Dense layer: the two collapse into "
    "one linear map",
    "TL002": "the output does not fit the loss: softmax or a categorical loss on one unit, or "
    "sigmoid on several units with a categorical loss",
    "TL003": "a regression loss (mean_squared_error, ...) on a classification target",
    "TL004": "mean_absolute_percentage_error on targets that are 0 (it divides by the target)",
    "TL005": 'validation = "test": the chosen epoch and early stopping peek at the test set',
    "TL006": "a feature column that is a row id (unique integers filling a range)",
    "TL007": "an L2 kernel_regularizer together with the optimizer's weight decay: the same "
    "penalty twice",
    "TL008": "an L2 kernel_regularizer and a max-norm kernel_constraint on one layer: either one "
    "is enough",
    "TL009": "dropout after the output layer, or a dropout rate of 1 (drops everything)",
    "TL010": "early stopping or the checkpoint monitors a value the run does not log",
    "TL011": "accuracy is the primary metric while one class has 80% or more of the targets",
    "TL012": "a classification head (sigmoid/softmax output or a crossentropy loss) on a "
    "real-valued target, or a crossentropy loss on an output that is not a probability",
    "TL013": "variants train with different losses while the primary metric is the loss: their "
    "values are on different scales",
    "TL014": "one_cycle's total_steps does not match epochs x steps per epoch",
    "TL015": "one run needs more memory (weights, gradients, optimizer slots, one batch's "
    "activations) than the machine has available (an error), or over half of it (a warning)",
    "TL016": 'train.evaluate = "best" (written or by default) on a validation split too small to '
    "choose the checkpoint: under 50 rows, or under 10 rows of some class",
    "TL017": "a convolution or pooling layer on inputs without their channel axis (a flat "
    "input without a reshape): it cannot build",
    "TL018": "an augmentation layer (random_flip, ...) after a trainable layer: it perturbs "
    "learned features, not the input",
    "TL019": "a convolution or pooling window larger than its input (or a reshape to a different "
    "size): a dimension shrinks below 1",
    "TL020": "an embedding layer on features that are not all integers in [0, input_dim): it "
    "looks rows up by id, truncating fractions and clipping ids out of range",
    "TL021": "a regression target far from unit scale (or positive and skewed) without "
    "target_transform: an untrained network predicts near 0, so the loss starts huge",
}
#: Crossentropy losses that expect probabilities (unless from_logits = true).
CROSSENTROPY_LOSSES = frozenset(
    {"binary_crossentropy", "categorical_crossentropy", "sparse_categorical_crossentropy"}
)
#: Rule code -> severity; rules not listed are warnings.
SEVERITIES: dict[str, str] = {code: "warning" for code in RULES} | {
    "TL008": "hint",
    "TL015": "error",  # a warning between half and all of the available memory
    "TL017": "error",
    "TL019": "error",
}

#: Layers that pass a linear map through unchanged in kind (inference-time affine or identity).
PASS_THROUGH = (DropoutLayer, FlattenLayer, GaussianNoiseLayer, BatchNormLayer)
#: Output activations that normalise over the units, and what they output on a single unit.
NORMALISING = {"softmax": "1.0", "sparsemax": "1.0", "log_softmax": "0.0"}
#: Losses that expect one probability distribution over the classes per row.
CATEGORICAL_LOSSES = frozenset(
    {
        "categorical_crossentropy",
        "sparse_categorical_crossentropy",
        "categorical_focal_crossentropy",
    }
)
MAX_NORM_CONSTRAINTS = frozenset({"max_norm", "min_max_norm"})
#: Keras defaults of the arguments these rules read (checked against Keras by tests/test_lint.py).
KERAS_DEFAULTS = {
    ("regularizer", "l2", "l2"): 0.01,
    ("regularizer", "l1_l2", "l2"): 0.0,
    ("optimizer", "adamw", "weight_decay"): 0.004,
}
#: The fewest rows for which a unique, gap-free integer column counts as an id (TL006).
MIN_ID_ROWS = 10
#: Majority share from which accuracy as the primary metric is flagged (TL011).
MAJORITY_LIMIT = 0.8
#: The fewest validation rows, and rows of each class, to choose the best checkpoint on (TL016).
MIN_VALIDATION_ROWS = 50
MIN_VALIDATION_CLASS_ROWS = 10
RECIPE_ROOTS = ("model.", "train.")


@dataclass(frozen=True)
class Finding:
    """One problem found in a study; ``variant`` is None for study-level or all-variant ones."""

    code: str
    severity: str
    variant: str | None
    path: str
    message: str
    fix: str
    ignored: str | None = None

    @property
    def scope(self) -> str | None:
        """``variants.NAME``, ``all variants`` (a recipe finding every variant has), or None."""
        if self.variant is not None:
            return f"variants.{self.variant}"
        return "all variants" if self.path.startswith(RECIPE_ROOTS) else None

    def line(self) -> str:
        """``TL003 warning variants.mse: train.loss: <message> Fix: <fix>``."""
        scope = f"{self.scope}: " if self.scope else ""
        return f"{self.code} {self.severity} {scope}{self.path}: {self.message} Fix: {self.fix}"

    def to_json(self) -> dict[str, str | None]:
        """As the study index keeps it (``lint``), for the report and tracking."""
        return {
            "code": self.code,
            "severity": self.severity,
            "scope": self.scope,
            "path": self.path,
            "message": self.message,
            "fix": self.fix,
            "ignored": self.ignored,
        }


# -- plumbing -----------------------------------------------------------------------------------
def check_ignore(ignore: dict[str, str], file: str | None = None) -> None:
    """Every code in ``[lint] ignore`` is a rule; else a :class:`SpecError` located like the
    other study errors (``study.toml: lint.ignore: unknown rule 'TL999'. ...``)."""
    unknown = [code for code in ignore if code not in RULES]
    if unknown:
        expected = ", ".join(RULES)
        raise SpecError(
            [f"unknown rule '{code}'. Expected one of: {expected}." for code in unknown],
            file=file,
            where="lint.ignore",
        )


def finding(code: str, path: str, message: str, fix: str, variant: str | None = None) -> Finding:
    return Finding(code, SEVERITIES[code], variant, path, message, fix)


def collapse(per_variant: list[tuple[str, Finding]], variants: list[str]) -> list[Finding]:
    """Per-variant findings; one every variant has identically becomes a single all-variant one."""
    holders: dict[Finding, set[str]] = {}
    for name, finding in per_variant:
        holders.setdefault(finding, set()).add(name)
    out: list[Finding] = []
    emitted: set[Finding] = set()
    for name, finding in per_variant:
        if len(holders[finding]) == len(variants):
            if finding not in emitted:
                emitted.add(finding)
                out.append(finding)
        else:
            out.append(replace(finding, variant=name))
    return out
