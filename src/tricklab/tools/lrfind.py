"""The learning-rate range test (Smith 2017, "Cyclical Learning Rates"; fastai's ``lr_find``).

Train a fresh model for at most ``steps`` batches while the learning rate grows exponentially
from ``min_lr`` to ``max_lr``, record the loss of every batch, and stop once the loss has
clearly diverged. The loss falls fastest somewhere below the rate at which training blows up;
the suggestion is the middle of the steepest decade of the smoothed loss before its minimum
(:func:`suggest_lr`) -- a starting point for ``learning_rate`` or one_cycle's
``max_learning_rate`` -- or no suggestion at all when the sweep shows no clear descent.

Keras is imported when :func:`lr_find` runs, not when this module is imported.
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from tricklab.base import backend as _backend
from tricklab.base.errors import SpecError, TricklabError
from tricklab.spec import Recipe, StudySpec, components, load_study, messages

# The defaults of lr_find(), lr_find_command() and `tricklab lr-find` (its parser reads them).
#: Batches trained (at most: the test stops when the loss diverges).
DEFAULT_STEPS = 200
#: The learning rate of the first batch.
DEFAULT_MIN_LR = 1e-7
#: The learning rate the sweep reaches after ``steps`` batches.
DEFAULT_MAX_LR = 10.0
#: The seed of the weights and of the training split.
DEFAULT_SEED = 0
#: Stop once the smoothed loss exceeds this many times its minimum.
DEFAULT_STOP_FACTOR = 4.0

#: fastai's smoothing of the recorded loss (an exponential moving average, bias-corrected).
BETA = 0.98
#: Batches before the divergence check starts (the moving average is still settling).
SKIP_START = 5
#: The rule :func:`suggest_lr` applies, as printed after the suggestion.
RULE = "steepest decade of the smoothed loss"
#: The part of the curve :func:`suggest_lr` skips at the start (fastai skips ``num_it // 10``).
SKIP_FRACTION = 0.1
#: The least fall of the smoothed loss, as a fraction of its settled start, that counts as a
#: descent ...
MIN_DESCENT = 0.05
#: ... and in standard errors of that fall on a flat curve (from the noise of the losses).
MIN_DESCENT_ERRORS = 3.0


@dataclass(frozen=True, eq=False)
class LRFindResult:
    """One range test: the learning rate and loss of every batch trained, and the suggestion.

    ``lrs[i]`` is the rate batch ``i`` was trained with, ``losses[i]`` that batch's loss and
    ``smoothed[i]`` the bias-corrected moving average up to it. ``suggestion`` is the rate
    :func:`suggest_lr` found by ``rule``, or ``None`` when the curve shows no clear descent
    between ``min_lr`` and ``max_lr``. ``diverged_lr`` is the rate at which the smoothed loss
    passed ``stop_factor`` times its minimum (``None`` if it never did: then ``max_lr`` may be
    too small to see the whole curve).
    """

    study: str
    variant: str
    lrs: np.ndarray
    losses: np.ndarray
    smoothed: np.ndarray
    suggestion: float | None
    min_lr: float
    max_lr: float
    steps: int
    diverged_lr: float | None = None
    rule: str = RULE
    backend: str = field(default_factory=_backend.name)

    def plot(self, path: str | Path) -> Path:
        """Draw the loss against the learning rate (log axis) with the suggestion marked, or
        "no clear descent" where there is none."""
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure

        figure = Figure(figsize=(8, 5), dpi=100, layout="constrained")
        FigureCanvasAgg(figure)
        ax = figure.subplots()
        finite = np.isfinite(self.losses)
        ax.plot(self.lrs[finite], self.losses[finite], color="0.7", linewidth=1,
                label="loss per batch")  # fmt: skip
        ax.plot(self.lrs, self.smoothed, color="tab:blue", linewidth=2,
                label=f"smoothed (EMA, beta={BETA})")  # fmt: skip
        if self.suggestion is not None:
            at = int(np.argmin(np.abs(np.log(self.lrs) - math.log(self.suggestion))))
            ax.axvline(self.suggestion, color="tab:red", linestyle="--", linewidth=1)
            ax.plot([self.suggestion], [self.smoothed[at]], "o", color="tab:red",
                    label=f"{self.rule}: lr = {self.suggestion:.2e}")  # fmt: skip
        else:
            box = {"facecolor": "white", "edgecolor": "tab:red"}
            ax.text(0.5, 0.04, "no clear descent: no learning rate suggested",
                    transform=ax.transAxes, ha="center", va="bottom", color="tab:red",
                    fontsize="large", bbox=box)  # fmt: skip
        if self.diverged_lr is not None:
            ax.axvline(self.diverged_lr, color="0.4", linestyle=":", linewidth=1,
                       label=f"diverged: lr = {self.diverged_lr:.2e}")  # fmt: skip
        ax.set_xscale("log")
        ax.set_xlabel("learning rate (log scale)")
        ax.set_ylabel("training loss")
        ax.set_ylim(*_loss_limits(self.losses, self.smoothed))
        ax.grid(alpha=0.3, which="major")
        ax.grid(alpha=0.08, which="minor")
        ax.legend(loc="upper left", fontsize="small")
        ax.set_title(f"LR range test: {self.study}, variant {self.variant} ({self.backend})")
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        figure.savefig(path)
        return path


def _loss_limits(losses: np.ndarray, smoothed: np.ndarray) -> tuple[float, float]:
    """Y limits that show the descent: a diverged tail would flatten everything else."""
    finite = np.concatenate([losses[np.isfinite(losses)], smoothed[np.isfinite(smoothed)]])
    if finite.size == 0:
        return 0.0, 1.0
    low = float(finite.min())
    start = float(smoothed[0]) if np.isfinite(smoothed[0]) else float(np.median(finite))
    high = max(float(np.percentile(finite, 95)), start) if finite.size > 1 else low + 1
    high = min(high, low + 3 * max(start - low, 1e-3))
    pad = 0.05 * max(high - low, 1e-6)
    return low - pad, high + pad


# -- the numbers --------------------------------------------------------------------------------
def smooth(losses: Sequence[float] | np.ndarray, beta: float = BETA) -> np.ndarray:
    """fastai's smoothed loss: ``avg = beta*avg + (1-beta)*loss``, divided by ``1 - beta**i``."""
    out = np.empty(len(losses))
    average = 0.0
    for i, loss in enumerate(losses):
        average = beta * average + (1 - beta) * float(loss)
        out[i] = average / (1 - beta ** (i + 1))
    return out


