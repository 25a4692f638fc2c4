"""BM25: the query tokens are bm25s's, and scores summed over segments with deletions are
exactly those of one bm25s index over the live chunks."""

from __future__ import annotations

from pathlib import Path

import bm25s
import numpy as np
import pytest
import Stemmer

from rag.lexical import K1, B, LexicalIndex, Postings, query_tokens, top_n
from tests.seed_facts import OFF_TOPIC, SEED_QUESTIONS, SEEDS

pytestmark = pytest.mark.unit


TRICKY = ["", "a", "the and of", "Ünïcode — “quotes” and 5G, 50% of R&D.", "don't WON'T it's",
          "e-mail x2 2x __init__ 3.14 naïve café ΑΒΓ δέλτα 東京 İstanbul", "tab\there\nnewline",
          "RUNNING runs ran runner's", "ß straße STRASSE"]


def _lines() -> list[str]:
    texts = []
    for path in sorted(SEEDS.iterdir()):
        texts += [t for t in path.read_text(encoding="utf-8", errors="replace").splitlines()
                  if t.strip()]
    return texts


def test_query_tokens_are_what_bm25s_tokenize_gives() -> None:
    texts = TRICKY + [q for q, _, _ in SEED_QUESTIONS] + OFF_TOPIC + _lines()
    expected = bm25s.tokenize(texts, stopwords="en", stemmer=Stemmer.Stemmer("english"),
                              return_ids=False, show_progress=False)
    assert len(texts) > 80
    for text, tokens in zip(texts, expected, strict=True):
        assert query_tokens(text) == tokens, text


def test_top_n_is_the_head_of_a_stable_descending_sort() -> None:
    rng = np.random.default_rng(3)
    for _ in range(300):
        scores = rng.integers(0, 4, rng.integers(0, 80)).astype(np.float32)  # many ties
        n = int(rng.integers(1, 90))
        assert top_n(scores, n).tolist() == np.argsort(-scores, kind="stable")[:n].tolist()


def _bm25s(texts: list[str]) -> bm25s.BM25:
    model = bm25s.BM25(k1=K1, b=B)
    model.index(bm25s.tokenize(texts, stopwords="en", stemmer=Stemmer.Stemmer("english"),
                               return_ids=False, show_progress=False), show_progress=False)
    return model


QUERIES = [q for q, _, _ in SEED_QUESTIONS] + ["Japan Japan nuclear fuel", "the of", "zzzq",
                                               "defense defense innovation initiative"]


def test_scores_over_segments_with_deletions_equal_one_bm25s_index(tmp_path: Path) -> None:
    texts = TRICKY + _lines()
    rows = list(range(10, 10 + 3 * len(texts), 3))  # row ids with gaps, as after deletions
    cuts = [0, 7, 30, 31, len(texts)]  # four segments, one of a single chunk
    rng = np.random.default_rng(5)
    parts, live_rows, live_texts = [], [], []
    for a, b in zip(cuts, cuts[1:], strict=False):
        postings = Postings.build(rows[a:b], texts[a:b])
        postings.save(tmp_path / f"{a}.npz")
        live = rng.random(b - a) > 0.3
        parts.append((Postings.load(tmp_path / f"{a}.npz"), live))
        live_rows += [r for r, keep in zip(rows[a:b], live, strict=True) if keep]
        live_texts += [t for t, keep in zip(texts[a:b], live, strict=True) if keep]
    segmented = LexicalIndex(parts)
    one = _bm25s(live_texts)
    assert segmented.count() == len(live_rows) and segmented.ids.tolist() == live_rows
    for query in QUERIES:
        known = [t for t in query_tokens(query) if t in one.vocab_dict]
        expected = one.get_scores(known) if known else np.zeros(len(live_rows), np.float32)
        got = dict(zip(*[a.tolist() for a in segmented.matches(query)], strict=True))
        assert got == {r: s for r, s in zip(live_rows, expected.tolist(), strict=True) if s > 0}
        # The one index's own document frequencies give the same IDF.
        for term, idf in segmented.idf(query).items():
            t = one.vocab_dict.get(term)
            df = 0 if t is None else int(np.diff(one.scores["indptr"])[t])
            assert idf == pytest.approx(np.log(1 + (len(live_rows) - df + 0.5) / (df + 0.5)))
    scores, ids = segmented.search("Japan nuclear fuel", 5)
    assert len(ids) == 5 and list(scores) == sorted(scores, reverse=True)


def test_merged_postings_are_those_built_from_the_kept_chunks() -> None:
    texts = _lines()[:40]
    first = Postings.build(list(range(1, 21)), texts[:20])
    second = Postings.build(list(range(21, 41)), texts[20:])
    keep = [np.arange(20) % 3 != 0, np.arange(20) % 4 != 1]
    merged = Postings.merge([(second, keep[1]), (first, keep[0])])  # any order: rows sort
    kept = [(r, t) for r, t, k in zip(range(1, 41), texts, np.concatenate(keep), strict=True)
            if k]
    built = Postings.build([r for r, _ in kept], [t for _, t in kept])
    assert merged.rows.tolist() == built.rows.tolist()
    assert merged.lengths.tolist() == built.lengths.tolist()
    for term in built.terms:
        a, b = merged.vocab[term], built.vocab[term]
        assert merged.docs[merged.indptr[a]:merged.indptr[a + 1]].tolist() == \
            built.docs[built.indptr[b]:built.indptr[b + 1]].tolist()
        assert merged.tf[merged.indptr[a]:merged.indptr[a + 1]].tolist() == \
            built.tf[built.indptr[b]:built.indptr[b + 1]].tolist()


def test_an_empty_index_and_chunks_without_words_score_nothing() -> None:
    empty = LexicalIndex.build([], [])
    assert empty.count() == 0 and empty.search("anything", 3)[1].tolist() == []
    symbols = LexicalIndex.build([1, 2], ["ß", "— … —"])
    assert symbols.count() == 2 and symbols.matches("ß")[0].tolist() == []
