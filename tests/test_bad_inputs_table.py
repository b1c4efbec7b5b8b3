"""Bad command lines, files, directories and encodings, and OS errors: one line each, exit 2.

Every case runs ``tricklab.cli.main`` in-process, in a fresh temporary folder (the current
directory), and pins the exit status and the whole error line with a regex; none may print a
traceback. Disk-full and permission errors are injected with monkeypatch (the tests run as root,
so ``chmod`` cannot deny anything). Cases that need a finished study share one 1-epoch run
(``finished``); one more 1-epoch run fails at its commit and must leave the run planned. The
study-file and CSV-content cases of ``tricklab lint`` are in ``test_bad_inputs.py``.
"""

from __future__ import annotations

import copy
import errno
import os
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any, NamedTuple

import pytest
from conftest import TINY, study_toml

from tricklab import store
from tricklab.cli import main
from tricklab.store import _commits as commits
from tricklab.store import _store as store_internals

# The tiny study in 1 epoch: the cases that train stay quick.
TINY_TOML = study_toml({**TINY, "train": {**TINY["train"], "epochs": 1}})
CSV_STUDY = """
dataset = {csv = "data.csv", target = "y"}
[model]
layers = [{type = "dense", units = 1, activation = "sigmoid"}]
[train]
loss = "binary_crossentropy"
"""
THORACIC_HEADER = (
    "DGN,PRE4,PRE5,PRE6,PRE7,PRE8,PRE9,PRE10,PRE11,PRE14,PRE17,PRE19,PRE25,PRE30,PRE32,AGE"
)

Setup = Callable[[Path], None]
Inject = Callable[[pytest.MonkeyPatch], None]


def files(**contents: str | bytes | None) -> Setup:
    """Create files in the case's folder: text, bytes, or None for a directory."""

    def setup(folder: Path) -> None:
        for name, content in contents.items():
            path = folder / name
            if content is None:
                path.mkdir(parents=True, exist_ok=True)
                continue
            path.parent.mkdir(parents=True, exist_ok=True)
            if isinstance(content, bytes):
                path.write_bytes(content)
            else:
                path.write_text(content, encoding="utf-8")

    return setup


def os_error(code: int, filename: str | None = None) -> OSError:
    if filename is None:
        return OSError(code, os.strerror(code))
    return OSError(code, os.strerror(code), filename)


def store_writes_fail(code: int, suffix: str = "") -> Inject:
    """Every store file whose path ends with ``suffix`` fails to be written with ``code``."""

    def inject(monkeypatch: pytest.MonkeyPatch) -> None:
        # The index and the like are written whole; a run's files are staged, then moved in.
        for module, name in ((store_internals, "_write_bytes"), (commits, "_stage_bytes")):
            real = getattr(module, name)

            def write(path: Path, data: bytes, real: Any = real) -> None:
                if str(path).endswith(suffix):
                    raise os_error(code, str(path))
                real(path, data)

            monkeypatch.setattr(module, name, write)

    return inject


def reads_fail(name: str, code: int) -> Inject:
    """Reading any file called ``name`` fails with ``code`` (as a file mode 000 would)."""

    def inject(monkeypatch: pytest.MonkeyPatch) -> None:
        real = Path.read_bytes

        def read_bytes(self: Path) -> bytes:
            if self.name == name:
                raise os_error(code, str(self))
            return real(self)

        monkeypatch.setattr(Path, "read_bytes", read_bytes)

    return inject


def report_writes_fail(name: str, code: int) -> Inject:
    """Writing any report file called ``name`` fails with ``code``."""

    def inject(monkeypatch: pytest.MonkeyPatch) -> None:
        from tricklab.report import _documents

        real = _documents.write_bytes

        def write(path: Path, data: bytes) -> None:
            if path.name == name:
                raise os_error(code, str(path))
            real(path, data)

        monkeypatch.setattr(_documents, "write_bytes", write)

    return inject


def commit_undone(folder: Path) -> None:
    """After the disk filled at the commit, the run is planned again: not half-done, not held."""
    run_dir = folder / "runs" / "tiny" / "baseline" / "seed-0"
    assert not (run_dir / "result.json").exists()
    assert not (run_dir / "claim.json").exists()
    assert not list(run_dir.glob(".partial-*"))
    statuses = store.RunStore(folder / "runs" / "tiny").indexed_runs()
    assert [status.state for status in statuses] == [store.RunState.PLANNED]


