"""Which protocol decides more at the same cost: resplit or repeated k-fold cross-validation?

Trains a Thoracic study (default: studies/thoracic-losses.toml) under each protocol with the same
number of runs per variant, through the population engine and without a store, and prints each
comparison's Bonferroni-adjusted interval (Nadeau-Bengio corrected under both, as both train on
overlapping rows) with the mean interval width per protocol. Each protocol is run on ``--draws``
disjoint sets of seeds (repeats) so one lucky draw does not pick the default.

    .venv/bin/python benchmarks/protocols.py [--study PATH] [--runs 20] [--draws 2]

The README ("Splits, seeds and cross-validation") quotes its output.
"""

from __future__ import annotations

import argparse
import statistics
import time
from typing import Any

from tricklab import engines
from tricklab.data import resolve
from tricklab.report import verdict_label
from tricklab.spec import StudySpec, load_study
from tricklab.stats import compare
from tricklab.study import make_plan


def protocols(runs: int, draw: int) -> dict[str, dict[str, Any]]:
    """Protocol name -> the study keys that set it, for the ``draw``-th set of seeds."""
    out: dict[str, dict[str, Any]] = {
        "resplit": {"seeds": list(range(draw * runs, (draw + 1) * runs)), "resplit": True}
    }
    for folds in (5, 10):
        if runs % folds == 0:
            repeats = runs // folds
            out[f"cv {folds}x{repeats}"] = {"cv": {"folds": folds, "repeats": repeats}}
    return out


def train(spec: StudySpec, first_repeat: int) -> tuple[list[Any], Any]:
    study = resolve(spec)
    seeds = list(spec.seeds)
    if spec.cv is not None:  # later draws use later repeats: run numbers shift by whole repeats
        seeds = [s + first_repeat * spec.cv.folds for s in seeds]
    tasks = [
        engines.RunTask(make_plan(study, v, s, "population"), study.splits(s))
        for v in spec.variants
        for s in seeds
    ]
    outcomes = list(engines.get("population").run(tasks, study.dataset))
    return [o.result for o in outcomes if isinstance(o, engines.RunDone)], study


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--study", default="studies/thoracic-losses.toml")
    parser.add_argument("--runs", type=int, default=20, help="runs per variant (the cost)")
    parser.add_argument("--draws", type=int, default=2, help="disjoint seed sets per protocol")
    args = parser.parse_args()
    base = load_study(args.study)
    raw = base.model_dump(mode="json", exclude={"variants", "overrides", "source", "seeds"})
    raw = {k: v for k, v in raw.items() if k not in ("resplit", "split_seed", "cv")}
    raw["variants"] = base.overrides
    widths: dict[str, list[float]] = {}
    for draw in range(args.draws):
        for name, keys in protocols(args.runs, draw).items():
            spec = StudySpec.from_dict({**raw, **keys}, source=base.source)
            repeats = spec.cv.repeats if spec.cv else 0
            tick = time.perf_counter()
            results, study = train(spec, draw * repeats)
            correction = study.protocol.correction
            comparisons = compare(
                results, spec.baseline_variant, study.primary_metric, correction=correction
            )
            seconds = time.perf_counter() - tick
            print(
                f"\n{name}, draw {draw}: {len(results)} runs in {seconds:.0f} s, "
                f"correction n_test/n_train = {correction:.3f}"
            )
            for c in comparisons:
                print(
                    f"  {c.variant:32s} {c.diff:+.3f} [{c.ci_low:+.3f}, {c.ci_high:+.3f}] "
                    f"{verdict_label(c)}"
                )
                widths.setdefault(name, []).append(c.ci_high - c.ci_low)
    print("\nmean width of the adjusted intervals (smaller decides more):")
    for name, values in widths.items():
        print(f"  {name:10s} {statistics.mean(values):.3f} over {len(values)} comparisons")


if __name__ == "__main__":
    main()
