"""What a study found, in words: the headline, and what each variant changes.

:func:`headline` states the verdicts of a :class:`~tricklab.report.Report` in a sentence (what
is better, what is worse, what cannot be told apart, how variants failed, and, when nothing is
decided, how many seeds would decide the largest observed difference, or that no number would
under the protocol's floor), what the differences measure (and, for mse, what the mean
predictor scores), then, for a table, the best variant against the logistic (ridge) regression
reference. :func:`recipe_changes`
lists, per variant, the structural difference of its resolved recipe from the baseline's:
``train.loss: binary_crossentropy -> mean_absolute_error``,
``model.layers[1]: + dropout(rate=0.5)``.
Both are pure functions of the report.
"""

from __future__ import annotations

import difflib
import json
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from tricklab.report._format import estimate
from tricklab.report._notes import MEAN_PREDICTOR, mean_predictor
from tricklab.report._references import reference_line
from tricklab.report._sentences import failure_words, outlook, short_verdict, untested_phrase
from tricklab.stats import Comparison, Verdict, percent

if TYPE_CHECKING:
    from tricklab.report._model import Report

#: At most this many changes are listed per variant (then "and N more").
MAX_CHANGES = 4
#: Layer fields left out of a layer's short form when they hold their default.
_LAYER_DEFAULTS = {"repeat": 1, "use_bias": True}


def headline(report: Report) -> list[str]:
    """The verdict in a sentence; then what its numbers are, why the variants that did not
    learn are said to, and the Reference line of a table's study (a line each)."""
    reference = reference_line(report)
    return _verdicts(report) + ([reference] if reference else [])


def _verdicts(report: Report) -> list[str]:
    metric = report.primary_metric
    base, unit = report.baseline, report.facts.unit
    if not report.comparisons:
        only = len(report.table.index) == 1
        mean, interval = _primary(report, base) if base in report.table.index else ("", "")
        if only:
            scores = f"{base}: test {metric}, {report.weights} weights, {mean} {interval}"
            chance = _mean_predictor(report)
            return [
                scores.rstrip() + " (a single variant)" + (f"; {chance}" if chance else "") + "."
            ]
        return [f"Nothing compared: the baseline variant ({base}) has no finished run."]
    failed = report.failures()
    better = [c for c in report.comparisons if c.verdict is Verdict.BETTER]
    worse = [c for c in report.comparisons if c.verdict is Verdict.WORSE]
    # Every undecided comparison stays visible, a failed variant's too: how it failed is said
    # beside it, never instead of it.
    undecided = [c for c in report.comparisons if c.verdict is Verdict.NO_DIFFERENCE]
    untested = [c for c in report.comparisons if c.verdict is Verdict.TOO_FEW]
    parts = []
    if base in failed:
        parts.append(f"the baseline {base}: {failure_words(failed[base].mode)}")
    for group, verdict in ((better, Verdict.BETTER), (worse, Verdict.WORSE)):
        if group:
            word = short_verdict(verdict)
            verb = "is" if len(group) == 1 else "are"
            parts.append(f"{_with_diffs(group, metric)} {verb} {word} than {base}")
    if undecided:
        seeds = max(c.n for c in undecided)
        if len(undecided) <= 2:
            who = _and([c.variant for c in undecided])
        else:
            who = f"{len(undecided)} {'others' if better or worse else 'variants'}"
        parts.append(f"{who} cannot be told apart from {base} with {seeds} {unit}")
    if untested:
        parts.append(f"{_and([c.variant for c in untested])}: {untested_phrase(unit)}")
    by_mode: dict[str, list[str]] = {}
    for variant in report.table.index:
        if variant in failed and variant != base:
            by_mode.setdefault(failure_words(failed[variant].mode), []).append(variant)
    for words, names in by_mode.items():
        parts.append(f"{_and(names)}: {words}")
    if not better and not worse:
        largest = max(undecided, key=lambda c: abs(c.diff), default=None)
        if largest is not None and largest.seeds_needed and largest.seeds_needed > largest.n:
            diff, _ = estimate(largest.diff, largest.ci_low, largest.ci_high, sign=True)
            parts.append(
                f"about {largest.seeds_needed} {unit} would decide the largest observed "
                f"difference ({largest.variant}, {diff})"
            )
        elif largest is not None and outlook(largest) and largest.below_floor:
            diff, _ = estimate(largest.diff, largest.ci_low, largest.ci_high, sign=True)
            parts.append(
                f"no number of {unit} would decide the largest observed difference "
                f"({largest.variant}, {diff}), as {outlook(largest)}"
            )
    lines = ["; ".join(parts) + "."]
    first = report.comparisons[0]
    corrected = "Nadeau-Bengio corrected, " if first.correction else ""
    measured = f"Δ = variant − {base} in test {metric}, {report.weights} weights, paired by "
    if first.tests:
        lines.append(
            f"{measured}{unit[:-1]}; "
            f"{percent(first.confidence)} intervals, {corrected}Bonferroni-adjusted across "
            f"{first.tests} comparison{'s' if first.tests != 1 else ''}."
        )
    else:
        lines.append(f"{measured}{unit[:-1]}; no comparison has two pairs to test.")
    chance = _mean_predictor(report)
    if chance:  # what the primary metric scores without learning, beside what it measures
        lines[-1] += f" {chance[0].upper()}{chance[1:]}."
    if failed:
        lines.append(
            "How variants failed: "
            + "; ".join(
                f"{variant}: {failure_words(f.mode)} ({f.evidence})"
                for variant in report.table.index
                if (f := failed.get(variant)) is not None
            )
            + "."
        )
    return lines


