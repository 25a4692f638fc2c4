"""Where the stages meet: ingest files into the index, search it, answer from it.

Every edge (CLI, API, eval) builds one Pipeline from Settings and calls it; no
other module wires stages together.
"""

from __future__ import annotations

import os
import re
import threading
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from rag.answer import Composer
from rag.arrays import Vectors
from rag.chunking import Chunker
from rag.config import DEFAULT_K, RetrieverName, Settings
from rag.crossencoder import CrossEncoder
from rag.documents import discover, doc_id_for, load_file, parse_bytes
from rag.embedding import (
    Embedder,
    SentenceTransformerEmbedder,
    model_id,
    packaged_model_path,
)
from rag.errors import (
    DocumentNotFoundError,
    FileTooLargeError,
    InputError,
    NoIndexError,
    RagError,
)
from rag.index import STORE, Index, IndexWriter, current_snapshot
from rag.prepare import Preparer
from rag.rerank import CrossEncoderReranker, Reranker
from rag.retrieval import BM25Retriever, DenseRetriever, HybridRetriever, Retriever
from rag.scorer import EvidenceScorer
from rag.scorer import load as load_scorer
from rag.store import Store
from rag.types import Answer, Document, Hit


@dataclass
class IngestReport:
    added: list[str] = field(default_factory=list)
    replaced: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    deleted: list[str] = field(default_factory=list)
    chunks: int = 0
    reused: int = 0  # chunks whose vectors came from the index or a duplicate, not the model
    seconds: float = 0.0
    snapshot: str | None = None

    def as_dict(self) -> dict[str, Any]:
        return {"added": self.added, "replaced": self.replaced, "skipped": self.skipped,
                "deleted": self.deleted, "chunks_written": self.chunks,
                "chunks_embedded": self.chunks - self.reused, "chunks_reused": self.reused,
                "seconds": round(self.seconds, 3), "snapshot": self.snapshot}


def safe_doc_id(filename: str) -> str:
    """A doc_id from an uploaded name: never a path, only a tame identifier."""
    stem = Path(filename.replace("\\", "/")).name.rsplit(".", 1)[0]
    return re.sub(r"[^A-Za-z0-9._-]+", "_", stem).strip("._") or "upload"


