"""Each swappable stage built from Settings, so the pipeline only wires them together.

Building is the expensive part (a model load, an ONNX export on first use), so
``Lazy`` holds a stage until something first needs it: `rag search` never loads
the evidence scorer, and `rag serve` loads everything once, in the background.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from pathlib import Path
from typing import Generic, TypeVar

from rag.answer import Composer
from rag.chunking import Chunker
from rag.config import Settings
from rag.crossencoder import CrossEncoder
from rag.embedding import Embedder, SentenceTransformerEmbedder, packaged_model_path
from rag.generate import GenerativeComposer
from rag.index import Index
from rag.llm import LLMConfig, OpenAIWriter, Writer
from rag.rerank import CrossEncoderReranker, Reranker
from rag.scorer import EvidenceScorer
from rag.scorer import load as load_scorer
from rag.verify import Verifier

_T = TypeVar("_T")

PACKAGED_EVIDENCE = Path(__file__).parent / "data" / "evidence"


class Lazy(Generic[_T]):
    """A value built on first use, once, even when threads ask for it together."""

    def __init__(self, build: Callable[[], _T], value: _T | None = None) -> None:
        self._build = build
        self._value = value
        self._lock = threading.Lock()

    @property
    def loaded(self) -> bool:
        return self._value is not None

    def get(self) -> _T:
        value = self._value
        if value is None:
            with self._lock:
                if self._value is None:
                    self._value = self._build()
                value = self._value
        return value


def onnx_dir(settings: Settings) -> Path:
    """Where model exports are cached: RAG_ONNX_DIR, or beside the index."""
    return (settings.onnx_dir or Path(settings.index_dir) / ".onnx").resolve()


def build_embedder(settings: Settings) -> Embedder:
    """The query and passage encoder; on a Ray cluster, one that embeds on its actors."""
    s = settings
    if s.ray_address is None:
        return SentenceTransformerEmbedder(s.model_name, s.model_path, onnx_dir(s),
                                           s.embed_backend, s.query_int8)
    from rag.distributed import EmbedderSpec, RayEmbedder, connect

    connect(s.ray_address)  # a wrong address fails before the model loads
    spec = EmbedderSpec(s.model_name, s.model_path, onnx_dir(s), s.embed_backend, s.query_int8)
    return RayEmbedder(spec.build(), spec, s.ray_address, s.ray_actors)


def build_scorer(settings: Settings) -> EvidenceScorer:
    """The evidence scorer, with its cross-encoder stage unless RAG_EVIDENCE_RERANK=0."""
    s = settings
    folder = s.evidence_model or PACKAGED_EVIDENCE
    cross = None
    if s.evidence_rerank:
        cross = CrossEncoder(s.model_path or packaged_model_path(), folder / "adapter",
                             onnx_dir(s), s.evidence_int8)
    return load_scorer(folder, cross)


def build_reranker(settings: Settings) -> Reranker | None:
    """The optional passage reranker (RAG_RERANKER_MODEL); None leaves it off."""
    if settings.reranker_model is None:
        return None
    return CrossEncoderReranker(settings.reranker_model)


def build_chunker(settings: Settings, embedder: Embedder) -> Chunker:
    """Chunks bounded by the model's own word pieces when it has a limit."""
    return Chunker(settings.chunk_tokens, settings.chunk_overlap,
                   count_wordpieces=embedder.count_tokens if embedder.max_tokens else None,
                   max_wordpieces=embedder.max_tokens)


def build_composer(settings: Settings, scorer: EvidenceScorer) -> Composer:
    return Composer(scorer, settings.answer_max_words, settings.evidence_neighbours,
                    abstain_below=settings.abstain_threshold,
                    ocr_floor=settings.ocr_min_confidence)


def build_writer(settings: Settings) -> Writer | None:
    """The LLM that writes generative answers; None when RAG_LLM_BASE_URL is unset."""
    s = settings
    if s.llm_base_url is None:
        return None
    key = s.llm_api_key.get_secret_value() if s.llm_api_key else "not-needed"
    return OpenAIWriter(LLMConfig(s.llm_base_url, s.llm_model, key, s.llm_timeout_s,
                                  s.llm_max_tokens, s.llm_temperature))


def build_generator(settings: Settings, writer: Writer, scorer: EvidenceScorer,
                    embedder: Embedder) -> GenerativeComposer:
    s = settings
    return GenerativeComposer(writer, Verifier(scorer, embedder, s.verify_threshold),
                              build_composer(s, scorer), s.llm_base_url or "",
                              s.llm_max_sentences, s.llm_fallback == "extractive")


def on_load(settings: Settings) -> Callable[[Index], Index] | None:
    """What to do with each snapshot once loaded: on Ray, spread its vectors over actors."""
    s = settings
    address = s.ray_address
    if address is None or s.ray_shards <= 1:
        return None

    def spread(index: Index) -> Index:
        from rag.distributed import shard

        return shard(index, s.ray_shards, address)

    return spread
