"""What a search shows: a terminal summary, two static images, and its best trials as variants.

- ``ranked_trials``: the one ranking of COMPLETE trials (best objective value, then lower
  ``val_loss``, then lower trial number) that ``best_trials``, ``summary`` and
  ``export_variants`` all use; ``tie_note`` says how many trials share the best value.
- ``summary``: trial counts by state, the best value, its trial and parameters.
- ``write_images``: ``history.png`` (Optuna's optimisation history) and ``importances.png``
  (parameter importances, fANOVA) with ``optuna.visualization.matplotlib``.
- ``export_variants``: the K best COMPLETE trials (in ``ranked_trials`` order) as
  ``[variants."trial-N"]`` tables appended to a copy of the study file, which ``tricklab run``
  trains with all the study's seeds: one seed and one split chose them, so only a comparison
  over seeds says whether they really differ.
"""

from __future__ import annotations

import json
import math
import re
import warnings
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from tricklab.base.errors import SpecError, TricklabError

if TYPE_CHECKING:
    from matplotlib.axes import Axes

_BARE_KEY = re.compile(r"^[A-Za-z0-9_-]+$")


def counts(study: Any) -> dict[str, int]:
    out: dict[str, int] = {}
    for trial in study.get_trials(deepcopy=False):
        out[trial.state.name] = out.get(trial.state.name, 0) + 1
    return out


TIE_BREAK = "val_loss"  # the user attribute that breaks a tie on the objective (lower wins)


def ranked_trials(study: Any) -> list[Any]:
    """The COMPLETE trials, best first: the search's one ranking.

    Best objective value first, in the study's direction (the metric catalogue's, or
    ``--direction``). Trials whose values are exactly equal are ordered by lower ``val_loss``
    (recorded at the trial's best epoch; a trial without one ranks after those with one), then by
    lower trial number. Optuna's ``study.best_trial`` is not used: among tied trials it picks
    by storage order.
    """
    from optuna.trial import TrialState

    complete = study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
    sign = -1.0 if study.direction.name == "MAXIMIZE" else 1.0
    return sorted(complete, key=lambda t: (sign * t.value, _tie_break(t), t.number))


def _tie_break(trial: Any) -> float:
    value = trial.user_attrs.get(TIE_BREAK)
    if isinstance(value, bool) or not isinstance(value, int | float) or math.isnan(value):
        return math.inf
    return float(value)


def best_trials(study: Any, k: int) -> list[Any]:
    """The ``k`` best COMPLETE trials, best first (:func:`ranked_trials`)."""
    return ranked_trials(study)[:k]


def tied_best(ranked: list[Any]) -> int:
    """How many of the ``ranked`` trials share the best (first) value exactly."""
    if not ranked:
        return 0
    return sum(1 for trial in ranked if trial.value == ranked[0].value)


def tie_note(study: Any, objective: str, ranked: list[Any] | None = None) -> str | None:
    """One line when several COMPLETE trials share the best value, else None."""
    ranked = ranked_trials(study) if ranked is None else ranked
    shared = tied_best(ranked)
    if shared < 2:
        return None
    rule = "lower trial number"
    if objective != TIE_BREAK:
        rule = f"lower {TIE_BREAK}, then {rule}"
    return (
        f"best {objective} {ranked[0].value:.6g} shared by {shared} of {len(ranked)} complete "
        f"trials; tie broken by {rule}"
    )


def summary(study: Any, objective: str) -> list[str]:
    """A few lines for the terminal."""
    tally = counts(study)
    states = ", ".join(f"{n} {state.lower()}" for state, n in sorted(tally.items()))
    lines = [f"trials: {states or 'none'}"]
    ranked = ranked_trials(study)
    if ranked:
        trial = ranked[0]
        params = ", ".join(f"{k} = {_toml(v)}" for k, v in trial.params.items())
        note = tie_note(study, objective, ranked)
        extra = ""
        if note and objective != TIE_BREAK and trial.user_attrs.get(TIE_BREAK) is not None:
            extra = f", {TIE_BREAK} {trial.user_attrs[TIE_BREAK]:.6g}"
        lines.append(
            f"best {objective}: {trial.value:.6g} (trial {trial.number}, epoch "
            f"{trial.user_attrs.get('best_epoch', '?')}{extra}): {params}"
        )
        if note:
            lines.append(note)
    else:
        lines.append("no trial has completed yet")
    return lines


