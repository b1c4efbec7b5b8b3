"""Bad study files and bad CSVs: each gets one located error line, pinned here, and exit code 2.

Every case runs `tricklab lint FILE`, which reads the study, loads its data and checks each variant
against it, exactly as `tricklab run` does before it trains anything.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tricklab.cli import main

BASE = """
dataset = "thoracic"
seeds = 2
[model]
layers = [
  {type = "dense", units = 8, activation = "relu"},
  {type = "dropout", rate = 0.5},
  {type = "dense", units = 1, activation = "sigmoid"},
]
[train]
loss = "binary_crossentropy"
"""
CSV_STUDY = """
dataset = {{csv = "data.csv", target = "{target}"}}
[model]
layers = [{{type = "dense", units = 1, activation = "sigmoid"}}]
[train]
loss = "binary_crossentropy"
"""

# (case id, study text, CSV text or None, expected error lines with "{file}"/"{csv}" placeholders)
CASES = [
    (
        "unknown-regularizer-in-variant",
        BASE + '[variants.l2]\n"model.layers[0].kernel_regularizer" = {name = "l3", l3 = 0.1}\n',
        None,
        [
            "{file}: variants.l2: model.layers[0].kernel_regularizer.name: unknown regularizer "
            "'l3'. Expected one of: l1, l1_l2, l2, orthogonal_regularizer."
        ],
    ),
    (
        "negative-patience",
        BASE + "[variants.es]\ntrain.early_stopping = {patience = -1}\n",
        None,
        [
            "{file}: variants.es: train.early_stopping.patience: must be an int >= 0. "
            "Received: patience=-1."
        ],
    ),
    (
        "zero-units",
        BASE.replace("units = 8", "units = 0"),
        None,
        ["{file}: model.layers[0].units: must be an int in [1, 65536]. Received: units=0."],
    ),
    (
        "unknown-layer-type",
        BASE.replace('type = "dropout"', 'type = "conv3d"'),
        None,
        [
            "{file}: model.layers[1].type: unknown layer type 'conv3d'. Did you mean 'conv2d'? "
            "Expected one of: activation, average_pooling1d, average_pooling2d, batch_norm, "
            "bidirectional, conv1d, conv2d, dense, dropout, embedding, flatten, gaussian_noise, "
            "global_average_pooling1d, global_average_pooling2d, global_max_pooling1d, "
            "global_max_pooling2d, gru, layer_norm, lstm, max_pooling1d, max_pooling2d, "
            "random_contrast, random_flip, random_rotation, random_translation, random_zoom, "
            "reshape, separable_conv2d."
        ],
    ),
    (
        "unknown-top-level-key",
        BASE.replace("seeds = 2", "sedes = 2"),
        None,
        [
            "{file}: unknown key 'sedes'. Did you mean 'seeds'? Expected one of: baseline, "
            "cv, dataset, description, diagnostics, grid, limits, lint, model, name, "
            "primary_metric, references, resplit, search, seeds, split_seed, train, validation, "
            "variants."
        ],
    ),
    (
        "unknown-activation",
        BASE.replace('activation = "relu"', 'activation = "rellu"'),
        None,
        [
            "{file}: model.layers[0].activation: unknown activation 'rellu'. Did you mean 'relu'? "
            "Expected one of: celu, elu, exponential, gelu, glu, hard_shrink, hard_sigmoid, "
            "hard_silu, hard_tanh, leaky_relu, linear, log_sigmoid, log_softmax, mish, relu, "
            "relu6, selu, sigmoid, silu, soft_shrink, softmax, softplus, softsign, sparse_plus, "
            "sparse_sigmoid, sparsemax, squareplus, tanh, tanh_shrink."
        ],
    ),
    (
        "path-index-out-of-range",
        BASE + '[variants.x]\n"model.layers[5].rate" = 0.1\n',
        None,
        [
            "{file}: variants.x: model.layers[5]: no such item; the list has 3 item(s) "
            "(indexes 0 to 2)."
        ],
    ),
    (
        "bad-variant-name",
        BASE + '[variants."two words"]\ntrain.epochs = 3\n',
        None,
        [
            "{file}: variants.two words: variant names may use only letters, digits, '-', '_', "
            "'.' and '=' (not starting with '.') (they name run directories). "
            "Received: 'two words'."
        ],
    ),
    (
        "zero-seeds",
        BASE.replace("seeds = 2", "seeds = 0"),
        None,
        ["{file}: seeds: must be a number of seeds >= 1 or a list of seeds. Received: seeds=0."],
    ),
    (
        "validation-out-of-range",
        BASE.replace("seeds = 2", "validation = 1.5"),
        None,
        [
            '{file}: validation: must be a fraction of the training data in (0, 1), or "test" to '
            "validate on the test set as the lecture does. Received: validation=1.5."
        ],
    ),
    (
        "missing-baseline-variant",
        BASE.replace("seeds = 2", 'baseline = "bce"') + "[variants.bce2]\n",
        None,
        ["{file}: baseline: no variant named 'bce'. Did you mean 'bce2'? Expected one of: bce2."],
    ),
    (
        "unknown-optimizer-argument",
        BASE + 'optimizer = {name = "adam", beta1 = 0.9}\n',
        None,
        [
            "{file}: train.optimizer.beta1: unknown argument 'beta1' for optimizer 'adam'. "
            "Did you mean 'beta_1'? Accepted: amsgrad, beta_1, beta_2, clipnorm, clipvalue, "
            "ema_momentum, epsilon, global_clipnorm, gradient_accumulation_steps, learning_rate, "
            "use_ema, weight_decay."
        ],
    ),
    (
        "schedule-missing-argument",
        BASE + 'optimizer = {name = "sgd", learning_rate = {name = "cosine_decay", '
        "initial_learning_rate = 0.1}}\n",
        None,
        [
            "{file}: train.optimizer.learning_rate.decay_steps: schedule 'cosine_decay' needs "
            'decay_steps. Give it as a table, e.g. {name = "cosine_decay", decay_steps = ...}.'
        ],
    ),
    (
        "unknown-dataset",
        BASE.replace('"thoracic"', '"mnist"'),
        None,
        [
            "{file}: dataset: unknown dataset 'mnist'. Expected one of: fashion_mnist, thoracic, "
            'or a table {csv = "file.csv", target = "column"}.'
        ],
    ),
    (
        "invalid-toml",
        BASE + "[train]\nepochs = 3\n",
        None,
        ["{file}: not valid TOML: Cannot declare ('train',) twice (at line 12, column 7)."],
    ),
    (
        "variant-overrides-dataset",
        BASE + '[variants.x]\ndataset = "fashion_mnist"\n',
        None,
        [
            "{file}: variants.x: unknown key 'dataset'. A variant overrides the base recipe: keys "
            'under model or train (e.g. train.loss, "model.layers[1].rate").'
        ],
    ),
    (
        "dropout-rate-above-one",
        BASE.replace("rate = 0.5", "rate = 1.5"),
        None,
        ["{file}: model.layers[1].rate: must be a float in [0, 1]. Received: rate=1.5."],
    ),
    (
        "output-units-mismatch",
        BASE + '[variants.three]\n"model.layers[2].units" = 3\n',
        None,
        [
            "{file}: variants.three: model.layers[2].units: the output layer must have 1 (a "
            "probability for the positive class) or 2 units for the 2 classes of dataset "
            "'thoracic'. Received: units=3."
        ],
    ),
    (
        "csv-missing-file",
        CSV_STUDY.format(target="y"),
        None,
        ["{file}: dataset: {csv}: no such file."],
    ),
    (
        "csv-missing-target",
        CSV_STUDY.format(target="label"),
        "a,b,y\n1,2,0\n3,4,1\n5,6,0\n7,8,1\n",
        ["{file}: dataset: {csv}: target column 'label' not found. Columns: a, b, y."],
    ),
    (
        "csv-missing-value",
        CSV_STUDY.format(target="y"),
        "a,b,y\n1,2,0\n3,,1\n5,6,0\n7,8,1\n",
        [
            "{file}: dataset: {csv}: line 3, column 'b': missing value. Fill or drop the row, or "
            'set impute = "median" (or "mean", "most_frequent") in the dataset table.'
        ],
    ),
    (
        "cv-with-seeds",
        BASE.replace("seeds = 2", "seeds = 2\ncv = {folds = 5}"),
        None,
        [
            "{file}: cv: cv draws each repeat's folds and models with seed r, and carves "
            "validation from the training folds; drop seeds, resplit, split_seed and validation "
            '= "test" (set cv.repeats instead). Received: cv with seeds=[0, 1].'
        ],
    ),
    (
        "cv-one-fold",
        BASE.replace("seeds = 2", "cv = {folds = 1, repeats = 2}"),
        None,
        ["{file}: cv.folds: must be an int >= 2. Received: folds=1."],
    ),
    (
        "cv-more-folds-than-rows-of-a-class",
        CSV_STUDY.format(target="y").replace("[model]", "cv = {folds = 3}\n[model]"),
        "a,y\n1,0\n2,0\n3,0\n4,1\n5,1\n6,0\n7,0\n8,0\n",
        [
            "{file}: cv.folds: dataset 'data.csv' has 2 rows of class '1', fewer than the "
            "folds; stratified folds need at least one per fold. Received: folds=3."
        ],
    ),
    (
        "seeds-over-the-limit",  # refused before ten million seeds are made
        BASE.replace("seeds = 2", "seeds = 10000000"),
        None,
        ["{file}: seeds: 10000000 exceeds the limit 1000 (raise it with [limits] max_seeds)"],
    ),
    (
        "grid-over-the-limit",  # the product of the axes' lengths, not the variants built
        BASE
        + "[grid]\n"
        + "".join(
            f'a{i} = {{path = "train.epochs", values = [1, 2, 3, 4, 5, 6, 7, 8, 9, 10]}}\n'
            for i in range(4)
        ),
        None,
        ["{file}: variants: 10000 exceeds the limit 1000 (raise it with [limits] max_variants)"],
    ),
    (
        "unknown-limits-key",
        BASE + "[limits]\nmax_seed = 5\n",
        None,
        [
            "{file}: limits: unknown key 'max_seed'. Did you mean 'max_seeds'? Expected one of: "
            "max_columns, max_runs, max_seeds, max_variants."
        ],
    ),
    (
        "nesting-too-deep",
        BASE + "[search]\nk = " + "{k = " * 300 + "1" + "}" * 300 + "\n",
        None,
        ["{file}: search.k.k.k...: nesting depth 51 exceeds the limit 50"],
    ),
    (
        "name-with-a-trailing-newline",
        'name = "losses\\n"\n' + BASE,
        None,
        [
            "{file}: name: must use only letters, digits, '-', '_', '.' and '=' (not starting "
            "with '.') (it names the run directory). Received: name='losses\\n'."
        ],
    ),
    (
        "csv-over-the-column-limit",  # counted on the header row, before the rows are parsed
        CSV_STUDY.format(target="y") + "[limits]\nmax_columns = 2\n",
        "a,b,y\n1,2,0\n3,4,1\n",
        [
            "{file}: dataset: {csv}: columns: 3 exceeds the limit 2 (raise it with [limits] "
            "max_columns)"
        ],
    ),
    (
        "csv-empty",
        CSV_STUDY.format(target="y"),
        "",
        [
            "{file}: dataset: {csv}: the file is empty; expected a header row and at least 2 data "
            "rows."
        ],
    ),
]


@pytest.mark.parametrize(
    ("study", "csv", "expected"), [c[1:] for c in CASES], ids=[c[0] for c in CASES]
)
def test_bad_input_is_one_located_line(
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    study: str,
    csv: str | None,
    expected: list[str],
) -> None:
    path = tmp_path / "study.toml"
    path.write_text(study, encoding="utf-8")
    if csv is not None:
        (tmp_path / "data.csv").write_text(csv, encoding="utf-8")
    code = main(["lint", str(path)])
    err = capsys.readouterr().err
    assert code == 2
    assert "Traceback" not in err
    lines = [line.removeprefix("error: ") for line in err.splitlines()]
    csv_path = tmp_path / "data.csv"
    assert lines == [
        e.replace("{file}", str(path)).replace("{csv}", str(csv_path)) for e in expected
    ]


def test_there_are_at_least_15_cases() -> None:
    assert len(CASES) >= 15
    assert len({c[0] for c in CASES}) == len(CASES)
