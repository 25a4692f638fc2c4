"""One segment: an immutable folder holding some chunks and everything that searches them.

    segments/<name>/   store.sqlite (documents, chunks under their global row ids, marks),
                       vectors.faiss, sentences.npz, postings.npz

A commit writes one segment with the documents it adds (``SegmentBuilder``); a merge
writes one from several, leaving out the documents deleted from them
(``SegmentBuilder.merged``). Once renamed into ``segments/`` a segment never changes, so
every snapshot that lists it shares it, and a process that has it open keeps reading it
even after it is deleted. An index written without segments (format 2, 3, or 4 of one
folder) is read as one segment: its snapshot folder, with a bm25s model in ``bm25/`` instead
of postings.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path

import numpy as np

from rag.arrays import Ints, Vectors
from rag.doctable import DocTable
from rag.lexical import Bm25sLexical, Postings
from rag.sentence_index import SentenceIndex
from rag.store import Store
from rag.types import Chunk, Document
from rag.vector_index import VectorIndex

STORE = "store.sqlite"
VECTORS = "vectors.faiss"
SENTENCES = "sentences.npz"
POSTINGS = "postings.npz"
LEGACY_LEXICAL = "bm25"


@dataclass(frozen=True)
class Written:
    """What a finished segment holds, as its snapshot's manifest records it."""

    documents: int
    chunks: int
    sentences: int
    vectors: str  # VectorIndex.describe()
    last_row: int  # the highest row id it holds (0 for none)


def deleted_counts(folder: Path, rows: Mapping[str, Sequence[int]]) -> dict[str, tuple[int, int]]:
    """What deleting documents takes from the segment in ``folder``: doc_id -> (its chunks,
    their sentences), given each document's chunk rows (only the sentences' rows are read)."""
    chunk = SentenceIndex.chunk_column(folder / SENTENCES)  # ascending
    out = {}
    for doc_id, mine in rows.items():
        r = np.asarray(mine, dtype=np.int64)
        out[doc_id] = (len(r), int((np.searchsorted(chunk, r, "right")
                                    - np.searchsorted(chunk, r)).sum()))
    return out


class Segment:
    """A segment opened read-only. Its parts load on first use; ``load`` loads them all
    at once, so that a server never opens a file after the segment may have been deleted."""

    def __init__(self, path: Path, legacy: bool = False) -> None:
        self.path = path
        self.name = path.name
        self.legacy = legacy
        self.store = Store(path / STORE, readonly=True)

    @cached_property
    def vectors(self) -> VectorIndex:
        return VectorIndex.load(self.path / VECTORS)

    @cached_property
    def sentences(self) -> SentenceIndex:
        return SentenceIndex.load(self.path / SENTENCES)

    @cached_property
    def bm25s(self) -> Bm25sLexical:
        """The bm25s model of a legacy segment."""
        return Bm25sLexical.load(self.path / LEGACY_LEXICAL)

    @cached_property
    def postings(self) -> Postings:
        """Its postings; a legacy segment's are made from its texts (when it is merged)."""
        if self.legacy:
            return Postings.build(*self.store.all_chunks())
        return Postings.load(self.path / POSTINGS)

    @cached_property
    def rows(self) -> Ints:
        """Its chunks' row ids, ascending."""
        return self.bm25s.ids if self.legacy else self.postings.rows

    @cached_property
    def doc_ids(self) -> frozenset[str]:
        return frozenset(self.store.doc_ids())

    @cached_property
    def table(self) -> DocTable:
        """Its documents' metadata and chunk rows, for filters (read on first use)."""
        return DocTable(self.store)

    def holds(self, doc_id: str) -> bool:
        """Whether it holds the document (deleted or not): from the set of its documents
        once loaded, else one index lookup (a writer need not read every doc_id)."""
        if "doc_ids" in self.__dict__:
            return doc_id in self.doc_ids
        return self.store.has_document(doc_id)

    def held(self, rows: Ints) -> Ints:
        """Which of ``rows`` it holds: from its row ids once loaded, else from its store."""
        if "rows" not in self.__dict__:
            return np.asarray(sorted(self.store.chunks_by_ids(rows.tolist())), dtype=np.int64)
        at = np.minimum(np.searchsorted(self.rows, rows), max(len(self.rows) - 1, 0))
        return rows[self.rows[at] == rows] if len(self.rows) else rows[:0]

    def load(self) -> Segment:
        _ = self.vectors, self.sentences, self.rows, self.doc_ids
        if not self.legacy:
            _ = self.postings
        return self

    def close(self) -> None:
        self.store.close()


