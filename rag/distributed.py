"""Scale-out on Ray: bulk embedding on an actor pool, vector search over shards.

Nothing here is a second implementation of a stage. ``RayEmbedder`` hands the
texts the single-machine path would embed to Ray Data ``map_batches`` on actors
that each build the same ``SentenceTransformerEmbedder`` once; chunking, dedupe,
vector reuse and the index writer stay where they are, so the index written is
the one the single-machine path writes. ``shard`` splits a loaded snapshot's
vectors and sentence vectors into N Ray actors by chunk row (row % N) and puts
proxies with the same surface in their place: retrieval and answering run
unchanged, each exact search fans out and the top-k are merged by score, so the
results equal the single index's. BM25 and the SQLite store stay with the caller
(small next to the vectors). Ray is imported only here, and only when used:
`pip install .[ray]`.
"""

from __future__ import annotations

import socket
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from rag.arrays import Ints, Vectors
from rag.config import Backend
from rag.embedding import Embedder, SentenceTransformerEmbedder
from rag.errors import RagError
from rag.index import Index
from rag.selection import Allowed, exact_top
from rag.sentence_index import SentenceIndex
from rag.vector_index import VectorIndex


class RayUnavailableError(RagError):
    status = 503


def connect(address: str) -> Any:
    """Join the Ray cluster at ``address`` (once per process); the ray module."""
    try:
        import ray
    except ImportError:
        raise RayUnavailableError("Ray is not installed: pip install 'rag-cited[ray]'") from None
    if not ray.is_initialized():
        _reachable(address)
        try:
            ray.init(address=address, log_to_driver=False, configure_logging=False)
        except (ConnectionError, RuntimeError) as exc:
            raise RayUnavailableError(f"cannot join the Ray cluster at {address}: {exc}; "
                                      "start it with `ray start --head`") from None
    return ray


def _reachable(address: str, timeout: float = 5.0) -> None:
    """Fail in seconds on a wrong HOST:PORT; ray.init would retry for minutes."""
    host, _, port = address.rpartition(":")
    if not host or not port.isdigit() or "://" in address:
        return  # "auto", "ray://...": left to Ray
    try:
        socket.create_connection((host, int(port)), timeout=timeout).close()
    except OSError as exc:
        raise RayUnavailableError(
            f"cannot reach the Ray cluster at {address} ({exc.strerror or exc}): start it with "
            "`ray start --head` there, or pass the address it printed") from None


@dataclass(frozen=True)
class EmbedderSpec:
    """What a worker needs to build the driver's embedder for itself."""

    name: str
    path: Path | None
    onnx_cache: Path | None
    backend: Backend
    query_int8: bool = False

    def build(self) -> SentenceTransformerEmbedder:
        return SentenceTransformerEmbedder(self.name, self.path, self.onnx_cache, self.backend,
                                           self.query_int8)


class _EmbedActor:
    """One per pool slot: loads the model once, then embeds batch after batch."""

    def __init__(self, spec: EmbedderSpec) -> None:
        self.embedder = spec.build()

    def __call__(self, batch: dict[str, Any]) -> dict[str, Any]:
        return {"i": batch["i"], "vector": self.embedder.embed([str(t) for t in batch["text"]])}


class RayEmbedder(Embedder):
    """Bulk ``embed`` on a Ray actor pool; queries and token counts stay on the local model."""

    def __init__(self, local: SentenceTransformerEmbedder, spec: EmbedderSpec, address: str,
                 actors: int | None = None, min_texts: int = 16) -> None:
        self.local = local
        self.spec = spec
        self.address = address
        self.actors = actors
        self.min_texts = min_texts
        self.name = local.name
        self.dimension = local.dimension
        self.max_tokens = local.max_tokens
        self.query_calls, self.query_batch = local.query_calls, local.query_batch
        self.remote_texts = 0  # how many texts went through the cluster (for tests and logs)

    def embed_batch(self, texts: Sequence[str]) -> Vectors:
        return self.local.embed_batch(texts)

    def embed_query_batch(self, texts: Sequence[str]) -> Vectors:
        return self.local.embed_query_batch(texts)

    def count_tokens(self, text: str) -> int:
        return self.local.count_tokens(text)

    def embed_spans(self, texts: Sequence[str], spans: Sequence[Sequence[tuple[int, int]]],
                    progress: bool = False) -> tuple[Vectors, list[Vectors]]:
        return self.local.embed_spans(texts, spans, progress)

    def embed(self, texts: Sequence[str], batch_size: int = 32, progress: bool = False) -> Vectors:
        if len(texts) < self.min_texts:  # not worth a round trip through the cluster
            return self.local.embed(texts, batch_size, progress)
        ray = connect(self.address)
        actors = self.actors or max(1, int(ray.cluster_resources().get("CPU", 1)))
        # Longest first, dealt round-robin into blocks: every actor gets similar work.
        order = sorted(range(len(texts)), key=lambda i: len(texts[i]), reverse=True)
        items = [{"i": i, "text": texts[i]} for i in order]
        blocks = min(len(items), actors * 4)
        dataset = ray.data.from_items(items, override_num_blocks=blocks).map_batches(
            _EmbedActor, fn_constructor_args=(self.spec,), batch_size=256, num_cpus=1,
            compute=ray.data.ActorPoolStrategy(size=actors), batch_format="numpy")
        out = np.zeros((len(texts), self.dimension), dtype=np.float32)
        for batch in dataset.iter_batches(batch_size=None, batch_format="numpy"):
            out[batch["i"]] = batch["vector"]
            self.remote_texts += len(batch["i"])
        return out


