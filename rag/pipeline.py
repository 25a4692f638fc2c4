"""Where the stages meet: ingest files into the index, search it, answer from it.

Every edge (CLI, API, eval) builds one Pipeline from Settings and calls it; no
other module wires stages together. The stages are built in rag.components,
the live snapshot is kept by rag.index.IndexHandle, and what an ingest changes
is worked out in rag.ingest. A Pipeline serves one collection (rag.collections); the
pipelines of a server's other collections share its models (``sibling``).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Collection, Generator, Iterable, Mapping, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

from rag import components, ingest, merge
from rag import metadata as meta
from rag.answer import Composer
from rag.arrays import Vectors
from rag.chunking import Chunker
from rag.collections import DEFAULT, folder
from rag.config import DEFAULT_K, AnswerMode, RetrieverName, Settings
from rag.embedding import Embedder, model_id
from rag.errors import CollectionNotFoundError, DocumentNotFoundError, NoIndexError
from rag.filters import Filter
from rag.generate import Sentence, choose_mode, sentences_of
from rag.index import Index, IndexHandle, SegmentInfo, current_snapshot, read_snapshot
from rag.ingest import Catalog, Committer, IngestReport
from rag.isolation import ParseLimits
from rag.llm import Writer
from rag.merge import MergeReport
from rag.ocr import OcrOptions
from rag.rerank import Reranker
from rag.retrieval import Retriever, check_query, make_retriever
from rag.scorer import EvidenceScorer
from rag.types import Answer, Document, Hit, Timings
from rag.writer import upgrade


class Pipeline:
    """The product's verbs: ingest, upload, delete, search, ask.

    Stages passed in are used as they are (tests, benchmarks); the rest are built
    from ``settings`` on first use. ``clock`` paces the check for another process's
    writes (rag.index.IndexHandle). ``collection``: which one of the index root's.
    """

    def __init__(self, settings: Settings, embedder: Embedder | None = None,
                 reranker: Reranker | None = None, scorer: EvidenceScorer | None = None,
                 clock: Callable[[], float] = time.monotonic,
                 writer: Writer | None = None, collection: str = DEFAULT) -> None:
        self.settings = settings
        self.collection = collection
        self.root = folder(Path(settings.index_dir), collection)
        self._clock = clock
        self.model_id = model_id(settings.model_name, settings.embed_backend)
        self._embedder = components.Lazy(lambda: components.build_embedder(settings), embedder)
        self._scorer = components.Lazy(lambda: components.build_scorer(settings), scorer)
        self.reranker = reranker or components.build_reranker(settings)
        self.writer = writer if writer is not None else components.build_writer(settings)
        self._index = IndexHandle(
            self.root, self.model_id,
            lambda: self.embedder.dimension if self._embedder.loaded else None,
            settings.faiss_threads, settings.ann_nprobe, components.on_load(settings),
            clock=clock)
        self._merger = merge.Merger(lambda: self._merge(None, 0.0),
                                    lambda _: self._index.refresh())

    @property
    def embedder(self) -> Embedder:
        return self._embedder.get()

    @property
    def scorer(self) -> EvidenceScorer:
        return self._scorer.get()

    def sibling(self, collection: str) -> Pipeline:
        """The pipeline of another collection of the same index root, sharing this one's
        models (embedder, evidence scorer, reranker, LLM)."""
        other = Pipeline(self.settings, reranker=self.reranker, writer=self.writer,
                         clock=self._clock, collection=collection)
        other._embedder, other._scorer = self._embedder, self._scorer
        return other

    @property
    def index(self) -> Index:
        """The current snapshot; see IndexHandle for when it is reloaded."""
        try:
            return self._index.current()
        except NoIndexError:
            if self.collection == DEFAULT:
                raise
            raise CollectionNotFoundError(self.collection) from None

    def _exists(self) -> None:
        """A named collection must exist before anything is read or embedded for it (only
        "default" is made by its first write)."""
        if self.collection != DEFAULT and current_snapshot(self.root) is None:
            raise CollectionNotFoundError(self.collection)

    def close(self) -> None:
        """Wait for this pipeline's background merges (its collection is being deleted). The
        snapshot it holds is left to the requests still reading it: their files stay
        readable after the folder is removed, and close when the last reference goes."""
        self._merger.wait()

    def load(self) -> None:
        """Load the models and the index now rather than on first use (a server's start-up)."""
        _ = self.embedder, self.scorer
        self.reload()

    def reload(self) -> Index:
        return self._index.reload()

    def chunker(self) -> Chunker:
        return components.build_chunker(self.settings, self.embedder)

    def composer(self) -> Composer:
        return components.build_composer(self.settings, self.scorer)

    def parse_limits(self) -> ParseLimits:
        s = self.settings
        ocr = OcrOptions(s.ocr_languages, None if s.ocr_tessdata is None else str(s.ocr_tessdata),
                         s.ocr_dpi) if s.ocr else None
        return ParseLimits(s.max_document_chars, s.parse_timeout_s, s.parse_memory_mb, ocr,
                           s.ocr_page_timeout_s)

    # Writing

    def ingest(self, paths: Iterable[Path], prune: bool = False,
               progress: bool = False, *, strict: bool = False,
               metadata: Mapping[str, meta.Value] | None = None) -> IngestReport:
        """Index new and changed files; with ``prune``, drop files gone from these folders.

        A file inside a folder that cannot be read is skipped and listed in
        ``report.failed``; with ``strict`` any such file stops the ingest, changing nothing.
        ``metadata``: user metadata for every file (a file's sidecar wins: rag.metadata).
        """
        t0 = time.perf_counter()
        self._exists()
        paths = [Path(p) for p in paths]
        failed: list[tuple[str, str]] = []
        unchanged: list[tuple[str, str]] = []  # (path, doc_id) of files read as indexed
        ocr = ingest.OcrPages(progress)
        with ingest.indexed(self.root) as catalog:
            docs = ingest.read_paths(paths, catalog or ingest.Catalog(), self.parse_limits(),
                                     failed, progress, ocr, unchanged,
                                     meta.check(metadata or {}))
            if strict:
                ingest.refuse_failures(failed)
            deleted = ingest.gone(paths, docs, catalog.sources() if catalog else {}, failed,
                                  [path for path, _ in unchanged]) if prune else []
            report = self._upsert(docs, catalog, progress, t0, deleted)
        report.skipped += [doc_id for _, doc_id in unchanged]
        report.failed, report.ocr_pages = failed, ocr.pages
        return report

    def ingest_documents(self, docs: Sequence[Document], progress: bool = False) -> IngestReport:
        """Index documents made in code (eval, other sources): upsert by doc_id and sha256."""
        self._exists()
        with ingest.indexed(self.root) as catalog:
            return self._upsert(docs, catalog, progress, time.perf_counter())

    def _upsert(self, docs: Sequence[Document], catalog: Catalog | None,
                progress: bool, t0: float, deleted: Sequence[str] = ()) -> IngestReport:
        todo, report = ingest.plan(ingest.known(catalog), docs)
        report.deleted = list(deleted)
        # A checkpoint every RAG_INGEST_CHECKPOINT_DOCS documents: an ingest interrupted
        # midway keeps what it committed, and running it again skips those (same sha256).
        step = self.settings.ingest_checkpoint_docs
        parts = [todo[i:i + step] for i in range(0, len(todo), step)] or [[]]
        if report.changed or catalog is None:
            for n, part in enumerate(parts):
                self._write(part, report, progress, self.settings.ingest_lock_wait_s,
                            report.deleted if n == len(parts) - 1 else ())
        report.seconds = time.perf_counter() - t0
        return report

    def upload(self, filename: str, data: bytes, replace: bool = False,
               cancelled: threading.Event | None = None,
               metadata: Mapping[str, meta.Value] | None = None) -> tuple[str, IngestReport]:
        """Index one uploaded file. A document of the same doc_id is replaced only with
        ``replace`` (DocumentExistsError otherwise, also when another upload added it
        meanwhile); the same file uploaded again is written again. ``cancelled`` stops the
        parse (the client went away). ``metadata``: its user metadata."""
        s, given = self.settings, meta.check(metadata or {})
        self._exists()
        with ingest.indexed(self.root) as catalog:
            known = ingest.known(catalog)
            doc = ingest.read_upload(filename, data, s.max_upload_bytes, self.parse_limits(),
                                     known, replace, cancelled, given)
            todo, report = ingest.plan(known, [doc], rewrite_unchanged=True)
        self._write(todo, report, progress=False, wait_s=s.request_lock_wait_s,
                    new_only=() if replace else [doc.doc_id])
        return doc.doc_id, report

    def update_metadata(self, doc_id: str, patch: Mapping[str, object]) -> IngestReport:
        """Change a document's user metadata (JSON Merge Patch: a null removes a key). It is
        written again as a replacement whose chunks keep their vectors: nothing is embedded."""
        doc = self.index.store.document(doc_id, with_marks=True)
        if doc is None:
            raise DocumentNotFoundError(doc_id)
        report = ingest.IngestReport(replaced=[doc_id])
        self._write([replace(doc, metadata=meta.patched(doc.metadata, patch))], report, False,
                    self.settings.request_lock_wait_s, (),
                    unchanged={doc_id: meta.fingerprint(doc.sha256, doc.metadata)})
        return report

    def delete(self, doc_id: str) -> IngestReport:
        if current_snapshot(self.root) is None:
            _ = self.index  # the error: no index yet, or no such collection
        report = self._committer().delete(doc_id, self.settings.request_lock_wait_s)
        self._written()
        return report

    def _committer(self) -> Committer:
        s = self.settings
        return Committer(self.root, self.model_id, self.embedder, self.chunker(),
                         s.embed_batch_size, s.sentence_vectors == "context", s.ann_threshold,
                         create=self.collection == DEFAULT)

    def _write(self, docs: Sequence[Document], report: IngestReport, progress: bool,
               wait_s: float, deleted: Sequence[str] | None = None,
               new_only: Collection[str] = (), unchanged: Mapping[str, str] | None = None
               ) -> None:
        replaced = set(report.replaced)
        held = self._index.held()
        reuse = None
        if any(d.doc_id in replaced for d in docs):  # their unchanged chunks keep their vectors
            reuse = held or Index(self.root, lazy=True)  # lazy: only their segments are read
        try:
            self._committer().write(docs, report, reuse, progress, wait_s,
                                    report.deleted if deleted is None else deleted, new_only,
                                    unchanged)
        finally:
            if reuse is not None and reuse is not held:
                reuse.close()
        self._written()

    def _written(self) -> None:
        """After a commit: serve it (if serving), and merge segments if the policy asks."""
        self._index.refresh()
        if self.settings.auto_merge:
            self._merger.kick()

    # Merging

    def _merge(self, max_segments: int | None, lock_wait_s: float) -> MergeReport | None:
        s = self.settings
        return merge.merge(self.root, merge.TieredPolicy(segments_per_tier=s.segments_per_tier),
                           s.ann_threshold, s.ingest_lock_wait_s, max_segments, lock_wait_s)

    def compact(self, max_segments: int | None = None) -> list[MergeReport]:
        """Merge segments until the policy asks for no more (or, with ``max_segments``, until
        at most that many remain, none holding deleted documents). An index without segments
        (format 2, 3, or 4 of one folder) is turned into segments first."""
        self._exists()
        snapshot = read_snapshot(self.root)
        if snapshot is None:
            raise NoIndexError(self.root)
        if snapshot.legacy:
            upgrade(self.root, self.settings.ingest_lock_wait_s, self.settings.ann_threshold)
        reports = []
        while (r := self._merge(max_segments, self.settings.ingest_lock_wait_s)) is not None:
            reports.append(r)
        self._index.refresh()
        return reports

    def segments(self) -> list[SegmentInfo]:
        """The current snapshot's segments, from its manifest (nothing is loaded)."""
        self._exists()
        snapshot = read_snapshot(self.root)
        if snapshot is None:
            raise NoIndexError(self.root)
        return snapshot.segments

    def wait_for_merges(self) -> None:
        """Until the background merges started by this pipeline's writes are done."""
        self._merger.wait()

    # Reading

    def documents(self, with_paths: bool = False) -> list[dict[str, Any]]:
        """Every document's metadata; ``with_paths`` adds where each file was on the machine
        that ingested it (`rag docs`, never the API)."""
        return self.index.store.documents(with_paths)

    def document(self, doc_id: str) -> Document:
        doc = self.index.store.document(doc_id)
        if doc is None:
            raise DocumentNotFoundError(doc_id)
        return doc

    def retriever(self, name: RetrieverName | None = None, index: Index | None = None,
                  where: Filter | None = None) -> Retriever:
        """``where``: a filter (rag.filters); the retriever reads only what it selects."""
        s = self.settings
        index = index or self.index
        return make_retriever(name or s.retriever, index, lambda: self.embedder,
                              s.hybrid_weight, s.candidates, s.hybrid_method, s.sentence_weight,
                              index.select(where) if where is not None else None)

    def search(self, query: str, k: int = DEFAULT_K, retriever: RetrieverName | None = None,
               where: Filter | None = None) -> list[Hit]:
        check_query(query, "query", self.settings.max_question_chars)
        return self._search(self.retriever(retriever, where=where), query, k)

    def _search(self, retriever: Retriever, query: str, k: int,
                vector: Vectors | None = None) -> list[Hit]:
        if self.reranker is None:
            return retriever.search(query, k, vector)
        return self.reranker.search(retriever, query, k, self.settings.rerank_candidates, vector)

    def retrieve(self, question: str, k: int = DEFAULT_K, retriever: RetrieverName | None = None,
                 where: Filter | None = None) -> tuple[Index, list[Hit], Vectors, str]:
        """What an answer is made from: one snapshot, its hits, the question's vector."""
        check_query(question, "question", self.settings.max_question_chars)
        index = self.index  # one snapshot for the whole answer, even if a write lands meanwhile
        r = self.retriever(retriever, index, where)
        vector = self.embedder.embed_query(question)  # one model call serves both stages
        return index, self._search(r, question, k, vector), vector, r.name

    def mode(self, mode: AnswerMode | None = None) -> AnswerMode:
        """The answer mode asked for, or the default: generative when an LLM is configured."""
        return choose_mode(mode, self.writer is not None)

    def ask(self, question: str, k: int = DEFAULT_K, retriever: RetrieverName | None = None,
            mode: AnswerMode | None = None, where: Filter | None = None) -> Answer:
        *_, answer = self.ask_stream(question, k, retriever, mode, where)
        assert isinstance(answer, Answer)
        return answer

    def ask_stream(self, question: str, k: int = DEFAULT_K,
                   retriever: RetrieverName | None = None, mode: AnswerMode | None = None,
                   where: Filter | None = None) -> Generator[Sentence | Answer, None, None]:
        """The answer's verified sentences as they are ready, then the whole Answer; with
        ``where``, from the documents it selects only (none: an abstention)."""
        mode = self.mode(mode)
        t0 = time.perf_counter()
        index, hits, vector, name = self.retrieve(question, k, retriever, where)
        t1 = time.perf_counter()
        if mode == "generative" and self.writer is not None:
            events: Iterable[Sentence | Answer] = components.build_generator(
                self.settings, self.writer, self.scorer, self.embedder).stream(
                    question, hits, index, vector)
        else:
            extractive = self.composer().compose(question, hits, index, vector)
            events = [*sentences_of(extractive), extractive]
        for event in events:
            if isinstance(event, Answer):
                t2 = time.perf_counter()
                event = replace(event, provenance=replace(
                    event.provenance, snapshot=index.snapshot, model=self.model_id,
                    retriever=name, reranker=self.reranker.name if self.reranker else None,
                    timings_ms=Timings.of(t0, t1, t2)))
            yield event
