"""What an ingest changes, and writing those changes as one snapshot (one new segment).

Three ways in — files and folders, documents made in code, uploads — share one
rule (``plan``): a document is added when its doc_id is new, replaced when its
text or its user-given metadata changed (rag.metadata.fingerprint), and skipped when the
index already holds the same.
"""

from __future__ import annotations

import hashlib
import os
import threading
import time
from collections.abc import Callable, Collection, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from tqdm import tqdm

from rag import doc_ids, isolation, metadata
from rag.chunking import Chunker
from rag.documents import discover
from rag.embedding import Embedder
from rag.errors import (
    DocumentChangedError,
    DocumentExistsError,
    DocumentNotFoundError,
    FileTooLargeError,
    RagError,
    UnreadableFileError,
)
from rag.index import Index, live_parts, read_snapshot
from rag.isolation import ParseLimits
from rag.prepare import Preparer
from rag.segment import Segment
from rag.segments import Stores
from rag.types import Document
from rag.writer import IndexWriter

# An index's files by path (uploads and documents made in code by source) -> (doc_id, sha256)
Sources = Mapping[str, tuple[str, str]]


@dataclass
class IngestReport:
    added: list[str] = field(default_factory=list)
    replaced: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    deleted: list[str] = field(default_factory=list)
    failed: list[tuple[str, str]] = field(default_factory=list)  # (path, reason), not indexed
    ocr_pages: int = 0  # scanned pages and images read with OCR
    chunks: int = 0
    reused: int = 0  # chunks whose vectors came from the index or a duplicate, not the model
    seconds: float = 0.0
    snapshot: str | None = None

    def as_dict(self) -> dict[str, Any]:
        return {"added": self.added, "replaced": self.replaced, "skipped": self.skipped,
                "deleted": self.deleted,
                "failed": [{"path": path, "reason": reason} for path, reason in self.failed],
                "ocr_pages": self.ocr_pages, "chunks_written": self.chunks,
                "chunks_embedded": self.chunks - self.reused, "chunks_reused": self.reused,
                "seconds": round(self.seconds, 3), "snapshot": self.snapshot}

    @property
    def changed(self) -> bool:
        return bool(self.added or self.replaced or self.deleted)


class Catalog:
    """What an index holds, asked one file or document at a time, so that a one-file ingest
    into a million-chunk index reads a few rows, not every document's. This one answers
    from a mapping (``Sources``); ``IndexCatalog`` asks the index."""

    def __init__(self, sources: Sources | None = None) -> None:
        self._sources = dict(sources or {})
        self._sha = dict(self._sources.values())

    def by_path(self, path: str) -> tuple[str, str] | None:
        """(doc_id, sha256) of the document read from the file at ``path`` (absolute)."""
        return self._sources.get(path)

    def sha256(self, doc_id: str) -> str | None:
        return self._sha.get(doc_id)

    def fingerprint(self, doc_id: str) -> str | None:
        """Its content and user-given metadata (rag.metadata.fingerprint)."""
        return self.sha256(doc_id)

    def sources(self) -> dict[str, tuple[str, str]]:
        """Every document by path (only a prune needs them all)."""
        return dict(self._sources)

    def close(self) -> None:
        pass


class IndexCatalog(Catalog):
    def __init__(self, stores: Stores) -> None:
        self.stores = stores

    def by_path(self, path: str) -> tuple[str, str] | None:
        return self.stores.by_path(path)

    def sha256(self, doc_id: str) -> str | None:
        return self.stores.sha256(doc_id)

    def fingerprint(self, doc_id: str) -> str | None:
        return self.stores.fingerprint(doc_id)

    def sources(self) -> dict[str, tuple[str, str]]:
        return self.stores.sources()

    def close(self) -> None:
        self.stores.close()


@contextmanager
def indexed(root: Path) -> Iterator[Catalog | None]:
    """What the current snapshot holds, while in the block; None when there is no index."""
    snapshot = read_snapshot(root)
    if snapshot is None:
        yield None
        return
    catalog = IndexCatalog(Stores(live_parts(root, snapshot, Segment)))
    try:
        yield catalog
    finally:
        catalog.close()


def known(catalog: Catalog | None) -> Callable[[str], str | None]:
    """doc_id -> the fingerprint of what the index holds for it (what ``plan`` asks)."""
    return catalog.fingerprint if catalog is not None else lambda _: None


class _Taken:
    """The doc_ids a new file may not get: the index's and those given out in this read."""

    def __init__(self, catalog: Catalog) -> None:
        self.catalog = catalog
        self.new: set[str] = set()

    def __contains__(self, doc_id: object) -> bool:
        return doc_id in self.new or (isinstance(doc_id, str)
                                      and self.catalog.sha256(doc_id) is not None)


