"""What a search shows: a terminal summary, two static images, and its best trials as variants.

- ``summary``: trial counts by state, the best value, its trial and parameters.
- ``write_images``: ``history.png`` (Optuna's optimisation history) and ``importances.png``
  (parameter importances, fANOVA) with ``optuna.visualization.matplotlib``.
- ``export_variants``: the K best COMPLETE trials as ``[variants."trial-N"]`` tables appended to
  a copy of the study file, which ``tricklab run`` trains with all the study's seeds: one seed
  and one split chose them, so only a comparison over seeds says whether they really differ.
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


def best_trials(study: Any, k: int) -> list[Any]:
    """The ``k`` best COMPLETE trials, best first."""
    from optuna.trial import TrialState

    complete = study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
    reverse = study.direction.name == "MAXIMIZE"
    return sorted(complete, key=lambda t: t.value, reverse=reverse)[:k]


def summary(study: Any, objective: str) -> list[str]:
    """A few lines for the terminal."""
    tally = counts(study)
    states = ", ".join(f"{n} {state.lower()}" for state, n in sorted(tally.items()))
    lines = [f"trials: {states or 'none'}"]
    best = best_trials(study, 1)
    if best:
        trial = best[0]
        params = ", ".join(f"{k} = {_toml(v)}" for k, v in trial.params.items())
        lines.append(
            f"best {objective}: {trial.value:.6g} (trial {trial.number}, epoch "
            f"{trial.user_attrs.get('best_epoch', '?')}): {params}"
        )
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
    best = best_trials(study, k)
    if not best:
        raise TricklabError(
            "--export-variants: the search has no complete trial yet; run it with --trials N."
        )
    source = Path(spec.source)
    path = path or source.with_name(f"{source.stem}-best.toml")
    text = source.read_text(encoding="utf-8")
    raw_variants = "variants" in _top_level_tables(text) or "grid" in _top_level_tables(text)
    lines = [
        "",
        f"# The {len(best)} best trials of `tricklab search` on {spec.name} "
        f"({study.user_attrs.get('objective')}, {study.direction.name.lower()}), chosen with one",
        "# seed and split: `tricklab run` compares them over all the study's seeds.",
    ]
    if not raw_variants:
        lines += ["[variants.baseline]"]
    for trial in best:
        overrides = trial.user_attrs.get("overrides") or trial.params
        lines.append(f'[variants."trial-{trial.number}"]   # {trial.value:.6g}')
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
