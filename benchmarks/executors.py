"""The process executor with 2 workers against the local executor, on two Thoracic studies.

Not a test: wall time of a whole ``tricklab run`` command (interpreter start, imports, data,
training, report) per way, each in a fresh process into a fresh store:

    solo         4 losses (binary_crossentropy, mean_squared_error, mean_absolute_error,
                 poisson) x 4 seeds of the lecture's 30-Dropout-30 model, 30 epochs, batch 30,
                 --engine solo: 16 runs, one ``model.fit`` each
    population   a width grid (16, 32, 64, 128 units) x 8 seeds of the same model, 30 epochs,
                 --engine population: 4 populations of 8 members (one per width)

Ways: ``--executor local`` and ``--executor process --workers 2``; ratios are local time over
process time (above 1: the workers were faster), for the whole command and for its training
(from the start of the progress log to the last run committed; the process executor's worker
start-up is inside it, the imports, planning and report of the command are not). The load
average is printed before and after: other work on the machine skews the numbers.

    .venv/bin/python benchmarks/executors.py
    .venv/bin/python benchmarks/executors.py --studies population --workers 2
"""

from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

MODEL = """\
dataset = "thoracic"
[model]
layers = [
  {type = "dense", units = 30, activation = "relu"},
  {type = "dropout", rate = 0.5},
  {type = "dense", units = 30, activation = "relu"},
  {type = "dense", units = 1, activation = "sigmoid"},
]
[train]
loss = "binary_crossentropy"
batch_size = 30
epochs = 30
"""
LOSSES = """seeds = 4
[grid]
"train.loss" = ["binary_crossentropy", "mean_squared_error", "mean_absolute_error", "poisson"]
[lint.ignore]
TL003 = "regression losses on a classifier, as the lecture compares them"
"""
WIDTHS = """seeds = 8
[grid]
width = {paths = ["model.layers[0].units", "model.layers[2].units"], values = [16, 32, 64, 128]}
"""


def studies(folder: Path) -> dict[str, list[str]]:
    """Per study: the arguments of ``tricklab run`` that train it."""
    paths = {}
    for name, rest in (("losses", LOSSES), ("widths", WIDTHS)):
        paths[name] = folder / f"executors-{name}.toml"
        # TOML: the top-level keys before the first table
        head, tables = rest.split("[", 1)
        paths[name].write_text(head + MODEL + "[" + tables, encoding="utf-8")
    return {
        "solo": [str(paths["losses"]), "--engine", "solo"],
        "population": [str(paths["widths"]), "--engine", "population"],
    }


def timed(args: list[str], out: Path) -> tuple[float, float]:
    """Seconds of the whole command, and of its training: from the start of the progress log
    to the last run committed (worker start-up included; imports, planning and report not)."""
    command = [sys.executable, "-m", "tricklab", "run", *args, "--out", str(out), "--quiet"]
    started = time.perf_counter()
    done = subprocess.run(command, capture_output=True, text=True)
    seconds = time.perf_counter() - started
    if done.returncode != 0:
        sys.exit(f"{' '.join(command)} failed:\n{done.stdout}\n{done.stderr}")
    # --quiet logs one line per committed run: "[   12.3 s] 5/16 mse seed 0: ..."
    stamps = re.findall(r"^\[\s*([\d.]+) s\] \d+/\d+ ", done.stdout, flags=re.MULTILINE)
    return seconds, float(stamps[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--studies", default="solo,population", help="comma-separated")
    parser.add_argument("--workers", type=int, default=2)
    args = parser.parse_args()
    print(f"load average before: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    print(f"cores: {len(os.sched_getaffinity(0))}")
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        chosen = studies(folder)
        for name in args.studies.split(","):
            local = timed(chosen[name], folder / f"{name}-local")
            workers = ["--executor", "process", "--workers", str(args.workers)]
            process = timed([*chosen[name], *workers], folder / f"{name}-process")
            rows.append((name, local, process))
            print(f"{name}: local {local[0]:.1f} s, process x{args.workers} {process[0]:.1f} s")
    print(f"load average after: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    print()
    print(
        f"| study | local: command s (training s) | process, {args.workers} workers: command s "
        "(training s) | local / process: command (training) |"
    )
    print("|---|---:|---:|---:|")
    for name, (local, local_training), (process, process_training) in rows:
        print(
            f"| {name} | {local:.1f} ({local_training:.1f}) | {process:.1f} "
            f"({process_training:.1f}) | {local / process:.2f}x "
            f"({local_training / process_training:.2f}x) |"
        )


if __name__ == "__main__":
    main()