def plan(known: Callable[[str], str | None], docs: Sequence[Document],
         rewrite_unchanged: bool = False) -> tuple[list[Document], IngestReport]:
    """The documents to write, given what the index holds (``known``: doc_id -> its
    content's and user metadata's fingerprint).

    ``rewrite_unchanged`` writes an unchanged document again as a replacement
    (an upload always makes a snapshot, so its response names one).
    """
    report = IngestReport()
    todo = []
    for doc in docs:
        held = known(doc.doc_id)
        if held is None:
            report.added.append(doc.doc_id)
        elif held != metadata.fingerprint(doc.sha256, doc.metadata) or rewrite_unchanged:
            report.replaced.append(doc.doc_id)
        else:
            report.skipped.append(doc.doc_id)
            continue
        todo.append(doc)
    return todo, report


class OcrPages:
    """Counts the pages read with OCR, and shows them as they go with ``progress``."""

    def __init__(self, progress: bool) -> None:
        self.progress, self.pages = progress, 0
        self._bar: Any = None

    def __call__(self, name: str, done: int, total: int) -> None:
        if done == total:
            self.pages += total
        if not self.progress:
            return
        if self._bar is None:
            self._bar = tqdm(desc="OCR", unit="page", leave=False, position=1)
        if done == 0:
            self._bar.reset(total)
            self._bar.set_postfix_str(name[-40:])
        self._bar.n = done
        self._bar.refresh()

    def close(self) -> None:
        if self._bar is not None:
            self._bar.close()


def read_paths(paths: Sequence[Path], catalog: Catalog, limits: ParseLimits,
               failed: list[tuple[str, str]] | None = None,
               progress: bool = False, ocr: OcrPages | None = None,
               unchanged: list[tuple[str, str]] | None = None,
               given: Mapping[str, metadata.Value] | None = None) -> list[Document]:
    """Every supported file under ``paths``, read once, each parsed under ``limits`` in a
    worker of its own (rag.isolation); an indexed file keeps its doc_id, whatever rule made
    it, so a folder indexed before the rule changed is not indexed twice.

    A file named directly that cannot be read is an error. With a ``failed`` list, a file
    found inside a folder that cannot be read, or is refused, is appended to it as
    (path, reason) and skipped, so one bad file never sinks a folder; without one it raises.
    ``ocr`` counts (and with ``progress`` shows) the pages read with OCR. With an
    ``unchanged`` list, an indexed file whose bytes (sha256) and user metadata are the same
    is not parsed again (a scan is not read with OCR again) but appended to it as
    (path, doc_id). Each document's user metadata is ``given`` (`rag ingest --meta`) and its
    sidecar's (``NAME.meta.json``, which wins for its file).
    """
    roots: dict[Path, Path] = {}
    for file, root in discover(paths):
        roots.setdefault(file, root)  # a file named twice is read once
    named = {p.resolve() for p in paths if p.is_file()}
    taken = _Taken(catalog)
    docs = []
    for file, root in tqdm(roots.items(), desc="reading", unit="file", disable=not progress,
                           leave=False):
        known = catalog.by_path(str(file))
        doc_id = known[0] if known is not None else doc_ids.for_file(file, root, taken)
        if unchanged is not None and known is not None and _unchanged(
                file, catalog.fingerprint(doc_id), given or {}):
            unchanged.append((str(file), doc_id))
            continue
        try:
            docs.append(read_file(file, root, doc_id, limits, given or {}, ocr))
        except Exception as exc:  # any one file's failure, a parser's bug included
            if failed is None or file in named:
                raise
            reason = _reason(exc).removeprefix(f"{file}: ").removeprefix(f"{file.name}: ")
            failed.append((str(file), reason))
            continue
        taken.new.add(doc_id)
    if ocr is not None:
        ocr.close()
    return docs


def _unchanged(file: Path, held: str | None, given: Mapping[str, metadata.Value]) -> bool:
    """Whether the index holds ``file`` as it is (``held``: the fingerprint of what it holds
    for it): the same bytes and the same user metadata; a sidecar that cannot be read is a
    change (the read that follows reports it)."""
    sha = _sha256(file)
    if held is None or sha is None:
        return False
    try:
        given = {**given, **metadata.sidecar(file)}
    except RagError:
        return False
    return held == metadata.fingerprint(sha, given)


def _sha256(file: Path) -> str | None:
    """The file's sha256 (what Document.sha256 holds); None when it cannot be read."""
    digest = hashlib.sha256()
    try:
        with file.open("rb") as f:
            while block := f.read(1 << 20):
                digest.update(block)
    except OSError:
        return None
    return digest.hexdigest()


def read_file(file: Path, root: Path, doc_id: str, limits: ParseLimits,
              given: Mapping[str, metadata.Value] | None = None,
              on_page: isolation.OcrProgress | None = None) -> Document:
    """One file: its source is its path relative to ``root``, its ``path`` the absolute one;
    its metadata the file's own, ``given`` and its sidecar's."""
    try:
        data = file.read_bytes()
        meta = {**metadata.of_file(file, len(data)), **(given or {}), **metadata.sidecar(file)}
    except OSError as exc:
        raise UnreadableFileError(f"{file}: cannot read ({exc.strerror})") from None
    source = file.relative_to(root).as_posix()
    return replace(isolation.parse(data, file.name, doc_id, source, limits, on_page=on_page),
                   path=str(file), metadata=meta)


