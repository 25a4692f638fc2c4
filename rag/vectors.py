"""Dense vectors in FAISS: exact inner product over normalized vectors, keyed by chunk id."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import faiss
import numpy as np
import numpy.typing as npt

IdArray = npt.NDArray[np.int64]
FloatArray = npt.NDArray[np.float32]


class VectorIndex:
    """The ANN surface (index/search/save/load/count) over ``IndexIDMap2(IndexFlatIP)``."""

    def __init__(self, dimension: int, index: Any = None, threads: int | None = None) -> None:
        self.dimension = dimension
        # OpenMP threads for search. The setting is per calling thread (API requests run on
        # a pool of them), so search() applies it each time; None leaves FAISS's default.
        self.threads = threads
        self._index: Any = index if index is not None else faiss.IndexIDMap2(
            faiss.IndexFlatIP(dimension))

    def index(self, ids: Sequence[int], vectors: FloatArray) -> None:
        if len(ids) == 0:
            return
        if vectors.shape != (len(ids), self.dimension):
            raise ValueError(f"expected {len(ids)} vectors of {self.dimension} dimensions, "
                             f"got {vectors.shape}")
        self._index.add_with_ids(np.ascontiguousarray(vectors, dtype=np.float32),
                                 np.asarray(ids, dtype=np.int64))

    def remove(self, ids: Sequence[int]) -> int:
        if len(ids) == 0:
            return 0
        return int(self._index.remove_ids(np.asarray(ids, dtype=np.int64)))

    def search(self, queries: FloatArray, k: int) -> tuple[FloatArray, IdArray]:
        """Top-k (scores, ids) per query row; missing slots have id -1."""
        k = max(1, min(k, self.count()))
        if self.count() == 0:
            n = len(queries)
            return np.zeros((n, 0), dtype=np.float32), np.zeros((n, 0), dtype=np.int64)
        if self.threads is not None:
            faiss.omp_set_num_threads(self.threads)
        scores, ids = self._index.search(np.ascontiguousarray(queries, dtype=np.float32), k)
        return scores, ids

    def vectors(self, ids: Sequence[int]) -> FloatArray:
        """The stored vectors of these ids (to rescore candidates found elsewhere)."""
        if len(ids) == 0:
            return np.zeros((0, self.dimension), dtype=np.float32)
        out: FloatArray = self._index.reconstruct_batch(np.asarray(ids, dtype=np.int64))
        return out

    def ids(self) -> IdArray:
        return faiss.vector_to_array(self._index.id_map).astype(np.int64)

    def count(self) -> int:
        return int(self._index.ntotal)

    def save(self, path: Path) -> None:
        faiss.write_index(self._index, str(path))

    @classmethod
    def load(cls, path: Path) -> VectorIndex:
        index = faiss.read_index(str(path))
        return cls(index.d, index)
