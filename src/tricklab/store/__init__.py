"""The run store: the on-disk format of a study's runs, their states, claims and the index.

Every reader and writer of ``runs/<study>/`` goes through this package: it hands out every path.
:mod:`._store` holds :class:`RunStore` and the layout; :mod:`._files` the formats of a run's
files; :mod:`._claims` the leases of workers; :mod:`._checkpoints` the mid-run checkpoints.
"""

from tricklab.store._files import (
    DIAGNOSTICS,
    HISTORY,
    PREDICTIONS,
    RESULT,
    SPEC,
    WEIGHTS,
    Damaged,
    history_csv,
    load_result,
    write_bytes,
)
from tricklab.store._store import (
    INDEX,
    STORE_SCHEMA,
    Commit,
    RunState,
    RunStatus,
    RunStore,
)

__all__ = [
    "DIAGNOSTICS",
    "HISTORY",
    "INDEX",
    "PREDICTIONS",
    "RESULT",
    "SPEC",
    "STORE_SCHEMA",
    "WEIGHTS",
    "Commit",
    "Damaged",
    "RunState",
    "RunStatus",
    "RunStore",
    "history_csv",
    "load_result",
    "write_bytes",
]
