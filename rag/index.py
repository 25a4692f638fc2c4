"""The on-disk index: a folder of immutable snapshots and a pointer to the current one.

    index/
      CURRENT                 name of the live snapshot (replaced atomically)
      .lock                   held by the one writer
      snapshots/<id>/         manifest.json, vectors.faiss, store.sqlite, bm25/,
                              sentences.npz
      snapshots/.tmp-<id>/    a snapshot being written; never read

A writer copies the current snapshot into a temporary folder, changes it,
fsyncs it, renames it into place and only then repoints CURRENT. A crash at any
moment leaves CURRENT naming a complete snapshot, so readers see the old index
or the new one, never a mix.
"""

from __future__ import annotations

import fcntl
import json
import os
import shutil
import threading
import time
import uuid
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np

from rag.arrays import Vectors
from rag.errors import IndexBusyError, IndexMismatchError, NoIndexError, RagError
from rag.lexical import LexicalIndex, parameters
from rag.sentence_index import SentenceIndex
from rag.store import Store
from rag.types import Chunk, Document
from rag.vector_index import VectorIndex

# Format 3 added the store's marks (where each part of a document was: page, slide, sheet
# and row, heading path). A format-2 snapshot is read as it is (every locator None); a writer
# adds the marks table to its copy, and the snapshot it commits is format 3, its older
# documents still without marks until they are re-ingested into a new --index folder.
# Format 4 keeps a file's absolute path apart from its public source (rag.store): an older
# snapshot is read with its sources cut to their relative part, and a writer moves its paths.
# Format 5 adds marks' table, caption, OCR flag and confidence (rag.store): an older
# snapshot reads them as unset, and a writer adds the columns to its copy.
FORMAT = 5
READABLE_FORMATS = (2, 3, 4, 5)
MANIFEST = "manifest.json"
VECTORS = "vectors.faiss"
STORE = "store.sqlite"
LEXICAL = "bm25"
SENTENCES = "sentences.npz"
KEEP_SNAPSHOTS = 2


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _fsync_tree(path: Path) -> None:
    for file in path.rglob("*"):
        if file.is_file():
            with open(file, "rb") as f:
                os.fsync(f.fileno())
    for folder in [path, *[p for p in path.rglob("*") if p.is_dir()]]:
        _fsync_dir(folder)


def current_snapshot(root: Path) -> Path | None:
    try:
        name = (root / "CURRENT").read_text().strip()
    except FileNotFoundError:
        return None
    path = root / "snapshots" / name
    return path if (path / MANIFEST).is_file() else None


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


class Index:
    """One loaded snapshot, read-only. Cheap to replace: load a new one and swap."""

    def __init__(self, root: Path, model: str | None = None, dimension: int | None = None,
                 search_threads: int | None = None, nprobe: int = 128):
        snapshot = current_snapshot(root)
        if snapshot is None:
            raise NoIndexError(root)
        self.root = root
        self.path = snapshot
        self.manifest: dict[str, Any] = json.loads((snapshot / MANIFEST).read_text())
        check_manifest(self.manifest, root, model, dimension)
        self.store = Store(snapshot / STORE, readonly=True)
        self.vectors = VectorIndex.load(snapshot / VECTORS)
        self.vectors.threads = search_threads
        self.vectors.nprobe = nprobe
        self.lexical = LexicalIndex.load(snapshot / LEXICAL)
        self.sentences = SentenceIndex.load(snapshot / SENTENCES)

    @property
    def snapshot(self) -> str:
        return str(self.manifest["snapshot"])

    def close(self) -> None:
        self.store.close()