def _mean_predictor(report: Report) -> str:
    """``the mean predictor (always the training mean) scores test mse 0.25`` where the primary
    metric's chance level is that score (mse), else ""."""
    level = mean_predictor(report)
    if not level:
        return ""
    metric = report.primary_metric
    return f"the {MEAN_PREDICTOR} (always the training mean) scores test {metric} {level}"


def _primary(report: Report, variant: str) -> tuple[str, str]:
    row = report.table.loc[variant]
    prefix = f"{report.primary_metric}_{report.weights}"
    return estimate(
        row.get(f"{prefix}_mean"),
        row.get(f"{prefix}_low"),
        row.get(f"{prefix}_high"),
        report.primary_metric,
    )


def _with_diffs(group: Sequence[Comparison], metric: str) -> str:
    """``a (auc -0.078 [-0.13, -0.029]) and b (-0.095 [-0.14, -0.045])``."""
    named = []
    for number, comparison in enumerate(group):
        diff, interval = estimate(comparison.diff, comparison.ci_low, comparison.ci_high, sign=True)
        label = f"{metric} " if number == 0 else ""
        named.append(f"{comparison.variant} ({label}{diff} {interval})".replace(" )", ")"))
    return _and(named)


def _and(items: Sequence[str]) -> str:
    items = list(items)
    if len(items) <= 1:
        return "".join(items)
    return ", ".join(items[:-1]) + " and " + items[-1]


# -- what each variant changes --------------------------------------------------------------------
def recipe_changes(report: Report) -> dict[str, list[str]]:
    """Per variant other than the baseline (in the table's order), the changes of its resolved
    recipe from the baseline's; variants whose recipe is unknown are left out."""
    base = report.recipes.get(report.baseline)
    if base is None:
        return {}
    out: dict[str, list[str]] = {}
    for variant in report.table.index:
        recipe = report.recipes.get(variant)
        if variant == report.baseline or recipe is None:
            continue
        changes = diff_recipes(base, recipe)
        if len(changes) > MAX_CHANGES:
            more = f"and {len(changes) - MAX_CHANGES + 1} more changes"
            changes = [*changes[: MAX_CHANGES - 1], more]
        out[variant] = changes or ["the same recipe as the baseline"]
    return out


def diff_recipes(old: Any, new: Any, path: str = "") -> list[str]:
    """The structural difference of two resolved recipes, one ``path: old -> new`` per change;
    layers inserted or removed as ``model.layers[i]: + dense(units=64)`` / ``- ...``; a
    builder's arguments as ``model.args.width: 16 -> 64``."""
    if old == new:
        return []
    if isinstance(old, dict) and isinstance(new, dict) and _same_kind(old, new):
        changes = []
        for key in list(old) + [k for k in new if k not in old]:
            if path == "model" and key == "bound":  # tricklab's record of the builder's file
                continue
            where = f"{path}.{key}" if path else str(key)
            if key not in new:
                changes.append(f"{where}: - {_short(old[key])}")
            elif key not in old:
                changes.append(f"{where}: + {_short(new[key])}")
            else:
                changes += diff_recipes(old[key], new[key], where)
        return changes
    if isinstance(old, list) and isinstance(new, list):
        return _diff_lists(old, new, path)
    return [f"{path}: {_short(old)} -> {_short(new)}"]


def _same_kind(old: dict[str, Any], new: dict[str, Any]) -> bool:
    """Two tables are compared field by field unless they name different components/layers."""
    return all(old.get(k) == new.get(k) for k in ("name", "type") if k in old or k in new)


def _diff_lists(old: list[Any], new: list[Any], path: str) -> list[str]:
    if len(old) == len(new):
        changes = []
        for number, (a, b) in enumerate(zip(old, new, strict=True)):
            changes += diff_recipes(a, b, f"{path}[{number}]")
        return changes
    keys = [[json.dumps(item, sort_keys=True) for item in items] for items in (old, new)]
    changes = []
    matcher = difflib.SequenceMatcher(a=keys[0], b=keys[1], autojunk=False)
    for tag, i1, i2, j1, j2 in matcher.get_opcodes():
        if tag in ("delete", "replace"):
            changes += [f"{path}[{i}]: - {_short(old[i])}" for i in range(i1, i2)]
        if tag in ("insert", "replace"):
            changes += [f"{path}[{j}]: + {_short(new[j])}" for j in range(j1, j2)]
    return changes


def _short(value: Any) -> str:
    """A recipe value in one short line: ``dropout(rate=0.5)``, ``l2(l2=0.01)``, ``adam``."""
    if isinstance(value, dict):
        head = value.get("type", value.get("name"))
        fields = {
            k: v
            for k, v in value.items()
            if k not in ("type", "name") and _LAYER_DEFAULTS.get(k, object()) != v
        }
        inner = ", ".join(f"{k}={_short(v)}" for k, v in fields.items())
        return f"{head}({inner})" if head is not None else "{" + inner + "}"
    if isinstance(value, list):
        return "[" + ", ".join(_short(v) for v in value) + "]"
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, float):
        return f"{value:g}"
    return str(value)
