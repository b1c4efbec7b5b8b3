"""The reference models' files: ``references/seed-<n>.json``, one per run seed.

Part of :mod:`tricklab.store` (:class:`~tricklab.store.RunStore` inherits :class:`References`):
the store hands out their paths and writes them as it writes every file (a temporary name,
fsynced, renamed), so a reader sees the old file or the new one. They are not runs: no index
entry, no claim, no status; ``run`` fits them (:mod:`tricklab.engines.references`) and ``report``
reads them.
"""

from __future__ import annotations

import contextlib
import json
from pathlib import Path

from tricklab.base.errors import StoreError
from tricklab.engines.references import REFERENCE_SCHEMA, ReferenceSet
from tricklab.store._files import read_json, write_bytes

REFERENCES = "references"


class References:
    """The reference fits of a study stored under ``root`` (``runs/<study>``)."""

    root: Path

    @property
    def references_dir(self) -> Path:
        """Where the reference fits are (``references/``)."""
        return self.root / REFERENCES

    def reference_path(self, seed: int) -> Path:
        """The reference fits of run ``seed`` (``references/seed-<seed>.json``)."""
        if isinstance(seed, bool) or not isinstance(seed, int) or seed < 0:
            raise StoreError(f"{self.references_dir}: seed {seed!r} is not an int >= 0.")
        return self.references_dir / f"seed-{seed}.json"

    def write_references(self, references: ReferenceSet) -> Path:
        """Store the reference fits of one run seed, replacing older ones; their path."""
        path = self.reference_path(references.seed)
        text = json.dumps(references.to_json(), indent=1) + "\n"
        write_bytes(path, text.encode("utf-8"))
        return path

    def read_references(self, seed: int, key: str | None = None) -> ReferenceSet | None:
        """The stored reference fits of run ``seed``; None when absent, unreadable, of another
        schema or (given a ``key``) fit on other data or rows."""
        path = self.reference_path(seed)
        if not path.is_file():
            return None
        try:
            stored = ReferenceSet.from_json(read_json(path))
        except (StoreError, KeyError, TypeError, ValueError, AttributeError):
            return None
        if stored.schema != REFERENCE_SCHEMA or stored.seed != seed:
            return None
        if key is not None and stored.key != key:
            return None
        return stored

    def stored_references(self) -> list[ReferenceSet]:
        """Every readable reference set, by seed."""
        found = []
        for path in self.references_dir.glob("seed-*.json"):
            number = path.name.removeprefix("seed-").removesuffix(".json")
            if number.isascii() and number.isdigit():
                with contextlib.suppress(StoreError):
                    stored = self.read_references(int(number))
                    if stored is not None:
                        found.append(stored)
        return sorted(found, key=lambda s: s.seed)