def write_images(study: Any, folder: Path) -> tuple[list[Path], list[str]]:
    """``history.png`` and ``importances.png`` in ``folder``; and why an image was left out."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import optuna
    from matplotlib.figure import Figure
    from optuna.trial import TrialState
    from optuna.visualization import matplotlib as vis

    folder.mkdir(parents=True, exist_ok=True)
    written, skipped = [], []
    complete = study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
    plots: list[tuple[str, Callable[[Any], Axes], int]] = [
        ("history.png", vis.plot_optimization_history, 1)
    ]
    plots.append(("importances.png", vis.plot_param_importances, 2))
    for name, plot, needs in plots:
        if len(complete) < needs:
            skipped.append(
                f"{name}: needs {needs} complete trial(s), the search has {len(complete)}"
            )
            continue
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
            try:
                axes = plot(study)
            except (ValueError, RuntimeError) as exc:  # e.g. no parameter varied
                skipped.append(f"{name}: {exc}")
                continue
        figure = axes.figure
        assert isinstance(figure, Figure)  # optuna draws on a new pyplot figure, not a subfigure
        figure.set_size_inches(8, 5)
        figure.tight_layout()
        figure.savefig(folder / name, dpi=100)
        plt.close(figure)
        written.append(folder / name)
    return written, skipped


def export_variants(spec: Any, study: Any, k: int, path: Path | None = None) -> Path:
    """Write the study file with the ``k`` best trials appended as variants; returns its path."""
    from tricklab.spec import load_study

    if spec.source is None:
        raise TricklabError("--export-variants needs a study read from a file.")
    ranked = ranked_trials(study)
    best = ranked[:k]
    if not best:
        raise TricklabError(
            "--export-variants: the search has no complete trial yet; run it with --trials N."
        )
    source = Path(spec.source)
    path = path or source.with_name(f"{source.stem}-best.toml")
    text = source.read_text(encoding="utf-8")
    raw_variants = "variants" in _top_level_tables(text) or "grid" in _top_level_tables(text)
    objective = str(study.user_attrs.get("objective"))
    lines = [
        "",
        f"# The {len(best)} best trials of `tricklab search` on {spec.name} "
        f"({objective}, {study.direction.name.lower()}), chosen with one",
        "# seed and split: `tricklab run` compares them over all the study's seeds.",
        f"# Equal {objective} values are ranked by lower {TIE_BREAK}, then lower trial number.",
    ]
    note = tie_note(study, objective, ranked)
    if note:
        lines.append(f"# {note}.")
    if not raw_variants:
        lines += ["[variants.baseline]"]
    for trial in best:
        overrides = trial.user_attrs.get("overrides") or trial.params
        comment = f"{trial.value:.6g}"
        if objective != TIE_BREAK and trial.user_attrs.get(TIE_BREAK) is not None:
            comment += f", {TIE_BREAK} {trial.user_attrs[TIE_BREAK]:.6g}"
        lines.append(f'[variants."trial-{trial.number}"]   # {comment}')
        lines += [f"{_toml(key)} = {_toml(value)}" for key, value in overrides.items()]
    out = text.rstrip("\n") + "\n" + "\n".join(lines) + "\n"
    path.write_text(out, encoding="utf-8")
    try:
        load_study(path)
    except SpecError as exc:
        raise TricklabError(f"--export-variants: the written file does not load: {exc}") from None
    return path


def _top_level_tables(text: str) -> set[str]:
    import tomli

    return set(tomli.loads(text))


def _toml(value: Any) -> str:
    """A TOML value (or key) for the scalars and tables a search samples."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        if math.isnan(value):
            return "nan"
        return repr(value) if math.isfinite(value) else ("inf" if value > 0 else "-inf")
    if isinstance(value, str):
        return json.dumps(value)
    if isinstance(value, Mapping):
        inner = ", ".join(
            f"{k if _BARE_KEY.match(k) else json.dumps(k)} = {_toml(v)}" for k, v in value.items()
        )
        return "{" + inner + "}"
    if isinstance(value, list | tuple):
        return "[" + ", ".join(_toml(v) for v in value) + "]"
    raise TypeError(f"cannot write {value!r} as TOML")
