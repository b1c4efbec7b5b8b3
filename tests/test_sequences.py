"""Integer sequences in a CSV: ``dataset = {csv = ..., target = ..., sequence = ["t0", ...]}``.

The sequence columns are the features, fed as int32 token ids of sample shape (T,), never
scaled; a bad token cell or a column besides them is one located line. The tables are
generated here (a few dozen rows); one study trains an LSTM and a GRU solo for 1 epoch. The
shipped example (examples/sequences.toml, examples/sequences.csv) lints clean and is the output
of examples/make_sequences.py.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from tricklab.base.errors import DataError, SpecError
from tricklab.cli import main
from tricklab.data import describe_intake, load_dataset, resolve
from tricklab.spec import StudySpec, parse_dataset

EXAMPLES = Path(__file__).parents[1] / "examples"
COLUMNS = ["t0", "t1", "t2", "t3"]


def table(path: Path, rows: int = 40, seed: int = 0) -> np.ndarray:
    """A CSV of ``rows`` sequences of 4 tokens (ids 0-9) and a label (is 7 after 3?); returns
    the tokens."""
    rng = np.random.default_rng(seed)
    tokens = rng.integers(0, 10, (rows, len(COLUMNS)))
    tokens[:, 0] = 40  # a large id: scaling would show
    labels = np.arange(rows) % 2
    frame = pd.DataFrame(tokens, columns=COLUMNS).assign(y=labels)
    frame.to_csv(path, index=False)
    return tokens


def spec(csv: Path, **extra: Any) -> dict[str, Any]:
    return {"csv": str(csv), "target": "y", "sequence": COLUMNS, **extra}


def test_sequence_columns_are_int32_tokens_of_shape_t_and_never_scaled(tmp_path: Path) -> None:
    tokens = table(tmp_path / "s.csv")
    data = load_dataset(spec(tmp_path / "s.csv"))
    assert data.x.dtype == np.int32 and data.x.shape == (40, 4) and data.input_shape == (4,)
    assert np.array_equal(data.x, tokens)
    assert data.feature_names == tuple(COLUMNS) and not data.standardize
    assert data.task == "binary"
    resolved = resolve(_study(tmp_path / "s.csv"))
    split = resolved.splits(0)
    for part in (split.x_train, split.x_test):
        assert part.dtype == np.int32  # fed as int32: no split casts or standardises them
    assert split.feature_mean is None
    assert np.array_equal(split.x_train, tokens[split.rows["train"]])
    assert describe_intake(data)[1:3] == [
        "features: a sequence of 4 token ids (int32, not scaled)",
        "note: sequence = 't0' to 't3': token ids 0-40 as int32, not scaled",
    ]


def test_the_order_of_sequence_is_the_order_of_the_features(tmp_path: Path) -> None:
    tokens = table(tmp_path / "s.csv")
    data = load_dataset({**spec(tmp_path / "s.csv"), "sequence": ["t3", "t1", "t2", "t0"]})
    assert np.array_equal(data.x, tokens[:, [3, 1, 2, 0]])
    by_index = load_dataset({**spec(tmp_path / "s.csv"), "sequence": [0, 1, 2, 3]})
    assert np.array_equal(by_index.x, tokens)


def test_limit_keeps_a_stratified_sample_of_sequences(tmp_path: Path) -> None:
    tokens = table(tmp_path / "s.csv")
    data = load_dataset(spec(tmp_path / "s.csv", limit=10))
    assert data.x.dtype == np.int32 and len(data.y) == 10
    assert list(np.bincount(data.y)) == [5, 5]
    assert any((tokens == row).all(axis=1).any() for row in data.x)
    assert data.intake is not None and data.intake.sampled == 10


BAD_CELLS = [
    ("negative", "-1", "line 4, column 't2': -1 is not a token id"),
    ("fraction", "1.5", "line 4, column 't2': 1.5 is not a token id"),
    ("text", "cat", "line 4, column 't2': 'cat' is not a token id"),
    ("too-big", "3000000000", "line 4, column 't2': 3000000000 is not a token id"),
]


@pytest.mark.parametrize(
    ("cell", "expected"), [c[1:] for c in BAD_CELLS], ids=[c[0] for c in BAD_CELLS]
)
def test_a_bad_token_cell_is_one_located_line(tmp_path: Path, cell: str, expected: str) -> None:
    path = tmp_path / "s.csv"
    table(path)
    lines = path.read_text().splitlines()
    cells = lines[3].split(",")  # line 4 of the file: data row 3
    cells[2] = cell
    lines[3] = ",".join(cells)
    later = lines[6].split(",")
    later[1] = "-5"  # a later bad cell (line 7): the first in file order is named
    lines[6] = ",".join(later)
    path.write_text("\n".join(lines) + "\n")
    with pytest.raises(DataError) as caught:
        load_dataset(spec(path))
    message = str(caught.value)
    assert message == (
        f"{path}: {expected}; sequence columns hold integers from 0 to 2147483647 (the ids an "
        "embedding layer looks up)."
    )
    assert "\n" not in message


def test_a_column_besides_the_tokens_and_the_target_is_an_error(tmp_path: Path) -> None:
    path = tmp_path / "s.csv"
    table(path)
    frame = pd.read_csv(path).assign(age=1.0, extra=2)
    frame.to_csv(path, index=False)
    with pytest.raises(DataError) as caught:
        load_dataset(spec(path))
    assert str(caught.value) == (
        f"{path}: column 'age' (and 1 more) is neither the target nor a sequence column; with "
        "sequence, the features are exactly the token columns. Remove it from the file, or "
        "list it in sequence."
    )
    with pytest.raises(DataError, match=r"sequence: column 'tx' not found\. .*Columns: t0, t1"):
        load_dataset({**spec(path), "sequence": ["t0", "tx"]})
    with pytest.raises(DataError, match="sequence names the target column 'y'"):
        load_dataset({**spec(path), "sequence": ["t0", "y"]})


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        ({"sequence": []}, "sequence: must be a non-empty list of the token columns"),
        ({"sequence": ["t0", "t0"]}, "sequence: lists column 't0' twice"),
        ({"standardize": True}, "standardize: cannot be true with sequence"),
        ({"text_columns": ["t0"]}, "text_columns: cannot be used with sequence"),
        ({"header": False, "target": 4}, "sequence: must hold 0-based column indices"),
    ],
)
def test_sequence_options_are_checked_without_data(extra: dict[str, Any], message: str) -> None:
    with pytest.raises(SpecError) as caught:
        parse_dataset({**spec(Path("s.csv")), **extra})
    assert str(caught.value).startswith(message)


def _study(csv: Path, recurrent: dict[str, Any] | None = None) -> StudySpec:
    """embedding -> a recurrent layer (an LSTM unless given) -> sigmoid. 32 rows, test 0.25
    and validation on the test rows: every batch has 8 rows (one compiled shape: fast)."""
    embed = {"type": "embedding", "input_dim": 41, "output_dim": 4}
    out = {"type": "dense", "units": 1, "activation": "sigmoid"}
    layer = recurrent or {"type": "lstm", "units": 3}
    return StudySpec.from_dict(
        {
            "name": "seq",
            "dataset": spec(csv, test=0.25),
            "seeds": [0],
            "validation": "test",
            "model": {"layers": [embed, layer, out]},
            "train": {"loss": "binary_crossentropy", "batch_size": 8, "epochs": 1},
        }
    )


def _train(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, recurrent: dict[str, Any]) -> Path:
    """Train the study on 32 generated rows, solo; the run's folder. Asserts that the model was
    fed int32 token ids."""
    from tricklab.api import run_study
    from tricklab.engines import solo

    table(tmp_path / "s.csv", rows=32)
    fed: list[np.dtype[Any]] = []
    original = solo.build_model

    def spy(recipe: Any, shape: Any) -> Any:
        model = original(recipe, shape)
        fit = model.fit

        def recording_fit(x: Any, *args: Any, **kwargs: Any) -> Any:
            fed.append(np.asarray(x).dtype)
            return fit(x, *args, **kwargs)

        model.fit = recording_fit
        assert model.inputs[0].dtype == "int32"  # ids stay integers up to the embedding
        return model

    monkeypatch.setattr(solo, "build_model", spy)
    outcome = run_study(_study(tmp_path / "s.csv", recurrent), out=tmp_path / "runs", engine="solo")
    assert outcome.trained == 1 and not outcome.failed
    assert fed == [np.dtype(np.int32)]
    return tmp_path / "runs" / "seq" / "baseline" / "seed-0"


def test_an_embedding_and_lstm_train_solo_on_int32_tokens(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    run_dir = _train(tmp_path, monkeypatch, {"type": "lstm", "units": 3})
    assert (run_dir / "result.json").is_file()


def test_an_embedding_and_gru_train_solo_and_predict_reads_token_ids(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from tricklab.tools.export import predict_csv, predict_path, trained_model

    run_dir = _train(tmp_path, monkeypatch, {"type": "gru", "units": 3})
    tokens = pd.read_csv(tmp_path / "s.csv")[COLUMNS].to_numpy()[:8]
    rows = tmp_path / "rows.csv"
    pd.DataFrame(tokens, columns=COLUMNS).to_csv(rows, index=False)
    predicted = predict_csv(run_dir, rows)["p(1)"].to_numpy()
    expected = np.asarray(trained_model(run_dir).predict(tokens, verbose=0))[:, 0]
    np.testing.assert_allclose(predicted, expected, rtol=1e-5, atol=1e-6)
    with pytest.raises(DataError, match="images, but this run's model takes rows of features"):
        predict_path(run_dir, tmp_path / "a.png")
    bad = tokens[:3].astype(float)
    bad[1, 2] = 2.5
    pd.DataFrame(bad, columns=COLUMNS).to_csv(rows, index=False)
    with pytest.raises(DataError) as caught:
        predict_csv(run_dir, rows)
    assert str(caught.value) == (
        f"{rows}: line 3, column 't2': not a token id; the model reads integers >= 0 (the ids "
        "of its sequence columns). Received: 2.5."
    )


def test_the_shipped_example_lints_clean_and_is_the_script_output(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["lint", str(EXAMPLES / "sequences.toml")]) == 0
    out = capsys.readouterr()
    assert "0 warning(s), 0 hint(s)" in out.out and "error" not in out.err
    data = load_dataset({**_shipped(), "csv": str(EXAMPLES / "sequences.csv")})
    assert data.x.dtype == np.int32 and data.input_shape == (20,)
    assert (data.x.min(), data.x.max()) == (0, 29)
    module = importlib.util.spec_from_file_location(
        "make_sequences", EXAMPLES / "make_sequences.py"
    )
    assert module is not None and module.loader is not None
    script = importlib.util.module_from_spec(module)
    module.loader.exec_module(script)
    script.write_csv(tmp_path / "again.csv")
    shipped = EXAMPLES / "sequences.csv"
    assert (tmp_path / "again.csv").read_bytes() == shipped.read_bytes()
    assert shipped.stat().st_size < 200_000
    tokens, labels = script.make_rows(50)
    for sequence, label in zip(tokens, labels, strict=True):  # the rule the file documents
        positions = {int(t): i for i, t in enumerate(sequence) if t in (3, 7)}
        assert label == (positions[7] > positions[3])


def _shipped() -> dict[str, Any]:
    import tomllib

    with open(EXAMPLES / "sequences.toml", "rb") as file:
        return dict(tomllib.load(file)["dataset"])
