"""Documents to what a snapshot holds: chunks, sentences and their vectors.

The model is the slow part of ingest, so it sees each distinct text once and
never a text the index already holds: an edited document keeps the vectors of
its unchanged chunks and sentences.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from rag.arrays import Vectors
from rag.chunking import Chunker
from rag.embedding import Embedder
from rag.index import Index
from rag.sentence_split import sentence_spans
from rag.types import Chunk, Document


@dataclass
class Prepared:
    """A document ready to write: its chunks and sentences with their vectors."""

    doc: Document
    chunks: list[Chunk]
    chunk_offset: int
    sentences: list[tuple[int, int, int, int]]  # chunk index, start, end, text index
    sentence_offset: int
    vectors: Vectors = field(default_factory=lambda: np.zeros((0, 0), dtype=np.float32))
    sentence_vectors: Vectors = field(
        default_factory=lambda: np.zeros((0, 0), dtype=np.float32))


class Preparer:
    """Chunks and embeds documents; ``in_context`` pools sentence vectors from chunk passes."""

    def __init__(self, embedder: Embedder, chunker: Chunker, batch_size: int,
                 in_context: bool = False) -> None:
        self.embedder = embedder
        self.chunker = chunker
        self.batch_size = batch_size
        self.in_context = in_context

    def prepare(self, docs: Sequence[Document], index: Index | None,
                progress: bool) -> tuple[list[Prepared], int]:
        """Chunk, then embed every distinct chunk and sentence text the index lacks.

        Returns the prepared documents and how many chunks reused a vector.
        """
        out: list[Prepared] = []
        chunk_texts: list[str] = []
        sentence_texts: list[str] = []
        for doc in docs:
            chunks = self.chunker.chunk(doc)
            rows, first = [], len(sentence_texts)
            seen: dict[tuple[int, int], int] = {}
            for n, c in enumerate(chunks):
                for span in sentence_spans(doc.text, c.char_start, c.char_end):
                    if span not in seen:
                        seen[span] = len(sentence_texts)
                        sentence_texts.append(doc.text[span[0]:span[1]])
                    rows.append((n, span[0], span[1], seen[span] - first))
            out.append(Prepared(doc, chunks, len(chunk_texts), rows, first))
            chunk_texts.extend(c.text for c in chunks)
        known_chunks, known_sentences = _known_vectors(docs, index) if index else ({}, {})
        if self.in_context:
            return out, self._embed_in_context(out, known_chunks, known_sentences, progress)
        chunk_vectors, embedded = self._embed_new(chunk_texts, known_chunks, progress)
        sentence_vectors, _ = self._embed_new(sentence_texts, known_sentences, progress)
        for p in out:
            p.vectors = chunk_vectors[p.chunk_offset:p.chunk_offset + len(p.chunks)]
            p.sentence_vectors = sentence_vectors[[p.sentence_offset + r[3] for r in p.sentences]]
        return out, len(chunk_texts) - embedded

    def _embed_in_context(self, prepared: list[Prepared], known_chunks: dict[str, Vectors],
                          known_sentences: dict[str, Vectors], progress: bool) -> int:
        """Chunk vectors and, from the same model calls, their sentences' vectors in context.

        A sentence in two chunks (the overlap) is pooled from the first. Returns
        how many chunks reused stored vectors.
        """
        dimension = self.embedder.dimension
        texts: list[str] = []
        spans: list[list[tuple[int, int]]] = []
        targets: list[tuple[Prepared, int, list[int]]] = []
        owners: list[list[int]] = []  # per document: the row each sentence row is pooled in
        reused = 0
        for p in prepared:
            p.vectors = np.zeros((len(p.chunks), dimension), dtype=np.float32)
            p.sentence_vectors = np.zeros((len(p.sentences), dimension), dtype=np.float32)
            first: dict[int, int] = {}
            owners.append([first.setdefault(row[3], r) for r, row in enumerate(p.sentences)])
            pooled_by: dict[int, list[int]] = {}
            for r in first.values():
                pooled_by.setdefault(p.sentences[r][0], []).append(r)
            for n, chunk in enumerate(p.chunks):
                rows = pooled_by.get(n, [])
                vector = known_chunks.get(chunk.text)
                old = [known_sentences.get(p.doc.text[p.sentences[r][1]:p.sentences[r][2]])
                       for r in rows]
                if vector is not None and all(v is not None for v in old):
                    p.vectors[n] = vector
                    for r, v in zip(rows, old, strict=True):
                        p.sentence_vectors[r] = v
                    reused += 1
                    continue
                texts.append(chunk.text)
                spans.append([(p.sentences[r][1] - chunk.char_start,
                               p.sentences[r][2] - chunk.char_start) for r in rows])
                targets.append((p, n, rows))
        if texts:
            vectors, pooled = self.embedder.embed_spans(texts, spans, progress)
            for (p, n, rows), vector, sentence_vectors in zip(targets, vectors, pooled,
                                                              strict=True):
                p.vectors[n] = vector
                p.sentence_vectors[rows] = sentence_vectors
        for p, owner in zip(prepared, owners, strict=True):
            p.sentence_vectors = p.sentence_vectors[owner]
        return reused

    def _embed_new(self, texts: Sequence[str], known: dict[str, Vectors],
                   progress: bool) -> tuple[Vectors, int]:
        """Vectors for ``texts``: each distinct unknown text embedded once; returns the count."""
        out = np.zeros((len(texts), self.embedder.dimension), dtype=np.float32)
        todo: dict[str, list[int]] = {}
        for i, text in enumerate(texts):
            vector = known.get(text)
            if vector is None:
                todo.setdefault(text, []).append(i)
            else:
                out[i] = vector
        if todo:
            vectors = self.embedder.embed(list(todo), self.batch_size, progress)
            for vector, rows in zip(vectors, todo.values(), strict=True):
                out[rows] = vector
        return out, len(todo)


def _known_vectors(docs: Sequence[Document],
                   index: Index) -> tuple[dict[str, Vectors], dict[str, Vectors]]:
    """Vectors the index already holds for the chunks and sentences of these documents.

    An edit to a long document changes a few chunks; the others keep their
    text, so their vectors (and their sentences') are taken, not recomputed.
    """
    chunks: dict[str, Vectors] = {}
    sentences: dict[str, Vectors] = {}
    for doc in docs:
        old = index.store.document(doc.doc_id)
        if old is None:
            continue
        rows = index.store.chunk_rows(doc.doc_id)
        for (row, text), vector in zip(rows, index.vectors.vectors([r for r, _ in rows]),
                                       strict=True):
            chunks[text] = vector
            starts, ends, vectors = index.sentences.of_chunk(row)
            for a, b, v in zip(starts, ends, vectors, strict=True):
                sentences[old.text[a:b]] = v
    return chunks, sentences