def _reason(exc: Exception) -> str:
    if isinstance(exc, RagError):
        return str(exc)
    return f"cannot be read ({type(exc).__name__}: {str(exc)[:200]})"


def refuse_failures(failed: Sequence[tuple[str, str]]) -> None:
    """``--strict``: any file that could not be read stops the ingest before it writes."""
    if not failed:
        return
    listed = "; ".join(f"{path}: {reason}" for path, reason in failed[:5])
    more = f" and {len(failed) - 5} more" if len(failed) > 5 else ""
    raise UnreadableFileError(
        f"{len(failed)} file(s) could not be indexed, so nothing was changed: {listed}{more}; "
        "fix or remove them, or ingest without --strict to index the rest")


def gone(paths: Sequence[Path], docs: Sequence[Document],
         sources: Sources, failed: Sequence[tuple[str, str]] = (),
         kept: Collection[str] = ()) -> list[str]:
    """Indexed documents whose files were under these folders and are there no more.

    A file that is still there but failed to read keeps its indexed version, and so does
    one ``kept`` (read as unchanged).
    """
    seen = {d.path for d in docs} | {path for path, _ in failed} | set(kept)
    folders = tuple(str(p.resolve()) + os.sep for p in paths if p.is_dir())
    return sorted(doc_id for source, (doc_id, _) in sources.items()
                  if source not in seen and source.startswith(folders))


def read_upload(filename: str, data: bytes, max_bytes: int, limits: ParseLimits,
                known: Callable[[str], str | None] = lambda _: None,
                replace_existing: bool = False,
                cancelled: threading.Event | None = None,
                given: Mapping[str, metadata.Value] | None = None) -> Document:
    """An uploaded file (its name is used for type and id only, never as a path), parsed
    under ``limits`` in a worker of its own. An id the index holds (``known``, as ``plan``
    asks it) is refused unless ``replace_existing``, before anything is parsed. Its user
    metadata is ``given`` (an upload's form fields)."""
    if len(data) > max_bytes:
        raise FileTooLargeError(f"{filename}: {len(data)} bytes is over the upload limit of "
                                f"{max_bytes} bytes")
    doc_id = doc_ids.for_upload(filename)
    if known(doc_id) is not None and not replace_existing:
        raise DocumentExistsError(doc_id)
    doc = isolation.parse(data, filename, doc_id, doc_ids.upload_source(filename), limits,
                          cancelled)
    return replace(doc, metadata={**metadata.of_upload(filename, len(data), time.time()),
                                  **(given or {})})


class Committer:
    """Writes the next snapshot of one index: chunks and embeds outside the writer's lock
    (the slow part), then takes the lock only to write every change at once."""

    def __init__(self, root: Path, model_id: str, embedder: Embedder, chunker: Chunker,
                 batch_size: int, in_context: bool, ann_threshold: int,
                 create: bool = True) -> None:
        self.root, self.model_id, self.embedder = root, model_id, embedder
        self.chunker, self.ann_threshold, self.create = chunker, ann_threshold, create
        self.preparer = Preparer(embedder, chunker, batch_size, in_context)

    def _writer(self, wait_s: float) -> IndexWriter:
        return IndexWriter(self.root, self.model_id, self.embedder.dimension,
                           self.chunker.describe(), wait_s, self.ann_threshold, self.create)

    def write(self, docs: Sequence[Document], report: IngestReport, index: Index | None,
              progress: bool, wait_s: float, deleted: Sequence[str] = (),
              new_only: Collection[str] = (), unchanged: Mapping[str, str] | None = None) -> None:
        """One snapshot with ``docs`` written and ``deleted`` gone; counts add to ``report``.

        ``index`` is the snapshot whose vectors an edited document may reuse. A doc_id in
        ``new_only`` that another writer added meanwhile is refused under the lock, and so
        is one of ``unchanged`` (doc_id -> fingerprint) that another writer changed.
        """
        prepared, reused = self.preparer.prepare(docs, index, progress)
        report.reused += reused
        with self._writer(wait_s) as w:
            for doc_id in new_only:
                if w.has(doc_id):
                    raise DocumentExistsError(doc_id)
            for doc_id, fingerprint in (unchanged or {}).items():
                if w.fingerprint(doc_id) != fingerprint:
                    raise DocumentChangedError(doc_id)
            for doc_id in deleted:
                w.delete(doc_id)
            for p in prepared:
                w.delete(p.doc.doc_id)
                w.add(p.doc, p.chunks, p.vectors, [r[:3] for r in p.sentences],
                      p.sentence_vectors)
                report.chunks += len(p.chunks)
            report.snapshot = w.commit()

    def delete(self, doc_id: str, wait_s: float) -> IngestReport:
        """A snapshot without ``doc_id``; an id the index lacks changes nothing."""
        report = IngestReport(deleted=[doc_id])
        with self._writer(wait_s) as w:
            if not w.has(doc_id):
                raise DocumentNotFoundError(doc_id)
            w.delete(doc_id)
            report.snapshot = w.commit()
        return report

