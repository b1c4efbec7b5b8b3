"""``tricklab activations`` and ``tricklab lr-find``: figures that help choose a recipe."""

from __future__ import annotations

import argparse
from pathlib import Path

from rich.console import Console

from tricklab.cli._errors import check_directory
from tricklab.cli._options import Subparsers, backend_option

# The defaults live with the range test; importing it here loads nothing `tricklab --help` does
# not load already (numpy and the spec; Keras only when the test runs).
from tricklab.tools.lrfind import (
    DEFAULT_MAX_LR,
    DEFAULT_MIN_LR,
    DEFAULT_SEED,
    DEFAULT_STEPS,
    DEFAULT_STOP_FACTOR,
    RULE,
)


def add_parser(sub: Subparsers) -> None:
    figure = sub.add_parser(
        "activations",
        parents=[backend_option()],
        help="plot activation functions and derivatives",
        description="Draw sigmoid, tanh, relu, leaky_relu, elu, selu, gelu and swish with their "
        "derivatives (computed by keras.activations and automatic differentiation), and "
        "softmax on an example vector, into activations.png.",
    )
    figure.add_argument(
        "--out",
        type=Path,
        default=Path("."),
        help="folder for activations.png (default: current folder)",
    )
    figure.add_argument(
        "--negative-slope",
        type=float,
        default=0.2,
        help="leaky_relu slope for x < 0 (default: 0.2, Keras's default)",
    )
    figure.set_defaults(handler=activations_command)

    finder = sub.add_parser(
        "lr-find",
        parents=[backend_option()],
        help="learning-rate range test for one variant",
        description="Train one variant for a few hundred batches while the learning rate grows "
        "exponentially (Smith 2017, fastai's lr_find); plot loss against learning rate and "
        f"suggest a rate: the middle of the {RULE} before its minimum, or none when the loss "
        "shows no clear descent.",
    )
    finder.add_argument("study", type=Path)
    finder.add_argument("--variant", metavar="NAME", help="variant (default: the baseline)")
    finder.add_argument(
        "--steps", type=int, default=DEFAULT_STEPS, help=f"batches (default: {DEFAULT_STEPS})"
    )
    finder.add_argument(
        "--min-lr",
        type=float,
        default=DEFAULT_MIN_LR,
        help=f"first rate (default: {DEFAULT_MIN_LR:g})",
    )
    finder.add_argument(
        "--max-lr",
        type=float,
        default=DEFAULT_MAX_LR,
        help=f"last rate (default: {DEFAULT_MAX_LR:g})",
    )
    finder.add_argument(
        "--seed", type=int, default=DEFAULT_SEED, help=f"seed (default: {DEFAULT_SEED})"
    )
    finder.add_argument(
        "--stop-factor",
        type=float,
        default=DEFAULT_STOP_FACTOR,
        help="stop when the smoothed loss exceeds this x its minimum "
        f"(default: {DEFAULT_STOP_FACTOR:g})",
    )
    finder.add_argument(
        "--out", type=Path, default=Path("runs"), help="folder for the plot (default: runs)"
    )
    finder.set_defaults(handler=lr_find_command)


def activations_command(args: argparse.Namespace, console: Console) -> int:
    from tricklab.tools.activations import plot_activations

    check_directory("--out ", args.out)
    path = plot_activations(args.out, args.negative_slope)
    console.print(f"wrote {path}")
    return 0


def lr_find_command(args: argparse.Namespace, console: Console) -> int:
    from tricklab.tools import lrfind

    check_directory("--out ", args.out)
    result, png = lrfind.lr_find_command(
        args.study,
        args.variant,
        args.out,
        args.steps,
        args.min_lr,
        args.max_lr,
        seed=args.seed,
        stop_factor=args.stop_factor,
    )
    if result.suggestion is None:
        console.print(
            f"variant {result.variant}: no clear descent in the loss between "
            f"{result.min_lr:.3g} and {result.max_lr:.3g}; no learning rate suggested"
        )
    else:
        console.print(
            f"variant {result.variant}: suggested learning rate {result.suggestion:.3g} "
            f"({result.rule})"
        )
    if result.diverged_lr is None:
        console.print("the loss did not diverge; try a larger --max-lr to see the whole curve")
    else:
        console.print(f"the loss diverged at a learning rate of {result.diverged_lr:.3g}")
    console.print(f"wrote {png}")
    return 0