def exponential_lrs(
    steps: int, min_lr: float, max_lr: float, count: int | None = None
) -> np.ndarray:
    """The rate of batch ``i``: ``min_lr * (max_lr/min_lr) ** (i/steps)``, i.e. what
    ``keras.optimizers.schedules.ExponentialDecay(min_lr, steps, max_lr/min_lr)`` gives."""
    i = np.arange(steps if count is None else count, dtype="float64")
    return min_lr * (max_lr / min_lr) ** (i / steps)


def suggest_lr(
    lrs: Sequence[float] | np.ndarray,
    smoothed: Sequence[float] | np.ndarray,
    losses: Sequence[float] | np.ndarray | None = None,
) -> float | None:
    """The middle of the steepest decade of ``smoothed`` before its minimum, or ``None``.

    A slope between neighbouring points (0.04 decades apart over 200 steps) measures the noise
    of the moving average more than the descent; over a whole decade of learning rate
    (``log10(lr)`` growing by 1) the noise averages out and only the descent remains. So:

    1. The usable curve ends at the first non-finite loss; its first tenth is skipped (the
       moving average still settles there, as fastai's ``num_it // 10``). The smoothed loss at
       the end of that tenth is the *start level*.
    2. The curve must descend clearly: its minimum after the start must lie at least
       :data:`MIN_DESCENT` (5 %) of the start level below it and, when the raw ``losses`` are
       given, :data:`MIN_DESCENT_ERRORS` (3) standard errors below it: on a flat curve with
       batch-to-batch noise ``sigma`` the start level (a mean of ``start + 1`` losses) and a
       point of the moving average differ by about ``sigma * sqrt(1/(start + 1) + (1 - beta)
       / (1 + beta))``, so a noisy curve needs a deeper fall. Otherwise there is no
       suggestion: ``None``.
    3. Among the windows that span one decade and end at or before the minimum (the rising,
       diverging tail is never used), the one whose smoothed loss falls the most; the
       suggestion is the rate at its geometric middle. A descent shorter than a decade is one
       window, from the start to the minimum.
    4. The suggestion is kept inside the descent: not before the smoothed loss has fallen
       :data:`MIN_DESCENT` below the start level (a shallow descent's steepest decade may begin
       on the plateau), not after the minimum.
    """
    lrs = np.asarray(lrs, dtype="float64")
    smoothed = np.asarray(smoothed, dtype="float64")
    if lrs.size == 0 or lrs.shape != smoothed.shape:
        raise ValueError("suggest_lr needs as many learning rates as losses, at least one")
    finite = np.isfinite(smoothed)
    # The first non-finite loss ends the usable curve.
    end = int(np.argmin(finite)) if not finite.all() else len(smoothed)
    start = int(end * SKIP_FRACTION)
    if end - start < 2:
        return None
    level = float(smoothed[start])
    lowest = start + int(np.argmin(smoothed[start:end]))
    needed = MIN_DESCENT * abs(level)
    if losses is not None:
        noise = _noise(np.asarray(losses, dtype="float64")[:end])
        error = noise * math.sqrt(1 / (start + 1) + (1 - BETA) / (1 + BETA))
        needed = max(needed, MIN_DESCENT_ERRORS * error)
    if lowest == start or not level - smoothed[lowest] >= needed:
        return None  # flat, noisy or rising: no rate to suggest
    x = np.log10(lrs)
    if x[lowest] - x[start] <= 1:
        left, right = start, lowest
    else:
        # Each window's right end: the first point a decade (to rounding) after its left end.
        lefts = np.arange(start, lowest)
        rights = np.searchsorted(x, x[lefts] + 1 - 1e-9, side="left")
        fits = rights <= lowest
        lefts, rights = lefts[fits], rights[fits]
        slopes = (smoothed[rights] - smoothed[lefts]) / (x[rights] - x[lefts])
        best = int(np.argmin(slopes))
        left, right = int(lefts[best]), int(rights[best])
    middle = left + int(np.argmin(np.abs(x[left : right + 1] - (x[left] + x[right]) / 2)))
    fallen = start + int(
        np.argmax(smoothed[start : lowest + 1] <= level - MIN_DESCENT * abs(level))
    )
    return float(lrs[min(max(middle, fallen), lowest)])


