"""Four ways to train the same Fashion-MNIST study: plain Keras (TF, JAX) and tricklab's engines.

The study is the lecture's regularization steps on a Dense(64) classifier, 5 variants x 3 seeds
(15 runs), every run for the same fixed number of epochs (no early stopping), Adam, batch 30,
validated each epoch on 10 % of the training images (sklearn ``train_test_split``, stratified,
``random_state=0``) and tested on the official test set:

    dense64   Dense(64, relu)
    l2_l1     Dense(64, relu) + kernel l2(0.01) + activity l1(0.01)
    max_norm  Dense(64, relu) + kernel max_norm(2.0)
    dropout   Dense(64, relu), Dropout(0.5)
    lecture   Dense(64) *linear* + l2(0.01) + activity l1(0.01) + max_norm(2.0), Dropout(0.5)

Ways, each in a fresh Python process:

    keras-tf             Keras 3 on TensorFlow, default compile (as the lecture), one fit per run
    keras-jax            Keras 3 on JAX, compile(steps_per_execution=50), one fit per run
    tricklab-solo        tricklab.run_study(..., engine="solo") on JAX
    tricklab-population  tricklab.run_study(..., engine="population") on JAX

Per way: steady seconds per member-epoch (validation included; the median epoch after the first
for plain Keras, averaged over runs; tricklab's ``seconds_per_epoch``, which for a population is
its epoch time divided by its member count), compile seconds (first epoch minus steady epoch,
summed over runs; for a population that is first minus steady population epoch), the process's
total wall time (interpreter start, imports and data loading included), its peak RSS, and the
mean test accuracy of the weights after the last epoch. Speed-ups compare steady time per
member-epoch, and in brackets total wall time. With ``--epochs 1`` there is no steady epoch: the
first epoch stands in for it and compile time reads 0.

    .venv/bin/python benchmarks/engines.py --epochs 3
    .venv/bin/python benchmarks/engines.py --epochs 1 --limit 3000 --ways keras-jax,keras-tf

``--model cnn`` measures what ``--engine auto`` decides for convolutional groups: the issue's
small CNN on Fashion-MNIST (Reshape(28, 28, 1), Conv2D(16, 3x3, relu), MaxPooling2D(2),
Conv2D(32, 3x3, relu), MaxPooling2D(2), Flatten, Dense(64, relu), Dense(10, softmax); Adam,
batch 32), one variant x 3 seeds. ``--model rnn`` does the same for recurrent groups:
Embedding(12, 8), LSTM(16), Dense(2, softmax) on a generated task (sequences of 20 token ids;
is token 1 more frequent than token 2?), Adam, batch 32, 3 seeds, 3000 rows (``--limit``).
Both add the way ``tricklab-auto`` (``engine="auto"``: the table shows which engine it chose)
and leave out ``keras-tf`` unless ``--ways`` names it:

    .venv/bin/python benchmarks/engines.py --model cnn --limit 6000 --epochs 3
    .venv/bin/python benchmarks/engines.py --model rnn --epochs 3
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path
from typing import Any

WAYS = ("keras-tf", "keras-jax", "tricklab-solo", "tricklab-population", "tricklab-auto")
BACKENDS = {
    "keras-tf": "tensorflow",
    "keras-jax": "jax",
    "tricklab-solo": "jax",
    "tricklab-population": "jax",
    "tricklab-auto": "jax",
}
MODELS = ("dense", "cnn", "rnn")
#: The ways each model measures unless --ways says otherwise.
DEFAULT_WAYS = {
    "dense": WAYS[:4],
    "cnn": ("keras-jax", "tricklab-solo", "tricklab-population", "tricklab-auto"),
    "rnn": ("keras-jax", "tricklab-solo", "tricklab-population", "tricklab-auto"),
}
LECTURE_WAY, BEST_PLAIN_WAY = "keras-tf", "keras-jax"

SEEDS = (0, 1, 2)
VALIDATION = 0.1
BATCH_SIZE = 30
LOSS = "sparse_categorical_crossentropy"

# Components in tricklab's study-file form; plain Keras builds the same objects from them.
L2 = {"name": "l2", "l2": 0.01}
L1 = {"name": "l1", "l1": 0.01}
MAX_NORM = {"name": "max_norm", "max_value": 2.0}
PENALTIES = {"kernel_regularizer": L2, "activity_regularizer": L1}

# variant: (arguments of the Dense(64) hidden layer, Dropout(0.5) after it?)
VARIANTS: dict[str, tuple[dict[str, Any], bool]] = {
    "dense64": ({"activation": "relu"}, False),
    "l2_l1": ({"activation": "relu", **PENALTIES}, False),
    "max_norm": ({"activation": "relu", "kernel_constraint": MAX_NORM}, False),
    "dropout": ({"activation": "relu"}, True),
    "lecture": ({**PENALTIES, "kernel_constraint": MAX_NORM}, True),  # no activation: linear
}
DROPOUT = 0.5
BASE = "dense64"  # the study's base recipe and baseline variant

# --model cnn and rnn: one variant ("cnn" or "rnn"), the same seeds, batch 32, Adam.
SINGLE_BATCH_SIZE = 32
CNN_LAYERS: list[dict[str, Any]] = [
    {"type": "reshape", "target_shape": [28, 28, 1]},
    {"type": "conv2d", "filters": 16, "kernel_size": [3, 3], "activation": "relu"},
    {"type": "max_pooling2d", "pool_size": 2},
    {"type": "conv2d", "filters": 32, "kernel_size": [3, 3], "activation": "relu"},
    {"type": "max_pooling2d", "pool_size": 2},
    {"type": "flatten"},
    {"type": "dense", "units": 64, "activation": "relu"},
    {"type": "dense", "units": 10, "activation": "softmax"},
]
RNN_VOCABULARY, RNN_LENGTH, RNN_ROWS = 12, 20, 3000
RNN_LAYERS: list[dict[str, Any]] = [
    {"type": "embedding", "input_dim": RNN_VOCABULARY, "output_dim": 8},
    {"type": "lstm", "units": 16},
    {"type": "dense", "units": 2, "activation": "softmax"},
]
#: Where --model rnn writes its generated CSV (the parent writes it once; children read it).
RNN_CSV_ENV = "TRICKLAB_BENCH_RNN_CSV"


def write_rnn_csv(path: Path, rows: int) -> None:
    """Sequences of token ids in [0, 12); the label: does token 1 occur more often than 2?"""
    import numpy as np

    rng = np.random.default_rng(0)
    x = rng.integers(0, RNN_VOCABULARY, (rows, RNN_LENGTH))
    y = ((x == 1).sum(axis=1) > (x == 2).sum(axis=1)).astype(int)
    header = ",".join([*(f"t{i}" for i in range(RNN_LENGTH)), "label"])
    lines = [",".join(map(str, [*row, label])) for row, label in zip(x, y, strict=True)]
    path.write_text("\n".join([header, *lines]) + "\n", encoding="utf-8")


def model_layers(model: str) -> list[dict[str, Any]]:
    return CNN_LAYERS if model == "cnn" else RNN_LAYERS


def model_dataset(model: str, limit: int | None) -> str | dict[str, Any]:
    if model == "rnn":  # integer ids, not standardised: the embedding reads them as they are
        return {"csv": os.environ[RNN_CSV_ENV], "target": "label", "standardize": False}
    return dataset_entry(limit)


def dataset_entry(limit: int | None) -> str | dict[str, Any]:
    """The study's ``dataset``: all 60000 training images, or a stratified sample of them."""
    return "fashion_mnist" if limit is None else {"name": "fashion_mnist", "limit": limit}


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def peak_rss_mib() -> float:
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # KiB on Linux, bytes on macOS
    return peak / 2**20 if sys.platform == "darwin" else peak / 2**10


