from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from rag.config import Settings
from rag.embedding import SentenceTransformerEmbedder
from rag.pipeline import Pipeline
from tests.conftest import SEED_QUESTIONS

TEXTS = ["Japan", "Which countries has Japan negotiated defense agreements with?",
         " ".join(["spent fuel reprocessing"] * 120),  # past 256 word pieces: truncated alike
         "Ünïcode — “quotes” and 5G, 50% of R&D."]


@pytest.fixture(scope="module")
def onnx_embedder(tmp_path_factory: pytest.TempPathFactory) -> SentenceTransformerEmbedder:
    return SentenceTransformerEmbedder("all-MiniLM-L6-v2",
                                       onnx_cache=tmp_path_factory.mktemp("onnx"))


def test_vectors_are_normalized_and_length_sorted_batches_keep_order(
        embedder: SentenceTransformerEmbedder) -> None:
    vectors = embedder.embed(TEXTS * 10, batch_size=7)
    assert vectors.shape == (40, 384) and vectors.dtype == np.float32
    assert np.allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)
    assert np.allclose(vectors[:4], embedder.embed_batch(TEXTS), atol=1e-5)
    assert np.allclose(vectors[4:8], vectors[:4], atol=1e-6)


def test_onnx_queries_match_torch(embedder: SentenceTransformerEmbedder,
                                  onnx_embedder: SentenceTransformerEmbedder) -> None:
    assert onnx_embedder._onnx is not None
    fast = onnx_embedder.embed_batch(TEXTS)  # query-sized: the ONNX path
    assert np.abs(fast - embedder.embed_batch(TEXTS)).max() < 1e-5
    for text in TEXTS:
        assert np.abs(onnx_embedder.embed_query(text) - embedder.embed_query(text)).max() < 1e-5


def test_the_export_is_made_once_and_reused(onnx_embedder: SentenceTransformerEmbedder) -> None:
    assert onnx_embedder._onnx is not None
    path = onnx_embedder._onnx.path
    stamp = path.stat().st_mtime_ns
    again = SentenceTransformerEmbedder("all-MiniLM-L6-v2", onnx_cache=path.parent)
    assert again._onnx is not None and again._onnx.path == path
    assert path.stat().st_mtime_ns == stamp
    assert not list(path.parent.glob("*.tmp-*"))


def test_search_is_the_same_with_onnx_queries(seed_index: Path,
                                              embedder: SentenceTransformerEmbedder,
                                              onnx_embedder: SentenceTransformerEmbedder) -> None:
    plain = Pipeline(Settings(index_dir=seed_index), embedder=embedder)
    fast = Pipeline(Settings(index_dir=seed_index), embedder=onnx_embedder)
    for question, _, _ in SEED_QUESTIONS:
        a, b = plain.search(question, 5, "hybrid"), fast.search(question, 5, "hybrid")
        assert [h.chunk.chunk_id for h in a] == [h.chunk.chunk_id for h in b]
        assert [h.score for h in a] == pytest.approx([h.score for h in b], abs=1e-4)


def test_a_folder_without_a_model_fails_clearly(tmp_path: Path) -> None:
    from rag.errors import IndexMismatchError

    with pytest.raises(IndexMismatchError, match="RAG_MODEL_PATH"):
        SentenceTransformerEmbedder("x", tmp_path)