def _noise(losses: np.ndarray) -> float:
    """The standard deviation of the batch-to-batch noise of ``losses`` (robust to the trend
    and to outliers: the median absolute deviation of successive differences)."""
    diffs = np.diff(losses[np.isfinite(losses)])
    if diffs.size == 0:
        return 0.0
    return float(1.4826 * np.median(np.abs(diffs - np.median(diffs))) / math.sqrt(2))


# -- running it ---------------------------------------------------------------------------------
def lr_find(
    spec: StudySpec,
    variant: str,
    *,
    steps: int = DEFAULT_STEPS,
    min_lr: float = DEFAULT_MIN_LR,
    max_lr: float = DEFAULT_MAX_LR,
    seed: int = DEFAULT_SEED,
    stop_factor: float = DEFAULT_STOP_FACTOR,
) -> LRFindResult:
    """Run the LR range test for one variant of a study on its training split.

    The variant's model and optimizer are built as for a run, except that the learning rate is
    ``ExponentialDecay(min_lr, steps, max_lr / min_lr)`` (growing from ``min_lr`` to ``max_lr``
    over ``steps`` batches) and one batch runs per call (``steps_per_execution = 1``). The data
    is the training part of the split a run with ``seed`` trains on (the study's protocol:
    ``split_seed``, ``resplit`` or ``cv``); nothing is validated. Training stops after
    ``steps`` batches, or when the smoothed loss exceeds ``stop_factor`` times its minimum, or
    when the loss is not finite.
    """
    from tricklab.data import resolve, target_for
    from tricklab.engines import class_weights
    from tricklab.engines.build import build_model, compile_model

    _check_arguments(steps, min_lr, max_lr, seed, stop_factor)
    recipe = _recipe(spec, variant, steps=steps, min_lr=min_lr, max_lr=max_lr)
    study = resolve(spec)  # data errors name the study file, as in `tricklab run`
    dataset = study.dataset
    target = target_for(recipe, dataset)
    splits = study.splits(seed)  # the rows run ``seed`` trains on, under any protocol

    keras = _backend.keras()
    keras.utils.set_random_seed(seed)
    model = build_model(recipe, splits.x_train.shape[1:])
    compile_model(model, recipe, dataset, target)

    n_train = len(splits.y_train)
    batch_size = recipe.train.batch_size
    recorder = _recorder(keras)(
        steps=steps, n_train=n_train, batch_size=batch_size, stop_factor=stop_factor
    )
    per_epoch = math.ceil(n_train / batch_size)
    model.fit(
        splits.x_train,
        target.encode(splits.to_model(splits.y_train)),  # the scale the runs train on
        batch_size=batch_size,
        epochs=math.ceil(steps / per_epoch),
        shuffle=recipe.train.shuffle,
        class_weight=class_weights(recipe, dataset, splits),  # as the variant's runs train
        callbacks=[recorder],
        verbose=0,
    )
    losses = np.asarray(recorder.losses, dtype="float64")
    if losses.size == 0:  # pragma: no cover - fit always trains at least one batch
        raise TricklabError("the LR range test trained no batch.")
    lrs = exponential_lrs(steps, min_lr, max_lr, count=losses.size)
    smoothed = _smoothed_finite(losses)
    diverged = recorder.diverged
    return LRFindResult(
        study=spec.name,
        variant=variant,
        lrs=lrs,
        losses=losses,
        smoothed=smoothed,
        suggestion=suggest_lr(lrs, smoothed, losses),
        min_lr=float(min_lr),
        max_lr=float(max_lr),
        steps=steps,
        diverged_lr=float(lrs[-1]) if diverged else None,
    )