# --- plain Keras -------------------------------------------------------------------------------


def plain_model(keras: Any, model: str) -> Any:
    """--model cnn or rnn in plain Keras, the layers of CNN_LAYERS or RNN_LAYERS."""
    layers = keras.layers
    if model == "cnn":
        return keras.Sequential(
            [
                keras.Input((28, 28)),
                layers.Reshape((28, 28, 1)),
                layers.Conv2D(16, (3, 3), activation="relu"),
                layers.MaxPooling2D(2),
                layers.Conv2D(32, (3, 3), activation="relu"),
                layers.MaxPooling2D(2),
                layers.Flatten(),
                layers.Dense(64, activation="relu"),
                layers.Dense(10, activation="softmax"),
            ]
        )
    return keras.Sequential(
        [
            keras.Input((RNN_LENGTH,)),
            layers.Embedding(RNN_VOCABULARY, 8),
            layers.LSTM(16),
            layers.Dense(2, activation="softmax"),
        ]
    )


def train_plain(way: str, epochs: int, limit: int | None, model_name: str) -> dict[str, Any]:
    """Every variant x seed with ``model.fit``, the way a Keras user writes it."""
    import keras
    import numpy as np
    from sklearn.model_selection import train_test_split

    from tricklab.data import load_dataset, make_splits

    assert keras.backend.backend() == BACKENDS[way], keras.backend.backend()
    if model_name == "dense":
        data = load_dataset(dataset_entry(limit))
        train, val = train_test_split(
            np.arange(len(data.y)), test_size=VALIDATION, stratify=data.y, random_state=0
        )
        x_train, y_train, x_val, y_val = data.x[train], data.y[train], data.x[val], data.y[val]
        x_test, y_test = np.array(data.x_test), np.array(data.y_test)
    else:  # tricklab's split of seed 0: the same rows as the tricklab ways' first seed
        data = load_dataset(model_dataset(model_name, limit))
        splits = make_splits(data, validation=VALIDATION, seed=0)
        x_train, y_train, x_val, y_val = splits.x_train, splits.y_train, splits.x_val, splits.y_val
        x_test, y_test = splits.x_test, splits.y_test
    batch_size = BATCH_SIZE if model_name == "dense" else SINGLE_BATCH_SIZE
    variants = VARIANTS if model_name == "dense" else {model_name: ({}, False)}
    components = {
        "l1": keras.regularizers.L1,
        "l2": keras.regularizers.L2,
        "max_norm": keras.constraints.MaxNorm,
    }

    def hidden_layer(arguments: dict[str, Any]) -> Any:
        built = {
            key: components[value["name"]](**{k: v for k, v in value.items() if k != "name"})
            if isinstance(value, dict)
            else value
            for key, value in arguments.items()
        }
        return keras.layers.Dense(64, **built)

    class EpochTimer(keras.callbacks.Callback):
        """Wall time of each epoch; on_epoch_end comes after the epoch's validation."""

        def __init__(self) -> None:
            super().__init__()
            self.durations: list[float] = []

        def on_epoch_begin(self, epoch: int, logs: Any = None) -> None:
            self.started = time.perf_counter()

        def on_epoch_end(self, epoch: int, logs: Any = None) -> None:
            self.durations.append(time.perf_counter() - self.started)

    compile_options = {"steps_per_execution": 50} if way == "keras-jax" else {}
    steady, compile_seconds, accuracies = [], 0.0, []
    for variant, (arguments, dropout) in variants.items():
        for seed in SEEDS:
            keras.utils.set_random_seed(seed)
            if model_name == "dense":
                layers = [keras.Input((28, 28)), keras.layers.Flatten(), hidden_layer(arguments)]
                if dropout:
                    layers.append(keras.layers.Dropout(DROPOUT))
                layers.append(keras.layers.Dense(10, activation="softmax"))
                model = keras.Sequential(layers)
            else:
                model = plain_model(keras, model_name)
            model.compile(optimizer="adam", loss=LOSS, metrics=["accuracy"], **compile_options)
            timer = EpochTimer()
            model.fit(
                x_train,
                y_train,
                batch_size=batch_size,
                epochs=epochs,
                validation_data=(x_val, y_val),
                callbacks=[timer],
                verbose=0,
            )
            accuracy = model.evaluate(x_test, y_test, verbose=0, return_dict=True)["accuracy"]
            first = timer.durations[0]
            run_steady = statistics.median(timer.durations[1:] or timer.durations)
            steady.append(run_steady)
            compile_seconds += first - run_steady
            accuracies.append(float(accuracy))
            log(
                f"{way}: {variant} seed {seed}: test accuracy {accuracy:.4f}, "
                f"first epoch {first:.2f} s, steady {run_steady:.2f} s"
            )
    return {
        "runs": len(accuracies),
        "seconds_per_member_epoch": statistics.mean(steady),
        "compile_seconds": compile_seconds,
        "test_accuracy": statistics.mean(accuracies),
        "engines": {f"keras-{keras.backend.backend()}": len(accuracies)},
    }


