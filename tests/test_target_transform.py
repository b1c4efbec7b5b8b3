"""``target_transform``: a regression target fed to the model standardised or as its log, fitted
on each run's training rows, with every test score and prediction on the target's own scale."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from tricklab.base.errors import DataError, SpecError
from tricklab.cli import main

STUDY = """name = "{name}"
seeds = [0, 1]
dataset = {{csv = "prices.csv", target = "price", delimiter = ";"{extra}}}
[model]
layers = [{{type = "dense", units = 8, activation = "relu"}}, {{type = "dense", units = 1}}]
[train]
loss = "mse"
optimizer = {{name = "adam", learning_rate = 0.02}}
batch_size = 16
epochs = 4
[variants.base]
[variants.wide]
"model.layers[0].units" = 16
"""


def write_prices(folder: Path, *, n: int = 120, zero_at: int | None = None) -> Path:
    """Positive, right-skewed prices around 1e5 from two numbers and a text column."""
    rng = np.random.default_rng(0)
    x1, x2 = rng.normal(size=n), rng.normal(size=n)
    kind = rng.choice(["flat", "house"], size=n)
    price = np.exp(11 + 0.5 * x1 + 0.2 * x2 + 0.3 * (kind == "house") + 0.1 * rng.normal(size=n))
    if zero_at is not None:
        price[zero_at] = 0.0
    lines = ["x1;x2;kind;price"] + [
        f"{a:.4f};{b:.4f};{k};{p:.2f}" for a, b, k, p in zip(x1, x2, kind, price, strict=True)
    ]
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "prices.csv").write_text("\n".join(lines) + "\n", encoding="utf-8")
    return folder / "prices.csv"


def write_study(folder: Path, transform: str | None, **table: Any) -> Path:
    write_prices(folder, **table)
    extra = f', target_transform = "{transform}"' if transform else ""
    path = folder / "prices.toml"
    path.write_text(STUDY.format(name=f"prices-{transform}", extra=extra), encoding="utf-8")
    return path


def test_the_study_file_says_what_target_transform_accepts(tmp_path: Path) -> None:
    from tricklab.spec import load_study

    study = write_study(tmp_path, "sqrt")
    with pytest.raises(SpecError) as caught:
        load_study(study)
    said = str(caught.value)
    assert "target_transform" in said and "'standardize'" in said and "'log'" in said
    assert "sqrt" in said
    text = study.read_text("utf-8").replace('"sqrt"', '"log", task = "classification"')
    study.write_text(text, encoding="utf-8")
    with pytest.raises(SpecError, match="is for a regression target"):
        load_study(study)


def test_a_class_target_or_a_log_of_zero_is_one_located_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    study = write_study(tmp_path / "zero", "log", zero_at=6)
    assert main(["lint", str(study)]) == 2
    said = capsys.readouterr().err.strip()
    assert len(said.splitlines()) == 1, said
    # the header is line 1: row 6 (0-based) is on line 8
    assert "line 8, column 'price': target_transform = \"log\" needs every target > 0" in said
    assert "Received: 0.0" in said

    from tricklab.data import load_data
    from tricklab.spec import load_study

    classes = write_study(tmp_path / "classes", "standardize")
    text = (tmp_path / "classes" / "prices.csv").read_text("utf-8").splitlines()
    rows = [line.rsplit(";", 1)[0] + (";yes" if i % 2 else ";no") for i, line in enumerate(text)]
    rows[0] = "x1;x2;kind;price"
    (tmp_path / "classes" / "prices.csv").write_text("\n".join(rows) + "\n", encoding="utf-8")
    with pytest.raises(DataError, match=r"is for a regression target; target column 'price' is"):
        load_data(load_study(classes))


def test_the_scaling_is_fitted_on_each_runs_training_rows_only(tmp_path: Path) -> None:
    from tricklab.data import make_splits, resolve
    from tricklab.spec import load_study

    dataset = resolve(load_study(write_study(tmp_path, "standardize"))).dataset
    splits = make_splits(dataset, validation=0.2, seed=3)
    scaling = splits.target_scaling
    assert scaling is not None
    y_train = splits.y_train.astype(np.float64)
    assert scaling.mean == pytest.approx(y_train.mean(), rel=1e-12)
    assert scaling.std == pytest.approx(y_train.std(), rel=1e-12)
    fed = splits.to_model(splits.y_train)
    assert abs(float(fed.mean())) < 1e-5 and float(fed.std()) == pytest.approx(1.0, rel=1e-5)
    np.testing.assert_allclose(splits.from_model(fed), y_train, rtol=1e-6)

    # changing only the test and validation rows' targets changes nothing that was fitted
    y = np.array(dataset.y)
    y[splits.rows["test"]] *= 50
    y[splits.rows["validation"]] += 1e6
    changed = dataclasses.replace(dataset, y=y)
    assert make_splits(changed, validation=0.2, seed=3).target_scaling == scaling
    y[splits.rows["train"][0]] += 1e6  # one training row moves it
    moved = dataclasses.replace(dataset, y=y)
    assert make_splits(moved, validation=0.2, seed=3).target_scaling != scaling


@pytest.mark.parametrize("transform", ["standardize", "log"])
def test_every_score_and_prediction_is_on_the_targets_own_scale(
    tmp_path: Path, transform: str
) -> None:
    from sklearn.metrics import mean_absolute_error, mean_squared_error, r2_score

    from tricklab import run_study
    from tricklab.data import resolve
    from tricklab.spec import load_study
    from tricklab.store import RunStore
    from tricklab.tools.export import trained_model

    study = write_study(tmp_path, transform)
    outcome = run_study(study, out=tmp_path / "runs", engine="solo")
    store = RunStore(tmp_path / "runs" / f"prices-{transform}")
    resolved = resolve(load_study(study))
    for result in outcome.results:
        stored = store.load_predictions(result.variant, result.seed)
        assert stored is not None
        y_true, predictions = stored
        assert float(np.median(y_true)) > 1e4  # the prices as the file writes them
        best = result.test["best"]
        assert best["mse"] == pytest.approx(mean_squared_error(y_true, predictions), rel=1e-5)
        assert best["mae"] == pytest.approx(mean_absolute_error(y_true, predictions), rel=1e-5)
        assert best["r2"] == pytest.approx(r2_score(y_true, predictions), rel=1e-5, abs=1e-6)
        # Keras's loss and metric are recomputed there too: mse loss, mean_absolute_error
        assert best["loss"] == pytest.approx(best["mse"], rel=1e-4)
        assert best["mean_absolute_error"] == pytest.approx(best["mae"], rel=1e-4)
        assert result.preprocessing["target"]["transform"] == transform
        # the exported model ends with the inverse: raw features in, prices out
        splits = resolved.splits(result.seed)
        raw = np.asarray(resolved.dataset.x)[splits.rows["test"]]
        model = trained_model(store.run_dir(result.variant, result.seed))
        exported = np.asarray(model.predict(raw, verbose=0))[:, 0]
        at = store.load_predictions(result.variant, result.seed, resolved.evaluate)
        assert at is not None  # the weights export uses: the study's checkpoint
        np.testing.assert_allclose(exported, at[1], rtol=2e-4)
    # the history stays on the model's scale (what it trained on): far below the prices'
    losses = [r.history["loss"][-1] for r in outcome.results]
    assert max(losses) < 1e3 < min(r.test["best"]["mse"] for r in outcome.results)


def test_a_population_member_reproduces_its_solo_run(tmp_path: Path) -> None:
    from tricklab import run_study

    study = write_study(tmp_path, "standardize")
    # each seed its own split: members differ in training rows, so in target mean and std
    study.write_text("resplit = true\n" + study.read_text("utf-8"), encoding="utf-8")
    solo = run_study(study, out=tmp_path / "solo", engine="solo")
    population = run_study(study, out=tmp_path / "population", engine="population")
    assert {r.engine for r in population.results} == {"population"}
    by_run = {(r.variant, r.seed): r for r in solo.results}
    for member in population.results:
        run = by_run[(member.variant, member.seed)]
        np.testing.assert_allclose(member.history["loss"], run.history["loss"], rtol=1e-4)
        np.testing.assert_allclose(member.history["val_loss"], run.history["val_loss"], rtol=1e-4)
        for name in ("mse", "mae", "loss"):
            assert member.test["best"][name] == pytest.approx(run.test["best"][name], rel=1e-4)


def test_the_references_fit_on_the_same_scale(tmp_path: Path) -> None:
    from sklearn.compose import TransformedTargetRegressor
    from sklearn.linear_model import Ridge
    from sklearn.metrics import mean_squared_error
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    from tricklab.data import resolve
    from tricklab.engines.references import fit_references, fit_rows
    from tricklab.spec import load_study

    resolved = resolve(load_study(write_study(tmp_path, "log")))
    references = fit_references(resolved, 0)
    ridge = next(f for f in references.fits if f.model == "ridge regression")
    splits = resolved.splits(0)
    x, y = fit_rows(splits)
    expected = TransformedTargetRegressor(
        regressor=make_pipeline(StandardScaler(), Ridge(alpha=1.0)),
        func=np.log,
        inverse_func=np.exp,
    ).fit(x, y.astype(np.float64))
    mse = mean_squared_error(splits.y_test, expected.predict(splits.x_test))
    assert ridge.test["mse"] == pytest.approx(mse, rel=1e-4)


def test_a_fitted_model_predicts_prices(tmp_path: Path) -> None:
    from tricklab import load_model, run_study
    from tricklab.data import TargetScaling

    study = write_study(tmp_path, "standardize")
    run_study(study, out=tmp_path / "runs", engine="solo")
    model_dir = tmp_path / "model"
    argv = ["fit", str(study), "--variant", "base", "-o", str(model_dir)]
    assert main([*argv, "--out", str(tmp_path / "runs")]) == 0
    fitted = load_model(model_dir)
    scaling = TargetScaling.from_json(fitted.record["target"])
    y = pd.read_csv(tmp_path / "prices.csv", sep=";")["price"].to_numpy(np.float64)
    assert scaling.mean == pytest.approx(y.mean(), rel=1e-6)  # every row: fitted on all
    frame = pd.read_csv(tmp_path / "prices.csv", sep=";").drop(columns=["price"]).head(10)
    predicted = fitted.predict(frame)["prediction"].to_numpy()
    outputs = fitted.model.predict(fitted.features(frame), verbose=0)[:, 0]
    np.testing.assert_allclose(predicted, outputs * scaling.std + scaling.mean, rtol=1e-6)
    assert float(np.median(predicted)) > 1e4
