"""Retrieved passages to a short extractive answer whose every sentence is a verified quote.

No language model writes anything: the answer is made of sentences copied from
the stored documents, each cited by its exact character span, and each checked
against the store before it is returned. When no sentence is close enough to
the question, the composer abstains instead of guessing.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import Stemmer
from bm25s.stopwords import STOPWORDS_EN

from rag.embedding import Embedder, Vectors
from rag.sentences import SentenceIndex
from rag.types import Answer, Citation, Document, Hit

ABSTENTION = "The documents don't say: no indexed passage answers this question closely enough."
_WORD = re.compile(r"\w+")
_STOP = frozenset(STOPWORDS_EN)


@dataclass(frozen=True, slots=True)
class Candidate:
    hit: Hit
    start: int
    end: int
    quote: str
    words: int


class Composer:
    """Score sentences of the top passages against the question and keep the best few.

    A sentence's score is its cosine similarity to the question plus
    ``lexical_weight`` times the share of the question's content words it
    contains. The composer abstains when the best score is under ``threshold``: a
    question that neither means nor mentions what any passage says is not answered.
    """

    def __init__(self, embedder: Embedder, max_words: int = 120, threshold: float = 0.355,
                 max_sentences: int = 3, lexical_weight: float = 0.3, margin: float = 0.15,
                 duplicate_cosine: float = 0.92) -> None:
        self.embedder = embedder
        self.max_words = max_words
        self.threshold = threshold
        self.max_sentences = max_sentences
        self.lexical_weight = lexical_weight
        self.margin = margin
        self.duplicate_cosine = duplicate_cosine
        self._stemmer = Stemmer.Stemmer("english")

    def _terms(self, text: str) -> set[str]:
        words = [w for w in _WORD.findall(text.lower()) if w not in _STOP and len(w) > 1]
        return set(self._stemmer.stemWords(words))

    def _candidates(self, hits: Sequence[Hit], docs: dict[str, Document],
                    sentences: SentenceIndex) -> tuple[list[Candidate], Vectors]:
        """The quotable sentences of the hits, with the vectors stored at ingest."""
        seen: set[tuple[str, int, int]] = set()
        out: list[Candidate] = []
        vectors: list[Vectors] = []
        for hit in hits:
            text = docs[hit.chunk.doc_id].text
            starts, ends, stored = sentences.of_chunk(hit.row)
            for start, end, vector in zip(starts.tolist(), ends.tolist(), stored, strict=True):
                key = (hit.chunk.doc_id, start, end)
                words = len(text[start:end].split())
                if key in seen or words < 4 or words > self.max_words:
                    continue
                seen.add(key)
                out.append(Candidate(hit, start, end, text[start:end], words))
                vectors.append(vector)
        dim = self.embedder.dimension
        return out, np.stack(vectors) if vectors else np.zeros((0, dim), dtype=np.float32)

    def compose(self, question: str, hits: Sequence[Hit],
                fetch: Callable[[str], Document | None], sentences: SentenceIndex,
                query_vector: Vectors | None = None) -> Answer:
        docs = {d: doc for d in {h.chunk.doc_id for h in hits} if (doc := fetch(d)) is not None}
        hits = [h for h in hits if h.chunk.doc_id in docs]
        candidates, vectors = self._candidates(hits, docs, sentences)
        passages = [{"doc_id": h.chunk.doc_id, "chunk_id": h.chunk.chunk_id, "rank": h.rank,
                     "score": round(h.score, 6), "stage_scores": dict(h.stage_scores)}
                    for h in hits]
        if not candidates:
            return self._abstain(question, passages, best=None)
        if query_vector is None:
            query_vector = self.embedder.embed_query(question)
        cosine = vectors @ query_vector
        q_terms = self._terms(question)
        overlap = np.array([len(q_terms & self._terms(c.quote)) / max(len(q_terms), 1)
                            for c in candidates], dtype=np.float32)
        scores = cosine + self.lexical_weight * overlap
        best = float(scores.max())
        if best < self.threshold:
            return self._abstain(question, passages, best=best)

        chosen: list[int] = []
        words = 0
        for i in np.argsort(-scores, kind="stable"):
            if len(chosen) == self.max_sentences or scores[i] < scores[chosen[0] if chosen else i] \
                    - self.margin:
                break
            if any(float(vectors[i] @ vectors[j]) > self.duplicate_cosine for j in chosen):
                continue
            if words + candidates[i].words > self.max_words:
                continue
            chosen.append(int(i))
            words += candidates[i].words
        rank_of_doc: dict[str, int] = {}
        for h in hits:
            rank_of_doc.setdefault(h.chunk.doc_id, h.rank)
        chosen.sort(key=lambda i: (rank_of_doc[candidates[i].hit.chunk.doc_id],
                                   candidates[i].start))

        citations: list[Citation] = []
        dropped = 0
        for i in chosen:
            c = candidates[i]
            fresh = fetch(c.hit.chunk.doc_id)
            if fresh is None or fresh.text[c.start:c.end] != c.quote:
                dropped += 1
                continue
            citations.append(Citation(n=len(citations) + 1, doc_id=c.hit.chunk.doc_id,
                                      chunk_id=c.hit.chunk.chunk_id, title=c.hit.title,
                                      quote=c.quote, char_start=c.start, char_end=c.end,
                                      verified=True))
        if not citations:
            return self._abstain(question, passages, best=best, dropped=dropped)
        text = " ".join(f"{c.quote} [{c.n}]" for c in citations)
        cited = {c.chunk_id for c in citations}
        provenance: dict[str, Any] = {
            "passages": [p for p in passages if p["chunk_id"] in cited],
            "sentence_scores": [{"n": n + 1, "cosine": round(float(cosine[i]), 6),
                                 "overlap": round(float(overlap[i]), 6),
                                 "score": round(float(scores[i]), 6)}
                                for n, i in enumerate(chosen)],
            "best_score": round(best, 6), "threshold": self.threshold,
            "dropped_citations": dropped}
        return Answer(question, text, tuple(citations), False, provenance)

    def _abstain(self, question: str, passages: list[dict[str, Any]], best: float | None,
                 dropped: int = 0) -> Answer:
        provenance = {"passages": [], "closest": passages[:3],
                      "best_score": None if best is None else round(best, 6),
                      "threshold": self.threshold, "dropped_citations": dropped}
        return Answer(question, ABSTENTION, (), True, provenance)
