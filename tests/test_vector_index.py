"""Exact and approximate (IVF) vector search in real FAISS, alone and inside the pipeline."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from rag.config import Settings
from rag.embedding import SentenceTransformerEmbedder
from rag.index import MANIFEST, current_snapshot
from rag.pipeline import Pipeline
from rag.vector_index import VectorIndex
from tests.seed_facts import SEED_QUESTIONS, SEEDS


def _clustered(n: int, dimension: int = 64, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    centres = rng.normal(size=(20, dimension))
    x = centres[rng.integers(0, 20, n)] + 0.5 * rng.normal(size=(n, dimension))
    return (x / np.linalg.norm(x, axis=1, keepdims=True)).astype(np.float32)


@pytest.mark.unit
def test_past_the_threshold_search_turns_approximate_and_keeps_every_id(tmp_path: Path) -> None:
    x = _clustered(3000)
    ids = list(range(10, 3010))
    exact = VectorIndex(64)
    exact.index(ids, x)
    assert not exact.make_approximate(5000) and not exact.approximate
    ivf = VectorIndex(64)
    ivf.index(ids, x)
    assert ivf.make_approximate(3000) and ivf.approximate and ivf.describe().startswith("ivf")
    assert sorted(ivf.ids().tolist()) == ids and ivf.count() == 3000
    assert np.array_equal(ivf.vectors([10, 3009]), x[[0, 2999]])
    queries = _clustered(50, seed=1)
    _, truth = exact.search(queries, 10)
    ivf.nprobe = 10_000  # every list: the same answers as exact search
    assert np.array_equal(ivf.search(queries, 10)[1], truth)
    ivf.nprobe = 8
    found = ivf.search(queries, 10)[1]
    recall = np.mean([len(set(a) & set(b)) / 10 for a, b in zip(found, truth, strict=True)])
    assert recall > 0.8
    # Replacing documents removes and adds ids in place; a saved index stays approximate.
    assert ivf.remove([10, 11, 12]) == 3
    ivf.index([5000], x[:1])
    ivf.save(tmp_path / "v.faiss")
    again = VectorIndex.load(tmp_path / "v.faiss")
    assert again.approximate and again.count() == 2998
    assert 10 not in again.ids().tolist() and 5000 in again.ids().tolist()


def test_the_pipeline_serves_and_edits_an_approximate_index(
        tmp_path: Path, embedder: SentenceTransformerEmbedder) -> None:
    settings = Settings(index_dir=tmp_path / "index", ann_threshold=10, ann_nprobe=64)
    pipeline = Pipeline(settings, embedder=embedder)
    pipeline.ingest([SEEDS])
    snapshot = current_snapshot(settings.index_dir)
    assert snapshot is not None
    assert json.loads((snapshot / MANIFEST).read_text())["vectors"].startswith("ivf")
    assert pipeline.index.vectors.approximate
    for question, doc_id, _ in SEED_QUESTIONS:
        assert pipeline.search(question, 3)[0].chunk.doc_id == doc_id
    doc_id, _ = pipeline.upload("note.txt", b"The kettle whistles at exactly ninety degrees.")
    assert pipeline.search("When does the kettle whistle?", 1)[0].chunk.doc_id == doc_id
    pipeline.delete(doc_id)
    _, chunks = pipeline.index.store.counts()
    assert pipeline.index.vectors.count() == chunks and pipeline.index.vectors.approximate
