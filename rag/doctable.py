"""One segment's documents as columns, so that a filter is tested on all of them at once.

A filter (rag.filters) says what one document must be (``Filter.matches``: the reference,
which tests/test_selection.py checks this against); a search asks it of every document of
the index, thousands of times a second. ``DocTable`` reads a segment's documents once (a
segment never changes): their doc_ids, sources, every metadata key as a column (its numbers,
texts and booleans apart: a filter compares a value only with one of its kind), and their
chunk rows; ``DocTable.mask`` evaluates a filter over the columns with numpy, a few tens of
microseconds for thousands of documents. Numbers compare as 64-bit floats.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
import numpy.typing as npt

from rag.arrays import Ints
from rag.filters import And, Compare, DocIds, Filter, Not, Or, PathPrefix

if TYPE_CHECKING:
    from rag.store import Store

Bools = npt.NDArray[np.bool_]
_OPS: dict[str, Callable[[Any, Any], Any]] = {"gt": np.greater, "gte": np.greater_equal,
                                               "lt": np.less, "lte": np.less_equal}


def _bools(values: Any) -> Bools:
    out: Bools = np.asarray(values, dtype=bool)
    return out


class Column:
    """One metadata key over a segment's documents, its values apart by kind."""

    def __init__(self, values: Sequence[object]) -> None:
        self.present = np.array([v is not None for v in values], dtype=bool)
        self.is_bool = np.array([isinstance(v, bool) for v in values], dtype=bool)
        self.is_number = np.array([isinstance(v, int | float) and not isinstance(v, bool)
                                   for v in values], dtype=bool)
        self.is_text = np.array([isinstance(v, str) for v in values], dtype=bool)
        self.number = np.array([float(v) if n else np.nan  # type: ignore[arg-type]
                                for v, n in zip(values, self.is_number, strict=True)],
                               dtype=np.float64)
        self.text = np.array([v if t else "" for v, t in zip(values, self.is_text, strict=True)],
                             dtype=str)
        self.flag = np.array([bool(v) if b else False
                              for v, b in zip(values, self.is_bool, strict=True)], dtype=bool)

    def equal(self, value: object) -> Bools:
        if isinstance(value, bool):
            return _bools(self.is_bool & (self.flag == value))
        if isinstance(value, int | float):
            return _bools(self.is_number & (self.number == value))
        return _bools(self.is_text & (self.text == value))

    def within(self, op: str, bound: object) -> Bools:
        if isinstance(bound, str):
            return _bools(self.is_text & _OPS[op](self.text, bound))
        with np.errstate(invalid="ignore"):
            return _bools(self.is_number & _OPS[op](self.number, bound))


class DocTable:
    """One segment's documents: doc_ids, sources, metadata columns, chunk rows."""

    def __init__(self, store: Store) -> None:
        entries = store.metadata()
        self.doc_ids = [d for d, _ in entries]
        self.position = {d: n for n, d in enumerate(self.doc_ids)}
        self._metadata = [m for _, m in entries]
        self.sources = np.array([str(m.get("source", "")) for m in self._metadata], dtype=str)
        self._columns: dict[str, Column] = {}
        self._lock = threading.Lock()
        # Chunk rows by document, flat: rows[offsets[n]:offsets[n + 1]] are document n's.
        pairs = sorted((self.position[d], row) for row, d in store.chunk_doc_ids().items())
        self.flat_rows = np.array([row for _, row in pairs], dtype=np.int64)
        counts = np.bincount(np.array([n for n, _ in pairs], dtype=np.int64),
                             minlength=len(self.doc_ids))
        self.offsets = np.concatenate([[0], np.cumsum(counts)]).astype(np.int64)

    def __len__(self) -> int:
        return len(self.doc_ids)

    def column(self, key: str) -> Column:
        found = self._columns.get(key)
        if found is None:
            found = Column(self.doc_ids if key == "doc_id" else
                           [m.get(key) for m in self._metadata])
            with self._lock:
                self._columns[key] = found
        return found

    def mask(self, f: Filter) -> Bools:
        """Which documents ``f`` selects (``Filter.matches`` over every one, in numpy)."""
        if isinstance(f, And):
            return _bools(np.logical_and.reduce([self.mask(g) for g in f.and_]))
        if isinstance(f, Or):
            return _bools(np.logical_or.reduce([self.mask(g) for g in f.or_]))
        if isinstance(f, Not):
            return ~self.mask(f.not_)
        if isinstance(f, DocIds):
            out = np.zeros(len(self), dtype=bool)
            out[[self.position[d] for d in f.ids if d in self.position]] = True
            return out
        if isinstance(f, PathPrefix):
            return _bools(np.char.startswith(self.sources, f.path))
        return self._compare(f)

    def _compare(self, f: Compare) -> Bools:
        column = self.column(f.field)
        if f.exists is not None:
            return column.present if f.exists else ~column.present
        if f.eq is not None:
            return column.equal(f.eq)
        if f.in_ is not None:
            return _bools(np.logical_or.reduce([column.equal(v) for v in f.in_]))
        out = column.present.copy()
        for op in ("gt", "gte", "lt", "lte"):
            bound = getattr(f, op)
            if bound is not None:
                out &= column.within(op, bound)
        return out

    def rows_of(self, chosen: Ints) -> Ints:
        """The chunk rows of the documents at positions ``chosen``, ascending."""
        starts, ends = self.offsets[chosen], self.offsets[chosen + 1]
        counts = ends - starts
        if not counts.sum():
            return np.zeros(0, dtype=np.int64)
        first = np.repeat(starts - np.concatenate([[0], np.cumsum(counts)[:-1]]), counts)
        return np.sort(self.flat_rows[first + np.arange(int(counts.sum()))])

    def without(self, deleted: frozenset[str]) -> Bools:
        """Every document but the ``deleted`` ones."""
        out = np.ones(len(self), dtype=bool)
        out[[self.position[d] for d in deleted if d in self.position]] = False
        return out
