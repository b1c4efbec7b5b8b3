"""The shipped studies: each validates, the lecture's are flagged, the others lint clean."""

from __future__ import annotations

from pathlib import Path

import pytest

from tricklab.api import run_study
from tricklab.data import _idx, resolve
from tricklab.report import build_report, report_figures
from tricklab.spec import load_study
from tricklab.tools.lint import active, lint

STUDIES = sorted((Path(__file__).parents[1] / "studies").glob("*.toml"))
LECTURE = {
    "lecture-thoracic.toml": {"TL003", "TL006", "TL011"},
    "lecture-fashion.toml": {"TL001", "TL005", "TL008"},
}
needs_fashion = pytest.mark.skipif(
    _idx.find_local() is None,
    reason="Fashion-MNIST not found locally (apt-get install dataset-fashion-mnist)",
)


def test_the_lecture_studies_are_all_shipped() -> None:
    assert {p.name for p in STUDIES} >= {
        "thoracic-losses.toml",
        "fashion-regularization.toml",
        "fashion-recipes.toml",
        "fashion-learning-rates.toml",
        "fashion-activations.toml",
        "fashion-architectures.toml",
        "lecture-thoracic.toml",
        "lecture-fashion.toml",
        "deep-activations.toml",
    }


@needs_fashion
@pytest.mark.parametrize("path", STUDIES, ids=lambda p: p.stem)
def test_shipped_study_lints_as_documented(path: Path) -> None:
    spec = load_study(path)
    findings = lint(resolve(spec).check())  # every variant fits its data
    flagged = {f.code for f in active(findings)}
    assert flagged == LECTURE.get(path.name, set())
    for code, reason in spec.lint.ignore.items():
        assert len(reason) > 20, f"{path.name}: ignoring {code} needs a stated reason"
        assert any(f.code == code and f.ignored == reason for f in findings), (
            f"{path.name}: ignores {code}, which it does not trigger"
        )
    text = path.read_text(encoding="utf-8")
    assert text.startswith("#") and "What to look for" in text  # commented for the reader


@needs_fashion
@pytest.mark.slow
def test_deep_activations_report_shows_vanishing_gradients(tmp_path: Path) -> None:
    spec = load_study(Path(__file__).parents[1] / "studies" / "deep-activations.toml")
    spec = spec.select(seeds=1).with_epochs(1)
    outcome = run_study(spec, out=tmp_path)
    report = build_report(outcome.root)
    assert {
        "diagnostics_kernel_grad_norm",
        "diagnostics_saturated_fraction",
        "diagnostics_dead_fraction",
    } <= set(report_figures(report))
    html = report.html.read_text(encoding="utf-8")
    assert "Diagnostics" in html and "kernel gradient norms" in html
    ratio = {r.variant: _first_over_last(r.diagnostics) for r in outcome.results}
    assert ratio["sigmoid"] < 0.1 < ratio["relu"]  # untrained: sigmoid's gradient vanishes


def _first_over_last(rows: list[dict]) -> float:
    untrained = [r for r in rows if r["epoch"] == 0]
    return untrained[0]["kernel_grad_norm"] / untrained[-1]["kernel_grad_norm"]
