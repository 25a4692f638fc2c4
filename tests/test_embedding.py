from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from rag.config import Settings
from rag.embedding import SentenceTransformerEmbedder
from rag.pipeline import Pipeline
from tests.seed_facts import SEED_QUESTIONS

TEXTS = ["Japan", "Which countries has Japan negotiated defense agreements with?",
         " ".join(["spent fuel reprocessing"] * 120),  # past 256 word pieces: truncated alike
         "Ünïcode — “quotes” and 5G, 50% of R&D."]


@pytest.fixture(scope="module")
def torch_embedder() -> SentenceTransformerEmbedder:
    return SentenceTransformerEmbedder("all-MiniLM-L6-v2", backend="torch")


@pytest.mark.parametrize("backend", ["onnx", "torch"])
def test_vectors_are_normalized_and_length_sorted_batches_keep_order(
        backend: str, embedder: SentenceTransformerEmbedder,
        torch_embedder: SentenceTransformerEmbedder) -> None:
    e = embedder if backend == "onnx" else torch_embedder
    vectors = e.embed(TEXTS * 10, batch_size=7)
    assert vectors.shape == (40, 384) and vectors.dtype == np.float32
    assert np.allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)
    assert np.allclose(vectors[:4], e.embed_batch(TEXTS), atol=1e-5)
    assert np.allclose(vectors[4:8], vectors[:4], atol=1e-6)


def test_onnx_matches_torch_for_queries_and_bulk(
        embedder: SentenceTransformerEmbedder, torch_embedder: SentenceTransformerEmbedder) -> None:
    assert embedder._onnx is not None and torch_embedder._onnx is None
    assert np.abs(embedder.embed_batch(TEXTS) - torch_embedder.embed_batch(TEXTS)).max() < 1e-5
    for text in TEXTS:
        assert np.abs(embedder.embed_query(text) - torch_embedder.embed_query(text)).max() < 1e-5
    # Bulk: many lengths, so batches are cut by the token budget and padded differently.
    many = [" ".join(["word"] * n) + f" {n}" for n in range(1, 300, 7)] + TEXTS
    assert np.abs(embedder.embed(many) - torch_embedder.embed(many)).max() < 1e-5


def test_int8_is_close_to_fp32_and_marks_its_indexes(
        embedder: SentenceTransformerEmbedder) -> None:
    assert embedder._onnx is not None
    int8 = SentenceTransformerEmbedder("all-MiniLM-L6-v2", backend="onnx-int8",
                                       onnx_cache=embedder._onnx.path.parent)
    assert int8.name == "all-MiniLM-L6-v2+int8" and embedder.name == "all-MiniLM-L6-v2"
    cosine = np.sum(int8.embed(TEXTS) * embedder.embed(TEXTS), axis=1)
    assert cosine.min() > 0.97


def test_the_export_is_made_once_and_reused(embedder: SentenceTransformerEmbedder) -> None:
    assert embedder._onnx is not None
    path = embedder._onnx.path
    stamp = path.stat().st_mtime_ns
    again = SentenceTransformerEmbedder("all-MiniLM-L6-v2", onnx_cache=path.parent,
                                        backend="onnx")
    assert again._onnx is not None and again._onnx.path == path
    assert path.stat().st_mtime_ns == stamp
    assert not list(path.parent.glob("*.tmp-*"))


def test_search_is_the_same_with_either_backend(
        seed_index: Path, embedder: SentenceTransformerEmbedder,
        torch_embedder: SentenceTransformerEmbedder) -> None:
    plain = Pipeline(Settings(index_dir=seed_index), embedder=torch_embedder)
    fast = Pipeline(Settings(index_dir=seed_index), embedder=embedder)
    for question, _, _ in SEED_QUESTIONS:
        a, b = plain.search(question, 5, "hybrid"), fast.search(question, 5, "hybrid")
        assert [h.chunk.chunk_id for h in a] == [h.chunk.chunk_id for h in b]
        assert [h.score for h in a] == pytest.approx([h.score for h in b], abs=1e-4)


@pytest.mark.unit
def test_a_folder_without_a_model_fails_clearly(tmp_path: Path) -> None:
    from rag.errors import IndexMismatchError

    with pytest.raises(IndexMismatchError, match="RAG_MODEL_PATH"):
        SentenceTransformerEmbedder("x", tmp_path)


def test_with_the_export_cached_torch_is_never_imported(
        embedder: SentenceTransformerEmbedder) -> None:
    import subprocess
    import sys

    assert embedder._onnx is not None
    cache = str(embedder._onnx.path.parent)
    probe = (
        "import sys; from pathlib import Path\n"
        "from rag.embedding import SentenceTransformerEmbedder\n"
        f"e = SentenceTransformerEmbedder('m', onnx_cache=Path({cache!r}), backend='onnx')\n"
        "e.embed_query('a question'); e.embed(['a passage'] * 40); e.count_tokens('x')\n"
        "print('torch' in sys.modules, e.dimension, e.max_tokens)\n")
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True,
                         timeout=120, check=True).stdout
    assert out.split() == ["False", "384", "256"]


def test_count_tokens_is_the_models_own_count(embedder: SentenceTransformerEmbedder,
                                              torch_embedder: SentenceTransformerEmbedder) -> None:
    for text in TEXTS:
        assert embedder.count_tokens(text) == torch_embedder.count_tokens(text)


def test_queries_through_int8_documents_stay_fp32(embedder: SentenceTransformerEmbedder) -> None:
    assert embedder._onnx is not None
    mixed = SentenceTransformerEmbedder("all-MiniLM-L6-v2", backend="onnx",
                                        onnx_cache=embedder._onnx.path.parent, query_int8=True)
    assert mixed.name == embedder.name  # its indexes hold the same fp32 vectors
    queries = [q for q, _, _ in SEED_QUESTIONS]
    fp32 = embedder.embed_queries(queries)
    int8 = mixed.embed_queries(queries)
    assert mixed._onnx is not None and mixed._onnx._bulk is None  # loaded for documents only
    assert np.abs(mixed.embed(TEXTS) - embedder.embed(TEXTS)).max() < 1e-6
    assert np.abs(mixed.embed_batch(TEXTS) - embedder.embed_batch(TEXTS)).max() < 1e-6
    assert mixed._onnx._bulk is not None
    cosine = np.sum(int8 * fp32, axis=1)
    assert cosine.min() > 0.97 and np.abs(int8 - fp32).max() > 1e-4  # close, and really int8
    one = mixed.embed_query(queries[0])
    assert np.array_equal(one, int8[0])
    assert mixed.query_calls >= 1


def test_an_int8_query_vector_does_not_depend_on_its_batch(
        embedder: SentenceTransformerEmbedder) -> None:
    assert embedder._onnx is not None
    mixed = SentenceTransformerEmbedder("all-MiniLM-L6-v2", backend="onnx",
                                        onnx_cache=embedder._onnx.path.parent, query_int8=True)
    queries = [q for q, _, _ in SEED_QUESTIONS] + TEXTS
    together = mixed.embed_queries(queries)
    for n, q in enumerate(queries):
        assert np.array_equal(mixed.embed_queries([q])[0], together[n])
