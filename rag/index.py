"""The on-disk index: snapshots that list immutable segments, and a pointer to the current one.

    index/
      CURRENT                 name of the live snapshot (replaced atomically)
      .lock, .merge.lock      held by the one writer, and by the one merger
      snapshots/<id>/         manifest.json: the segments, and the documents deleted from each
      segments/<name>/        one segment (rag/segment.py), shared by every snapshot listing it

A write adds one segment and a manifest, a merge replaces several segments by one
(rag/writer.py, rag/merge.py); neither changes a file a snapshot already lists, and
CURRENT moves only once everything it will name is on disk, so readers see the old index
or the new one, never a mix. ``Index`` reads one snapshot; ``IndexHandle`` keeps the live one
for a serving process and, when CURRENT moves, opens only the segments it has not open yet.
"""

from __future__ import annotations

import json
import os
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from functools import cached_property
from pathlib import Path
from typing import Any

from rag.errors import IndexMismatchError, NoIndexError, RagError
from rag.filters import Filter
from rag.lexical import Lexical, LexicalIndex
from rag.segment import Segment
from rag.segments import Live, SegmentSentences, SegmentVectors, Stores
from rag.selection import Allowed, Selections

# Formats, oldest first. 2: the whole index in one snapshot folder. 3: the store gains its
# marks (page, slide, sheet and row, heading path). 4 was given twice, by two lines of work
# written side by side: one snapshot folder whose store gains a ``path`` column and keeps
# only relative sources (rag.store), and a manifest over segments whose stores lack that
# column; the manifest tells them apart (``Snapshot.legacy``). 5 was given twice too: a
# manifest over segments whose stores have the ``path`` column, and (in a development build)
# one snapshot folder whose marks gain a table, its caption, an OCR flag and the OCR
# confidence. 6 was given twice as well: a manifest over segments whose stores have the
# ``path`` column and those mark columns, and (in a development build) one whose stores have
# the ``path`` column and a ``meta`` column (rag.metadata) but not those mark columns. 7: all
# of it, segments whose stores have the ``path`` column, the mark columns and ``meta``. An
# index without segments (2, 3, or 4 or 5 of one folder) is read as one segment, and its next
# write turns it into a segment of format 7 (rag/writer.py). A store is read with whichever
# columns it has (rag.store: a missing ``path`` shows its absolute sources cut to their
# relative part, missing mark columns read as unset, a missing ``meta`` as no user
# metadata), and a merge that rewrites it moves its paths to their column; an older version
# must not merge a newer store away (it would drop the columns it does not know).
FORMAT = 7
READABLE_FORMATS = (2, 3, 4, 5, 6, 7)
MANIFEST = "manifest.json"
SNAPSHOTS = "snapshots"
SEGMENTS = "segments"
KEEP_SNAPSHOTS = 2


@dataclass(frozen=True)
class SegmentInfo:
    """A segment as a manifest lists it: its counts, and the documents deleted from it
    since it was written (doc_id -> its chunks and sentences)."""

    name: str
    documents: int
    chunks: int
    sentences: int
    vectors: str
    deleted: Mapping[str, tuple[int, int]] = field(default_factory=dict)

    @property
    def live_chunks(self) -> int:
        return self.chunks - sum(c for c, _ in self.deleted.values())

    @property
    def live_documents(self) -> int:
        return self.documents - len(self.deleted)

    @property
    def live_sentences(self) -> int:
        return self.sentences - sum(s for _, s in self.deleted.values())

    def without(self, deleted: Mapping[str, tuple[int, int]]) -> SegmentInfo:
        return replace(self, deleted={**self.deleted, **deleted})

    def as_json(self) -> dict[str, Any]:
        return {"name": self.name, "documents": self.documents, "chunks": self.chunks,
                "sentences": self.sentences, "vectors": self.vectors,
                "deleted": {d: list(n) for d, n in sorted(self.deleted.items())}}

    @classmethod
    def of_json(cls, data: Mapping[str, Any]) -> SegmentInfo:
        return cls(data["name"], data["documents"], data["chunks"], data["sentences"],
                   data["vectors"], {d: (int(c), int(s)) for d, (c, s) in data["deleted"].items()})


