"""Which sentences of the retrieved passages are the evidence: candidates and their features.

A question's candidates are the sentences of its passages and of each passage's
neighbouring chunks (evidence often sits one chunk away from the words that
retrieved it). Each gets a row of features that say nothing about any one kind
of document — how close its meaning is to the question, how much of the
question's rarer vocabulary it holds, how its neighbours and its document
scored — and a scorer (rag.scoring) turns the rows into probabilities.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from rag.arrays import Floats, Vectors
from rag.index import Index
from rag.injection import addressed_to_model
from rag.types import Chunk, Document, Hit

Features = Floats  # one row of FEATURES per candidate

# The columns of a candidate's feature row, in order; scorer weights name them.
FEATURES = (
    "cosine",  # the sentence's vector (made at ingest) against the question's
    "cosine_gap",  # cosine minus the best candidate's cosine
    "cosine_rank",  # 1 / (1 + its rank by cosine among all candidates)
    "cosine_doc_gap",  # cosine minus the best cosine within its document
    "cosine_doc_rank",  # 1 / (1 + its rank by cosine within its document)
    "idf_overlap",  # share of the question's IDF weight its words hold
    "idf_cosine",  # idf_overlap * cosine
    "doc_rank",  # 1 / the rank of its document among the passages' documents
    "first_doc",  # its document holds the best passage
    "in_passage",  # its own chunk was retrieved (not only a neighbour of one)
    "cosine_prev",  # the cosines of the sentences before and after it (its own at an edge)
    "cosine_next",
    "cosine_neighbour",  # the larger of the two
    "first_line",  # it opens its document on a line of its own (a title or heading)
    "log_words",
    "numbers",  # share of the question's numbers it repeats (0.5 when the question has none)
)
# No retrieval score is a feature: their scale moves with the corpus and the retriever
# (fused z-scores over the candidates, BM25 with the corpus's IDF), so weights fit on
# SciFact would not hold on a folder of two reports. Ranks and cosines do.
_NUMBER = re.compile(r"\d+(?:[.,]\d+)?")


@dataclass(frozen=True, slots=True)
class Candidate:
    """A quotable sentence: ``document.text[start:end] == quote``."""

    doc_id: str
    chunk: Chunk
    start: int
    end: int
    quote: str
    doc_rank: int  # 1 for the document of the best passage
    doc_best: Hit  # the best retrieved passage of its document
    own: Hit | None  # its own chunk's passage, None when it is a neighbour of one
    heading: bool = False  # it opens its document and a line break follows it

    @property
    def words(self) -> int:
        return len(self.quote.split())


def gather(hits: Sequence[Hit], index: Index, fetch: Callable[[str], Document | None],
           neighbours: int = 1, min_words: int = 4, max_words: int = 120,
           ocr_floor: float = 0.0) -> tuple[list[Candidate], Vectors]:
    """The sentences of the hits' chunks and of the chunks up to ``neighbours`` away.

    Sentences are taken once (a sentence in two overlapping chunks is one
    candidate), in document order within each document, documents in the order
    of their best passage. Returns them with the sentence vectors stored at ingest.
    Text OCR'd with a confidence below ``ocr_floor`` is never a candidate.
    """
    best: dict[str, Hit] = {}
    hit_rows: dict[str, dict[int, Hit]] = {}
    for h in hits:
        best.setdefault(h.chunk.doc_id, h)
        hit_rows.setdefault(h.chunk.doc_id, {}).setdefault(h.row, h)
    out: list[Candidate] = []
    vectors: list[Vectors] = []
    for rank, (doc_id, top) in enumerate(best.items(), start=1):
        doc = fetch(doc_id)
        if doc is None:
            continue
        ordinals = {h.chunk.ordinal for h in hit_rows[doc_id].values()}
        near = index.store.chunks_near(doc_id, ordinals, neighbours)
        seen: set[tuple[int, int]] = set()
        unsure = index.store.low_confidence(doc_id, ocr_floor)  # indexed, never quoted
        for row, chunk in sorted(near.items(), key=lambda rc: rc[1].ordinal):
            own = hit_rows[doc_id].get(row)
            starts, ends, stored = index.sentences.of_chunk(row)
            for a, b, vector in zip(starts.tolist(), ends.tolist(), stored, strict=True):
                quote = doc.text[a:b]
                if (a, b) in seen or not min_words <= len(quote.split()) <= max_words \
                        or addressed_to_model(quote) \
                        or any(s <= a < e for s, e in unsure):  # an injection, or OCR unsure
                    continue
                seen.add((a, b))
                heading = a == 0 and doc.text[b:].lstrip(" \t").startswith("\n")
                out.append(Candidate(doc_id, chunk, a, b, quote, rank, top, own, heading))
                vectors.append(vector)
    if not vectors:
        return out, np.zeros((0, index.vectors.dimension), dtype=np.float32)
    return out, np.stack(vectors)


def _ranks(values: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
    """0 for the largest value, 1 for the next, ... (ties by position)."""
    ranks = np.empty(len(values))
    ranks[np.argsort(-values, kind="stable")] = np.arange(len(values))
    return ranks


def features(question: str, query_vector: Vectors, candidates: Sequence[Candidate],
             vectors: Vectors, idf: Callable[[str], dict[str, float]],
             terms: Callable[[str], list[str]]) -> Features:
    """One row of FEATURES per candidate.

    ``idf`` gives the question's terms with their inverse document frequency in the
    index; ``terms`` the same tokenization of a sentence (rag.lexical).
    """
    n = len(candidates)
    out = np.zeros((n, len(FEATURES)))
    if n == 0:
        return out
    cosine = (vectors @ query_vector).astype(np.float64)
    col = {name: out[:, i] for i, name in enumerate(FEATURES)}
    col["cosine"][:] = cosine
    col["cosine_gap"][:] = cosine - cosine.max()
    col["cosine_rank"][:] = 1 / (1 + _ranks(cosine))
    weights = idf(question)
    total = sum(weights.values())
    numbers = set(_NUMBER.findall(question))
    by_doc: dict[str, list[int]] = {}
    for i, c in enumerate(candidates):
        by_doc.setdefault(c.doc_id, []).append(i)
    for rows in by_doc.values():
        rows.sort(key=lambda i: candidates[i].start)
        doc_cos = cosine[rows]
        col["cosine_doc_gap"][rows] = doc_cos - doc_cos.max()
        col["cosine_doc_rank"][rows] = 1 / (1 + _ranks(doc_cos))
        col["cosine_prev"][rows] = np.concatenate([doc_cos[:1], doc_cos[:-1]])
        col["cosine_next"][rows] = np.concatenate([doc_cos[1:], doc_cos[-1:]])
    col["cosine_neighbour"][:] = np.maximum(col["cosine_prev"], col["cosine_next"])
    for i, c in enumerate(candidates):
        held = set(terms(c.quote))
        col["idf_overlap"][i] = sum(w for t, w in weights.items() if t in held) / total \
            if total > 0 else 0.0
        col["doc_rank"][i] = 1 / c.doc_rank
        col["first_doc"][i] = c.doc_rank == 1
        col["in_passage"][i] = c.own is not None
        col["first_line"][i] = c.heading  # a one-line document's sentence is its content
        col["log_words"][i] = np.log1p(c.words)
        col["numbers"][i] = (len(numbers & set(_NUMBER.findall(c.quote))) / len(numbers)
                             if numbers else 0.5)
    col["idf_cosine"][:] = col["idf_overlap"] * cosine
    return out
