"""Optional second stage: rescore the top hits with a cross-encoder.

Off by default: no cross-encoder ships in a package here, so quality figures in
the README are without it. Set RAG_RERANKER_MODEL to a local CrossEncoder folder.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path

import numpy as np
import numpy.typing as npt

from rag.arrays import Vectors
from rag.retrieval import Retriever
from rag.types import Hit


class Reranker(ABC):
    name: str = "reranker"

    @abstractmethod
    def score(self, query: str, passages: Sequence[str]) -> npt.NDArray[np.float32]:
        """One relevance score per passage; higher is better."""

    def search(self, retriever: Retriever, query: str, k: int, candidates: int,
               vector: Vectors | None = None) -> list[Hit]:
        """The retriever's best ``candidates`` hits, reranked down to ``k``."""
        return self.rerank(query, retriever.search(query, max(k, candidates), vector), k)

    def rerank(self, query: str, hits: Sequence[Hit], k: int) -> list[Hit]:
        """The best k hits by the reranker's score, re-ranked from 1."""
        if not hits:
            return []
        scores = self.score(query, [h.chunk.text for h in hits])
        order = np.argsort(-scores, kind="stable")[:k]
        return [replace(hits[i], rank=n, score=float(scores[i]),
                        stage_scores={**hits[i].stage_scores, "rerank": float(scores[i])})
                for n, i in enumerate(order, start=1)]


class CrossEncoderReranker(Reranker):
    def __init__(self, path: Path, batch_size: int = 32) -> None:
        from sentence_transformers import CrossEncoder

        self.name = str(path)
        self._model = CrossEncoder(str(path), device="cpu", local_files_only=True)
        self._batch_size = batch_size

    def score(self, query: str, passages: Sequence[str]) -> npt.NDArray[np.float32]:
        scores = self._model.predict([(query, p) for p in passages],
                                     batch_size=self._batch_size, show_progress_bar=False)
        return np.asarray(scores, dtype=np.float32).reshape(len(passages), -1)[:, -1]
