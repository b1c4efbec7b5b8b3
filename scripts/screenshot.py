"""The README's screenshot of a report: the top of report.html at 1280 px, in headless Chromium.

    python scripts/screenshot.py runs/thoracic-losses/report.html docs/report.png

(``make screenshot`` runs the demo study first.) Needs Debian's ``chromium``.
"""

from __future__ import annotations

import subprocess
import sys
import tempfile
from pathlib import Path

CHROMIUM = Path("/usr/bin/chromium")
WIDTH, HEIGHT = 1280, 1000
#: Headless Chromium on a machine without network access (the browser test uses these too).
HEADLESS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--hide-scrollbars",
)


def main(page: Path, png: Path) -> int:
    if not CHROMIUM.exists():
        print(f"{CHROMIUM} is not installed (Debian: apt-get install chromium)", file=sys.stderr)
        return 2
    if not page.exists():
        print(f"{page}: no such report; run `make demo` first", file=sys.stderr)
        return 2
    png.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as profile:
        command = [
            str(CHROMIUM),
            *HEADLESS,
            f"--user-data-dir={profile}",
            "--run-all-compositor-stages-before-draw",
            f"--window-size={WIDTH},{HEIGHT}",
            f"--screenshot={png.resolve()}",
            page.resolve().as_uri(),
        ]
        done = subprocess.run(command, capture_output=True, text=True, timeout=120)
    if done.returncode != 0 or not png.exists():
        print(done.stderr[-2000:], file=sys.stderr)
        return 1
    print(f"wrote {png} ({WIDTH}x{HEIGHT}) from {page}")
    return 0


if __name__ == "__main__":
    if len(sys.argv) != 3:
        print(__doc__, file=sys.stderr)
        sys.exit(2)
    sys.exit(main(Path(sys.argv[1]), Path(sys.argv[2])))