def datasets_raises(exc: BaseException) -> Inject:
    """``tricklab datasets`` meets ``exc`` (an error no command expects: the last safety net)."""

    def inject(monkeypatch: pytest.MonkeyPatch) -> None:
        def describe() -> Any:
            raise exc

        monkeypatch.setattr("tricklab.data.describe_datasets", describe)

    return inject


class Case(NamedTuple):
    id: str
    argv: list[str]  # "{done}": the finished study's store, "{run}": its finished run
    message: str  # regex the whole error line must match ("error: " removed); same placeholders
    setup: Setup | None = None
    inject: Inject | None = None
    usage: bool = False  # an argparse error: one line "tricklab ...: error: ... See '... --help'."
    after: Setup | None = None  # checks of the case's folder afterwards


STUDY = files(**{"tiny.toml": TINY_TOML})
RUNS_HINT = r"expected a study's store, runs/<study>/ \(the directory holding study\.json\)\."
DIR_HINT = r"Give a directory \(it is created if missing\) or move the file away\."
OUT_HINT = (
    r"The runs of study 'tiny' go in {dir}/ \(created if missing\); give another --out or move "
    r"the file away\."
)
CSV_HINT = r"tricklab reads CSV files as UTF-8; save it as UTF-8\."
KEPT = (
    r"Nothing finished was lost \(every file is written whole or not at all\); {advice} and "
    r"rerun the same command to continue\."
)

