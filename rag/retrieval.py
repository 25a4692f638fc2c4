"""Query to ranked Hits: dense (FAISS), lexical (BM25) and their fusion.

A retriever given ``allowed`` (the chunks a filter selects: rag.selection) searches only
those, in both stages: dense search through a FAISS selector, BM25 over the same rows.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping, Sequence

import numpy as np
import numpy.typing as npt

from rag.arrays import Floats, Vectors
from rag.config import RETRIEVER_NAMES, RetrieverName
from rag.embedding import Embedder
from rag.errors import InputError
from rag.index import Index
from rag.lexical import Scores, top_n
from rag.selection import Allowed
from rag.types import Hit

Scored = list[tuple[int, float, dict[str, float]]]


def check_query(text: str, what: str = "query", limit: int | None = None) -> str:
    """The one rule for a query or question: not blank, and not longer than ``limit``."""
    if not text.strip():
        raise InputError(f"empty {what}: ask something")
    if limit is not None and len(text) > limit:
        raise InputError(f"the {what} is {len(text)} characters, over the limit of {limit}: "
                         "shorten it")
    return text


def _minmax(x: Floats) -> Floats:
    if not len(x):
        return x
    lo, hi = float(x.min()), float(x.max())
    if hi - lo < 1e-12:
        return np.ones_like(x)
    return (x - lo) / (hi - lo)


def _zscore(x: Floats) -> Floats:
    if not len(x):
        return x
    mean, std = float(x.mean()), float(x.std())
    if std < 1e-12:
        return np.zeros_like(x)
    return (x - mean) / std


def _ranks(ids: npt.NDArray[np.int64], scores: Floats) -> Floats:
    """1-based rank of each item by score, best first, ties by id."""
    ranks = np.empty(len(ids))
    ranks[np.lexsort((ids, -scores))] = np.arange(1, len(ids) + 1)
    return ranks


def _on_values(f: Callable[[Floats], Floats], scores: Mapping[int, float]) -> dict[int, float]:
    values = f(np.fromiter(scores.values(), dtype=np.float64, count=len(scores)))
    return dict(zip(scores, values.tolist(), strict=True))


def minmax(scores: Mapping[int, float]) -> dict[int, float]:
    """Scale to [0, 1]; all-equal scores map to 1 (they are equally good)."""
    return _on_values(_minmax, scores)


def zscore(scores: Mapping[int, float]) -> dict[int, float]:
    """Standardize to mean 0, deviation 1; all-equal scores map to 0."""
    return _on_values(_zscore, scores)


def _weighted(d: Mapping[int, float], b: Mapping[int, float], weight: float) -> dict[int, float]:
    """weight * d + (1 - weight) * b over both key sets; a missing score counts as 0."""
    return {i: weight * d.get(i, 0.0) + (1 - weight) * b.get(i, 0.0) for i in set(d) | set(b)}


def convex_fusion(dense: Mapping[int, float], lexical: Mapping[int, float],
                  weight: float) -> dict[int, float]:
    """weight * minmax(dense) + (1 - weight) * minmax(lexical)."""
    return _weighted(minmax(dense), minmax(lexical), weight)


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


def fuse(method: str, ids: npt.NDArray[np.int64], dense: Floats, lexical: Floats,
         weight: float) -> Floats:
    """The functions above on aligned arrays: every candidate has both scores."""
    if method == "rrf":
        return 1.0 / (60 + _ranks(ids, dense)) + 1.0 / (60 + _ranks(ids, lexical))
    scale = _zscore if method == "zscore" else _minmax
    return weight * scale(dense) + (1 - weight) * scale(lexical)


class Retriever(ABC):
    """Subclasses rank a batch of queries; ``search`` is the one-query case."""

    name: str

    def __init__(self, index: Index, allowed: Allowed | None = None) -> None:
        self.index = index
        self.allowed = allowed

    @property
    def empty(self) -> bool:
        """Nothing to search: an empty index, or a filter that selects nothing."""
        return self.index.vectors.count() == 0 or (
            self.allowed is not None and not len(self.allowed.rows))

    def _dense(self, vectors: Vectors, k: int) -> tuple[Vectors, npt.NDArray[np.int64]]:
        if self.allowed is None:
            return self.index.vectors.search(vectors, k)
        return self.index.vectors.search(vectors, k, self.allowed)

    def _lexical(self, query: str) -> tuple[npt.NDArray[np.int64], Scores]:
        """The allowed chunks holding a query term (rows ascending) and their BM25 scores
        (with the statistics of the whole index: a filter narrows, it does not rescore)."""
        rows, scores = self.index.lexical.matches(query)
        if self.allowed is None:
            return rows, scores
        keep = self.allowed.holds(rows)
        return rows[keep], scores[keep]

    @abstractmethod
    def rank(self, queries: Sequence[str], k: int,
             vectors: Vectors | None = None) -> list[Scored]:
        """Per query, up to k (chunk row id, score, per-stage scores), best first.

        ``vectors``: the queries' embeddings when the caller already has them.
        """

    def search_batch(self, queries: Sequence[str], k: int,
                     vectors: Vectors | None = None) -> list[list[Hit]]:
        for q in queries:
            check_query(q)
        if k < 1:
            raise InputError(f"k must be at least 1, got {k}")
        ranked = self.rank(queries, k, vectors)
        chunks = self.index.store.chunks_by_ids(i for r in ranked for i, _, _ in r)
        titles = self.index.store.titles(c.doc_id for c in chunks.values())
        where = self.index.store.span_locators((c.doc_id, c.char_start, c.char_end)
                                               for c in chunks.values())
        return [
            [Hit(rank=n, score=score, chunk=chunks[i], title=titles[chunks[i].doc_id][0],
                 source=titles[chunks[i].doc_id][1], stage_scores=stages, row=i,
                 locator=where.get((chunks[i].doc_id, chunks[i].char_start)))
             for n, (i, score, stages) in enumerate(r, start=1)]
            for r in ranked
        ]

    def search(self, query: str, k: int, vector: Vectors | None = None) -> list[Hit]:
        return self.search_batch([query], k, None if vector is None else vector[None, :])[0]


class DenseRetriever(Retriever):
    name = "dense"

    def __init__(self, index: Index, embedder: Embedder, allowed: Allowed | None = None) -> None:
        super().__init__(index, allowed)
        self.embedder = embedder

    def rank(self, queries: Sequence[str], k: int,
             vectors: Vectors | None = None) -> list[Scored]:
        if self.empty:
            return [[] for _ in queries]
        if vectors is None:
            vectors = self.embedder.embed_queries(queries)
        scores, ids = self._dense(vectors, k)
        return [[(int(i), float(s), {"dense": float(s)}) for s, i in zip(row_s, row_i, strict=True)
                 if i >= 0] for row_s, row_i in zip(scores, ids, strict=True)]


class BM25Retriever(Retriever):
    name = "bm25"

    def rank(self, queries: Sequence[str], k: int,
             vectors: Vectors | None = None) -> list[Scored]:
        out: list[Scored] = []
        for q in queries:
            rows, all_scores = self._lexical(q)
            top = top_n(all_scores, k)
            scores, ids = all_scores[top], rows[top]
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
                 sentence_weight: float = 0.0, allowed: Allowed | None = None) -> None:
        super().__init__(index, allowed)
        self.embedder = embedder
        self.weight = weight
        self.candidates = candidates
        self.method = method
        self.sentence_weight = sentence_weight

    def rank(self, queries: Sequence[str], k: int,
             qvecs: Vectors | None = None) -> list[Scored]:
        vectors = self.index.vectors
        if self.empty:
            return [[] for _ in queries]
        n = max(k, self.candidates)
        if qvecs is None:
            qvecs = self.embedder.embed_queries(queries)
        d_scores, d_ids = self._dense(qvecs, n)
        out: list[Scored] = []
        for qi, query in enumerate(queries):
            found = d_ids[qi] >= 0
            rows, scores = self._lexical(query)  # rows ascending, every score > 0
            bm25_ids = rows[top_n(scores, n)]
            missing = bm25_ids[~np.isin(bm25_ids, d_ids[qi])]
            ids = np.concatenate([d_ids[qi][found], missing])
            dense = np.concatenate([d_scores[qi][found].astype(np.float64),
                                    vectors.vectors(missing.tolist()) @ qvecs[qi]])
            bm25 = _lookup(rows, scores, ids)
            fused = fuse(self.method, ids, dense, bm25, self.weight)
            best = None
            if self.sentence_weight > 0 and self.index.sentences.count():
                candidates = ids.tolist()
                by_row = self.index.sentences.best(candidates, qvecs[qi])
                best = np.array([by_row[r] for r in candidates], dtype=np.float64)
                fused = fused + self.sentence_weight * _zscore(best)
            ranked = []
            for j in np.lexsort((ids, -fused))[:k].tolist():
                stages = {"dense": float(dense[j]), "bm25": float(bm25[j]),
                          "fused": float(fused[j])}
                if best is not None:
                    stages["sentence"] = float(best[j])
                ranked.append((int(ids[j]), float(fused[j]), stages))
            out.append(ranked)
        return out


def _lookup(rows: npt.NDArray[np.int64], scores: npt.NDArray[np.float32],
            ids: npt.NDArray[np.int64]) -> Floats:
    """The score of each of ``ids`` among (ascending ``rows``, ``scores``); 0 if absent."""
    if not len(rows):
        return np.zeros(len(ids))
    at = np.minimum(np.searchsorted(rows, ids), len(rows) - 1)
    return np.where(rows[at] == ids, scores[at], 0.0).astype(np.float64)


def make_retriever(name: RetrieverName, index: Index, embedder: Callable[[], Embedder],
                   hybrid_weight: float = 0.6, candidates: int = 100, method: str = "zscore",
                   sentence_weight: float = 0.5, allowed: Allowed | None = None) -> Retriever:
    """The retriever called ``name``; ``embedder`` is only asked for when it is needed.
    ``allowed``: the chunks a filter selects (None: all)."""
    if name == "dense":
        return DenseRetriever(index, embedder(), allowed)
    if name == "bm25":
        return BM25Retriever(index, allowed)
    if name == "hybrid":
        return HybridRetriever(index, embedder(), hybrid_weight, candidates, method,
                               sentence_weight, allowed)
    raise InputError(f"unknown retriever {name!r}: use {', '.join(RETRIEVER_NAMES)}")
