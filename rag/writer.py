"""Writing the next snapshot: one new segment and the deletions, then CURRENT moves.

A writer holds the index's lock, puts the documents it adds into a new segment
(segments/.tmp-<name>/, renamed into place once complete and fsynced) and records the
documents it deletes or replaces as deleted from the segments holding them. Its commit
writes a manifest listing every segment (snapshots/.tmp-<id>/, renamed likewise) and only
then repoints CURRENT, so a crash at any moment leaves CURRENT naming a complete
snapshot. The cost of a commit follows what it changes, not the size of the index.

The first write into an index without segments (format 2, 3, or 4 of one folder) turns its
snapshot folder into a segment (the one write that costs the whole index; absolute sources
move to the store's ``path`` column), and the snapshot it commits is of the current format.
"""

from __future__ import annotations

import fcntl
import json
import os
import shutil
import time
import uuid
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager, nullcontext
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from rag.arrays import Vectors
from rag.errors import IndexBusyError, NoIndexError
from rag.index import (
    KEEP_SNAPSHOTS,
    MANIFEST,
    SEGMENTS,
    SNAPSHOTS,
    SegmentInfo,
    Snapshot,
    check_manifest,
    live_parts,
    manifest,
    read_snapshot,
)
from rag.lexical import parameters
from rag.segment import Segment, SegmentBuilder, Written, deleted_counts
from rag.segments import Live, Stores
from rag.types import Chunk, Document


def new_name() -> str:
    """A sortable unique name for a snapshot or segment (time first)."""
    return datetime.now(UTC).strftime("%Y%m%dT%H%M%S%fZ-") + uuid.uuid4().hex[:8]


def fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def fsync_tree(path: Path) -> None:
    for file in path.rglob("*"):
        if file.is_file():
            with open(file, "rb") as f:
                os.fsync(f.fileno())
    for folder in [path, *[p for p in path.rglob("*") if p.is_dir()]]:
        fsync_dir(folder)


def place(tmp: Path, final: Path) -> None:
    """Make a complete folder durable, then give it its final name."""
    fsync_tree(tmp)
    os.rename(tmp, final)
    fsync_dir(final.parent)


@contextmanager
def flock(path: Path, wait_s: float, busy: str | None, create: bool = True) -> Iterator[bool]:
    """Hold an exclusive lock on ``path``; waits up to ``wait_s``, then raises
    IndexBusyError(``busy``), or yields False when ``busy`` is None.

    Without ``create``, the folder must exist and still be there once the lock is held (a
    collection deleted meanwhile: rag.collections): NoIndexError, or False when ``busy`` is
    None. Nothing is then ever written into a folder that was renamed away.
    """
    if create:
        path.parent.mkdir(parents=True, exist_ok=True)
    try:
        handle = open(path, "a+")  # noqa: SIM115  (closed below)
    except FileNotFoundError:
        if busy is None:
            yield False
            return
        raise NoIndexError(path.parent) from None
    with handle:
        deadline = time.monotonic() + wait_s
        while True:
            try:
                fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() >= deadline:
                    if busy is None:
                        yield False
                        return
                    raise IndexBusyError(busy) from None
                time.sleep(0.05)
        try:
            if not create and not _same_file(handle, path):
                if busy is None:
                    yield False
                    return
                raise NoIndexError(path.parent)
            yield True
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _same_file(handle: Any, path: Path) -> bool:
    """Whether ``path`` still names the file ``handle`` has open."""
    try:
        return os.fstat(handle.fileno()).st_ino == os.stat(path).st_ino
    except FileNotFoundError:
        return False


@contextmanager
def writer_lock(root: Path, wait_s: float = 0.0, create: bool = True) -> Iterator[None]:
    """One writer at a time; a second one waits up to ``wait_s`` then fails clearly.
    Without ``create`` the index folder must exist (see ``flock``)."""
    with flock(root / ".lock", wait_s, f"index at {root} is being written by another "
               "process: retry when that ingest finishes", create):
        yield