# --- tricklab ----------------------------------------------------------------------------------


def toml_value(value: Any) -> str:
    """A TOML value for the few types a study file here needs (inline tables on one line)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    if isinstance(value, str):
        return json.dumps(value)
    if isinstance(value, dict):
        return "{" + ", ".join(f"{k} = {toml_value(v)}" for k, v in value.items()) + "}"
    if isinstance(value, list):
        return "[" + ", ".join(toml_value(v) for v in value) + "]"
    raise TypeError(f"no TOML form for {value!r}")


def toml_layers(variant: str, key: str = "layers") -> list[str]:
    """``key = [...]``: the variant's layers in study-file form, one per line."""
    arguments, dropout = VARIANTS[variant]
    layers = [{"type": "flatten"}, {"type": "dense", "units": 64, **arguments}]
    if dropout:
        layers.append({"type": "dropout", "rate": DROPOUT})
    layers.append({"type": "dense", "units": 10, "activation": "softmax"})
    return [f"{key} = [", *(f"  {toml_value(layer)}," for layer in layers), "]"]


def single_study_toml(model: str, epochs: int, limit: int | None) -> str:
    """--model cnn or rnn as a tricklab study file: one variant, the seeds of SEEDS."""
    lines = [
        f'name = "engines-bench-{model}"',
        f"dataset = {toml_value(model_dataset(model, limit))}",
        f"seeds = {toml_value(list(SEEDS))}",
        f"validation = {VALIDATION}",
        "",
        "[model]",
        "layers = [",
        *(f"  {toml_value(layer)}," for layer in model_layers(model)),
        "]",
        "",
        "[train]",
        f'loss = "{LOSS}"',
        'optimizer = "adam"',
        f"batch_size = {SINGLE_BATCH_SIZE}",
        f"epochs = {epochs}",
    ]
    return "\n".join(lines) + "\n"


