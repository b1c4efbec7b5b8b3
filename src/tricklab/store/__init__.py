"""The run store: the on-disk format of a study's runs, their states, claims and the index.

Every reader and writer of ``runs/<study>/`` goes through this package: it hands out every path.
:mod:`._store` holds :class:`RunStore` and the layout; :mod:`._files` the formats of a run's
files (the weights: HDF5 in Keras 3's ``.weights.h5`` layout, written without Keras);
:mod:`._claims` the leases of workers; :mod:`._commits` the commits of finished runs, a
population's in one batch; :mod:`._checkpoints` the mid-run checkpoints; :mod:`._references` the
reference models' fits. Importing it imports neither Keras nor JAX.
"""

from tricklab.store._commits import Commit, Finished
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
from tricklab.store._index import IndexedRun, StudyIndex
from tricklab.store._references import REFERENCES
from tricklab.store._store import (
    INDEX,
    STORE_SCHEMA,
    RunState,
    RunStatus,
    RunStore,
)

__all__ = [
    "DIAGNOSTICS",
    "HISTORY",
    "INDEX",
    "PREDICTIONS",
    "REFERENCES",
    "RESULT",
    "SPEC",
    "STORE_SCHEMA",
    "WEIGHTS",
    "Commit",
    "Damaged",
    "Finished",
    "IndexedRun",
    "RunState",
    "RunStatus",
    "RunStore",
    "StudyIndex",
    "history_csv",
    "load_result",
    "write_bytes",
]
