"""tricklab from Python: build a study in code, run it, read the table, plots and report.

    python examples/quickstart.py [OUT_DIR]

The same works in a notebook (the lecture runs in Colab): figures display as they are.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

# Keras fixes its backend when it is first imported: choose it before (tricklab's default is JAX;
# once Keras runs, tricklab uses whatever backend it runs on).
os.environ.setdefault("KERAS_BACKEND", "jax")

import keras

import tricklab

out = Path(sys.argv[1] if len(sys.argv) > 1 else "runs")

# The lecture's Thoracic Surgery model, with and without dropout, over 3 seeds.
study = tricklab.StudySpec.from_dict(
    {
        "name": "quickstart",
        "dataset": "thoracic",
        "seeds": 3,
        "model": {
            "layers": [
                {"type": "dense", "units": 30, "activation": "relu"},
                {"type": "dropout", "rate": 0.5},
                {"type": "dense", "units": 30, "activation": "relu"},
                {"type": "dense", "units": 1, "activation": "sigmoid"},
            ]
        },
        "train": {"loss": "binary_crossentropy", "batch_size": 30, "epochs": 10},
        "variants": {"dropout": {}, "no_dropout": {"model.layers[1].rate": 0.0}},
    }
)
# (or: study = tricklab.load_study("studies/thoracic-losses.toml"))

result = tricklab.run_study(study, out=out)
print(f"trained {result.trained} runs, reused {result.reused}")

table = result.table()  # pandas DataFrame, one row per variant
print(table[["seeds", "auc_best_mean", "auc_best_low", "auc_best_high", "gap_mean"]])
print(result.comparisons()[["variant", "diff", "ci_low", "ci_high", "p_adjusted", "verdict"]])

figures = result.figures()  # matplotlib figures by name
figures["learning_curves"].savefig(out / "quickstart-learning-curves.png")
print("report:", result.report().html)

# The best weights of one run, as a .keras file plain Keras loads (preprocessing included).
run_dir = result.store.run_dir("dropout", 0)
path = tricklab.export_model(run_dir, out / "quickstart-dropout.keras")
model = keras.saving.load_model(path)
row = result.dataset.x[:1]  # one patient's raw features, like the lecture's X_test[0:1]
print("P(died within a year) =", float(model.predict(row, verbose=0)[0, 0]))
