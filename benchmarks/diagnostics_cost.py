"""Cost of training diagnostics at the default setting (fashion-activations.toml's model).

Trains runs with ``diagnostics = true`` and reports the time the diagnostics took (measured
inside the callback, compilation of the probe included) as a share of the run's training time.
The same runs without diagnostics give a second, noisier estimate (two trainings' wall times).

    .venv/bin/python benchmarks/diagnostics_cost.py [--epochs 10] [--variant relu ...]
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

from tricklab.api import run_study
from tricklab.spec import load_study

STUDY = Path(__file__).parents[1] / "studies" / "fashion-activations.toml"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--epochs", type=int, default=10)
    parser.add_argument("--variant", action="append", default=None)
    args = parser.parse_args()
    base = load_study(STUDY).select(args.variant or ["relu", "sigmoid"], seeds=1)
    base = base.with_epochs(args.epochs)
    results = {}
    for label, spec in (("off", base.model_copy(update={"diagnostics": None})), ("on", base)):
        with tempfile.TemporaryDirectory() as out:
            for result in run_study(spec, out=out).results:
                results[(result.variant, label)] = result
    print(
        f"{'variant':9} {'epochs':>6} {'train s':>8} {'diagnostics s':>13} {'share':>6}   "
        f"{'train s without':>15} {'wall ratio':>10}"
    )
    for variant in base.variants:
        off, on = results[(variant, "off")], results[(variant, "on")]
        print(
            f"{variant:9} {on.epochs_run:6d} {on.seconds_total:8.2f} "
            f"{on.diagnostics_seconds:13.2f} {on.diagnostics_seconds / on.seconds_total:6.1%}   "
            f"{off.seconds_total:15.2f} {on.seconds_total / off.seconds_total:10.3f}"
        )


if __name__ == "__main__":
    main()
