"""The lecture's Fashion-MNIST softmax regression, reproduced on the real data (slow)."""

from __future__ import annotations

from pathlib import Path

import pytest

from tricklab.api import run_study
from tricklab.data import _idx
from tricklab.spec import StudySpec

pytestmark = pytest.mark.slow


def test_lecture_softmax_regression(tmp_path: Path) -> None:
    if _idx.find_local() is None:  # a dependency of the tests (`make test` installs it)
        searched = ", ".join(str(place.path) for place in _idx.places())
        pytest.fail(
            "Fashion-MNIST is missing: the tests need it installed (`make test` runs "
            "scripts/system-deps.sh test, which installs Debian's dataset-fashion-mnist; or "
            f"apt-get install dataset-fashion-mnist). Searched: {searched}.",
            pytrace=False,
        )
    spec = StudySpec.from_dict(
        {
            "name": "softmax",
            "dataset": "fashion_mnist",
            "seeds": [3],
            "model": {
                "layers": [
                    {"type": "flatten"},
                    {"type": "dense", "units": 10, "activation": "softmax"},
                ]
            },
            "train": {
                "loss": "sparse_categorical_crossentropy",
                "optimizer": "adam",
                "batch_size": 30,
                "epochs": 2,
            },
        }
    )
    outcome = run_study(spec, out=tmp_path)
    (result,) = outcome.results
    assert result.params == 7850  # "총 7850 parameters (10 bias)"
    assert result.epochs_run == 2
    assert result.split_sizes == {"train": 54000, "validation": 6000, "test": 10000}
    assert result.test["best"]["accuracy"] > 0.81
    assert result.test["last"]["accuracy"] > 0.81
