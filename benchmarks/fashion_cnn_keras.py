"""The base model of ``studies/fashion-cnn.toml`` trained with plain Keras, for comparison.

For each seed s: the official training images less a stratified 10 % validation carve-out
drawn with s (tricklab's ``make_splits(seed=s)``; the study itself keeps one carve-out, drawn
with split_seed 0, for every seed, so seed 0 sees exactly the study's rows), the official test
images, ``keras.utils.set_random_seed(s)``, the same ``Sequential`` (reshape - conv 16 - pool -
conv 32 - pool - flatten - dense 64 - softmax), Adam, batch 32, 10 epochs, ``model.fit`` and
``model.evaluate`` on the test images after the last epoch. Prints each seed's test accuracy
and the mean, to set beside the study's ``base`` variant (README, "A small CNN on
Fashion-MNIST").

    .venv/bin/python benchmarks/fashion_cnn_keras.py --seeds 5
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import time

os.environ.setdefault("KERAS_BACKEND", "jax")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=5)
    parser.add_argument("--epochs", type=int, default=10)
    parser.add_argument("--limit", type=int, default=None, help="training images (a quick check)")
    args = parser.parse_args()

    import keras

    from tricklab.data import load_dataset, make_splits

    spec = {"name": "fashion_mnist"} | ({"limit": args.limit} if args.limit else {})
    dataset = load_dataset(spec)
    accuracies = []
    for seed in range(args.seeds):
        splits = make_splits(dataset, validation=0.1, seed=seed)
        keras.utils.set_random_seed(seed)
        model = keras.Sequential(
            [
                keras.Input(shape=(28, 28)),
                keras.layers.Reshape((28, 28, 1)),
                keras.layers.Conv2D(16, 3, activation="relu"),
                keras.layers.MaxPooling2D(2),
                keras.layers.Conv2D(32, 3, activation="relu"),
                keras.layers.MaxPooling2D(2),
                keras.layers.Flatten(),
                keras.layers.Dense(64, activation="relu"),
                keras.layers.Dense(10, activation="softmax"),
            ]
        )
        model.compile(
            optimizer="adam",
            loss="sparse_categorical_crossentropy",
            metrics=["accuracy"],
            steps_per_execution=50,
        )
        started = time.perf_counter()
        model.fit(
            splits.x_train,
            splits.y_train,
            batch_size=32,
            epochs=args.epochs,
            validation_data=(splits.x_val, splits.y_val),
            verbose=0,
        )
        seconds = time.perf_counter() - started
        _, accuracy = model.evaluate(splits.x_test, splits.y_test, batch_size=32, verbose=0)
        accuracies.append(accuracy)
        print(
            json.dumps(
                {"seed": seed, "test_accuracy": round(accuracy, 4), "seconds": round(seconds, 1)}
            )
        )
    print(
        json.dumps(
            {
                "seeds": args.seeds,
                "mean_test_accuracy": round(statistics.mean(accuracies), 4),
                "std": round(statistics.stdev(accuracies), 4) if len(accuracies) > 1 else None,
            }
        )
    )


if __name__ == "__main__":
    main()