CASES = [
    # -- study files -------------------------------------------------------------------------
    Case("study-missing", ["lint", "missing.toml"], r"missing\.toml: no such study file\."),
    Case(
        "study-is-a-directory",
        ["run", "studies"],
        r"studies: is a directory; expected a study file \(TOML\)\.",
        files(studies=None),
    ),
    Case(
        "study-empty",
        ["run", "s.toml"],
        r"s\.toml: the file is empty; a study needs at least dataset = \.\.\., \[model\] and "
        r"\[train\]\.",
        files(**{"s.toml": "\n  \n"}),
    ),
    Case(
        "study-not-toml",
        ["lint", "s.toml"],
        r"s\.toml: not valid TOML: Invalid value \(at line 1, column 5\)\.",
        files(**{"s.toml": "x = \n"}),
    ),
    Case(
        "study-unknown-key",
        ["run", "tiny.toml"],
        r"tiny\.toml: unknown key 'sedes'\. Did you mean 'seeds'\? Expected one of: baseline, "
        r"cv, dataset, .*, variants\.",
        files(**{"tiny.toml": TINY_TOML.replace("seeds", "sedes")}),
    ),
    Case(
        "study-unreadable-eacces",
        ["run", "tiny.toml"],
        r"tiny\.toml: cannot read the study file: Permission denied\.",
        STUDY,
        reads_fail("tiny.toml", errno.EACCES),
    ),
    # -- encodings ---------------------------------------------------------------------------
    Case(
        "study-not-utf8",
        ["lint", "s.toml"],
        r"s\.toml: not UTF-8 text: byte 0xff at offset 8 \(invalid start byte\)\. A study file "
        r"is TOML, which is UTF-8; save it as UTF-8\.",
        files(**{"s.toml": b'name = "\xff"\n'}),
    ),
    Case(
        "study-latin1-on-run",
        ["run", "s.toml"],
        r"s\.toml: not UTF-8 text: byte 0xe9 at offset 18 \(invalid continuation byte\)\. .*",
        files(**{"s.toml": b'description = "caf\xe9"\n' + TINY_TOML.encode()}),
    ),
    Case(
        "study-utf16-on-summary",
        ["summary", "s.toml"],
        r"s\.toml: not UTF-8 text: byte 0xff at offset 0 \(invalid start byte\)\. .*",
        files(**{"s.toml": TINY_TOML.encode("utf-16")}),
    ),
    Case(
        "csv-not-utf8",
        ["lint", "s.toml"],
        rf"s\.toml: dataset: data\.csv: not UTF-8 text: byte 0xff at offset 12 \(invalid start "
        rf"byte\)\. {CSV_HINT}",
        files(**{"s.toml": CSV_STUDY, "data.csv": b"a,b,y\n1,2,0\n\xff,4,1\n5,6,0\n"}),
    ),
    Case(
        "csv-bom-then-not-utf8",  # the offset counts the byte-order mark
        ["run", "s.toml"],
        rf"s\.toml: dataset: data\.csv: not UTF-8 text: byte 0xe9 at offset 9 \(invalid "
        rf"continuation byte\)\. {CSV_HINT}",
        files(**{"s.toml": CSV_STUDY, "data.csv": b"\xef\xbb\xbfa,b,y\n\xe9,2,0\n3,4,1\n"}),
    ),
    Case(
        "csv-is-a-directory",
        ["lint", "s.toml"],
        r"s\.toml: dataset: data\.csv: not a file\.",
        files(**{"s.toml": CSV_STUDY, "data.csv": None}),
    ),
    Case(
        "csv-unreadable-eacces",
        ["lint", "s.toml"],
        r"s\.toml: dataset: data\.csv: cannot read \(Permission denied\)\.",
        files(**{"s.toml": CSV_STUDY, "data.csv": "a,b,y\n1,2,0\n3,4,1\n"}),
        reads_fail("data.csv", errno.EACCES),
    ),
    Case(
        "store-index-not-utf8",
        ["status", "broken"],
        r"broken/study\.json: damaged or unreadable \('utf-8' codec can't decode byte 0xff in "
        r"position 0: invalid start byte\)\.",
        files(**{"broken/study.json": b"\xff{}"}),
    ),
    # -- directories -------------------------------------------------------------------------
    Case(
        "run-out-is-a-file",
        ["run", "tiny.toml", "--out", "taken"],
        rf"--out taken: is a file, not a directory\. {OUT_HINT.format(dir='taken/tiny')}",
        files(**{"tiny.toml": TINY_TOML, "taken": "x"}),
    ),
    Case(
        "run-out-below-a-file",
        ["run", "tiny.toml", "--out", "taken/runs"],
        rf"--out taken/runs: taken is a file, not a directory\. "
        rf"{OUT_HINT.format(dir='taken/runs/tiny')}",
        files(**{"tiny.toml": TINY_TOML, "taken": "x"}),
    ),
    Case(
        "run-study-store-is-a-file",
        ["run", "tiny.toml", "--out", "runs"],
        rf"--out runs: runs/tiny is a file, not a directory\. {OUT_HINT.format(dir='runs/tiny')}",
        files(**{"tiny.toml": TINY_TOML, "runs/tiny": "x"}),
    ),
    Case(
        "report-on-a-file",
        ["report", "tiny.toml"],
        rf"tiny\.toml: is a file, not a directory; {RUNS_HINT}",
        STUDY,
    ),
    Case(
        "status-on-a-file",
        ["status", "tiny.toml"],
        rf"tiny\.toml: is a file, not a directory; {RUNS_HINT}",
        STUDY,
    ),
    Case("report-missing-dir", ["report", "nowhere"], rf"nowhere: no such directory; {RUNS_HINT}"),
    Case("status-missing-dir", ["status", "nowhere"], rf"nowhere: no such directory; {RUNS_HINT}"),
    Case(
        "report-dir-without-study-json",
        ["report", "empty"],
        r"empty: not a tricklab study directory \(no study\.json\)\. Run `tricklab run "
        r"STUDY\.toml` first; studies are stored under runs/<study>/\.",
        files(empty=None),
    ),
    Case(
        "status-on-the-out-dir",
        ["status", "{done}/.."],
        rf"{{done}}/\.\.: holds the stores of studies, not one: {RUNS_HINT} Found: "
        r"{done}/\.\./tiny\.",
    ),
    Case(
        "activations-out-is-a-file",
        ["activations", "--out", "taken"],
        rf"--out taken: is a file, not a directory\. {DIR_HINT}",
        files(taken="x"),
    ),
    Case(
        "lr-find-out-is-a-file",
        ["lr-find", "tiny.toml", "--out", "taken"],
        rf"--out taken: is a file, not a directory\. {DIR_HINT}",
        files(**{"tiny.toml": TINY_TOML, "taken": "x"}),
    ),
    Case(
        "export-into-a-file",
        ["export", "{run}", "taken/model.keras"],
        rf"taken/model\.keras: taken is a file, not a directory\. {DIR_HINT}",
        files(taken="x"),
    ),
    # -- command-line misuse -----------------------------------------------------------------
    Case(
        "unknown-command",
        ["frobnicate"],
        r"tricklab: error: argument COMMAND: invalid choice: 'frobnicate' \(choose from .*\)\. "
        r"See 'tricklab --help'\.",
        usage=True,
    ),
    Case(
        "unknown-engine",
        ["run", "tiny.toml", "--engine", "turbo"],
        r"tricklab run: error: argument --engine: invalid choice: 'turbo' .*\. "
        r"See 'tricklab run --help'\.",
        usage=True,
    ),
    Case(
        "checkpoint-every-not-a-number",
        ["run", "tiny.toml", "--checkpoint-every", "often"],
        r"tricklab run: error: argument --checkpoint-every: invalid float value: 'often'\. "
        r"See 'tricklab run --help'\.",
        usage=True,
    ),
    Case(
        "seeds-not-an-int",
        ["run", "tiny.toml", "--seeds", "1.5"],
        r"tricklab run: error: argument --seeds: invalid int value: '1\.5'\. "
        r"See 'tricklab run --help'\.",
        usage=True,
    ),
    Case(
        "unknown-option-after-a-command",
        ["status", "runs/tiny", "--bogus", "x"],
        r"tricklab status: error: unrecognized arguments: --bogus x\. "
        r"See 'tricklab status --help'\.",
        usage=True,
    ),
    Case(
        "lr-find-steps-not-an-int",
        ["lr-find", "tiny.toml", "--steps", "many"],
        r"tricklab lr-find: error: argument --steps: invalid int value: 'many'\. "
        r"See 'tricklab lr-find --help'\.",
        usage=True,
    ),
    Case(
        "predict-without-its-csv",
        ["predict", "{run}"],
        r"tricklab predict: error: the following arguments are required: .*\. "
        r"See 'tricklab predict --help'\.",
        usage=True,
    ),
    Case(
        "unknown-variant",
        ["run", "tiny.toml", "--variant", "nope"],
        r"--variant: no variant named 'nope'\. Expected one of: baseline\.",
        STUDY,
    ),
    Case(
        "seeds-zero",
        ["run", "tiny.toml", "--seeds", "0"],
        r"--seeds must be an int >= 1\. Received: 0\.",
        STUDY,
    ),
    Case(
        "seeds-over-the-limit",
        ["run", "tiny.toml", "--seeds", "1001"],
        r"tiny\.toml: --seeds: 1001 exceeds the limit 1000 \(raise it with \[limits\] max_seeds\)",
        STUDY,
    ),
    Case(
        "epochs-zero",
        ["run", "tiny.toml", "--epochs", "0"],
        r"--epochs must be an int in \[1, 100,000\]\. Received: --epochs=0\.",
        STUDY,
    ),
    Case(
        "epochs-absurd",
        ["run", "tiny.toml", "--epochs", "1000000000000"],
        r"--epochs must be an int in \[1, 100,000\]\. Received: --epochs=1000000000000\.",
        STUDY,
    ),
    Case(
        "checkpoint-every-negative",
        ["run", "tiny.toml", "--checkpoint-every", "-1"],
        r"--checkpoint-every must be a number of seconds >= 0 \(0: after every epoch\)\. "
        r"Received: checkpoint_every=-1\.0\.",
        STUDY,
    ),
    Case(
        "renew-not-below-lease",
        ["run", "tiny.toml", "--renew", "60", "--lease", "30"],
        r"--renew must be > 0 and less than --lease, or claims expire while their worker lives\. "
        r"Received: renew=60, lease=30\.",
        STUDY,
    ),
    Case(
        "checkpoint-every-nan",
        ["run", "tiny.toml", "--checkpoint-every", "nan"],
        r"--checkpoint-every must be a number of seconds >= 0 \(0: after every epoch\)\. "
        r"Received: checkpoint_every=nan\.",
        STUDY,
    ),
    Case(
        "export-of-a-study-dir",
        ["export", "{done}"],
        r"{done}: not a run directory\. Runs are stored as runs/<study>/<variant>/seed-<n>/\.",
    ),
    Case(
        "export-of-an-unstored-seed",
        ["export", "{done}/baseline/seed-7"],
        r"{done}/baseline/seed-7: not a finished run: expected result\.json and "
        r"best\.weights\.h5\. Runs are stored as runs/<study>/<variant>/seed-<n>/\.",
    ),
    Case(
        "export-not-keras",
        ["export", "{run}", "model.h5"],
        r"model\.h5: the model file name must end in \.keras\.",
    ),
    Case("predict-missing-csv", ["predict", "{run}", "rows.csv"], r"rows\.csv: no such file\."),
    Case(
        "predict-csv-is-a-directory",
        ["predict", "{run}", "rows.csv"],
        r"rows\.csv: is a directory; expected a CSV file\.",
        files(**{"rows.csv": None}),
    ),
    Case(
        "predict-csv-not-utf8",
        ["predict", "{run}", "rows.csv"],
        rf"rows\.csv: not UTF-8 text: byte 0xb0 at offset {len(THORACIC_HEADER) + 4} \(invalid "
        rf"start byte\)\. {CSV_HINT}",
        files(**{"rows.csv": THORACIC_HEADER.encode() + b"\n1,2\xb0,3\n"}),
    ),
    Case(
        "predict-csv-empty",
        ["predict", "{run}", "rows.csv"],
        r"rows\.csv: not a readable CSV \(No columns to parse from file\)\.",
        files(**{"rows.csv": ""}),
    ),
    # -- OS errors while writing (injected) --------------------------------------------------
    Case(
        "disk-full-writing-the-index",
        ["run", "tiny.toml", "--out", "runs"],
        r"runs/tiny/study\.json: No space left on device \(ENOSPC\)\. "
        + KEPT.format(advice="free disk space"),
        STUDY,
        store_writes_fail(errno.ENOSPC),
    ),
    Case(
        "permission-denied-writing-the-index",
        ["run", "tiny.toml", "--out", "runs"],
        r"runs/tiny/study\.json: Permission denied \(EACCES\)\. "
        + KEPT.format(advice="fix the permissions or choose another folder"),
        STUDY,
        store_writes_fail(errno.EACCES),
    ),
    Case(
        "disk-full-committing-a-run",  # trains one epoch, then cannot write result.json
        ["run", "tiny.toml", "--out", "runs", "--quiet"],
        r"runs/tiny/baseline/seed-0/result\.json: No space left on device \(ENOSPC\)\. "
        + KEPT.format(advice="free disk space"),
        STUDY,
        store_writes_fail(errno.ENOSPC, "result.json"),
        after=commit_undone,
    ),
    Case(
        "read-only-writing-a-report",
        ["report", "{done}"],
        r"{done}/report\.md: Read-only file system \(EROFS\)\. Choose a folder on a writable "
        r"file system and rerun the command\.",
        None,
        report_writes_fail("report.md", errno.EROFS),
    ),
    Case(
        "os-error-without-a-file",
        ["datasets"],
        r"Input/output error \(EIO\)\. Fix the cause and rerun the command\.",
        None,
        datasets_raises(os_error(errno.EIO)),
    ),
    Case(
        "decode-error-anywhere",
        ["datasets"],
        r"not UTF-8 text: byte 0xfe at offset 1 \(invalid start byte\)\. tricklab reads every "
        r"file as UTF-8\.",
        None,
        datasets_raises(UnicodeDecodeError("utf-8", b"a\xfe", 1, 2, "invalid start byte")),
    ),
]


