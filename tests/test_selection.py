"""Filters inside retrieval, with the real model: the seeds cut into 22 documents with known
metadata, written as two segments with a deletion. Every filtered search equals brute force
over the documents the filter matches (k results whenever k chunks match), a filter that
matches nothing finds nothing and its answer abstains, and answers cite only what the filter
lets them read."""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from rag import filters
from rag.config import Settings
from rag.doctable import DocTable
from rag.documents import parse_bytes
from rag.embedding import SentenceTransformerEmbedder
from rag.index import Index
from rag.lexical import top_n
from rag.pipeline import Pipeline
from rag.retrieval import _lookup, _zscore, fuse
from rag.scorer import EvidenceScorer
from rag.store import Store
from rag.types import Chunk, Document
from rag.writer import IndexWriter
from tests.seed_facts import SEED_A, SEED_B, SEEDS

TEAMS = ("legal", "hr", "ops")
PLANT = "Where is the large spent-fuel reprocessing plant in Japan?"


def corpus() -> list[Document]:
    """SEED_A three lines a document (reports/), SEED_B two paragraphs one (notes/)."""
    lines = [line for line in (SEEDS / f"{SEED_A}.txt").read_text().splitlines()
             if line.strip() and not line.startswith("[ad_")]
    paragraphs = [p for p in (SEEDS / f"{SEED_B}.txt").read_text().split("\n\n") if p.strip()]
    parts = [("reports", "\n".join(lines[i:i + 3])) for i in range(0, len(lines), 3)] + \
        [("notes", "\n\n".join(paragraphs[i:i + 2])) for i in range(0, len(paragraphs), 2)]
    docs = []
    for n, (where, text) in enumerate(parts):
        meta = {"team": TEAMS[n % 3], "year": 2018 + n % 6, "format": "txt"}
        docs.append(Document(f"{where}/{n:02d}", f"Part {n}", f"{where}/{n:02d}.txt", text,
                             hashlib.sha256(text.encode()).hexdigest(), metadata=meta))
    return docs


@pytest.fixture(scope="module")
def split(tmp_path_factory: pytest.TempPathFactory, embedder: SentenceTransformerEmbedder,
          scorer: EvidenceScorer) -> Iterator[Pipeline]:
    root = tmp_path_factory.mktemp("selection") / "index"
    pipeline = Pipeline(Settings(index_dir=root, auto_merge=False), embedder=embedder,
                         scorer=scorer)
    docs = corpus()
    pipeline.ingest_documents(docs[:12])
    pipeline.ingest_documents(docs[12:])  # a second segment
    pipeline.delete("reports/03")  # a tombstone: never selected
    assert len(pipeline.segments()) == 2
    yield pipeline


def allowed_rows(index: Index, f: filters.Filter) -> list[int]:
    """Brute force: every chunk of every live document the filter matches."""
    return sorted(row for doc_id, meta in index.store.metadata() if f.matches(doc_id, meta)
                  for row, _ in index.store.chunk_rows(doc_id))


def dense_brute(index: Index, query: np.ndarray[Any, Any], rows: list[int],
                n: int) -> tuple[np.ndarray[Any, Any], np.ndarray[Any, Any]]:
    ids = np.asarray(rows, dtype=np.int64)
    scores = index.vectors.vectors(rows) @ query
    order = np.lexsort((ids, -scores))[:n]
    return ids[order], scores[order]


def bm25_brute(index: Index, query: str, rows: list[int],
               n: int) -> tuple[np.ndarray[Any, Any], np.ndarray[Any, Any]]:
    every, scores = index.lexical.matches(query)
    keep = np.isin(every, rows)
    every, scores = every[keep], scores[keep]
    top = top_n(scores, n)
    return every[top], scores[top]


def hybrid_brute(pipeline: Pipeline, query: str, rows: list[int], k: int) -> list[int]:
    """HybridRetriever's fusion over candidates found by brute force over ``rows``."""
    s, index = pipeline.settings, pipeline.index
    q = pipeline.embedder.embed_query(query)
    n = max(k, s.candidates)
    d_ids, d_scores = dense_brute(index, q, rows, n)
    l_rows, l_scores = bm25_brute(index, query, rows, index.vectors.count())
    order = np.argsort(l_rows)
    l_rows, l_scores = l_rows[order], l_scores[order]
    b_ids = l_rows[top_n(l_scores, n)]
    missing = b_ids[~np.isin(b_ids, d_ids)]
    ids = np.concatenate([d_ids, missing])
    dense = np.concatenate([d_scores.astype(np.float64), index.vectors.vectors(
        missing.tolist()) @ q])
    fused = fuse(s.hybrid_method, ids, dense, _lookup(l_rows, l_scores, ids), s.hybrid_weight)
    best = index.sentences.best(ids.tolist(), q)
    fused = fused + s.sentence_weight * _zscore(np.array([best[r] for r in ids.tolist()]))
    return [int(ids[j]) for j in np.lexsort((ids, -fused))[:k]]