class Pipeline:
    def __init__(self, settings: Settings, embedder: Embedder | None = None,
                 reranker: Reranker | None = None, scorer: EvidenceScorer | None = None) -> None:
        self.settings = settings
        self.root = Path(settings.index_dir)
        self._embedder = embedder
        self._reranker = reranker
        if reranker is None and settings.reranker_model is not None:
            self._reranker = CrossEncoderReranker(settings.reranker_model)
        self._index: Index | None = None
        self._scorer = scorer
        self._lock = threading.Lock()
        self._reload_lock = threading.Lock()
        self._pointer: tuple[int, int] | None = None
        self._checked = 0.0

    @property
    def embedder(self) -> Embedder:
        with self._lock:
            if self._embedder is None:
                s = self.settings
                onnx = self.onnx_dir
                if s.ray_address is None:
                    self._embedder = SentenceTransformerEmbedder(s.model_name, s.model_path,
                                                                 onnx, s.embed_backend,
                                                                 s.query_int8)
                else:
                    from rag.distributed import EmbedderSpec, RayEmbedder, connect

                    connect(s.ray_address)  # a wrong address fails before the model loads
                    spec = EmbedderSpec(s.model_name, s.model_path, onnx, s.embed_backend,
                                        s.query_int8)
                    self._embedder = RayEmbedder(spec.build(), spec, s.ray_address,
                                                 s.ray_actors)
            return self._embedder

    @property
    def onnx_dir(self) -> Path:
        return (self.settings.onnx_dir or self.root / ".onnx").resolve()

    @property
    def scorer(self) -> EvidenceScorer:
        """The evidence scorer, with its cross-encoder stage unless RAG_EVIDENCE_RERANK=0."""
        with self._lock:
            if self._scorer is None:
                s = self.settings
                folder = s.evidence_model or Path(__file__).parent / "data" / "evidence"
                cross = None
                if s.evidence_rerank:
                    cross = CrossEncoder(s.model_path or packaged_model_path(),
                                         folder / "adapter", self.onnx_dir, s.evidence_int8)
                self._scorer = load_scorer(folder, cross)
            return self._scorer

    def composer(self) -> Composer:
        s = self.settings
        return Composer(self.scorer, s.answer_max_words, s.evidence_neighbours,
                        abstain_below=s.abstain_threshold)

    @property
    def model_id(self) -> str:
        return model_id(self.settings.model_name, self.settings.embed_backend)

    def chunker(self) -> Chunker:
        e = self.embedder
        return Chunker(self.settings.chunk_tokens, self.settings.chunk_overlap,
                       count_wordpieces=e.count_tokens if e.max_tokens else None,
                       max_wordpieces=e.max_tokens)

    @property
    def index(self) -> Index:
        """The current snapshot: loaded on first use, and again once another process
        (a `rag ingest` beside `rag serve`) has moved CURRENT — checked at most twice a second.
        """
        index = self._index
        if index is None or self._moved():
            with self._reload_lock:
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
        now = time.monotonic()
        if now - self._checked < 0.5:
            return False
        self._checked = now
        pointer = self._pointer_id()
        return pointer is not None and pointer != self._pointer

    def reload(self) -> Index:
        dimension = self._embedder.dimension if self._embedder is not None else None
        for attempt in range(3):
            pointer = self._pointer_id()  # before loading: a move during it is seen next time
            try:
                index = Index(self.root, self.model_id, dimension, self.settings.faiss_threads,
                              self.settings.ann_nprobe)
                break
            except RagError:
                raise
            except Exception:
                # Two writes in a row collected the snapshot this load had just picked.
                if attempt == 2 or self._pointer_id() == pointer:
                    raise
        if self.settings.ray_address is not None and self.settings.ray_shards > 1:
            from rag.distributed import shard

            shard(index, self.settings.ray_shards, self.settings.ray_address)
        self._index, self._pointer = index, pointer
        return index

    def _writer(self, chunker: Chunker, wait_s: float) -> IndexWriter:
        return IndexWriter(self.root, self.model_id, self.embedder.dimension,
                           chunker.describe(), wait_s=wait_s,
                           ann_threshold=self.settings.ann_threshold)

    def _indexed(self) -> dict[str, tuple[str, str]] | None:
        """source -> (doc_id, sha256) in the current snapshot; None when there is no index."""
        snapshot = current_snapshot(self.root)
        if snapshot is None:
            return None
        store = Store(snapshot / STORE, readonly=True)
        try:
            return store.sources()
        finally:
            store.close()

    def ingest(self, paths: Iterable[Path], prune: bool = False,
               progress: bool = False) -> IngestReport:
        """Index new and changed files; with ``prune``, drop files gone from these folders."""
        t0 = time.perf_counter()
        paths = [Path(p) for p in paths]
        roots: dict[Path, Path] = {}
        for file, root in discover(paths):
            roots.setdefault(file, root)  # a file named twice is read once
        found = list(roots.items())
        report = IngestReport()
        indexed = self._indexed()
        known = indexed or {}
        taken = {doc_id for doc_id, _ in known.values()}
        docs: list[Document] = []
        for file, root in found:
            source = str(file)
            if source in known:
                doc_id, sha = known[source]
                doc = load_file(file, doc_id, self.settings.max_document_chars)
                (report.skipped if doc.sha256 == sha else report.replaced).append(doc_id)
                if doc.sha256 == sha:
                    continue
            else:
                doc = load_file(file, doc_id_for(file, root, taken),
                                self.settings.max_document_chars)
                taken.add(doc.doc_id)
                report.added.append(doc.doc_id)
            docs.append(doc)
        if prune:
            seen = {str(f) for f, _ in found}
            folders = [str(p.resolve()) + os.sep for p in paths if p.is_dir()]
            report.deleted = sorted(doc_id for source, (doc_id, _) in known.items()
                                    if source not in seen and source.startswith(tuple(folders)))
        if docs or report.deleted or indexed is None:
            self._write(docs, report, progress, self.settings.ingest_lock_wait_s)
        report.seconds = time.perf_counter() - t0
        return report

    def ingest_documents(self, docs: Sequence[Document], progress: bool = False) -> IngestReport:
        """Index documents made in code (eval, other sources): upsert by doc_id and sha256."""
        t0 = time.perf_counter()
        report = IngestReport()
        indexed = self._indexed()
        known = dict((indexed or {}).values())
        todo = []
        for doc in docs:
            if doc.doc_id not in known:
                report.added.append(doc.doc_id)
            elif known[doc.doc_id] == doc.sha256:
                report.skipped.append(doc.doc_id)
                continue
            else:
                report.replaced.append(doc.doc_id)
            todo.append(doc)
        if todo or indexed is None:
            self._write(todo, report, progress, self.settings.ingest_lock_wait_s)
        report.seconds = time.perf_counter() - t0
        return report

    def _write(self, docs: Sequence[Document], report: IngestReport, progress: bool,
               wait_s: float) -> None:
        """Chunk and embed outside the lock, then write one snapshot with every change."""
        chunker = self.chunker()
        preparer = Preparer(self.embedder, chunker, self.settings.embed_batch_size,
                            self.settings.sentence_vectors == "context")
        prepared, report.reused = preparer.prepare(
            docs, self.index if report.replaced else None, progress)
        with self._writer(chunker, wait_s) as w:
            for doc_id in report.deleted:
                w.delete(doc_id)
            for p in prepared:
                w.delete(p.doc.doc_id)
                w.add(p.doc, p.chunks, p.vectors, [r[:3] for r in p.sentences],
                      p.sentence_vectors)
                report.chunks += len(p.chunks)
            report.snapshot = w.commit()
        self.reload()

    def upload(self, filename: str, data: bytes) -> tuple[str, IngestReport]:
        """Index one uploaded file (its name is used for type and id only, never as a path)."""
        if len(data) > self.settings.max_upload_bytes:
            raise FileTooLargeError(f"{filename}: {len(data)} bytes is over the upload limit of "
                                    f"{self.settings.max_upload_bytes} bytes")
        doc_id = safe_doc_id(filename)
        doc = parse_bytes(data, filename, doc_id, f"upload:{doc_id}",
                          self.settings.max_document_chars)
        existed = any(d == doc_id for d, _ in (self._indexed() or {}).values())
        report = IngestReport(replaced=[doc_id]) if existed else IngestReport(added=[doc_id])
        self._write([doc], report, progress=False, wait_s=self.settings.request_lock_wait_s)
        return doc_id, report

    def delete(self, doc_id: str) -> IngestReport:
        if current_snapshot(self.root) is None:
            raise NoIndexError(self.root)
        report = IngestReport(deleted=[doc_id])
        with self._writer(self.chunker(), self.settings.request_lock_wait_s) as w:
            if w.store.document(doc_id) is None:
                raise DocumentNotFoundError(doc_id)
            w.delete(doc_id)
            report.snapshot = w.commit()
        self.reload()
        return report

    def documents(self) -> list[dict[str, Any]]:
        return self.index.store.documents()

    def document(self, doc_id: str) -> Document:
        doc = self.index.store.document(doc_id)
        if doc is None:
            raise DocumentNotFoundError(doc_id)
        return doc

    def retriever(self, name: RetrieverName | None = None,
                  index: Index | None = None) -> Retriever:
        name = name or self.settings.retriever
        index = index or self.index
        if name == "dense":
            return DenseRetriever(index, self.embedder)
        if name == "bm25":
            return BM25Retriever(index)
        if name == "hybrid":
            return HybridRetriever(index, self.embedder, self.settings.hybrid_weight,
                                   self.settings.candidates, self.settings.hybrid_method,
                                   self.settings.sentence_weight)
        raise InputError(f"unknown retriever {name!r}: use dense, bm25 or hybrid")

    def _check_length(self, text: str, what: str) -> None:
        limit = self.settings.max_question_chars
        if len(text) > limit:
            raise InputError(f"the {what} is {len(text)} characters, over the limit of {limit}: "
                             "shorten it")

    def search(self, query: str, k: int = DEFAULT_K,
               retriever: RetrieverName | None = None) -> list[Hit]:
        self._check_length(query, "query")
        return self._search(self.retriever(retriever), query, k)

    def _search(self, retriever: Retriever, query: str, k: int,
                vector: Vectors | None = None) -> list[Hit]:
        if self._reranker is None:
            return retriever.search(query, k, vector)
        hits = retriever.search(query, max(k, self.settings.rerank_candidates), vector)
        return self._reranker.rerank(query, hits, k)

    def retrieve(self, question: str, k: int = DEFAULT_K, retriever: RetrieverName | None = None
                 ) -> tuple[Index, list[Hit], Vectors, str]:
        """What an answer is made from: one snapshot, its hits, the question's vector."""
        if not question.strip():
            raise InputError("empty question: ask something")
        self._check_length(question, "question")
        index = self.index  # one snapshot for the whole answer, even if a write lands meanwhile
        r = self.retriever(retriever, index)
        vector = self.embedder.embed_query(question)  # one model call serves both stages
        return index, self._search(r, question, k, vector), vector, r.name

    def ask(self, question: str, k: int = DEFAULT_K,
            retriever: RetrieverName | None = None) -> Answer:
        t0 = time.perf_counter()
        index, hits, vector, name = self.retrieve(question, k, retriever)
        t1 = time.perf_counter()
        answer = self.composer().compose(question, hits, index, vector)
        t2 = time.perf_counter()
        provenance = dict(answer.provenance)
        provenance.update(snapshot=index.snapshot, model=self.model_id,
                          retriever=name,
                          reranker=self._reranker.name if self._reranker else None, timings_ms={
                              "retrieve": round((t1 - t0) * 1000, 2),
                              "compose": round((t2 - t1) * 1000, 2),
                              "total": round((t2 - t0) * 1000, 2)})
        return Answer(answer.question, answer.text, answer.citations, answer.abstained,
                      provenance)
