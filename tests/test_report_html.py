"""report.html in headless Chromium at 1280 px: the results need no horizontal scroll, the
headline is in the first 800 px, every image decodes and the page logs no error."""

from __future__ import annotations

import importlib.util
import json
import re
import subprocess
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from test_headline import write_study

from tricklab.report import build_report, report_figures

CHROMIUM = Path("/usr/bin/chromium")
WIDTH = 1280
#: The probe runs first (so it sees every error) and writes its measurements into the page.
PROBE_HEAD = (
    "<script>window.__errors = []; window.onerror = (m) => { window.__errors.push(m); };</script>"
)
PROBE_BODY = """<script>
window.addEventListener('load', () => {
  const results = document.getElementById('results-table');
  const verdict = document.querySelector('#headline p.verdict');
  const out = {
    results_scroll: results.scrollWidth - results.clientWidth,
    page_scroll: document.documentElement.scrollWidth - document.documentElement.clientWidth,
    headline_top: verdict.getBoundingClientRect().top,
    headline_bottom: verdict.getBoundingClientRect().bottom,
    images: [...document.images].map(i => [i.complete, i.naturalWidth, i.naturalHeight]),
    errors: window.__errors,
  };
  const pre = document.createElement('pre');
  pre.id = 'probe'; pre.style.display = 'none'; pre.textContent = JSON.stringify(out);
  document.body.appendChild(pre);
});
</script>"""


def _screenshot_script() -> Any:
    """scripts/screenshot.py (``make screenshot``), which holds the headless flags."""
    path = Path(__file__).parents[1] / "scripts" / "screenshot.py"
    spec = importlib.util.spec_from_file_location("screenshot", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def chromium(page: Path, out: Path, *, height: int = 1000) -> tuple[dict[str, Any], Path, str]:
    """Load ``page`` in headless Chromium at 1280 px wide: the probe's measurements, the
    screenshot and Chromium's log."""
    screenshot = out / "report.png"
    command = [
        str(CHROMIUM),
        *_screenshot_script().HEADLESS,
        f"--user-data-dir={out / 'profile'}",
        "--enable-logging=stderr",
        "--v=0",
        "--run-all-compositor-stages-before-draw",
        f"--window-size={WIDTH},{height}",
        f"--screenshot={screenshot}",
        "--dump-dom",
        page.as_uri(),
    ]
    done = subprocess.run(command, capture_output=True, text=True, timeout=120)
    (out / "chromium.log").write_text(done.stderr)
    assert done.returncode == 0, done.stderr[-2000:]
    found = re.search(r'<pre id="probe"[^>]*>([^<]*)</pre>', done.stdout)
    assert found, done.stdout[-2000:]
    return json.loads(found.group(1).replace("&quot;", '"')), screenshot, done.stderr


@pytest.fixture
def long_names(tmp_path: Path) -> Path:
    """Seven variants with the long names of the losses study, the wide-table case."""
    names = [
        "binary_crossentropy",
        "mean_squared_error",
        "mean_absolute_error",
        "mean_absolute_percentage_error",
        "mean_squared_logarithmic_error",
        "categorical_crossentropy",
        "poisson",
    ]
    offsets = [0.0, -0.004, -0.08, -0.095, -0.006, -0.2, 0.011]
    variants: dict[str, dict[str, Any]] = {
        name: {"auc": 0.62 + offset} for name, offset in zip(names, offsets, strict=True)
    }
    variants["categorical_crossentropy"]["learns"] = False
    return write_study(tmp_path / "thoracic-losses", variants)


def test_report_html_at_1280_px(long_names: Path, tmp_path: Path) -> None:
    if not CHROMIUM.exists():
        pytest.skip(f"{CHROMIUM} is not installed")
    report = build_report(long_names)
    html = report.html.read_text(encoding="utf-8")
    page = tmp_path / "report.html"  # a copy with the probe; the report itself has no script
    page.write_text(
        html.replace("<head>", "<head>" + PROBE_HEAD, 1).replace("</body>", PROBE_BODY + "</body>")
    )
    found, screenshot, log = chromium(page, tmp_path)
    assert found["errors"] == [] and "Uncaught" not in log
    assert found["results_scroll"] <= 0, found  # the results fit: no horizontal scrollbar
    assert found["page_scroll"] <= 0, found
    assert found["headline_top"] >= 0 and found["headline_bottom"] <= 800, found
    assert len(found["images"]) == len(report_figures(report)) >= 3
    for complete, width, height in found["images"]:
        assert complete and width > 300 and height > 150
    # the screenshot shows the page's top: text, the headline's box, the table
    from PIL import Image

    with Image.open(screenshot) as shot:
        assert shot.size == (WIDTH, 1000)
        pixels = np.asarray(shot.convert("L"))
    assert (pixels < 200).mean() > 0.01