def study_toml(epochs: int, limit: int | None) -> str:
    """The study as a tricklab study file: one variant per entry of VARIANTS."""
    lines = [
        'name = "engines-bench"',
        f"dataset = {toml_value(dataset_entry(limit))}",
        f"seeds = {toml_value(list(SEEDS))}",
        f"validation = {VALIDATION}",
        f'baseline = "{BASE}"',
        "",
        "[model]",
        *toml_layers(BASE),
        "",
        "[train]",
        f'loss = "{LOSS}"',
        'optimizer = "adam"',
        f"batch_size = {BATCH_SIZE}",
        f"epochs = {epochs}",
    ]
    for variant in VARIANTS:
        lines += ["", f"[variants.{variant}]", *toml_layers(variant, key='"model.layers"')]
    lines += [
        "",
        "[lint.ignore]",
        'TL001 = "the lecture variant keeps its Dense(64) linear, as the lecture does"',
        'TL008 = "the lecture variant stacks L2 and MaxNorm, as the lecture does"',
    ]
    return "\n".join(lines) + "\n"


def train_tricklab(way: str, epochs: int, limit: int | None, model: str) -> dict[str, Any]:
    """The study through tricklab's Python API, into a temporary run store."""
    import tricklab

    engine = way.removeprefix("tricklab-")

    def listener(event: Any) -> None:
        if event.kind == "done":
            accuracy = event.result.test["last"]["accuracy"]
            log(f"{way}: {event.plan.variant} seed {event.plan.seed}: test accuracy {accuracy:.4f}")
        elif event.kind in ("failed", "fallback"):
            log(f"{way}: {event.plan.variant} seed {event.plan.seed}: {event.kind}: {event.error}")

    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "engines-bench.toml"
        text = (
            study_toml(epochs, limit)
            if model == "dense"
            else single_study_toml(model, epochs, limit)
        )
        path.write_text(text, encoding="utf-8")
        spec = tricklab.load_study(path)
        run = tricklab.run_study(spec, out=Path(tmp) / "runs", engine=engine, listener=listener)
    if run.failed:
        raise SystemExit(f"{way}: {len(run.failed)} runs failed, first: {run.failed[0][1]}")
    results = run.results
    return {
        "runs": len(results),
        # A population's member share is its epoch time over its members, so the mean over
        # members is (sum of population epoch times) / members, as for solo runs.
        "seconds_per_member_epoch": statistics.mean(r.seconds_per_epoch for r in results),
        # Per member, (first - steady) is the population's (first - steady) over its members:
        # the sum over members is the population's compile time.
        "compile_seconds": sum(r.first_epoch_seconds - r.seconds_per_epoch for r in results),
        "test_accuracy": statistics.mean(r.test["last"]["accuracy"] for r in results),
        "engines": dict(Counter(r.engine for r in results)),
        "epochs_run": sorted({r.epochs_run for r in results}),
    }


