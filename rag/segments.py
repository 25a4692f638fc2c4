"""A snapshot's segments read as one index: the store, vector and sentence surfaces.

Each segment is seen through ``Live``: itself without the documents the snapshot deleted
from it (tombstones by doc_id, as Lucene's live docs). A document is live in at most one
segment; a chunk's row id is in exactly one. Lookups by document go to the segment that
holds it live, lookups by row to the segment holding the row, and whole-index answers
(searches, listings, counts) are merged over every segment, so that callers see the
surfaces of rag.store.Store, rag.vector_index.VectorIndex and rag.sentence_index.SentenceIndex.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from functools import cached_property
from typing import Any

import numpy as np

from rag.arrays import Ints, Vectors
from rag.segment import Segment
from rag.selection import Allowed, exact_top
from rag.store import Store
from rag.types import Chunk, Document, Locator
from rag.vector_index import VectorIndex, excluding


class Live:
    """One segment as one snapshot sees it."""

    def __init__(self, segment: Segment, deleted: Iterable[str] = ()) -> None:
        self.segment = segment
        self.deleted = frozenset(deleted)
        self.dead_rows = np.sort(np.asarray(segment.store.rows_of(self.deleted), np.int64))

    @cached_property
    def mask(self) -> np.ndarray[Any, np.dtype[np.bool_]] | None:
        """Which of the segment's rows are live; None when all are."""
        return ~np.isin(self.segment.rows, self.dead_rows) if len(self.dead_rows) else None

    @cached_property
    def rows(self) -> Ints:
        return self.segment.rows if self.mask is None else self.segment.rows[self.mask]

    @cached_property
    def live_chunks(self) -> int:
        return self.segment.store.counts()[1] - len(self.dead_rows)

    def holds(self, doc_id: str) -> bool:
        return doc_id not in self.deleted and self.segment.holds(doc_id)


def route(parts: Sequence[Live], ids: Iterable[int]) -> list[tuple[Live, list[int]]]:
    """The given rows grouped by the segment holding each (rows held by none are left out)."""
    wanted = np.fromiter(ids, dtype=np.int64)
    out = []
    for part in parts:
        mine = part.segment.held(wanted) if len(wanted) else wanted
        if len(mine):
            out.append((part, mine.tolist()))
    return out


