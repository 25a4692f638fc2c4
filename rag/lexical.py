"""BM25 over chunk texts with bm25s (stemming, English stopwords).

bm25s has no incremental update, so each snapshot rebuilds it from the store's
chunk texts; it takes seconds even for a few hundred thousand chunks.
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from pathlib import Path

import bm25s
import numpy as np
import numpy.typing as npt
import Stemmer
from bm25s.stopwords import STOPWORDS_EN

K1 = 1.5
B = 0.75
LANGUAGE = "english"  # the stemmer's; bm25s names the same stopword list "en"
_IDS_FILE = "ids.npy"
# bm25s.tokenize's own steps (its defaults, English stopwords), for one query without its
# batch machinery: a third of a search's BM25 time went to that (tests/test_lexical.py).
_WORDS = re.compile(r"(?u)\b\w\w+\b").findall
_STOPWORDS = frozenset(STOPWORDS_EN)


def parameters() -> dict[str, float]:
    """BM25's parameters as the snapshot manifest records them."""
    return {"k1": K1, "b": B}


class LexicalIndex:
    def __init__(self, ids: npt.NDArray[np.int64], model: bm25s.BM25 | None) -> None:
        self.ids = ids
        self._model = model
        self._stemmer = Stemmer.Stemmer(LANGUAGE)

    def _tokens(self, texts: Sequence[str]) -> list[list[str]]:
        out: list[list[str]] = bm25s.tokenize(list(texts), stopwords="en", stemmer=self._stemmer,
                                              return_ids=False, show_progress=False)
        return out

    def query_tokens(self, text: str) -> list[str]:
        """The stemmed terms of one query, as ``_tokens`` would give them."""
        words: list[str] = self._stemmer.stemWords(
            [w for w in _WORDS(text.lower()) if w not in _STOPWORDS])
        return words

    def idf(self, text: str) -> dict[str, float]:
        """The distinct terms of ``text`` with their BM25 (Lucene) IDF over the chunks.

        A term no chunk holds gets the IDF of a term held by none (the rarest there is).
        """
        n = len(self.ids)
        out: dict[str, float] = {}
        for term in self.query_tokens(text):
            df = 0
            if self._model is not None and term in self._model.vocab_dict:
                t = self._model.vocab_dict[term]
                indptr = self._model.scores["indptr"]
                df = int(indptr[t + 1] - indptr[t])
            out[term] = float(np.log(1 + (n - df + 0.5) / (df + 0.5)))
        return out

    @classmethod
    def build(cls, ids: Sequence[int], texts: Sequence[str]) -> LexicalIndex:
        index = cls(np.asarray(ids, dtype=np.int64), None)
        tokens = index._tokens(texts) if len(ids) else []
        # Chunks of stopwords or symbols alone give no vocabulary, which bm25s cannot index.
        if any(tokens):
            model = bm25s.BM25(k1=K1, b=B)
            model.index(tokens, show_progress=False)
            index._model = model
        return index

    def count(self) -> int:
        return len(self.ids)

    def scores(self, query: str) -> npt.NDArray[np.float32]:
        """BM25 score of every chunk, aligned with ``self.ids``."""
        tokens = self.query_tokens(query)
        if self._model is None or not tokens:
            return np.zeros(len(self.ids), dtype=np.float32)
        known = [t for t in tokens if t in self._model.vocab_dict]
        if not known:
            return np.zeros(len(self.ids), dtype=np.float32)
        return np.asarray(self._model.get_scores(known), dtype=np.float32)

    def search(self, query: str, k: int) -> tuple[npt.NDArray[np.float32], npt.NDArray[np.int64]]:
        """Top-k (scores, chunk ids), best first, leaving out zero scores."""
        scores = self.scores(query)
        k = min(k, len(scores))
        if k == 0:
            return np.zeros(0, dtype=np.float32), np.zeros(0, dtype=np.int64)
        top = np.argpartition(-scores, k - 1)[:k]
        top = top[np.argsort(-scores[top], kind="stable")]
        top = top[scores[top] > 0]
        return scores[top], self.ids[top]

    def save(self, folder: Path) -> None:
        folder.mkdir(parents=True, exist_ok=True)
        np.save(folder / _IDS_FILE, self.ids)
        if self._model is not None:
            self._model.save(str(folder), show_progress=False)
        (folder / "lexical.json").write_text(json.dumps({
            **parameters(), "stemmer": LANGUAGE, "stopwords": "en",
            "model": self._model is not None}))

    @classmethod
    def load(cls, folder: Path) -> LexicalIndex:
        ids = np.load(folder / _IDS_FILE)
        params = json.loads((folder / "lexical.json").read_text())
        model = None
        if params.get("model", len(ids) > 0):
            model = bm25s.BM25.load(str(folder), show_progress=False, verbosity=0)
        return cls(ids.astype(np.int64), model)