def merge_lock(root: Path, wait_s: float = 0.0) -> Any:
    """One merger at a time; yields whether this one got the lock (never for a folder that
    is gone: nothing merges into a deleted collection)."""
    return flock(root / ".merge.lock", wait_s, None, create=False)


def publish(root: Path, body: Mapping[str, Any], merging: bool = False) -> None:
    """Write a snapshot's manifest, point CURRENT at it, and collect what no snapshot
    kept needs. The caller holds the writer lock (and the merge lock if ``merging``)."""
    name = str(body["snapshot"])
    tmp = root / SNAPSHOTS / f".tmp-{name}"
    tmp.mkdir(parents=True)
    (tmp / MANIFEST).write_text(json.dumps(body, indent=2))
    place(tmp, root / SNAPSHOTS / name)
    pointer = root / "CURRENT.tmp"
    with open(pointer, "w") as f:
        f.write(name + "\n")
        f.flush()
        os.fsync(f.fileno())
    os.replace(pointer, root / "CURRENT")
    fsync_dir(root)
    previous = body.get("previous")
    collect_garbage(root, {name, str(previous)} if previous else {name}, merging)


def collect_garbage(root: Path, keep: set[str], merging: bool = False) -> None:
    """Keep the new snapshot and the one before it (KEEP_SNAPSHOTS) and the segments they
    list; drop the rest, including what writers killed mid-way left: temporary folders, a
    segment or snapshot renamed into place whose CURRENT swap never happened. A running
    merger's folder (.merge-*) is left alone (it holds the merge lock)."""
    assert len(keep) <= KEEP_SNAPSHOTS
    listed: set[str] = set()
    for path in (root / SNAPSHOTS).iterdir():
        if path.name not in keep:
            shutil.rmtree(path, ignore_errors=True)
        elif (path / MANIFEST).is_file():
            listed |= {s["name"] for s in json.loads((path / MANIFEST).read_text())
                       .get("segments", [])}
    if not (root / SEGMENTS).is_dir():
        return
    with merge_lock(root) if not merging else nullcontext(True) as no_merger:
        for path in (root / SEGMENTS).iterdir():
            if path.name not in listed and (no_merger or not path.name.startswith(".merge-")):
                shutil.rmtree(path, ignore_errors=True)