class Stores:
    """The reads of rag.store.Store over the live documents of every segment."""

    def __init__(self, parts: Sequence[Live]) -> None:
        self.parts = list(parts)

    def holder(self, doc_id: str) -> Live | None:
        for part in reversed(self.parts):
            if part.holds(doc_id):
                return part
        return None

    def _by_holder(self, doc_ids: Iterable[str]) -> list[tuple[Store, list[str]]]:
        groups: dict[int, tuple[Store, list[str]]] = {}
        for doc_id in dict.fromkeys(doc_ids):
            part = self.holder(doc_id)
            if part is not None:
                groups.setdefault(id(part), (part.segment.store, []))[1].append(doc_id)
        return list(groups.values())

    def document(self, doc_id: str, with_marks: bool = False) -> Document | None:
        part = self.holder(doc_id)
        return part.segment.store.document(doc_id, with_marks) if part else None

    def locators(self, spans: Iterable[tuple[str, int]]) -> dict[tuple[str, int], Locator]:
        spans = list(spans)
        found: dict[tuple[str, int], Locator] = {}
        for store, docs in self._by_holder(d for d, _ in spans):
            mine = set(docs)
            found.update(store.locators(s for s in spans if s[0] in mine))
        return found

    def span_locators(self, spans: Iterable[tuple[str, int, int]]
                      ) -> dict[tuple[str, int], Locator]:
        spans = list(spans)
        found: dict[tuple[str, int], Locator] = {}
        for store, docs in self._by_holder(d for d, _, _ in spans):
            mine = set(docs)
            found.update(store.span_locators(s for s in spans if s[0] in mine))
        return found

    def locator(self, doc_id: str, start: int) -> Locator | None:
        return self.locators([(doc_id, start)]).get((doc_id, start))

    def low_confidence(self, doc_id: str, floor: float) -> list[tuple[int, int]]:
        part = self.holder(doc_id)
        return part.segment.store.low_confidence(doc_id, floor) if part else []

    def documents(self, with_paths: bool = False) -> list[dict[str, Any]]:
        return sorted((d for p in self.parts for d in p.segment.store.documents(with_paths)
                       if d["doc_id"] not in p.deleted), key=lambda d: str(d["doc_id"]))

    def sha256(self, doc_id: str) -> str | None:
        part = self.holder(doc_id)
        return part.segment.store.sha256(doc_id) if part else None

    def fingerprint(self, doc_id: str) -> str | None:
        part = self.holder(doc_id)
        return part.segment.store.fingerprint(doc_id) if part else None

    def metadata(self) -> list[tuple[str, dict[str, Any]]]:
        """(doc_id, metadata) of every live document (rag.store.Store.metadata)."""
        return [(d, m) for p in self.parts for d, m in p.segment.store.metadata()
                if d not in p.deleted]

    def by_path(self, path: str) -> tuple[str, str] | None:
        """(doc_id, sha256) of the live document read from the file at ``path``."""
        for part in reversed(self.parts):
            for doc_id, sha256 in part.segment.store.by_path(path):
                if doc_id not in part.deleted:
                    return doc_id, sha256
        return None

    def sources(self) -> dict[str, tuple[str, str]]:
        """Every live document by its file's path (rag.store.Store.sources)."""
        return {path: (doc_id, sha) for p in self.parts
                for path, (doc_id, sha) in p.segment.store.sources().items()
                if doc_id not in p.deleted}

    def chunks_by_ids(self, ids: Iterable[int]) -> dict[int, Chunk]:
        found: dict[int, Chunk] = {}
        for part, rows in route(self.parts, ids):
            found.update(part.segment.store.chunks_by_ids(rows))
        return found

    def chunk_rows(self, doc_id: str) -> list[tuple[int, str]]:
        part = self.holder(doc_id)
        return part.segment.store.chunk_rows(doc_id) if part else []

    def chunks_near(self, doc_id: str, ordinals: Iterable[int],
                    radius: int) -> dict[int, Chunk]:
        part = self.holder(doc_id)
        return part.segment.store.chunks_near(doc_id, ordinals, radius) if part else {}

    def titles(self, doc_ids: Iterable[str]) -> dict[str, tuple[str, str]]:
        found: dict[str, tuple[str, str]] = {}
        for store, docs in self._by_holder(doc_ids):
            found.update(store.titles(docs))
        return found

    def all_chunks(self) -> tuple[list[int], list[str]]:
        """Every live chunk's row id and text, in row-id order."""
        pairs = sorted((i, t) for p in self.parts for i, t in zip(*p.segment.store.all_chunks(),
                                                                   strict=True)
                       if not _dead(p, i))
        return [i for i, _ in pairs], [t for _, t in pairs]

    def chunk_doc_ids(self) -> dict[int, str]:
        return {row: doc for p in self.parts for row, doc in p.segment.store.chunk_doc_ids().items()
                if doc not in p.deleted}

    def counts(self) -> tuple[int, int]:
        counts = [p.segment.store.counts() for p in self.parts]
        return (sum(d - len(p.deleted) for p, (d, _) in zip(self.parts, counts, strict=True)),
                sum(c - len(p.dead_rows) for p, (_, c) in zip(self.parts, counts, strict=True)))

    def close(self) -> None:
        for p in self.parts:
            p.segment.close()


def _dead(part: Live, row: int) -> bool:
    at = int(np.searchsorted(part.dead_rows, row))
    return at < len(part.dead_rows) and int(part.dead_rows[at]) == row


