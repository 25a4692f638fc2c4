from __future__ import annotations

import numpy as np
import pytest

from rag.errors import InputError
from rag.pipeline import Pipeline
from rag.retrieval import (
    convex_fusion,
    fuse,
    minmax,
    rrf_fusion,
    zscore,
    zscore_fusion,
)
from tests.seed_facts import SEED_QUESTIONS


@pytest.mark.parametrize("retriever", ["dense", "bm25", "hybrid"])
def test_the_right_article_comes_first(seed_pipeline: Pipeline, retriever: str) -> None:
    for question, doc_id, _ in SEED_QUESTIONS:
        hits = seed_pipeline.search(question, 3, retriever)  # type: ignore[arg-type]
        assert hits[0].chunk.doc_id == doc_id, (retriever, question)
        assert [h.rank for h in hits] == [1, 2, 3]
        assert hits[0].score >= hits[1].score >= hits[2].score


def test_hits_carry_text_spans_and_stage_scores(seed_pipeline: Pipeline) -> None:
    hits = seed_pipeline.search("Open RAN 5G software", 5, "hybrid")
    for h in hits:
        doc = seed_pipeline.document(h.chunk.doc_id)
        assert doc.text[h.chunk.char_start:h.chunk.char_end] == h.chunk.text
        assert set(h.stage_scores) == {"dense", "bm25", "fused", "sentence"}
        assert h.title == doc.title
        starts, ends, vectors = seed_pipeline.index.sentences.of_chunk(h.row)
        assert [doc.text[a:b] for a, b in zip(starts, ends, strict=True)]
        assert all(h.chunk.char_start <= a < b <= h.chunk.char_end
                   for a, b in zip(starts, ends, strict=True))
        query = seed_pipeline.embedder.embed_query("Open RAN 5G software")
        assert h.stage_scores["sentence"] == pytest.approx(float((vectors @ query).max()),
                                                          abs=1e-5)


def test_k_and_empty_queries(seed_pipeline: Pipeline) -> None:
    assert len(seed_pipeline.search("Japan", 50, "dense")) == 15  # every chunk, no more
    with pytest.raises(InputError, match="empty"):
        seed_pipeline.search("   ")
    with pytest.raises(InputError, match="k must be"):
        seed_pipeline.retriever("bm25").search("Japan", 0)


def test_bm25_ignores_words_it_has_never_seen(seed_pipeline: Pipeline) -> None:
    assert seed_pipeline.search("xylophonist zzzq", 5, "bm25") == []


@pytest.mark.unit
def test_minmax_by_hand() -> None:
    assert minmax({1: 2.0, 2: 4.0, 3: 3.0}) == {1: 0.0, 2: 1.0, 3: 0.5}
    assert minmax({7: 0.3, 8: 0.3}) == {7: 1.0, 8: 1.0}
    assert minmax({}) == {}


@pytest.mark.unit
def test_convex_fusion_by_hand() -> None:
    dense = {1: 0.9, 2: 0.5, 3: 0.1}
    lexical = {2: 10.0, 3: 5.0, 4: 0.0}
    fused = convex_fusion(dense, lexical, weight=0.25)
    # dense -> {1: 1, 2: .5, 3: 0}; lexical -> {2: 1, 3: .5, 4: 0}
    assert fused == pytest.approx({1: 0.25, 2: 0.875, 3: 0.375, 4: 0.0})


@pytest.mark.unit
def test_zscore_fusion_by_hand() -> None:
    assert zscore({1: 1.0, 2: 3.0}) == {1: -1.0, 2: 1.0}
    assert zscore({5: 2.0, 6: 2.0}) == {5: 0.0, 6: 0.0}
    dense = {1: 1.0, 2: 3.0}  # z: 1 -> -1, 2 -> 1
    lexical = {1: 4.0, 2: 2.0, 3: 0.0}  # mean 2, std sqrt(8/3): 1 -> 1.2247, 3 -> -1.2247
    fused = zscore_fusion(dense, lexical, weight=0.5)
    z = 2 / (8 / 3) ** 0.5
    assert fused == pytest.approx({1: 0.5 * (-1 + z), 2: 0.5, 3: -0.5 * z})


@pytest.mark.unit
def test_rrf_fusion_by_hand() -> None:
    fused = rrf_fusion([[1, 2, 3], [3, 1]], k=60)
    assert fused == pytest.approx({1: 1 / 61 + 1 / 62, 2: 1 / 62, 3: 1 / 63 + 1 / 61})
    assert max(fused, key=fused.__getitem__) == 1


@pytest.mark.unit
@pytest.mark.parametrize("method", ["convex", "zscore", "rrf"])
def test_fuse_on_arrays_agrees_with_the_mapping_functions(method: str) -> None:
    rng = np.random.default_rng(7)
    ids = rng.permutation(500)[:120].astype(np.int64)
    dense = rng.normal(size=120)
    lexical = np.where(rng.random(120) < 0.3, 0.0, rng.gamma(2.0, size=120))
    fused = fuse(method, ids, dense, lexical, 0.6)
    d = dict(zip(ids.tolist(), dense.tolist(), strict=True))
    b = dict(zip(ids.tolist(), lexical.tolist(), strict=True))
    if method == "rrf":
        order = [sorted(s, key=lambda i: (-s[i], i)) for s in (d, b)]
        expected = rrf_fusion(order)
    else:
        expected = (zscore_fusion if method == "zscore" else convex_fusion)(d, b, 0.6)
    assert dict(zip(ids.tolist(), fused.tolist(), strict=True)) == pytest.approx(expected,
                                                                                  abs=1e-12)
