"""Candidate sentences and their features, on the real seed index."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from rag.evidence import FEATURES, features, gather
from rag.pipeline import Pipeline
from tests.seed_facts import SEED_B

QUESTION = "Which countries has Japan negotiated defense equipment cooperation agreements with?"


def _column(rows: np.ndarray, name: str) -> np.ndarray:
    return rows[:, FEATURES.index(name)]


def test_candidates_are_the_passages_sentences_and_their_neighbours(
        seed_pipeline: Pipeline) -> None:
    index, hits, vector, _ = seed_pipeline.retrieve(QUESTION, 1)
    own, _ = gather(hits, index, index.store.document, neighbours=0)
    near, vectors = gather(hits, index, index.store.document, neighbours=1)
    hit = hits[0].chunk
    assert own and all(c.own is not None and c.chunk.chunk_id == hit.chunk_id for c in own)
    # a neighbour adds the sentences of the chunks beside the hit, marked as such
    assert len(near) > len(own)
    extra = [c for c in near if c.own is None]
    assert extra and all(abs(c.chunk.ordinal - hit.ordinal) == 1 for c in extra)
    spans = [(c.doc_id, c.start, c.end) for c in near]
    assert len(spans) == len(set(spans))  # overlapping chunks give each sentence once
    for c, v in zip(near, vectors, strict=True):
        doc = index.store.document(c.doc_id)
        assert doc is not None and doc.text[c.start:c.end] == c.quote
        assert 4 <= c.words <= 120 and abs(float(np.linalg.norm(v)) - 1) < 1e-3
    assert [c.start for c in near] == sorted(c.start for c in near)  # one document, in order


def test_features_describe_each_candidate(seed_pipeline: Pipeline) -> None:
    index, hits, vector, _ = seed_pipeline.retrieve(QUESTION, 5)
    cands, vectors = gather(hits, index, index.store.document)
    rows = features(QUESTION, vector, cands, vectors, index.lexical.idf,
                    index.lexical.query_tokens)
    assert rows.shape == (len(cands), len(FEATURES)) and np.isfinite(rows).all()
    cosine = _column(rows, "cosine")
    assert np.allclose(cosine, vectors @ vector, atol=1e-6)
    assert _column(rows, "cosine_gap").max() == 0.0
    assert _column(rows, "cosine_rank")[int(np.argmax(cosine))] == 1.0
    overlap = _column(rows, "idf_overlap")
    assert ((overlap >= 0) & (overlap <= 1)).all()
    # the sentence that answers holds most of the question's rarer words
    answer = next(i for i, c in enumerate(cands) if "Australia, France, India" in c.quote)
    assert cands[answer].doc_id == SEED_B
    assert overlap[answer] == overlap.max() and overlap[answer] > 0.6
    first = [c.doc_rank == 1 for c in cands]
    assert np.array_equal(_column(rows, "first_doc") == 1, np.array(first))


def test_idf_weighs_rare_terms_above_common_ones(seed_pipeline: Pipeline) -> None:
    idf = seed_pipeline.index.lexical.idf("Japan Rokkasho unheardofword")
    assert set(idf) == {"japan", "rokkasho", "unheardofword"}
    assert idf["unheardofword"] >= idf["rokkasho"] > idf["japan"] > 0


def test_chunks_near_stays_inside_the_document(seed_pipeline: Pipeline) -> None:
    store = seed_pipeline.index.store
    near = store.chunks_near(SEED_B, [0], 1)
    assert sorted(c.ordinal for c in near.values()) == [0, 1]
    assert all(c.doc_id == SEED_B for c in near.values())
    assert store.chunks_near(SEED_B, [], 1) == {}


def test_a_heading_is_a_first_line_but_a_one_line_document_is_content(
        tmp_path: Path, pipeline: Pipeline) -> None:
    folder = tmp_path / "docs"
    folder.mkdir()
    (folder / "titled.txt").write_text("Notes on making oolong tea\n\nOolong tea is partly "
                                       "oxidised before it is rolled and dried.")
    (folder / "line.txt").write_text("Green tea is steamed or pan-fired to stop oxidation.")
    pipeline.ingest([folder])
    index, hits, _, _ = pipeline.retrieve("How is oolong tea made?", 5)
    cands, _ = gather(hits, index, index.store.document)
    heading = {c.quote: c.heading for c in cands}
    assert heading["Notes on making oolong tea"] is True
    assert heading["Green tea is steamed or pan-fired to stop oxidation."] is False
    assert heading["Oolong tea is partly oxidised before it is rolled and dried."] is False