class SegmentVectors:
    """VectorIndex's read surface over every segment: each is searched without its deleted
    chunks (a FAISS IDSelector), and the best k of all are kept, ties by row id."""

    def __init__(self, parts: Sequence[Live], dimension: int, threads: int | None = None,
                 nprobe: int = 128) -> None:
        self.parts = list(parts)
        self.dimension = dimension
        self.threads, self.nprobe = threads, nprobe
        self._exclude = [excluding(p.dead_rows) for p in self.parts]

    def _of(self, part: Live) -> VectorIndex:
        vectors = part.segment.vectors
        vectors.threads, vectors.nprobe = self.threads, self.nprobe
        return vectors

    def count(self) -> int:
        return sum(p.live_chunks for p in self.parts)

    def search(self, queries: Vectors, k: int,
               allowed: Allowed | None = None) -> tuple[Vectors, Ints]:
        """Top-k (scores, ids) per query row; missing slots have id -1. With ``allowed``,
        only its rows are searched (a filter: rag.selection), k of them when it has k."""
        if allowed is None:
            found = [self._of(p).search(queries, k, exclude) for p, exclude
                     in zip(self.parts, self._exclude, strict=True) if p.live_chunks]
        else:
            found = [self._allowed(n, queries, k, allowed) for n in range(len(self.parts))
                     if len(allowed.per_part[n])]
        n = len(queries)
        if not found:
            return np.zeros((n, 0), dtype=np.float32), np.zeros((n, 0), dtype=np.int64)
        scores = np.concatenate([s for s, _ in found], axis=1)
        ids = np.concatenate([i for _, i in found], axis=1)
        k = min(k, ids.shape[1])
        out_s = np.full((n, k), -np.inf, dtype=np.float32)
        out_i = np.full((n, k), -1, dtype=np.int64)
        for q in range(n):
            valid = ids[q] >= 0
            order = np.lexsort((ids[q][valid], -scores[q][valid]))[:k]
            out_s[q, :len(order)] = scores[q][valid][order]
            out_i[q, :len(order)] = ids[q][valid][order]
        return out_s, out_i

    def _allowed(self, n: int, queries: Vectors, k: int,
                 allowed: Allowed) -> tuple[Vectors, Ints]:
        """One segment searched over its allowed rows. An inverted file (approximate) may
        miss them in the lists it does not probe: then they are scored exactly."""
        vectors, rows = self._of(self.parts[n]), allowed.per_part[n]
        scores, ids = vectors.search(queries, k, allowed.selector(n))
        if vectors.approximate and int((ids >= 0).sum(axis=1).min()) < min(k, len(rows)):
            return exact_top(queries, rows, vectors.vectors(rows.tolist()), k)
        return scores, ids

    def vectors(self, ids: Sequence[int]) -> Vectors:
        """The stored vectors of these ids (to rescore candidates found elsewhere)."""
        ids = list(ids)
        out = np.zeros((len(ids), self.dimension), dtype=np.float32)
        where = {row: n for n, row in enumerate(ids)}
        for part, rows in route(self.parts, ids):
            out[[where[r] for r in rows]] = part.segment.vectors.vectors(rows)
        return out

    def ids(self) -> Ints:
        return np.sort(np.concatenate([p.rows for p in self.parts] or [np.zeros(0, np.int64)]))

    @property
    def approximate(self) -> bool:
        return any(p.segment.vectors.approximate for p in self.parts)

    def describe(self) -> str:
        kinds = [p.segment.vectors.describe() for p in self.parts]
        if len(kinds) == 1:
            return kinds[0]
        return f"{len(kinds)} segments: " + ", ".join(sorted(set(kinds)))


class SegmentSentences:
    """SentenceIndex's read surface over every segment."""

    def __init__(self, parts: Sequence[Live], dimension: int) -> None:
        self.parts = list(parts)
        self.dimension = dimension

    @cached_property
    def _count(self) -> int:
        return sum(p.segment.sentences.count() - (int(np.isin(
            p.segment.sentences.chunk, p.dead_rows).sum()) if len(p.dead_rows) else 0)
            for p in self.parts)

    def count(self) -> int:
        return self._count

    def chunk_ids(self) -> set[int]:
        return set(np.unique(self.chunk).tolist())

    def of_chunk(self, row: int) -> tuple[Ints, Ints, Vectors]:
        """(starts, ends, vectors) of the sentences in one chunk, in text order."""
        for part, _ in route(self.parts, [row]):
            return part.segment.sentences.of_chunk(row)
        none = np.zeros(0, dtype=np.int64)
        return none, none, np.zeros((0, self.dimension), dtype=np.float32)

    def best(self, rows: Iterable[int], query: Vectors) -> dict[int, float]:
        """Each chunk's highest sentence cosine with the query (-1 for a chunk without any)."""
        rows = list(rows)
        out = dict.fromkeys(rows, -1.0)
        for part, mine in route(self.parts, rows):
            out.update(part.segment.sentences.best(mine, query))
        return out

    def _live(self, name: str) -> np.ndarray[Any, Any]:
        arrays = []
        for p in self.parts:
            s = p.segment.sentences
            keep = ~np.isin(s.chunk, p.dead_rows) if len(p.dead_rows) else slice(None)
            arrays.append(getattr(s, name)[keep])
        if arrays:
            return np.concatenate(arrays)
        return np.zeros((0, self.dimension) if name == "vectors" else 0,
                        dtype=np.float32 if name == "vectors" else np.int64)

    @cached_property
    def chunk(self) -> Ints:
        return self._live("chunk")

    @cached_property
    def start(self) -> Ints:
        return self._live("start")

    @cached_property
    def end(self) -> Ints:
        return self._live("end")

    @cached_property
    def vectors(self) -> Vectors:
        return self._live("vectors")