class IndexWriter:
    """Builds the next snapshot from the current one. Use as a context manager."""

    def __init__(self, root: Path, model: str, dimension: int, chunker: Mapping[str, Any],
                 wait_s: float = 0.0, ann_threshold: int = 200_000, create: bool = True) -> None:
        """``create``: make the index folder if it is missing (the default collection's
        first ingest); a named collection's writer writes only into an existing one."""
        self.root = root
        self.create = create
        self.ann_threshold = ann_threshold
        self.settings = {"model": model, "dimension": dimension, "metric": "inner_product",
                         "chunker": dict(chunker), "lexical": parameters()}
        self.dimension = dimension
        self._wait_s = wait_s
        self._lock: Any = None
        self.snapshot = ""
        self.previous: str | None = None
        self.committed = False
        self.segment = new_name()
        self.tmp = root / SEGMENTS / f".tmp-{self.segment}"
        self.infos: list[SegmentInfo] = []
        self.next_row = 1
        self._deleted: dict[str, dict[str, list[int]]] = {}  # segment -> doc_id -> its rows

    def __enter__(self) -> IndexWriter:
        self._lock = writer_lock(self.root, self._wait_s, self.create)
        self._lock.__enter__()
        try:
            self._open()
        except BaseException:
            self._abandon()
            raise
        return self

    def _open(self) -> None:
        (self.root / SNAPSHOTS).mkdir(parents=True, exist_ok=True)
        (self.root / SEGMENTS).mkdir(exist_ok=True)
        base = read_snapshot(self.root)
        parts: list[Live] = []
        if base is not None:
            check_manifest(base.manifest, self.root, str(self.settings["model"]),
                           self.dimension)
            self.previous = base.name
            if base.legacy:
                parts = [self._upgrade(base)]
            else:
                self.infos = base.segments
                self.next_row = int(base.manifest["next_row"])
                parts = live_parts(self.root, base, Segment)
        self.stores = Stores(parts)
        self.builder = SegmentBuilder(self.tmp, self.dimension, self.next_row)

    def _upgrade(self, base: Snapshot) -> Live:
        """An index without segments: its snapshot folder copied into a first segment."""
        legacy = Segment(base.path, legacy=True)
        name = new_name()
        tmp = self.root / SEGMENTS / f".tmp-{name}"
        written = SegmentBuilder.merged(tmp, self.dimension, [(legacy, frozenset())]).finish(
            self.ann_threshold)
        self.next_row = max(legacy.store.last_row(), written.last_row) + 1
        legacy.close()
        place(tmp, self.root / SEGMENTS / name)
        self.infos = [_info(name, written)]
        return Live(Segment(self.root / SEGMENTS / name))

    def __exit__(self, exc_type: object, exc: object, tb: object) -> None:
        self._abandon()

    def _abandon(self) -> None:
        try:
            if hasattr(self, "builder") and not self.committed:
                self.builder.abandon()
            if hasattr(self, "stores"):
                self.stores.close()
            shutil.rmtree(self.tmp, ignore_errors=True)
        finally:
            self._lock.__exit__(None, None, None)

    def add(self, doc: Document, chunks: Sequence[Chunk], vectors: Vectors,
            sentences: Sequence[tuple[int, int, int]], sentence_vectors: Vectors) -> None:
        """Add a document; ``sentences`` are (index into ``chunks``, start, end)."""
        self.builder.add(doc, chunks, vectors, sentences, sentence_vectors)

    def has(self, doc_id: str) -> bool:
        return doc_id in self.builder.docs or self._holder(doc_id) is not None

    def fingerprint(self, doc_id: str) -> str | None:
        """What the snapshot being written holds for ``doc_id`` (rag.metadata.fingerprint);
        None for a document not there (or added by this writer)."""
        part = self._holder(doc_id)
        return part.segment.store.fingerprint(doc_id) if part is not None else None

    def _holder(self, doc_id: str) -> Live | None:
        part = self.stores.holder(doc_id)
        if part is None or doc_id in self._deleted.get(part.segment.name, {}):
            return None
        return part

    def delete(self, doc_id: str) -> None:
        """Delete a document, wherever it is (a replacement deletes, then adds)."""
        if doc_id in self.builder.docs:
            self.builder.remove(doc_id)
        part = self._holder(doc_id)
        if part is not None:
            self._deleted.setdefault(part.segment.name, {})[doc_id] = \
                part.segment.store.rows_of([doc_id])

    def commit(self) -> str:
        """Write the segment and the snapshot completely, then make it current."""
        infos = [self._tombstoned(i) for i in self.infos]
        infos = [i for i in infos if i.live_documents > 0]  # wholly deleted: dropped
        if self.builder.docs:
            written = self.builder.finish(self.ann_threshold)
            place(self.tmp, self.root / SEGMENTS / self.segment)
            infos.append(_info(self.segment, written))
            self.next_row = max(self.next_row, written.last_row + 1)
        self.committed = True
        self.builder.abandon()
        self.snapshot = new_name()  # named under the lock: names sort as they become current
        publish(self.root, manifest(self.snapshot, self.previous, self.settings, infos,
                                    self.next_row, "write"))
        return self.snapshot

    def _tombstoned(self, info: SegmentInfo) -> SegmentInfo:
        gone = self._deleted.get(info.name)
        if not gone:
            return info
        return info.without(deleted_counts(self.root / SEGMENTS / info.name, gone))


def _info(name: str, written: Written) -> SegmentInfo:
    return SegmentInfo(name, written.documents, written.chunks, written.sentences,
                       written.vectors)


def upgrade(root: Path, wait_s: float, ann_threshold: int) -> str:
    """Turn an index without segments into segments now, changing no document."""
    base = read_snapshot(root)
    assert base is not None
    m = base.manifest
    with IndexWriter(root, m["model"], m["dimension"], m["chunker"], wait_s,
                     ann_threshold) as w:
        return w.commit()
