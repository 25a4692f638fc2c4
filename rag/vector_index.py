"""Dense vectors in FAISS: inner product over normalized vectors, keyed by chunk id.

Exact search (``IndexIDMap2(IndexFlatIP)``) up to a size; past it, an inverted
file (``IndexIVFFlat``, trained once on the vectors held then) that scans only
the ``nprobe`` nearest lists. IVF rather than HNSW because it removes ids in
place, which replacing and deleting documents needs; measured on 200k chunks
by ``python -m eval.bench.ann`` (README, "Performance").
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import faiss
import numpy as np

from rag.arrays import Ints, Vectors


def excluding(rows: Ints) -> tuple[Any, Any] | None:
    """A FAISS selector of every id but ``rows`` (with the object it points into, which
    must live as long as it), or None when there is nothing to leave out."""
    if not len(rows):
        return None
    batch = faiss.IDSelectorBatch(np.ascontiguousarray(rows, dtype=np.int64))
    return faiss.IDSelectorNot(batch), batch


class VectorIndex:
    """The ANN surface (index/search/save/load/count) over ``IndexIDMap2(IndexFlatIP)``."""

    def __init__(self, dimension: int, index: Any = None, threads: int | None = None,
                 nprobe: int = 128) -> None:
        self.dimension = dimension
        self.nprobe = nprobe
        # OpenMP threads for search. The setting is per calling thread (API requests run on
        # a pool of them), so search() applies it each time; None leaves FAISS's default.
        self.threads = threads
        self._index: Any = index if index is not None else faiss.IndexIDMap2(
            faiss.IndexFlatIP(dimension))

    def index(self, ids: Sequence[int], vectors: Vectors) -> None:
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

    def search(self, queries: Vectors, k: int, exclude: Any = None) -> tuple[Vectors, Ints]:
        """Top-k (scores, ids) per query row; missing slots have id -1.

        ``exclude``: a selector from ``excluding`` (the rows a snapshot deleted), or any
        (selector, its array): only the ids it holds are searched (rag.selection).
        """
        k = max(1, min(k, self.count()))
        if self.count() == 0:
            n = len(queries)
            return np.zeros((n, 0), dtype=np.float32), np.zeros((n, 0), dtype=np.int64)
        if self.threads is not None:
            faiss.omp_set_num_threads(self.threads)
        params: Any = None
        if self.approximate:
            params = faiss.SearchParametersIVF()
            params.nprobe = self.nprobe
        elif exclude is not None:
            params = faiss.SearchParameters()
        if exclude is not None:
            params.sel = exclude[0]
        scores, ids = self._index.search(np.ascontiguousarray(queries, dtype=np.float32), k,
                                         params=params)
        return scores, ids

    def vectors(self, ids: Sequence[int]) -> Vectors:
        """The stored vectors of these ids (to rescore candidates found elsewhere)."""
        if len(ids) == 0:
            return np.zeros((0, self.dimension), dtype=np.float32)
        out: Vectors = self._index.reconstruct_batch(np.asarray(ids, dtype=np.int64))
        return out

    def ids(self) -> Ints:
        if not self.approximate:
            return faiss.vector_to_array(self._index.id_map).astype(np.int64)
        lists = self._index.invlists
        parts = [faiss.rev_swig_ptr(lists.get_ids(n), lists.list_size(n)).copy()
                 for n in range(self._index.nlist) if lists.list_size(n)]
        return np.concatenate(parts).astype(np.int64) if parts else np.zeros(0, np.int64)

    @property
    def approximate(self) -> bool:
        return isinstance(self._index, faiss.IndexIVF)

    def describe(self) -> str:
        return f"ivf{self._index.nlist},flat" if self.approximate else "flat"

    def make_approximate(self, threshold: int) -> bool:
        """From ``threshold`` vectors on, trade exact search for an inverted file.

        Lists: 4·√n (about 1,800 at 200k), trained once here; later adds and
        removes go into the same lists. Returns whether it switched.
        """
        n = self.count()
        if self.approximate or n < threshold:
            return False
        ids = self.ids()
        vectors = self.vectors(ids.tolist())
        nlist = max(1, min(int(4 * np.sqrt(n)), n // 39))
        self._quantizer = faiss.IndexFlatIP(self.dimension)  # the IVF index borrows it
        ivf = faiss.IndexIVFFlat(self._quantizer, self.dimension, nlist,
                                 faiss.METRIC_INNER_PRODUCT)
        ivf.train(vectors)
        # A hash table from id to list slot: reconstruct() and remove_ids() by chunk id.
        ivf.set_direct_map_type(faiss.DirectMap.Hashtable)  # type: ignore[attr-defined]
        ivf.add_with_ids(vectors, ids)
        self._index = ivf
        return True

    def count(self) -> int:
        return int(self._index.ntotal)

    def save(self, path: Path) -> None:
        faiss.write_index(self._index, str(path))

    @classmethod
    def load(cls, path: Path) -> VectorIndex:
        index = faiss.read_index(str(path))
        return cls(index.d, index)
