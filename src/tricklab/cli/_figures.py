"""``tricklab activations`` and ``tricklab lr-find``: figures that help choose a recipe."""

from __future__ import annotations

import argparse
from pathlib import Path

from rich.console import Console

from tricklab.cli._errors import check_directory
from tricklab.cli._options import Subparsers, backend_option


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
        "suggest the rate at the steepest descent.",
    )
    finder.add_argument("study", type=Path)
    finder.add_argument("--variant", metavar="NAME", help="variant (default: the baseline)")
    finder.add_argument("--steps", type=int, default=200, help="batches (default: 200)")
    finder.add_argument("--min-lr", type=float, default=1e-7, help="first rate (default: 1e-7)")
    finder.add_argument("--max-lr", type=float, default=10.0, help="last rate (default: 10)")
    finder.add_argument("--seed", type=int, default=0, help="seed (default: 0)")
    finder.add_argument(
        "--stop-factor",
        type=float,
        default=4.0,
        help="stop when the smoothed loss exceeds this x its minimum (default: 4)",
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
    console.print(
        f"variant {result.variant}: suggested learning rate {result.suggestion:.3g} "
        "(steepest descent of the smoothed loss)"
    )
    if result.diverged_lr is None:
        console.print("the loss did not diverge; try a larger --max-lr to see the whole curve")
    else:
        console.print(f"the loss diverged at a learning rate of {result.diverged_lr:.3g}")
    console.print(f"wrote {png}")
    return 0