def lr_find_command(
    study_path: str | Path,
    variant: str | None,
    out_dir: str | Path,
    steps: int = DEFAULT_STEPS,
    min_lr: float = DEFAULT_MIN_LR,
    max_lr: float = DEFAULT_MAX_LR,
    *,
    seed: int = DEFAULT_SEED,
    stop_factor: float = DEFAULT_STOP_FACTOR,
) -> tuple[LRFindResult, Path]:
    """``tricklab lr-find``: run the test and write ``<study>.<variant>.lr_find.png``.

    ``variant`` ``None`` means the study's baseline variant. Returns the result and the path of
    the plot (in ``out_dir``, created if needed).
    """
    spec = load_study(study_path)
    name = spec.baseline_variant if variant is None else variant
    result = lr_find(
        spec, name, steps=steps, min_lr=min_lr, max_lr=max_lr, seed=seed, stop_factor=stop_factor
    )
    filename = _safe(f"{spec.name}.{name}.lr_find.png")
    return result, result.plot(Path(out_dir) / filename)


def _safe(filename: str) -> str:
    # Study and variant names are validated (letters, digits, - _ . =); be safe for grid names.
    return re.sub(r"[^A-Za-z0-9_.=-]", "_", filename)


def _check_arguments(
    steps: int, min_lr: float, max_lr: float, seed: int, stop_factor: float
) -> None:
    def number(value: Any) -> bool:
        return (
            isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)
        )

    if not isinstance(steps, int) or isinstance(steps, bool) or steps < 2:
        raise TricklabError(f"steps must be an int >= 2. Received: steps={steps!r}.")
    if not number(min_lr) or min_lr <= 0:
        raise TricklabError(f"min_lr must be a number > 0. Received: min_lr={min_lr!r}.")
    if not number(max_lr) or max_lr <= min_lr:
        raise TricklabError(
            f"max_lr must be a number > min_lr ({min_lr:g}). Received: max_lr={max_lr!r}."
        )
    if not isinstance(seed, int) or isinstance(seed, bool) or not 0 <= seed < 2**32:
        raise TricklabError(f"seed must be an int in [0, 2**32). Received: seed={seed!r}.")
    if not number(stop_factor) or stop_factor <= 1:
        raise TricklabError(
            f"stop_factor must be a number > 1. Received: stop_factor={stop_factor!r}."
        )