class SegmentBuilder:
    """A segment being written into a temporary folder; ``finish`` completes it."""

    def __init__(self, folder: Path, dimension: int, first_row: int = 1) -> None:
        folder.mkdir()  # never its parents: a deleted collection is not made again
        self.folder = folder
        self.dimension = dimension
        self.store = Store(folder / STORE)
        self.store.start_rows_at(first_row)
        self.vectors = VectorIndex(dimension)
        self.sentences = SentenceIndex.empty(dimension)
        self.postings: Postings | None = None
        self.docs: set[str] = set()
        self._pending: list[tuple[list[int], list[int], list[int], Vectors]] = []

    def add(self, doc: Document, chunks: Sequence[Chunk], vectors: Vectors,
            sentences: Sequence[tuple[int, int, int]], sentence_vectors: Vectors) -> None:
        """Add a document; ``sentences`` are (index into ``chunks``, start, end).

        Sentences are gathered and joined once, when needed: joining per document made
        a 5,000-document ingest quadratic (minutes of copying).
        """
        ids = self.store.add_document(doc, chunks)
        self.vectors.index(ids, vectors)
        self._pending.append(([ids[i] for i, _, _ in sentences], [s for _, s, _ in sentences],
                              [e for _, _, e in sentences], sentence_vectors))
        self.docs.add(doc.doc_id)

    def remove(self, doc_id: str) -> None:
        """Take back a document added to this segment."""
        ids = self.store.delete_document(doc_id)
        self.docs.discard(doc_id)
        if ids:
            self.vectors.remove(ids)
            self._join_pending()
            self.sentences = self.sentences.without(ids)

    def _join_pending(self) -> None:
        if self._pending:
            p = self._pending
            self.sentences = self.sentences.plus(
                [i for x in p for i in x[0]], [s for x in p for s in x[1]],
                [e for x in p for e in x[2]],
                np.concatenate([x[3] for x in p]).reshape(-1, self.dimension))
            self._pending = []

    @classmethod
    def merged(cls, folder: Path, dimension: int,
               sources: Sequence[tuple[Segment, frozenset[str]]]) -> SegmentBuilder:
        """A segment holding the sources' documents except the deleted ones given with each."""
        out = cls(folder, dimension)
        parts, chunk, start, end, vectors = [], [], [], [], []
        for segment, deleted in sources:
            out.store.copy_from(segment.path / STORE, deleted)
            keep = ~np.isin(segment.rows, segment.store.rows_of(deleted))
            live = segment.rows[keep]
            out.vectors.index(live.tolist(), segment.vectors.vectors(live.tolist()))
            s = segment.sentences
            mine = np.isin(s.chunk, live)
            chunk.append(s.chunk[mine])
            start.append(s.start[mine])
            end.append(s.end[mine])
            vectors.append(s.vectors[mine])
            parts.append((segment.postings, keep))
            out.docs |= segment.doc_ids - deleted
        if sources:
            out.sentences = SentenceIndex(np.concatenate(chunk), np.concatenate(start),
                                          np.concatenate(end), np.concatenate(vectors))
        out.postings = Postings.merge(parts)
        return out

    def finish(self, ann_threshold: int) -> Written:
        """Write every part and close the store; the folder is then complete."""
        self.store.commit()
        self._join_pending()
        ids, texts = self.store.all_chunks()
        postings = self.postings or Postings.build(ids, texts)
        if sorted(ids) != sorted(self.vectors.ids().tolist()) \
                or ids != postings.rows.tolist() or not self.sentences.chunk_ids() <= set(ids):
            raise RuntimeError("store, vectors, postings and sentences disagree; segment not "
                               "written")
        self.sentences.save(self.folder / SENTENCES)
        postings.save(self.folder / POSTINGS)
        self.vectors.make_approximate(ann_threshold)
        self.vectors.save(self.folder / VECTORS)
        documents, chunks = self.store.counts()
        self.store.close()
        return Written(documents, chunks, self.sentences.count(), self.vectors.describe(),
                       max(ids, default=0))

    def abandon(self) -> None:
        self.store.close()