@dataclass(frozen=True)
class Snapshot:
    """The snapshot CURRENT names: its folder and manifest."""

    path: Path
    manifest: Mapping[str, Any]

    @property
    def name(self) -> str:
        return str(self.manifest["snapshot"])

    @property
    def legacy(self) -> bool:
        """Written without segments (format 2, 3, or 4 of one folder): the snapshot folder
        holds the whole index."""
        return "segments" not in self.manifest

    @property
    def segments(self) -> list[SegmentInfo]:
        return [SegmentInfo.of_json(s) for s in self.manifest.get("segments", [])]


def current_snapshot(root: Path) -> Path | None:
    try:
        name = (root / "CURRENT").read_text().strip()
    except FileNotFoundError:
        return None
    path = root / SNAPSHOTS / name
    return path if (path / MANIFEST).is_file() else None


def read_snapshot(root: Path) -> Snapshot | None:
    path = current_snapshot(root)
    if path is None:
        return None
    return Snapshot(path, json.loads((path / MANIFEST).read_text()))


def manifest(name: str, previous: str | None, settings: Mapping[str, Any],
             segments: Sequence[SegmentInfo], next_row: int, operation: str) -> dict[str, Any]:
    """A manifest of the current format; ``settings`` holds the index's model, dimension,
    chunker and BM25 parameters (they never change over an index's life)."""
    kinds = sorted({s.vectors for s in segments})
    return {"format": FORMAT, "snapshot": name, "previous": previous, "operation": operation,
            "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            **{k: settings[k] for k in ("model", "dimension", "metric", "chunker", "lexical")},
            "vectors": ", ".join(kinds) or "flat",
            "documents": sum(s.live_documents for s in segments),
            "chunks": sum(s.live_chunks for s in segments),
            "sentences": sum(s.live_sentences for s in segments),
            "next_row": next_row, "segments": [s.as_json() for s in segments]}


def check_manifest(manifest: Mapping[str, Any], root: Path, model: str | None,
                   dimension: int | None) -> None:
    if manifest.get("format") not in READABLE_FORMATS:
        raise IndexMismatchError(f"index at {root} has format {manifest.get('format')}, this "
                                 f"version reads {', '.join(map(str, READABLE_FORMATS[:-1]))} and "
                                 f"{READABLE_FORMATS[-1]}: "
                                 "re-ingest into a new --index folder")
    if model is not None and manifest["model"] != model:
        raise IndexMismatchError(
            f"index at {root} was built with model {manifest['model']!r} "
            f"(dimension {manifest['dimension']}), but the settings use {model!r}: set "
            f"RAG_MODEL_NAME/RAG_MODEL_PATH/RAG_EMBED_BACKEND back (a '+int8' model is "
            f"RAG_EMBED_BACKEND=onnx-int8), or ingest into a new --index folder")
    if dimension is not None and manifest["dimension"] != dimension:
        raise IndexMismatchError(
            f"index at {root} holds {manifest['dimension']}-dimensional vectors, the model "
            f"gives {dimension}: ingest into a new --index folder")


def live_parts(root: Path, snapshot: Snapshot,
               open_segment: Callable[[Path, bool], Segment]) -> list[Live]:
    """The snapshot's segments, each without the documents deleted from it."""
    if snapshot.legacy:
        return [Live(open_segment(snapshot.path, True))]
    return [Live(open_segment(root / SEGMENTS / s.name, False), s.deleted)
            for s in snapshot.segments]


