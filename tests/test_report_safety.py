"""The report's promises: text tricklab did not write is escaped in report.md and report.html,
and a report killed while writing leaves every file whole (old or new), with no litter."""

from __future__ import annotations

import copy
import os
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import matplotlib.image
import pytest
from conftest import TINY

from tricklab.report import build_report, report_figures, report_text

DESCRIPTION = "<script>alert(1)</script> & **bold**"
PNG = b"\x89PNG\r\n\x1a\n"


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One solo run, 1 epoch, on a CSV whose names and class labels hold <, > and &."""
    from tricklab import run_study
    from tricklab.spec import StudySpec

    tmp = tmp_path_factory.mktemp("safety")
    labels, levels = ("<b>", "a&b"), ("r<", "g&")
    (tmp / "d.csv").write_text(
        "n<&>,col<i>&,kind<&>\n"
        + "".join(f"{i},{levels[i % 2]},{labels[(i // 3) % 2]}\n" for i in range(40))
    )
    study = copy.deepcopy(TINY)
    study.update(name="safety", description=DESCRIPTION)
    study["dataset"] = {"csv": str(tmp / "d.csv"), "target": "kind<&>"}
    study["train"]["epochs"] = 1
    # the row-id column draws lint TL006, whose message quotes the column's name
    study["lint"] = {"ignore": {"TL006": "<i>on purpose</i> & kept"}}
    outcome = run_study(StudySpec.from_dict(study), out=tmp / "runs", engine="solo")
    assert not outcome.failed and len(outcome.results) == 1
    build_report(outcome.root)
    return outcome.root


def test_text_tricklab_did_not_write_is_escaped(trained: Path) -> None:
    md = (trained / "report.md").read_text(encoding="utf-8")
    html = (trained / "report.html").read_text(encoding="utf-8")
    assert "&lt;script&gt;alert(1)&lt;/script&gt; &amp; **bold**" in md  # Markdown kept
    assert "classes: &lt;b&gt;, a&amp;b" in md
    assert "target 'kind&lt;&amp;&gt;'" in md and "one-hot col&lt;i&gt;&amp;" in md
    assert "feature column 'n&lt;&amp;&gt;'" in md
    assert "Ignored: &lt;i&gt;on purpose&lt;/i&gt; &amp; kept" in md
    assert "&lt;script&gt;alert(1)&lt;/script&gt; &amp; **bold**" in html
    assert "classes: &lt;b&gt;, a&amp;b" in html and "kind&lt;&amp;&gt;" in html
    assert "&lt;i&gt;on purpose&lt;/i&gt; &amp; kept" in html
    for raw in ("<script", "<b>", "a&b", "<i>", "<&>", "& kept"):
        assert raw not in md and raw not in html, raw


def test_code_spans_hold_any_text_literally() -> None:
    from tricklab.report._documents import _md_code

    assert _md_code("a -> b") == "`a -> b`"
    assert _md_code("x`y") == "``x`y``"
    assert _md_code("`a``") == "``` `a`` ```"


# -- figures: written beside the old ones, renamed into place ------------------------------------
def _tmp_files(root: Path) -> list[Path]:
    return sorted(root.rglob("*.tmp"))


def _whole_pngs(folder: Path) -> dict[str, bytes]:
    out = {}
    for path in sorted(folder.glob("*.png")):
        data = path.read_bytes()
        assert data.startswith(PNG), path
        matplotlib.image.imread(path)  # decodes: the file is whole
        out[path.name] = data
    return out


def _leave_a_killed_write(path: Path) -> None:
    """A process killed between writing ``path``'s temporary file and renaming it."""
    script = f"""
        import os
        from pathlib import Path
        from tricklab.store import _files as _store_files
        _store_files.os.replace = lambda *_: os._exit(9)
        _store_files.write_bytes(Path({str(path)!r}), b"half a file")
    """
    done = subprocess.run([sys.executable, "-c", textwrap.dedent(script)], check=False)
    assert done.returncode == 9


@pytest.fixture
def store(trained: Path, tmp_path: Path) -> Path:
    """A copy of the trained study with its report, and an old figure the report no longer
    draws."""
    root = Path(shutil.copytree(trained, tmp_path / "safety"))
    shutil.copy(root / "figures" / "learning_curves.png", root / "figures" / "retired.png")
    return root


def test_a_report_killed_while_drawing_leaves_the_old_figures(
    store: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from matplotlib.figure import Figure

    before = _whole_pngs(store / "figures")
    markdown = (store / "report.md").read_bytes()
    real, saved = Figure.savefig, []

    def savefig(self: Figure, *args: object, **kwargs: object) -> None:
        if len(saved) == 2:
            raise KeyboardInterrupt  # killed while drawing the third figure
        saved.append(self)
        real(self, *args, **kwargs)

    monkeypatch.setattr(Figure, "savefig", savefig)
    with pytest.raises(KeyboardInterrupt):
        build_report(store)
    assert _whole_pngs(store / "figures") == before
    assert (store / "report.md").read_bytes() == markdown
    assert not _tmp_files(store)


def test_a_report_killed_between_renames_leaves_whole_figures_then_tidies_up(
    store: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    before = _whole_pngs(store / "figures")
    markdown = (store / "report.md").read_bytes()
    real, renamed = os.replace, []

    def replace(source: str | Path, target: str | Path) -> None:
        if Path(target).parent == store / "figures":
            if len(renamed) == 2:
                raise KeyboardInterrupt  # killed with the third figure written, not renamed
            renamed.append(Path(target).name)
        real(source, target)

    monkeypatch.setattr(os, "replace", replace)
    with pytest.raises(KeyboardInterrupt):
        build_report(store)
    monkeypatch.undo()
    after = _whole_pngs(store / "figures")
    assert after.keys() == before.keys()  # every figure is there and whole, new or old
    assert len(renamed) == 2 and all(after[n] == before[n] for n in after if n not in renamed)
    assert (store / "report.md").read_bytes() == markdown and not _tmp_files(store)
    # a real kill (SIGKILL-like exit) leaves its temporary files; the next report removes them
    _leave_a_killed_write(store / "figures" / "learning_curves.png")
    _leave_a_killed_write(store / "report.md")
    live = store / "figures" / f".busy.png.{os.getpid()}.1.tmp"
    live.write_bytes(b"a report of a live process, being written")
    assert len(_tmp_files(store)) == 3

    report = build_report(store)
    assert _tmp_files(store) == [live]  # a live writer's file is left to it
    drawn = _whole_pngs(store / "figures")
    assert set(drawn) == {f"{name}.png" for name in report_figures(report)}  # retired.png is gone
    assert "retired" not in report_text(report)
