"""Cost of training diagnostics at the default setting (fashion-activations.toml's model).

Trains the same runs with and without ``diagnostics = true`` and compares wall time per epoch
(steady state, after the compiling first epoch) and in total. Timings are noisy: read the ratio.

    .venv/bin/python benchmarks/diagnostics_cost.py [--epochs 4] [--variant relu --variant sigmoid]
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

from tricklab.spec import load_study
from tricklab.study import run_study

STUDY = Path(__file__).parents[1] / "studies" / "fashion-activations.toml"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--epochs", type=int, default=4)
    parser.add_argument("--variant", action="append", default=None)
    args = parser.parse_args()
    base = load_study(STUDY).select(args.variant or ["relu", "sigmoid"], seeds=1)
    base = base.with_epochs(args.epochs)
    timings = {}
    for label, diagnostics in (("off", None), ("on", True)):
        spec = base.model_copy(update={"diagnostics": None}) if diagnostics is None else base
        with tempfile.TemporaryDirectory() as out:
            for result in run_study(spec, out=out).results:
                timings[(result.variant, label)] = result
    print(
        f"{'variant':10} {'s/epoch off':>12} {'s/epoch on':>11} {'ratio':>6} "
        f"{'total off':>10} {'total on':>9} {'ratio':>6}"
    )
    for variant in base.variants:
        off, on = timings[(variant, "off")], timings[(variant, "on")]
        print(
            f"{variant:10} {off.seconds_per_epoch:12.3f} {on.seconds_per_epoch:11.3f} "
            f"{on.seconds_per_epoch / off.seconds_per_epoch:6.3f} {off.seconds_total:10.1f} "
            f"{on.seconds_total:9.1f} {on.seconds_total / off.seconds_total:6.3f}"
        )


if __name__ == "__main__":
    main()
