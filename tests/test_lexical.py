"""BM25's query tokens: the one-query path must split, drop and stem exactly as bm25s does."""

from __future__ import annotations

import bm25s
import pytest
import Stemmer

from rag.lexical import LexicalIndex
from tests.seed_facts import OFF_TOPIC, SEED_QUESTIONS, SEEDS

pytestmark = pytest.mark.unit


TRICKY = ["", "a", "the and of", "Ünïcode — “quotes” and 5G, 50% of R&D.", "don't WON'T it's",
          "e-mail x2 2x __init__ 3.14 naïve café ΑΒΓ δέλτα 東京 İstanbul", "tab\there\nnewline",
          "RUNNING runs ran runner's", "ß straße STRASSE"]


def test_query_tokens_are_what_bm25s_tokenize_gives() -> None:
    index = LexicalIndex.build([], [])
    texts = TRICKY + [q for q, _, _ in SEED_QUESTIONS] + OFF_TOPIC
    for path in sorted(SEEDS.iterdir()):
        texts += path.read_text(encoding="utf-8", errors="replace").splitlines()
    expected = bm25s.tokenize(texts, stopwords="en", stemmer=Stemmer.Stemmer("english"),
                              return_ids=False, show_progress=False)
    assert len(texts) > 80
    for text, tokens in zip(texts, expected, strict=True):
        assert index.query_tokens(text) == tokens, text
