from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from rag.pipeline import Pipeline
from rag.sentence_index import SentenceIndex
from tests.seed_facts import SEED_B


def _unit(rows: list[list[float]]) -> np.ndarray:
    v = np.asarray(rows, dtype=np.float32)
    return v / np.linalg.norm(v, axis=1, keepdims=True)


@pytest.mark.unit
def test_add_remove_save_load(tmp_path: Path) -> None:
    index = SentenceIndex.empty(2).plus([7, 3, 7], [10, 0, 30], [20, 5, 40],
                                        _unit([[1, 0], [0, 1], [1, 1]]))
    assert index.count() == 3 and index.chunk_ids() == {3, 7}
    starts, ends, _ = index.of_chunk(7)
    assert starts.tolist() == [10, 30] and ends.tolist() == [20, 40]
    best = index.best([7, 3, 99], np.array([1.0, 0.0], dtype=np.float32))
    assert best[7] == 1.0 and best[3] == 0.0 and best[99] == -1.0
    index.save(tmp_path / "s.npz")
    loaded = SentenceIndex.load(tmp_path / "s.npz").without([7])
    assert loaded.count() == 1 and loaded.chunk_ids() == {3}
    assert loaded.of_chunk(7)[0].tolist() == []


def test_ingest_stores_each_sentence_once_per_chunk_with_its_vector(
        seed_pipeline: Pipeline) -> None:
    index = seed_pipeline.index
    doc = seed_pipeline.document(SEED_B)
    assert index.manifest["sentences"] == index.sentences.count() > 0
    for hit in seed_pipeline.search("Defense Innovation Initiative", 3, "dense"):
        starts, ends, vectors = index.sentences.of_chunk(hit.row)
        text = seed_pipeline.document(hit.chunk.doc_id).text
        quotes = [text[a:b] for a, b in zip(starts, ends, strict=True)]
        assert len(quotes) == len(set(quotes)) > 0
        fresh = seed_pipeline.embedder.embed_batch(quotes)
        assert np.abs(fresh - vectors).max() < 1e-4
    assert doc.doc_id == SEED_B