class _Shard:
    """A Ray actor holding one slice of a snapshot's vectors and sentence vectors."""

    def __init__(self, dimension: int, ids: Ints, vectors: Vectors, chunk: Ints,
                 start: Ints, end: Ints, sentence_vectors: Vectors) -> None:
        self.vectors = VectorIndex(dimension, threads=1)
        self.vectors.index(ids.tolist(), vectors)
        self.sentences = SentenceIndex(chunk, start, end, sentence_vectors)

    def search(self, queries: Vectors, k: int) -> tuple[Vectors, Ints]:
        return self.vectors.search(queries, k)

    def vectors_of(self, ids: list[int]) -> Vectors:
        return self.vectors.vectors(ids)

    def best(self, rows: list[int], query: Vectors) -> dict[int, float]:
        return self.sentences.best(rows, query)

    def of_chunk(self, row: int) -> tuple[Ints, Ints, Vectors]:
        return self.sentences.of_chunk(row)


class ShardedVectors:
    """VectorIndex's search surface over shard actors: fan out, merge the top k by score."""

    def __init__(self, ray: Any, shards: list[Any], count: int, dimension: int) -> None:
        self._ray, self.shards, self._count, self.dimension = ray, shards, count, dimension

    def count(self) -> int:
        return self._count

    def describe(self) -> str:
        return f"{len(self.shards)} Ray shards of IDMap2,Flat"

    def search(self, queries: Vectors, k: int,
               allowed: Allowed | None = None) -> tuple[Vectors, Ints]:
        """With ``allowed`` (a filter), its rows' vectors are fetched and scored exactly."""
        if allowed is not None:
            return exact_top(queries, allowed.rows, self.vectors(allowed.rows.tolist()), k)
        parts = self._ray.get([s.search.remote(queries, k) for s in self.shards])
        scores = np.concatenate([p[0] for p in parts], axis=1)
        ids = np.concatenate([p[1] for p in parts], axis=1)
        scores = np.where(ids < 0, -np.inf, scores)
        top = np.argsort(-scores, axis=1, kind="stable")[:, :k]
        return (np.take_along_axis(scores, top, axis=1).astype(np.float32),
                np.take_along_axis(ids, top, axis=1))

    def vectors(self, ids: Sequence[int]) -> Vectors:
        out = np.zeros((len(ids), self.dimension), dtype=np.float32)
        n = len(self.shards)
        owned = [[p for p, i in enumerate(ids) if i % n == s] for s in range(n)]
        refs = [self.shards[s].vectors_of.remote([ids[p] for p in owned[s]])
                for s in range(n) if owned[s]]
        for positions, vectors in zip([o for o in owned if o], self._ray.get(refs),
                                      strict=True):
            out[positions] = vectors
        return out


class ShardedSentences:
    """SentenceIndex's read surface over the same shard actors."""

    def __init__(self, ray: Any, shards: list[Any], count: int) -> None:
        self._ray, self.shards, self._count = ray, shards, count

    def count(self) -> int:
        return self._count

    def best(self, rows: Iterable[int], query: Vectors) -> dict[int, float]:
        n = len(self.shards)
        rows = list(rows)
        refs = [self.shards[s].best.remote([r for r in rows if r % n == s], query)
                for s in range(n)]
        merged: dict[int, float] = {}
        for part in self._ray.get(refs):
            merged.update(part)
        return {r: merged[r] for r in rows}

    def of_chunk(self, row: int) -> tuple[Ints, Ints, Vectors]:
        result: tuple[Ints, Ints, Vectors] = self._ray.get(
            self.shards[row % len(self.shards)].of_chunk.remote(row))
        return result


def shard(index: Index, n: int, address: str) -> Index:
    """Move ``index``'s vectors and sentence vectors into ``n`` Ray actors, in place."""
    ray = connect(address)
    ids = index.vectors.ids()
    vectors = index.vectors.vectors(ids.tolist()) if len(ids) else np.zeros(
        (0, index.vectors.dimension), dtype=np.float32)
    sentences = index.sentences
    remote = ray.remote(num_cpus=0)(_Shard)
    shards = []
    for s in range(n):
        mine = ids % n == s
        theirs = sentences.chunk % n == s
        shards.append(remote.remote(
            index.vectors.dimension, ids[mine], vectors[mine], sentences.chunk[theirs],
            sentences.start[theirs], sentences.end[theirs], sentences.vectors[theirs]))
    index.vectors = ShardedVectors(ray, shards, len(ids), index.vectors.dimension)  # type: ignore[assignment]
    index.sentences = ShardedSentences(ray, shards, sentences.count())  # type: ignore[assignment]
    return index
