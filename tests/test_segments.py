"""Segments read as one index: an index grown by writes, replacements, deletions and merges
answers hit for hit as one written in a single commit with the same documents and vectors
(BM25, dense and hybrid, each candidate's sentences and their vectors, IDF).

BM25 and dense scores are equal to the bit. Hybrid adds sentence similarities, float32
products that BLAS blocks differently when a segment holds other sentences, and z-scores
candidates whose order among tied BM25 scores follows row ids (which differ between the
indexes): its scores agree to float32 rounding (1e-6), and its ranking exactly. Ranks are
compared up to ties, over every chunk (k=50) so that no group of ties is cut at the end.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from eval.bench.segmented import rewrite
from rag.config import Settings
from rag.embedding import SentenceTransformerEmbedder
from rag.evidence import gather
from rag.index import Index, read_snapshot
from rag.pipeline import Pipeline
from rag.types import Hit
from tests.seed_facts import ALL_SEED_QUESTIONS, SEEDS

QUERIES = [q for q, _, _ in ALL_SEED_QUESTIONS[::3]] + [
    "herons sighted at station", "Observer 4 logged sightings", "basalt in the valley",
    "rain on day 3", "Japan Japan nuclear fuel reprocessing"]


def _note(n: int, version: int = 1) -> bytes:
    lines = [f"Field note {n} (version {version})", ""]
    lines += [f"Observer {n} logged {3 + d * version} sightings of herons at station "
              f"{n % 5} on day {d}; the valley basalt was {'wet' if d % 2 else 'dry'}."
              for d in range(8 + n)]
    return "\n".join(lines).encode()


def _grow(root: Path, embedder: SentenceTransformerEmbedder) -> Pipeline:
    """Seeds; four notes in one ingest; two uploads; one note replaced and two deleted
    (one from the four, one an upload's whole segment); three more notes."""
    pipeline = Pipeline(Settings(index_dir=root, auto_merge=False), embedder=embedder)
    pipeline.ingest([SEEDS])
    for name, first, last in (("four", 0, 4), ("three", 6, 9)):
        folder = root.parent / name
        folder.mkdir()
        for n in range(first, last):
            (folder / f"note{n}.txt").write_bytes(_note(n))
        if name == "four":
            assert sorted(pipeline.ingest([folder]).added) == [f"note{n}" for n in range(4)]
            pipeline.upload("note4.txt", _note(4))
            pipeline.upload("note5.txt", _note(5))
            assert pipeline.upload("note1.txt", _note(1, version=2), replace=True)[1].replaced \
                == ["note1"]
            pipeline.delete("note2")
            pipeline.delete("note4")
        else:
            pipeline.ingest([folder])
    return pipeline


def _hits(index: Index, pipeline: Pipeline, name: str, query: str) -> list[Hit]:
    return pipeline.retriever(name, index).search(query, 50)  # type: ignore[arg-type]


def _tied(hits: list[Hit], tolerance: float) -> list[set[str]]:
    """The hits' chunks in rank order, grouped where scores tie."""
    groups: list[set[str]] = []
    for n, h in enumerate(hits):
        if n and abs(h.score - hits[n - 1].score) <= tolerance:
            groups[-1].add(h.chunk.chunk_id)
        else:
            groups.append({h.chunk.chunk_id})
    return groups


def _equal(a: list[Hit], b: list[Hit], exact: bool) -> None:
    assert _tied(a, 0.0 if exact else 1e-6) == _tied(b, 0.0 if exact else 1e-6)
    mine = {h.chunk.chunk_id: h for h in a}
    for h in b:
        ours = mine[h.chunk.chunk_id]
        assert ours.chunk == h.chunk
        if exact:
            assert ours.stage_scores == h.stage_scores
        else:
            assert ours.stage_scores == pytest.approx(h.stage_scores, abs=1e-6)


def _same(grown: Index, fresh: Index, pipeline: Pipeline) -> None:
    assert grown.store.counts() == fresh.store.counts()
    assert grown.sentences.count() == fresh.sentences.count()
    assert [(d["doc_id"], d["sha256"], d["chunks"]) for d in grown.store.documents()] == \
        [(d["doc_id"], d["sha256"], d["chunks"]) for d in fresh.store.documents()]
    for query in QUERIES:
        assert grown.lexical.idf(query) == fresh.lexical.idf(query)
        for name in ("bm25", "dense", "hybrid"):
            a, b = _hits(grown, pipeline, name, query), _hits(fresh, pipeline, name, query)
            _equal(a, b, exact=name != "hybrid")
        hits = _hits(grown, pipeline, "hybrid", query)
        ours, our_vectors = gather(hits, grown, grown.store.document)
        theirs, their_vectors = gather(_hits(fresh, pipeline, "hybrid", query), fresh,
                                       fresh.store.document)
        assert [(c.doc_id, c.start, c.end, c.quote) for c in ours] == \
            [(c.doc_id, c.start, c.end, c.quote) for c in theirs]
        assert np.array_equal(our_vectors, their_vectors)


def test_a_grown_index_answers_as_one_written_at_once(
        tmp_path: Path, embedder: SentenceTransformerEmbedder) -> None:
    pipeline = _grow(tmp_path / "grown", embedder)
    segments = read_snapshot(pipeline.root).segments  # type: ignore[union-attr]
    assert len(segments) == 5 and sum(len(s.deleted) for s in segments) == 2
    grown = pipeline.index
    rewrite(grown, tmp_path / "fresh")
    fresh = Index(tmp_path / "fresh")
    assert len(fresh.segments) == 1
    _same(grown, fresh, pipeline)
    docs = [d["doc_id"] for d in grown.store.documents()]
    rewrite(grown, tmp_path / "cut", commits=5, order=docs[::-1])  # other rows, other cuts
    _same(Index(tmp_path / "cut"), fresh, pipeline)

    reports = pipeline.compact(max_segments=3)  # merges drop the deleted documents
    assert reports and len(pipeline.segments()) == 3
    assert not any(s.deleted for s in pipeline.segments())
    _same(pipeline.index, fresh, pipeline)
    pipeline.compact(max_segments=1)
    assert len(pipeline.segments()) == 1
    _same(pipeline.index, fresh, pipeline)
    # A reader holding the snapshot from before the merges still reads it whole, though the
    # merges have deleted its segments' files.
    assert not all(s.path.exists() for s in grown.segments.values())
    _same(grown, pipeline.index, pipeline)
