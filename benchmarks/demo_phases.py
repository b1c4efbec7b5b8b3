"""Where the demo's wall time goes: imports, start-up, member init, compile, epochs, evaluation,
commit and report, for ``tricklab run studies/thoracic-losses.toml --fresh`` in one process.

Each phase is timed by wrapping the functions that do it (the first name found of each list, so
the same script measures an older tree too: ``PYTHONPATH=/path/to/old/src``):

    imports      import the command line, Keras and JAX
    member init  a population's members: initial weights and dropout seed states
    compile      first call of each compiled program (epoch and evaluation) less a steady call
    epochs       the training epochs (steady cost of every epoch call, first included)
    evaluation   steady cost of evaluation calls, and turning outputs into results
    epoch loop   the rest of a population's training: data to the device, between epochs
    commit       writing finished runs into the store
    report       the report printed and written after training
    start-up     the rest: reading and resolving the study, lint, planning, claims, index

    .venv/bin/python benchmarks/demo_phases.py [--study studies/thoracic-losses.toml]
"""

from __future__ import annotations

import argparse
import functools
import importlib
import json
import os
import statistics
import sys
import tempfile
import time
from collections import defaultdict
from collections.abc import Callable, Iterator
from typing import Any

SPENT: dict[str, float] = defaultdict(float)
CALLS: dict[str, list[float]] = defaultdict(list)  # per compiled program: each call's seconds


def _find(candidates: list[str]) -> tuple[Any, str, Any] | None:
    """(owner, attribute, function) of the first ``module:Qual.name`` that exists."""
    for dotted in candidates:
        module, _, qual = dotted.partition(":")
        try:
            owner: Any = importlib.import_module(module)
        except ImportError:
            continue
        *path, name = qual.split(".")
        for part in path:
            owner = getattr(owner, part, None)
        if owner is not None and hasattr(owner, name):
            return owner, name, getattr(owner, name)
    return None


def _timed(phase: str, candidates: list[str]) -> None:
    found = _find(candidates)
    if found is None:
        print(f"  (no function for {phase}: {candidates})", file=sys.stderr)
        return
    owner, name, real = found

    @functools.wraps(real)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        start = time.perf_counter()
        try:
            out = real(*args, **kwargs)
        finally:
            SPENT[phase] += time.perf_counter() - start
        if isinstance(out, Iterator):  # a generator: time spent inside it, not its consumer's
            return _inside(phase, out)
        return out

    setattr(owner, name, wrapper)


def _inside(phase: str, items: Iterator[Any]) -> Iterator[Any]:
    while True:
        start = time.perf_counter()
        try:
            item = next(items)
        except StopIteration:
            SPENT[phase] += time.perf_counter() - start
            return
        SPENT[phase] += time.perf_counter() - start
        yield item


def _programs(candidates: list[str]) -> None:
    """Time every call of the compiled epoch and evaluation programs (blocking on results)."""
    found = _find(candidates)
    if found is None:
        print(f"  (no compiled programs: {candidates})", file=sys.stderr)
        return
    owner, name, real = found
    import jax

    def timing(label: str, fn: Callable[..., Any]) -> Callable[..., Any]:
        key = f"{label}#{len(CALLS)}-{time.perf_counter()}"

        def call(*args: Any, **kwargs: Any) -> Any:
            start = time.perf_counter()
            out = jax.block_until_ready(fn(*args, **kwargs))
            CALLS[key].append(time.perf_counter() - start)
            return out

        return call

    def wrapper(*args: Any, **kwargs: Any) -> Any:
        epoch_fn, evaluate_fn = real(*args, **kwargs)
        return timing("epochs", epoch_fn), timing("evaluation", evaluate_fn)

    setattr(owner, name, wrapper)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--study", default="studies/thoracic-losses.toml")
    parser.add_argument("--json", help="also write the phases here")
    parser.add_argument(
        "--with-tensorflow",
        action="store_true",
        help="let Keras import TensorFlow where installed (make demo's venv has none; seeding "
        "imports it when present, about 4 s)",
    )
    args = parser.parse_args()
    wall = time.perf_counter()
    os.environ.setdefault("KERAS_BACKEND", "jax")  # tricklab's default, before Keras is imported
    if not args.with_tensorflow:
        sys.modules["tensorflow"] = None  # type: ignore[assignment]  # as if not installed
    import jax  # noqa: F401
    import keras  # noqa: F401

    from tricklab.cli import main as cli_main

    imports = time.perf_counter() - wall
    _timed(
        "member init",
        [
            "tricklab.engines.population:Population._build",
            "tricklab.engines.population:Population.__init__",
        ],
    )
    _programs(["tricklab.engines.population:compile_programs"])
    _timed("evaluation python", ["tricklab.engines.population:Population._results"])
    _timed(
        "commit",
        [
            "tricklab.store._commits:Commits.save_many",
            "tricklab.store:RunStore.save",
        ],
    )
    _timed("report", ["tricklab.cli._run:show_report", "tricklab._commands:show_report"])
    _timed("training", ["tricklab.engines.population:Population.train"])
    with tempfile.TemporaryDirectory() as out:
        code = cli_main(["run", args.study, "--out", out, "--fresh", "--quiet"])
    total = time.perf_counter() - wall
    compile_s = epochs = evaluation = 0.0
    for key, calls in CALLS.items():
        steady = statistics.median(calls[1:]) if len(calls) > 1 else 0.0
        first_compile = max(0.0, calls[0] - steady) if len(calls) > 1 else calls[0]
        compile_s += first_compile
        if key.startswith("epochs"):
            epochs += sum(calls) - first_compile
        else:
            evaluation += sum(calls) - first_compile
    # The evaluation generator's time includes its program calls: count the rest only.
    evaluation_python = max(0.0, SPENT.pop("evaluation python", 0.0) - evaluation)
    phases = {
        "imports": imports,
        "member init": SPENT["member init"],
        "compile": compile_s,
        "epochs": epochs,
        "evaluation": evaluation + evaluation_python,
        # the rest of a population's training: data to the device, the loop between epochs
        "epoch loop": max(
            0.0,
            SPENT["training"]
            - SPENT["member init"]  # a population builds its members when it starts training
            - compile_s
            - epochs
            - evaluation
            - evaluation_python,
        ),
        "commit": SPENT["commit"],
        "report": SPENT["report"],
    }
    phases["start-up"] = total - sum(phases.values())
    phases["total"] = total
    print(f"exit {code}; phases (s):", file=sys.stderr)
    for name, seconds in phases.items():
        print(f"  {name:12s} {seconds:7.2f}", file=sys.stderr)
    print(f"  wall / epochs = {total / max(epochs, 1e-9):.2f}", file=sys.stderr)
    if args.json:
        with open(args.json, "w", encoding="utf-8") as f:
            json.dump(phases, f, indent=1)


if __name__ == "__main__":
    main()