def child(way: str, epochs: int, limit: int | None, model: str) -> None:
    train = train_plain if way.startswith("keras-") else train_tricklab
    summary = {"way": way, **train(way, epochs, limit, model), "peak_rss_mib": peak_rss_mib()}
    print(json.dumps(summary), flush=True)


# --- parent ------------------------------------------------------------------------------------


def measure(way: str, epochs: int, limit: int | None, model: str) -> dict[str, Any]:
    """Run one way in its own process; its last stdout line is its JSON summary."""
    command = [sys.executable, __file__, "--way", way, "--epochs", str(epochs), "--model", model]
    if limit is not None:
        command += ["--limit", str(limit)]
    env = os.environ | {"KERAS_BACKEND": BACKENDS[way], "TF_CPP_MIN_LOG_LEVEL": "2"}
    log(f"== {way} ({BACKENDS[way]})")
    started = time.perf_counter()
    done = subprocess.run(command, env=env, stdout=subprocess.PIPE, text=True, check=False)
    wall = time.perf_counter() - started
    lines = done.stdout.strip().splitlines()
    if done.returncode != 0 or not lines:
        log(done.stdout)
        return {"way": way, "error": f"exit status {done.returncode}", "total_seconds": wall}
    return json.loads(lines[-1]) | {"total_seconds": wall}


def speed_up(row: dict[str, Any], reference: dict[str, Any] | None) -> str:
    if reference is None or "error" in reference or "error" in row:
        return "n/a"
    steady = reference["seconds_per_member_epoch"] / row["seconds_per_member_epoch"]
    return f"{steady:.2f}x ({reference['total_seconds'] / row['total_seconds']:.2f}x)"