@pytest.fixture(scope="module")
def finished(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The store of a finished 1-epoch study (one run), shared by the cases that read one."""
    from tricklab import run_study
    from tricklab.spec import StudySpec

    study = copy.deepcopy(TINY)
    study["train"]["epochs"] = 1
    out = tmp_path_factory.mktemp("finished") / "runs"
    outcome = run_study(StudySpec.from_dict(study), out=out)
    assert outcome.trained == 1
    return outcome.root


@pytest.mark.parametrize("case", CASES, ids=[case.id for case in CASES])
def test_bad_input_is_one_line_and_exit_2(
    case: Case,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    request: pytest.FixtureRequest,
) -> None:
    places: dict[str, str] = {}
    if any("{done}" in a or "{run}" in a for a in case.argv):
        done: Path = request.getfixturevalue("finished")
        places = {"{done}": str(done), "{run}": str(done / "baseline" / "seed-0")}
    monkeypatch.chdir(tmp_path)
    if case.setup is not None:
        case.setup(tmp_path)
    if case.inject is not None:
        case.inject(monkeypatch)
    argv = list(case.argv)
    message = case.message
    for placeholder, value in places.items():
        argv = [a.replace(placeholder, value) for a in argv]
        message = message.replace(placeholder, re.escape(value))

    if case.usage:
        with pytest.raises(SystemExit) as exit_info:
            main(argv)
        code = exit_info.value.code
    else:
        code = main(argv)
    captured = capsys.readouterr()
    assert "Traceback" not in captured.out + captured.err
    assert code == 2, captured.err
    lines = captured.err.splitlines()
    assert len(lines) == 1, captured.err
    if case.usage:
        assert re.fullmatch(message, lines[0]), lines[0]
    else:
        assert lines[0].startswith("error: ")
        assert re.fullmatch(message, lines[0].removeprefix("error: ")), lines[0]
    if case.after is not None:
        case.after(tmp_path)


def test_the_table_is_large_and_its_ids_unique() -> None:
    from test_bad_inputs import CASES as LINT_CASES

    assert len(CASES) >= 30
    assert len(CASES) + len(LINT_CASES) >= 50
    assert len({case.id for case in CASES}) == len(CASES)
