"""Which chunks a filter lets one snapshot's searches read.

A filter (rag.filters) is about documents; retrieval works on chunk rows. Each segment
keeps a table of its documents' metadata and chunk rows (rag.doctable, read once: a segment
never changes); a filter is tested against the live documents of every segment, and the rows
of those that match are the ``Allowed`` set that dense search (a FAISS IDSelector per
segment), BM25 and hybrid search are restricted to, before ranking. So k results come back
whenever k chunks match, and a filter that matches nothing selects nothing. The selections
made in one snapshot are kept (``Selections``), the same filter being often asked again.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import faiss
import numpy as np

from rag.arrays import Ints, Vectors
from rag.filters import Filter, key

if TYPE_CHECKING:
    from rag.segments import Live

CACHED = 64  # selections kept per snapshot: the same filter is often asked again


@dataclass
class Allowed:
    """The chunk rows a filter selects in one snapshot: all of them (ascending) and each
    segment's, with the FAISS selector over a segment's made when first asked for."""

    rows: Ints
    documents: int
    per_part: list[Ints]
    _selectors: dict[int, tuple[Any, Any]] = field(default_factory=dict)

    def selector(self, part: int) -> tuple[Any, Any]:
        """(IDSelector, the array it points into) for one segment's rows."""
        if part not in self._selectors:
            batch = np.ascontiguousarray(self.per_part[part], dtype=np.int64)
            self._selectors[part] = (faiss.IDSelectorBatch(batch), batch)
        return self._selectors[part]

    def holds(self, rows: Ints) -> np.ndarray[Any, np.dtype[np.bool_]]:
        """Which of ``rows`` are allowed."""
        if not len(self.rows):
            return np.zeros(len(rows), dtype=bool)
        at = np.minimum(np.searchsorted(self.rows, rows), len(self.rows) - 1)
        found: np.ndarray[Any, np.dtype[np.bool_]] = self.rows[at] == rows
        return found


def exact_top(queries: Vectors, rows: Ints, vectors: Vectors, k: int) -> tuple[Vectors, Ints]:
    """Top-k (scores, ids) of ``rows`` (whose ``vectors`` these are) for each query, scored
    exactly: where an index cannot restrict its own search to them."""
    scores = queries @ vectors.T
    top = np.argsort(-scores, axis=1, kind="stable")[:, :k]
    return np.take_along_axis(scores, top, axis=1).astype(np.float32), rows[top]


def select(parts: Sequence[Live], f: Filter) -> Allowed:
    per_part, documents = [], 0
    for part in parts:
        table = part.segment.table
        chosen = np.flatnonzero(table.mask(f) & table.without(part.deleted))
        documents += len(chosen)
        per_part.append(table.rows_of(chosen))
    every = np.sort(np.concatenate(per_part)) if per_part else np.zeros(0, np.int64)
    return Allowed(every, documents, per_part)


class Selections:
    """The selections made in one snapshot, the last ``CACHED`` kept by filter."""

    def __init__(self, parts: Sequence[Live]) -> None:
        self.parts = list(parts)
        self._cache: OrderedDict[str, Allowed] = OrderedDict()
        self._lock = threading.Lock()

    def allowed(self, f: Filter) -> Allowed:
        name = key(f)
        with self._lock:
            found = self._cache.get(name)
            if found is not None:
                self._cache.move_to_end(name)
                return found
        found = select(self.parts, f)
        with self._lock:
            self._cache[name] = found
            while len(self._cache) > CACHED:
                self._cache.popitem(last=False)
        return found