FILTERS = [
    {"field": "team", "eq": "legal"},
    {"path": "notes/"},
    {"field": "team", "in": ["hr", "ops"]},
    {"field": "year", "gte": 2020, "lt": 2022},
    {"and": [{"field": "team", "eq": "legal"}, {"path": "reports/"}]},
    {"or": [{"doc_id": "notes/15"}, {"field": "year", "eq": 2018}]},
    {"not": {"path": "reports/"}},
    {"doc_id": ["reports/03", "reports/04"]},  # one of them deleted
]
QUERIES = ["defense technology cooperation", "spent nuclear fuel reprocessing",
           "5G network security"]


@pytest.mark.parametrize("given", FILTERS, ids=lambda f: filters.key(filters.parse(f)))
def test_filtered_results_equal_brute_force_over_the_matching_documents(
        split: Pipeline, given: dict[str, Any]) -> None:
    f = filters.parse(given)
    index = split.index
    rows = allowed_rows(index, f)
    assert rows and "reports/03" not in {c.doc_id for c in
                                         index.store.chunks_by_ids(rows).values()}
    for query in QUERIES:
        q = split.embedder.embed_query(query)
        for k in (3, 10):
            dense = split.search(query, k, "dense", f)
            ids, scores = dense_brute(index, q, rows, k)
            assert [h.row for h in dense] == ids.tolist()  # k whenever k chunks match
            assert np.allclose([h.score for h in dense], scores, atol=1e-5)
            bm25 = split.search(query, k, "bm25", f)
            ids, scores = bm25_brute(index, query, rows, k)
            assert [h.row for h in bm25] == ids.tolist()
            assert np.allclose([h.score for h in bm25], scores, atol=1e-6)
            hybrid = split.search(query, k, "hybrid", f)
            assert [h.row for h in hybrid] == hybrid_brute(split, query, rows, k)
            assert len(hybrid) == min(k, len(rows))


def test_k_results_where_a_post_filter_would_leave_fewer(split: Pipeline) -> None:
    f = filters.parse({"path": "notes/"})
    unfiltered = split.search("spent nuclear fuel reprocessing", 5, "hybrid")
    post = [h for h in unfiltered if h.chunk.doc_id.startswith("notes/")]
    inside = split.search("spent nuclear fuel reprocessing", 5, "hybrid", f)
    assert len(post) < 5 and len(inside) == 5
    assert all(h.chunk.doc_id.startswith("notes/") for h in inside)


@pytest.mark.parametrize("retriever", ["dense", "bm25", "hybrid"])
def test_a_filter_matching_nothing_finds_nothing_and_the_answer_abstains(
        split: Pipeline, retriever: str) -> None:
    for nothing in ({"field": "team", "eq": "nobody"}, {"doc_id": "reports/03"},
                    {"and": [{"path": "notes/"}, {"path": "reports/"}]}):
        f = filters.parse(nothing)
        assert split.search("defense", 5, retriever, f) == []  # type: ignore[arg-type]
        answer = split.ask(PLANT, 5, retriever, "extractive", f)  # type: ignore[arg-type]
        assert answer.abstained and not answer.citations
        assert not answer.provenance.closest and not answer.provenance.passages


def test_answers_cite_only_what_the_filter_lets_them_read(split: Pipeline) -> None:
    holder = next(d for d in corpus() if "Rokkasho" in d.text)
    answered = split.ask(PLANT, 5, where=filters.parse({"doc_id": holder.doc_id}))
    assert not answered.abstained and "Rokkasho" in answered.text
    assert {c.doc_id for c in answered.citations} == {holder.doc_id}
    others = filters.parse({"not": {"doc_id": holder.doc_id}})
    elsewhere = split.ask(PLANT, 5, where=others)
    assert "Rokkasho" not in elsewhere.text
    read = {c.doc_id for c in elsewhere.citations} | \
        {p.doc_id for p in (*elsewhere.provenance.passages, *elsewhere.provenance.closest)}
    assert holder.doc_id not in read


def test_metadata_changes_without_embedding_and_filters_see_it(split: Pipeline) -> None:
    index = split.index
    rows = [r for r, _ in index.store.chunk_rows("notes/15")]
    before = index.vectors.vectors(rows)
    report = split.update_metadata("notes/15", {"team": "finance", "reviewed": True})
    assert report.reused == report.chunks == len(rows)  # nothing embedded
    doc = split.document("notes/15")
    assert doc.metadata["team"] == "finance" and doc.metadata["reviewed"] is True
    assert doc.metadata["format"] == "txt" and doc.metadata["year"] == 2018 + 15 % 6
    hits = split.search("defense", 10, "hybrid", filters.parse("team=finance"))
    assert {h.chunk.doc_id for h in hits} == {"notes/15"}
    after = split.index
    new_rows = [r for r, _ in after.store.chunk_rows("notes/15")]
    assert np.allclose(after.vectors.vectors(new_rows), before)
    split.update_metadata("notes/15", {"team": TEAMS[15 % 3], "reviewed": None})
    assert "reviewed" not in split.document("notes/15").metadata


