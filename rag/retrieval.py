"""Query to ranked Hits: dense (FAISS), lexical (BM25) and their fusion."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Mapping, Sequence

import numpy as np

from rag.embedding import Embedder, Vectors
from rag.errors import InputError
from rag.index import Index
from rag.types import Hit

Scored = list[tuple[int, float, dict[str, float]]]


def minmax(scores: Mapping[int, float]) -> dict[int, float]:
    """Scale to [0, 1]; all-equal scores map to 1 (they are equally good)."""
    if not scores:
        return {}
    lo, hi = min(scores.values()), max(scores.values())
    if hi - lo < 1e-12:
        return dict.fromkeys(scores, 1.0)
    return {i: (s - lo) / (hi - lo) for i, s in scores.items()}


def _weighted(d: Mapping[int, float], b: Mapping[int, float], weight: float) -> dict[int, float]:
    """weight * d + (1 - weight) * b over both key sets; a missing score counts as 0."""
    return {i: weight * d.get(i, 0.0) + (1 - weight) * b.get(i, 0.0) for i in set(d) | set(b)}


def convex_fusion(dense: Mapping[int, float], lexical: Mapping[int, float],
                  weight: float) -> dict[int, float]:
    """weight * minmax(dense) + (1 - weight) * minmax(lexical)."""
    return _weighted(minmax(dense), minmax(lexical), weight)


def zscore(scores: Mapping[int, float]) -> dict[int, float]:
    """Standardize to mean 0, deviation 1; all-equal scores map to 0."""
    if not scores:
        return {}
    values = np.fromiter(scores.values(), dtype=np.float64)
    mean, std = float(values.mean()), float(values.std())
    if std < 1e-12:
        return dict.fromkeys(scores, 0.0)
    return {i: (s - mean) / std for i, s in scores.items()}


def zscore_fusion(dense: Mapping[int, float], lexical: Mapping[int, float],
                  weight: float) -> dict[int, float]:
    """weight * z(dense) + (1 - weight) * z(lexical) over the shared candidate set."""
    return _weighted(zscore(dense), zscore(lexical), weight)


def rrf_fusion(rankings: Sequence[Sequence[int]], k: int = 60) -> dict[int, float]:
    """Reciprocal-rank fusion: sum of 1 / (k + rank), ranks from 1."""
    fused: dict[int, float] = {}
    for ranking in rankings:
        for rank, item in enumerate(ranking, start=1):
            fused[item] = fused.get(item, 0.0) + 1.0 / (k + rank)
    return fused


def _top(scored: Mapping[int, float], k: int) -> list[tuple[int, float]]:
    return sorted(scored.items(), key=lambda kv: (-kv[1], kv[0]))[:k]


class Retriever(ABC):
    """Subclasses rank a batch of queries; ``search`` is the one-query case."""

    name: str

    def __init__(self, index: Index) -> None:
        self.index = index

    @abstractmethod
    def rank(self, queries: Sequence[str], k: int,
             vectors: Vectors | None = None) -> list[Scored]:
        """Per query, up to k (chunk row id, score, per-stage scores), best first.

        ``vectors``: the queries' embeddings when the caller already has them.
        """

    def search_batch(self, queries: Sequence[str], k: int,
                     vectors: Vectors | None = None) -> list[list[Hit]]:
        for q in queries:
            if not q.strip():
                raise InputError("empty query: ask something")
        if k < 1:
            raise InputError(f"k must be at least 1, got {k}")
        ranked = self.rank(queries, k, vectors)
        chunks = self.index.store.chunks_by_ids(i for r in ranked for i, _, _ in r)
        titles = self.index.store.titles(c.doc_id for c in chunks.values())
        return [
            [Hit(rank=n, score=score, chunk=chunks[i], title=titles[chunks[i].doc_id][0],
                 source=titles[chunks[i].doc_id][1], stage_scores=stages, row=i)
             for n, (i, score, stages) in enumerate(r, start=1)]
            for r in ranked
        ]

    def search(self, query: str, k: int, vector: Vectors | None = None) -> list[Hit]:
        return self.search_batch([query], k, None if vector is None else vector[None, :])[0]


class DenseRetriever(Retriever):
    name = "dense"

    def __init__(self, index: Index, embedder: Embedder) -> None:
        super().__init__(index)
        self.embedder = embedder

    def rank(self, queries: Sequence[str], k: int,
             vectors: Vectors | None = None) -> list[Scored]:
        if self.index.vectors.count() == 0:
            return [[] for _ in queries]
        if vectors is None:
            vectors = self.embedder.embed_queries(queries)
        scores, ids = self.index.vectors.search(vectors, k)
        return [[(int(i), float(s), {"dense": float(s)}) for s, i in zip(row_s, row_i, strict=True)
                 if i >= 0] for row_s, row_i in zip(scores, ids, strict=True)]


class BM25Retriever(Retriever):
    name = "bm25"

    def rank(self, queries: Sequence[str], k: int,
             vectors: Vectors | None = None) -> list[Scored]:
        out: list[Scored] = []
        for q in queries:
            scores, ids = self.index.lexical.search(q, k)
            out.append([(int(i), float(s), {"bm25": float(s)})
                        for s, i in zip(scores, ids, strict=True)])
        return out


class HybridRetriever(Retriever):
    """Dense and BM25 candidates, each rescored by the other, then fused.

    With ``sentence_weight`` > 0, each candidate's best sentence similarity
    (z-scored over the candidates) is added to the fused score with that weight.
    """

    name = "hybrid"

    def __init__(self, index: Index, embedder: Embedder, weight: float = 0.5,
                 candidates: int = 100, method: str = "convex",
                 sentence_weight: float = 0.0) -> None:
        super().__init__(index)
        self.embedder = embedder
        self.weight = weight
        self.candidates = candidates
        self.method = method
        self.sentence_weight = sentence_weight

    def rank(self, queries: Sequence[str], k: int,
             qvecs: Vectors | None = None) -> list[Scored]:
        vectors = self.index.vectors
        lexical = self.index.lexical
        if vectors.count() == 0:
            return [[] for _ in queries]
        n = max(k, self.candidates)
        if qvecs is None:
            qvecs = self.embedder.embed_queries(queries)
        d_scores, d_ids = vectors.search(qvecs, n)
        out: list[Scored] = []
        for qi, query in enumerate(queries):
            dense = {int(i): float(s) for s, i in zip(d_scores[qi], d_ids[qi], strict=True)
                     if i >= 0}
            all_bm25 = lexical.scores(query)
            top = np.argsort(-all_bm25, kind="stable")[:n]
            bm25_ids = [int(lexical.ids[j]) for j in top if all_bm25[j] > 0]
            missing = [i for i in bm25_ids if i not in dense]
            if missing:
                extra = vectors.vectors(missing) @ qvecs[qi]
                dense.update(zip(missing, map(float, extra), strict=True))
            positions = np.searchsorted(lexical.ids, list(dense))
            bm25 = {i: float(all_bm25[p]) for i, p in zip(dense, positions, strict=True)}
            if self.method == "rrf":
                fused = rrf_fusion([_ranked(dense), _ranked(bm25)])
            elif self.method == "zscore":
                fused = zscore_fusion(dense, bm25, self.weight)
            else:
                fused = convex_fusion(dense, bm25, self.weight)
            best: dict[int, float] = {}
            if self.sentence_weight > 0 and self.index.sentences.count():
                best = self.index.sentences.best(fused, qvecs[qi])
                z = zscore(best)
                fused = {i: s + self.sentence_weight * z[i] for i, s in fused.items()}
            out.append([(i, s, {"dense": dense[i], "bm25": bm25[i], "fused": s,
                                **({"sentence": best[i]} if best else {})})
                        for i, s in _top(fused, k)])
        return out


def _ranked(scores: Mapping[int, float]) -> list[int]:
    return [i for i, _ in _top(scores, len(scores))]
