"""Start-up of a population: its members' initial weights and dropout seed states.

The demo study (``studies/thoracic-losses.toml``: 7 losses x 10 repeats of 5-fold
cross-validation, 350 runs) trains as one population of 7 cohorts. Each way runs in a fresh
Python process, as ``tricklab run`` would (first-call compilation included), and times:

    members   the member-initialisation phase, every cohort: all members' initial variables,
              stacked (each cohort's template model is built before, untimed)
    build     ``Population._build`` in full: templates built and compiled, members, callbacks

Ways:

    built     one Keras model per member, built after ``set_random_seed`` (the engine before)
    derived   from each cohort's template model, no model per member (``engines/_initial.py``)

The first ``set_random_seed`` imports TensorFlow where it is installed (seconds, in both ways);
each process pays it before the timings. Times are medians over ``--repeats`` processes.

    .venv/bin/python benchmarks/population_init.py [--repeats 3] [--study PATH]
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

STUDY = Path(__file__).parents[1] / "studies" / "thoracic-losses.toml"
WAYS = ("built", "derived")


def measure(study_path: str, way: str) -> dict[str, Any]:
    """One process: the two timings of one way."""
    from tricklab import engines
    from tricklab.engines import _initial, population
    from tricklab.engines._scoring import seed_everything
    from tricklab.engines.build import build_model
    from tricklab.spec import load_study
    from tricklab.study import plan_study, resolve

    study = resolve(load_study(study_path))
    tasks = [
        engines.RunTask(plan, study.splits(plan.seed))
        for plan, assignment in plan_study(study, "population")
        if assignment.engine == "population"
    ]
    groups: dict[Any, list[engines.RunTask]] = {}  # as PopulationEngine.run groups them
    for task in tasks:
        sizes = tuple(task.splits.sizes().values())
        groups.setdefault((engines.population_key(task.plan.recipe), sizes), []).append(task)
    seed_everything(0)  # imports TensorFlow where installed: not what is measured

    members, fallbacks, cohorts = 0.0, 0, 0
    for group in groups.values():
        by_recipe: dict[str, list[engines.RunTask]] = {}
        for task in group:
            by_recipe.setdefault(task.plan.recipe.model_dump_json(), []).append(task)
        shape = group[0].splits.x_train.shape[1:]
        for cohort in by_recipe.values():
            recipe, seeds = cohort[0].plan.recipe, [t.plan.init_seed for t in cohort]
            seed_everything(seeds[0])
            template = build_model(recipe, shape)
            tick = time.perf_counter()
            if way == "built":
                states = _initial.built_states(recipe, shape, seeds)
            else:
                found = _initial.initial_states(template, seeds[0], seeds)
                fallbacks += found is None
                states = found or _initial.built_states(recipe, shape, seeds)
            _block(states)
            members += time.perf_counter() - tick
            cohorts += 1

    if way == "built":  # the engine as it was: no derivation, a model per member
        population.initial_states = lambda *args: None  # type: ignore[assignment]
    build = 0.0
    for group in groups.values():
        tick = time.perf_counter()
        population.Population(group, study.dataset)._build()
        build += time.perf_counter() - tick
    return {
        "runs": len(tasks),
        "populations": len(groups),
        "cohorts": cohorts,
        "fallbacks": fallbacks,
        "members": members,
        "build": build,
    }


def _block(states: Any) -> None:
    for values in states:
        for value in values:
            value.block_until_ready()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--study", default=str(STUDY))
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--way", choices=WAYS, help=argparse.SUPPRESS)  # a worker process
    args = parser.parse_args()
    if args.way:
        print(json.dumps(measure(args.study, args.way)))
        return
    runs: dict[str, list[dict[str, Any]]] = {way: [] for way in WAYS}
    for _ in range(args.repeats):
        for way in WAYS:  # interleaved: load from other work hits both ways alike
            out = subprocess.run(
                [sys.executable, __file__, "--study", args.study, "--way", way],
                check=True,
                capture_output=True,
                text=True,
            ).stdout
            runs[way].append(json.loads(out.strip().splitlines()[-1]))
    first = runs[WAYS[0]][0]
    print(
        f"{first['runs']} runs, {first['populations']} population(s), {first['cohorts']} cohorts; "
        f"median of {args.repeats} processes per way"
    )
    print(f"{'way':8} {'members s':>10} {'build s':>8} {'fallbacks':>9}")
    median = {
        way: {k: statistics.median(r[k] for r in rows) for k in ("members", "build")}
        for way, rows in runs.items()
    }
    for way in WAYS:
        fallbacks = max(r["fallbacks"] for r in runs[way])
        print(f"{way:8} {median[way]['members']:10.3f} {median[way]['build']:8.3f} {fallbacks:9d}")
    built, derived = median["built"], median["derived"]
    print(
        f"speed-up: members x{built['members'] / derived['members']:.1f}, "
        f"build x{built['build'] / derived['build']:.1f}"
    )


if __name__ == "__main__":
    main()