class IndexHandle:
    """The live snapshot of an index folder, for a process that serves it.

    Loaded on first use, and again once another process (a `rag ingest` beside
    `rag serve`) has moved CURRENT, which is checked at most every ``poll_s``
    seconds by the pointer's inode and mtime: a stat, not a read.
    """

    def __init__(self, root: Path, model: str | None,
                 dimension: Callable[[], int | None] = lambda: None,
                 search_threads: int | None = None, nprobe: int = 128,
                 on_load: Callable[[Index], Index] | None = None, poll_s: float = 0.5,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.root = root
        self._open: Callable[[], Index] = lambda: Index(root, model, dimension(),
                                                        search_threads, nprobe)
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
            with self._lock:
                if self._index is None or self._index is index:
                    return self.reload()
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
        for attempt in range(3):
            pointer = self._pointer_id()  # before loading: a move during it is seen next time
            try:
                index = self._open()
                break
            except RagError:
                raise
            except Exception:
                # Two writes in a row collected the snapshot this load had just picked.
                if attempt == 2 or self._pointer_id() == pointer:
                    raise
        if self._on_load is not None:
            index = self._on_load(index)
        self._index, self._pointer = index, pointer
        return index


@contextmanager
def writer_lock(root: Path, wait_s: float = 0.0) -> Iterator[None]:
    """One writer at a time; a second one waits up to ``wait_s`` then fails clearly."""
    root.mkdir(parents=True, exist_ok=True)
    with open(root / ".lock", "a+") as handle:
        deadline = time.monotonic() + wait_s
        while True:
            try:
                fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() >= deadline:
                    raise IndexBusyError(
                        f"index at {root} is being written by another process: "
                        "retry when that ingest finishes") from None
                time.sleep(0.05)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


class IndexWriter:
    """Builds the next snapshot from the current one. Use as a context manager."""

    def __init__(self, root: Path, model: str, dimension: int, chunker: Mapping[str, Any],
                 wait_s: float = 0.0, ann_threshold: int = 200_000) -> None:
        self.root = root
        self.ann_threshold = ann_threshold
        self.model = model
        self.dimension = dimension
        self.chunker = dict(chunker)
        self._wait_s = wait_s
        self._lock: Any = None
        self.snapshot = ""
        self.tmp = root / "snapshots" / ".tmp-unopened"
        self.previous: str | None = None
        self.committed = False
        self._pending: list[tuple[list[int], list[int], list[int], Vectors]] = []

    def __enter__(self) -> IndexWriter:
        self._lock = writer_lock(self.root, self._wait_s)
        self._lock.__enter__()
        # Named under the lock, so snapshot names sort in the order they become current.
        self.snapshot = datetime.now(UTC).strftime("%Y%m%dT%H%M%S%fZ-") + uuid.uuid4().hex[:8]
        self.tmp = self.root / "snapshots" / f".tmp-{self.snapshot}"
        try:
            self._open()
        except BaseException:
            shutil.rmtree(self.tmp, ignore_errors=True)
            self._lock.__exit__(None, None, None)
            raise
        return self

    def _open(self) -> None:
        (self.root / "snapshots").mkdir(parents=True, exist_ok=True)
        base = current_snapshot(self.root)
        self.tmp.mkdir()
        if base is not None:
            manifest = json.loads((base / MANIFEST).read_text())
            check_manifest(manifest, self.root, self.model, self.dimension)
            self.previous = manifest["snapshot"]
            shutil.copy2(base / STORE, self.tmp / STORE)
            self.vectors = VectorIndex.load(base / VECTORS)
            self.sentences = SentenceIndex.load(base / SENTENCES)
        else:
            self.vectors = VectorIndex(self.dimension)
            self.sentences = SentenceIndex.empty(self.dimension)
        self.store = Store(self.tmp / STORE)

    def __exit__(self, exc_type: object, exc: object, tb: object) -> None:
        try:
            if hasattr(self, "store"):
                self.store.close()
            if exc_type is not None or not self.committed:
                shutil.rmtree(self.tmp, ignore_errors=True)
        finally:
            self._lock.__exit__(None, None, None)

    def add(self, doc: Document, chunks: Sequence[Chunk], vectors: Vectors,
            sentences: Sequence[tuple[int, int, int]], sentence_vectors: Vectors) -> None:
        """Add a document; ``sentences`` are (index into ``chunks``, start, end).

        Sentences are gathered and joined to the index once, when needed: joining
        per document made a 5,000-document ingest quadratic (minutes of copying).
        """
        ids = self.store.add_document(doc, chunks)
        self.vectors.index(ids, vectors)
        self._pending.append(([ids[i] for i, _, _ in sentences], [s for _, s, _ in sentences],
                              [e for _, _, e in sentences], sentence_vectors))

    def delete(self, doc_id: str) -> None:
        ids = self.store.delete_document(doc_id)
        if ids:
            self.vectors.remove(ids)
            self._join_pending()
            self.sentences = self.sentences.without(ids)

    def _join_pending(self) -> None:
        if self._pending:
            self.sentences = self.sentences.plus(
                [i for p in self._pending for i in p[0]], [s for p in self._pending for s in p[1]],
                [e for p in self._pending for e in p[2]],
                np.concatenate([p[3] for p in self._pending]).reshape(-1, self.dimension))
            self._pending = []

    def commit(self) -> str:
        """Write the snapshot completely, then make it current. Returns its id."""
        self.store.commit()
        self._join_pending()
        ids, texts = self.store.all_chunks()
        if sorted(ids) != sorted(self.vectors.ids().tolist()) \
                or not self.sentences.chunk_ids() <= set(ids):
            raise RuntimeError("store, vectors and sentences disagree; snapshot not written")
        self.sentences.save(self.tmp / SENTENCES)
        self.vectors.make_approximate(self.ann_threshold)
        LexicalIndex.build(ids, texts).save(self.tmp / LEXICAL)
        self.vectors.save(self.tmp / VECTORS)
        docs, chunks = self.store.counts()
        manifest = {"format": FORMAT, "snapshot": self.snapshot, "previous": self.previous,
                    "created": datetime.now(UTC).isoformat(), "model": self.model,
                    "dimension": self.dimension, "metric": "inner_product",
                    "vectors": self.vectors.describe(),
                    "chunker": self.chunker, "lexical": parameters(),
                    "documents": docs, "chunks": chunks,
                    "sentences": self.sentences.count()}
        (self.tmp / MANIFEST).write_text(json.dumps(manifest, indent=2))
        self.store.close()
        _fsync_tree(self.tmp)
        final = self.root / "snapshots" / self.snapshot
        os.rename(self.tmp, final)
        _fsync_dir(final.parent)
        pointer = self.root / "CURRENT.tmp"
        with open(pointer, "w") as f:
            f.write(self.snapshot + "\n")
            f.flush()
            os.fsync(f.fileno())
        os.replace(pointer, self.root / "CURRENT")
        _fsync_dir(self.root)
        self.committed = True
        self._collect_garbage()
        return self.snapshot

    def _collect_garbage(self) -> None:
        """Keep the new snapshot and the one before it (KEEP_SNAPSHOTS); drop the rest.

        That includes the leftovers of writers killed mid-way: temporary folders, and a
        complete snapshot renamed into place whose CURRENT swap never happened.
        """
        keep = {self.snapshot, self.previous}
        for path in (self.root / "snapshots").iterdir():
            if path.name not in keep:
                shutil.rmtree(path, ignore_errors=True)
