"""How the command line reports what went wrong: one line per problem, never a traceback.

Operating-system errors name the file, what happened, the errno name and what to do; paths that
must be directories are checked before any work starts.
"""

from __future__ import annotations

import errno
import os
from pathlib import Path

from rich.console import Console

from tricklab.base.errors import TricklabError


def print_error(errors: Console, message: str) -> None:
    for line in message.splitlines():
        errors.print("[bold red]error:[/bold red] ", end="", markup=True)
        errors.print(line, markup=False, soft_wrap=True)


#: What to do about an operating-system error, by errno.
OS_ADVICE = {
    errno.ENOSPC: "free disk space",
    errno.EDQUOT: "free disk space (a quota is full)",
    errno.EACCES: "fix the permissions or choose another folder",
    errno.EPERM: "fix the permissions or choose another folder",
    errno.EROFS: "choose a folder on a writable file system",
}


def os_error(exc: OSError, command: str) -> str:
    """One line for an operating-system error: the file, what happened, the errno name, advice."""
    code = errno.errorcode.get(exc.errno, "") if isinstance(exc.errno, int) else ""
    what = exc.strerror or str(exc) or type(exc).__name__
    where = exc.filename if exc.filename is not None else exc.filename2
    line = f"{os.fsdecode(where)}: " if where is not None else ""
    line += what + (f" ({code})." if code else ".")
    advice = OS_ADVICE.get(exc.errno, "fix the cause")  # type: ignore[arg-type]
    if command == "run":
        return (
            f"{line} Nothing finished was lost (every file is written whole or not at all); "
            f"{advice} and rerun the same command to continue."
        )
    return f"{line} {advice[0].upper()}{advice[1:]} and rerun the command."


def check_directory(label: str, given: Path, path: Path | None = None, advice: str = "") -> None:
    """Fail at once, in one line, when ``path`` (default ``given``; created when missing) cannot
    be a directory because it, or a folder above it, is a file."""
    path = given if path is None else path
    for part in (path, *path.parents):
        if part.is_dir():
            return
        if os.path.lexists(part):
            what = "is a file" if part.is_file() else "exists"
            subject = f"{part} " if part != given else ""
            raise TricklabError(
                f"{label}{given}: {subject}{what}, not a directory. "
                + (advice or "Give a directory (it is created if missing) or move the file away.")
            )


def check_study_dir(path: Path) -> None:
    """A study's store (``runs/<study>``) given to report or status must be a directory."""
    expected = "expected a study's store, runs/<study>/ (the directory holding study.json)."
    if not os.path.lexists(path):
        raise TricklabError(f"{path}: no such directory; {expected}")
    if not path.is_dir():
        raise TricklabError(f"{path}: is a file, not a directory; {expected}")
    if not (path / "study.json").exists():
        inside = sorted(str(p.parent) for p in path.glob("*/study.json"))
        if inside:
            raise TricklabError(
                f"{path}: holds the stores of studies, not one: {expected} "
                f"Found: {', '.join(inside)}."
            )