class Index:
    """One loaded snapshot, read-only. Cheap to replace: load a new one and swap.

    ``reuse``: segments already open (by name) to share rather than open again; an
    Index given some must not be closed (other snapshots read them). ``lazy``: read each
    segment's parts when first needed, not at once (a writer looking up a few documents;
    a serving process loads everything, so that no file is opened after it may be deleted).
    """

    def __init__(self, root: Path, model: str | None = None, dimension: int | None = None,
                 search_threads: int | None = None, nprobe: int = 128,
                 reuse: Mapping[str, Segment] | None = None, lazy: bool = False) -> None:
        snapshot = read_snapshot(root)
        if snapshot is None:
            raise NoIndexError(root)
        self.root = root
        self.path = snapshot.path
        self.manifest: dict[str, Any] = dict(snapshot.manifest)
        check_manifest(self.manifest, root, model, dimension)
        shared = reuse or {}

        def opened(path: Path, legacy: bool) -> Segment:
            segment = shared.get(path.name) or Segment(path, legacy)
            return segment if lazy else segment.load()

        self._parts = live_parts(root, snapshot, opened)
        self.legacy = snapshot.legacy
        self.segments = {p.segment.name: p.segment for p in self._parts}
        dim = int(self.manifest["dimension"])
        self.store = Stores(self._parts)
        self.vectors = SegmentVectors(self._parts, dim, search_threads, nprobe)
        self.sentences = SegmentSentences(self._parts, dim)
        self._selections = Selections(self._parts)
        if not lazy:
            _ = self.lexical

    @cached_property
    def lexical(self) -> Lexical:
        if self.legacy:
            return self._parts[0].segment.bm25s
        return LexicalIndex([(p.segment.postings, p.mask) for p in self._parts])

    @property
    def snapshot(self) -> str:
        return str(self.manifest["snapshot"])

    def select(self, where: Filter) -> Allowed:
        """The chunks ``where`` lets a search read (rag.selection)."""
        return self._selections.allowed(where)

    def close(self) -> None:
        self.store.close()


class IndexHandle:
    """The live snapshot of an index folder, for a process that serves it.

    Loaded on first use, and again once another process (a `rag ingest` beside
    `rag serve`) has moved CURRENT, which is checked at most every ``poll_s``
    seconds by the pointer's inode and mtime: a stat, not a read. A reload opens only
    the segments the held snapshot lacks; while one runs, readers keep the held snapshot.
    """

    def __init__(self, root: Path, model: str | None,
                 dimension: Callable[[], int | None] = lambda: None,
                 search_threads: int | None = None, nprobe: int = 128,
                 on_load: Callable[[Index], Index] | None = None, poll_s: float = 0.5,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.root = root
        self._open: Callable[[Mapping[str, Segment]], Index] = lambda reuse: Index(
            root, model, dimension(), search_threads, nprobe, reuse)
        self._on_load = on_load
        self._poll_s = poll_s
        self._clock = clock
        self._index: Index | None = None
        self._pointer: tuple[int, int] | None = None
        self._checked = -float("inf")
        self._lock = threading.Lock()

    def current(self) -> Index:
        """The newest snapshot (one object per snapshot: hold it to read one consistently)."""
        index = self._index
        if index is None or self._moved():
            if self._lock.acquire(blocking=index is None):
                try:
                    if self._index is None or self._index is index:
                        return self._reload()
                finally:
                    self._lock.release()
            index = self._index
        assert index is not None
        return index

    def _pointer_id(self) -> tuple[int, int] | None:
        try:
            st = os.stat(self.root / "CURRENT")
        except FileNotFoundError:
            return None
        return st.st_ino, st.st_mtime_ns

    def _moved(self) -> bool:
        now = self._clock()
        if now - self._checked < self._poll_s:
            return False
        self._checked = now
        pointer = self._pointer_id()
        return pointer is not None and pointer != self._pointer

    def reload(self) -> Index:
        """Load the snapshot CURRENT names now (after this process wrote one, at once)."""
        with self._lock:
            return self._reload()

    def refresh(self) -> None:
        """After a write: reload if a snapshot is held, else leave it to the first read."""
        if self._index is not None:
            self.reload()

    def held(self) -> Index | None:
        """The snapshot held now, if one was loaded (nothing is loaded here)."""
        return self._index

    def _reload(self) -> Index:
        held = self._index
        reuse = held.segments if held is not None else {}
        for attempt in range(3):
            pointer = self._pointer_id()  # before loading: a move during it is seen next time
            try:
                index = self._open(reuse)
                break
            except RagError:
                raise
            except Exception:
                # Two writes in a row collected the snapshot this load had just picked.
                if attempt == 2 or self._pointer_id() == pointer:
                    raise
        if self._on_load is not None:
            index = self._on_load(index)
        self._index, self._pointer, self._checked = index, pointer, self._clock()
        return index