def _recipe(spec: StudySpec, variant: str, *, steps: int, min_lr: float, max_lr: float) -> Recipe:
    """The variant's recipe with the exponential learning rate and one step per execution."""
    if variant not in spec.variants:
        raise SpecError(
            f"no variant named '{variant}' in study '{spec.name}'."
            f"{messages.did_you_mean(variant, list(spec.variants))} "
            f"Expected one of: {', '.join(spec.variants)}."
        )
    recipe = spec.variants[variant]
    table = recipe.train.optimizer.to_dict()
    table["learning_rate"] = {
        "name": "exponential_decay",
        "initial_learning_rate": float(min_lr),
        "decay_steps": steps,
        "decay_rate": float(max_lr) / float(min_lr),
    }
    optimizer = components.OPTIMIZERS.parse(table)
    train = recipe.train.model_copy(update={"optimizer": optimizer, "steps_per_execution": 1})
    return recipe.model_copy(update={"train": train})


def _smoothed_finite(losses: np.ndarray) -> np.ndarray:
    """:func:`smooth`, with the points from the first non-finite loss on left as NaN."""
    smoothed = np.full(losses.shape, np.nan)
    bad = ~np.isfinite(losses)
    end = int(np.argmax(bad)) if bad.any() else losses.size
    smoothed[:end] = smooth(losses[:end])
    return smoothed


def _recorder(keras: Any) -> type:
    """The Keras callback class that records each batch's loss (defined once Keras runs)."""

    class LossRecorder(keras.callbacks.Callback):
        """Per-batch losses, and early stopping when the smoothed loss diverges.

        Keras logs the running mean of the loss since the epoch began, weighted by batch size;
        the loss of batch ``k`` is recovered as ``(mean_k * n_k - mean_{k-1} * n_{k-1}) / b_k``
        with ``n_k`` the samples seen so far in the epoch.
        """

        def __init__(self, *, steps: int, n_train: int, batch_size: int, stop_factor: float):
            super().__init__()
            self.steps, self.n_train, self.batch_size = steps, n_train, batch_size
            self.stop_factor = stop_factor
            self.losses: list[float] = []
            self.diverged = False
            self._average = 0.0
            self._best = math.inf
            self._seen = 0
            self._total = 0.0

        def on_epoch_begin(self, epoch: int, logs: Any = None) -> None:
            self._seen, self._total = 0, 0.0

        def on_train_batch_end(self, batch: int, logs: Any = None) -> None:
            size = min(self.batch_size, self.n_train - self._seen)
            seen = self._seen + size
            total = float((logs or {}).get("loss", math.nan)) * seen
            loss = (total - self._total) / size
            self._seen, self._total = seen, total
            self.losses.append(loss)
            i = len(self.losses)
            if not math.isfinite(loss):
                self.diverged = True
            else:
                self._average = BETA * self._average + (1 - BETA) * loss
                smoothed = self._average / (1 - BETA**i)
                self._best = min(self._best, smoothed)
                if i > SKIP_START and smoothed > self.stop_factor * self._best:
                    self.diverged = True
            if self.diverged or i >= self.steps:
                self.model.stop_training = True

    return LossRecorder
