"""The examples in examples/ run as a user would run them."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

EXAMPLES = Path(__file__).parents[1] / "examples"


def test_quickstart_example(tmp_path: Path) -> None:
    out = subprocess.run(
        [sys.executable, str(EXAMPLES / "quickstart.py"), str(tmp_path)],
        capture_output=True,
        text=True,
        cwd=tmp_path,
    )
    assert out.returncode == 0, out.stderr
    assert "trained 6 runs, reused 0" in out.stdout
    assert "P(died within a year) =" in out.stdout
    for name in (
        "quickstart-learning-curves.png",
        "quickstart-dropout.keras",
        "quickstart/report.html",
        "quickstart/report.md",
    ):
        assert (tmp_path / name).stat().st_size > 0