def table(rows: list[dict[str, Any]], model: str = "dense") -> str:
    by_way = {row["way"]: row for row in rows}
    if model == "dense":
        first, second = LECTURE_WAY, BEST_PLAIN_WAY
        names = f"speed-up vs lecture ({first}) | vs best plain Keras ({second})"
    else:  # auto's rule: auto <= 1.1 x solo per member-epoch
        first, second = BEST_PLAIN_WAY, "tricklab-solo"
        names = f"speed-up vs plain Keras ({first}) | vs {second}"
    lecture, plain = by_way.get(first), by_way.get(second)
    header = (
        "| way | s per member-epoch | compile s | total s | peak RSS MiB | mean test acc "
        f"| {names} | engines |"
    )
    out = [header, "|---|---:|---:|---:|---:|---:|---:|---:|---|"]
    for row in rows:
        if "error" in row:
            cells = [
                "failed: " + row["error"],
                "",
                f"{row['total_seconds']:.1f}",
                "",
                "",
                "",
                "",
                "",
            ]
        else:
            cells = [
                f"{row['seconds_per_member_epoch']:.4g}",
                f"{row['compile_seconds']:.1f}",
                f"{row['total_seconds']:.1f}",
                f"{row['peak_rss_mib']:.0f}",
                f"{row['test_accuracy']:.4f}",
                speed_up(row, lecture),
                speed_up(row, plain),
                ", ".join(f"{k} x{v}" for k, v in row["engines"].items()),
            ]
        out.append("| " + " | ".join([row["way"], *cells]) + " |")
    return "\n".join(out)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--epochs", type=int, default=3, help="epochs per run (default 3)")
    parser.add_argument(
        "--model",
        choices=MODELS,
        default="dense",
        help="dense: the lecture's Dense(64) study (default); cnn: the small CNN; rnn: an LSTM",
    )
    parser.add_argument(
        "--ways",
        default=None,
        help=f"comma-separated subset of {', '.join(WAYS)} (default for dense: the first four; "
        "for cnn and rnn: all but keras-tf)",
    )
    parser.add_argument(
        "--limit",
        type=int,
        default=None,
        help="use only N training images, a stratified sample (default all 60000)",
    )
    parser.add_argument("--way", choices=WAYS, help=argparse.SUPPRESS)  # the child's mode
    args = parser.parse_args()
    if args.epochs < 1:
        parser.error("--epochs must be at least 1")
    if args.way:
        child(args.way, args.epochs, args.limit, args.model)
        return
    chosen = args.ways if args.ways is not None else ",".join(DEFAULT_WAYS[args.model])
    ways = [way.strip() for way in chosen.split(",") if way.strip()]
    unknown = [way for way in ways if way not in WAYS]
    if unknown or not ways:
        parser.error(f"--ways: unknown {unknown}; choose from {', '.join(WAYS)}")

    with tempfile.TemporaryDirectory() as tmp:
        if args.model == "rnn":
            csv = Path(tmp) / "sequences.csv"
            write_rnn_csv(csv, args.limit or RNN_ROWS)
            os.environ[RNN_CSV_ENV] = str(csv)
        rows = [measure(way, args.epochs, args.limit, args.model) for way in ways]
    import jax  # the device the JAX ways trained on

    device = f"{os.cpu_count()} CPUs, JAX on {jax.default_backend()}"
    if args.model == "dense":
        images = "all 60000" if args.limit is None else str(args.limit)
        print(
            f"\nFashion-MNIST, {images} training images ({VALIDATION:.0%} of them for validation), "
            f"{len(VARIANTS)} variants x {len(SEEDS)} seeds, {args.epochs} epoch(s) of batch "
            f"{BATCH_SIZE}, {device}.\n"
        )
    else:
        data = (
            f"Fashion-MNIST, {'all 60000' if args.limit is None else args.limit} training images"
            if args.model == "cnn"
            else f"{args.limit or RNN_ROWS} generated sequences of {RNN_LENGTH} token ids"
        )
        held_out = "tested on the official test set" if args.model == "cnn" else "20 % held out"
        print(
            f"\n--model {args.model}: {data} ({held_out}, {VALIDATION:.0%} of the rest for "
            f"validation), 1 variant x {len(SEEDS)} seeds, "
            f"{args.epochs} epoch(s) of batch {SINGLE_BATCH_SIZE}, {device}.\n"
        )
    print(table(rows, args.model))
    print(
        "\nSpeed-up: steady time per member-epoch, in brackets total wall time. Engines: "
        + "; ".join(f"{r['way']} {r['engines']}" for r in rows if "engines" in r)
    )


if __name__ == "__main__":
    main()