def add_vector(w: IndexWriter, doc_id: str, vector: np.ndarray[Any, Any]) -> None:
    doc = parse_bytes(f"About {doc_id}.".encode(), f"{doc_id}.txt", doc_id, doc_id)
    chunk = Chunk(doc_id, f"{doc_id}#0", 0, doc.text, 0, len(doc.text), 3)
    w.add(doc, [chunk], vector[None, :], [(0, 0, len(doc.text))], vector[None, :])


@pytest.mark.unit
def test_an_inverted_file_falls_back_to_exact_scores_over_the_allowed(tmp_path: Path) -> None:
    """An approximate segment probes one list of ten: the allowed chunks lie elsewhere, and
    still come back, k of them, scored exactly."""
    rng = np.random.default_rng(0)
    vectors = rng.normal(size=(400, 8)).astype(np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    with IndexWriter(tmp_path, "m", 8, {}, ann_threshold=100) as w:
        for i, v in enumerate(vectors):
            add_vector(w, f"d{i:03d}", v)
        w.commit()
    index = Index(tmp_path, nprobe=1)
    assert index.vectors.approximate
    wanted = [f"d{i:03d}" for i in range(0, 400, 40)]
    allowed = index.select(filters.parse({"doc_id": wanted}))
    query = -vectors[:1]  # far from most of them
    scores, ids = index.vectors.search(query, 5, allowed)
    exact = vectors[[int(d[1:]) for d in wanted]] @ query[0]
    rows = {int(index.store.chunk_rows(d)[0][0]): float(s) for d, s in zip(wanted, exact,
                                                                            strict=True)}
    best = sorted(rows, key=lambda r: -rows[r])[:5]
    assert ids[0].tolist() == best
    assert np.allclose(scores[0], [rows[r] for r in best], atol=1e-5)


@pytest.mark.unit
def test_the_columns_select_what_each_documents_filter_says(tmp_path: Path) -> None:
    """DocTable.mask (numpy, over every document at once) against Filter.matches (one
    document at a time, the reference), on random metadata of every kind and random filters."""
    rng = np.random.default_rng(7)
    values: list[Any] = [None, 0, 1, 2, 2.5, -1, True, False, "a", "b", "2024-01-01", "",
                         "legal", 10 ** 6]
    store = Store(tmp_path / "store.sqlite")
    for n in range(300):
        meta = {k: values[int(rng.integers(len(values)))] for k in ("x", "y", "team")}
        meta = {k: v for k, v in meta.items() if v is not None}
        folder = ("reports/", "notes/", "")[n % 3]
        doc = Document(f"d{n}", f"T{n}", f"{folder}f{n}.txt", f"Text {n}.", f"{n:064x}",
                       metadata=meta)
        store.add_document(doc, [Chunk(doc.doc_id, f"d{n}#0", 0, doc.text, 0, len(doc.text),
                                       2)])
    store.commit()
    table = DocTable(store)
    entries = dict(store.metadata())
    ops = ("eq", "gt", "gte", "lt", "lte")

    def leaf() -> dict[str, Any]:
        kind = int(rng.integers(5))
        field = ("x", "y", "team", "none", "doc_id")[int(rng.integers(5))]
        value = values[1 + int(rng.integers(len(values) - 1))]
        if kind == 0:
            return {"doc_id": [f"d{int(i)}" for i in rng.integers(0, 320, 5)]}
        if kind == 1:
            return {"path": ("reports/", "notes/f1", "f")[int(rng.integers(3))]}
        if kind == 2:
            return {"field": field, "in": [values[1 + int(i)] for i in rng.integers(0, 13, 3)]}
        if kind == 3:
            return {"field": field, "exists": bool(rng.integers(2))}
        op = ops[int(rng.integers(5))]
        if op != "eq" and isinstance(value, bool):
            value = 1
        return {"field": field, op: value}

    def tree(depth: int) -> dict[str, Any]:
        if depth == 0 or rng.random() < 0.4:
            return leaf()
        shape = ("and", "or", "not")[int(rng.integers(3))]
        if shape == "not":
            return {"not": tree(depth - 1)}
        return {shape: [tree(depth - 1) for _ in range(int(rng.integers(1, 4)))]}

    for _ in range(300):
        f = filters.parse(tree(3))
        expected = [f.matches(d, entries[d]) for d in table.doc_ids]
        assert table.mask(f).tolist() == expected, filters.key(f)
    chosen = np.flatnonzero(table.mask(filters.parse("path=reports/")))
    assert table.rows_of(chosen).tolist() == sorted(
        r for d in (table.doc_ids[n] for n in chosen) for r, _ in store.chunk_rows(d))
    store.close()
