"""BM25 over chunk texts (bm25s's tokenizer: Snowball stemming, English stopwords).

Each segment keeps its own postings (per term: the chunks holding it and how often) and
chunk lengths; a search adds them up over the live chunks of every segment, so document
frequencies, the number of chunks and their average length are those of the whole index,
never of one segment. The scores are bm25s's (its Lucene variant, the same float32 steps),
as if one bm25s index had been built over the same chunks (tests/test_lexical.py).

An index written before segments (format 2, 3, or 4 of one folder) holds a bm25s model
instead, whose scores already carry its corpus's statistics; ``Bm25sLexical`` reads it until
the next write.
"""

from __future__ import annotations

import json
import math
import re
from abc import ABC, abstractmethod
from collections.abc import Sequence
from functools import cached_property
from pathlib import Path
from typing import Any

import bm25s
import numpy as np
import numpy.typing as npt
import Stemmer
from bm25s.stopwords import STOPWORDS_EN

from rag.arrays import Ints

K1 = 1.5
B = 0.75
LANGUAGE = "english"  # the stemmer's; bm25s names the same stopword list "en"
POSTINGS = "postings.npz"
_IDS_FILE = "ids.npy"
# bm25s.tokenize's own steps (its defaults, English stopwords), for one query without its
# batch machinery: a third of a search's BM25 time went to that (tests/test_lexical.py).
_WORDS = re.compile(r"(?u)\b\w\w+\b").findall
_STOPWORDS = frozenset(STOPWORDS_EN)
_STEMMER = Stemmer.Stemmer(LANGUAGE)
Scores = npt.NDArray[np.float32]
Bools = npt.NDArray[np.bool_]


def parameters() -> dict[str, float]:
    """BM25's parameters as the snapshot manifest records them."""
    return {"k1": K1, "b": B}


def query_tokens(text: str) -> list[str]:
    """The stemmed terms of one text, as bm25s.tokenize gives them."""
    words: list[str] = _STEMMER.stemWords([w for w in _WORDS(text.lower()) if w not in _STOPWORDS])
    return words


def _idf(n: int, df: int) -> float:
    return math.log(1 + (n - df + 0.5) / (df + 0.5))


class Lexical(ABC):
    """What retrieval and evidence ask of BM25, whichever way it is stored."""

    @abstractmethod
    def matches(self, query: str) -> tuple[Ints, Scores]:
        """The chunks holding a query term (row ids ascending) and their BM25 scores."""

    @abstractmethod
    def df(self, term: str) -> int:
        """How many live chunks hold ``term``."""

    @property
    @abstractmethod
    def ids(self) -> Ints:
        """Every live chunk's row id, ascending."""

    def count(self) -> int:
        return len(self.ids)

    def query_tokens(self, text: str) -> list[str]:
        return query_tokens(text)

    def idf(self, text: str) -> dict[str, float]:
        """The distinct terms of ``text`` with their BM25 (Lucene) IDF over the chunks.

        A term no chunk holds gets the IDF of a term held by none (the rarest there is).
        """
        n = self.count()
        return {term: _idf(n, self.df(term)) for term in query_tokens(text)}

    def search(self, query: str, k: int) -> tuple[Scores, Ints]:
        """Top-k (scores, chunk ids), best first (ties by row), leaving out zero scores."""
        rows, scores = self.matches(query)
        top = top_n(scores, k)
        return scores[top], rows[top]


def top_n(scores: npt.NDArray[np.floating], n: int) -> Ints:
    """The first n of a stable descending argsort, without sorting every score."""
    if n <= 0 or not len(scores):
        return np.zeros(0, dtype=np.int64)
    if n >= len(scores):
        return np.argsort(-scores, kind="stable")
    nth = np.partition(scores, len(scores) - n)[len(scores) - n]
    candidates = np.flatnonzero(scores >= nth)
    return candidates[np.argsort(-scores[candidates], kind="stable")][:n]


class Postings:
    """One segment's inverted lists: for each term the chunks (positions into ``rows``)
    holding it with their term frequencies, and every chunk's length in terms."""

    def __init__(self, rows: Ints, lengths: Ints, terms: list[str], indptr: Ints,
                 docs: npt.NDArray[np.int32], tf: npt.NDArray[np.int32]) -> None:
        self.rows, self.lengths, self.terms = rows, lengths, terms
        self.indptr, self.docs, self.tf = indptr, docs, tf
        self.vocab = {t: i for i, t in enumerate(terms)}

    @classmethod
    def build(cls, rows: Sequence[int], texts: Sequence[str]) -> Postings:
        """Postings of chunks given in ascending row order."""
        tokens: list[list[str]] = bm25s.tokenize(
            list(texts), stopwords="en", stemmer=_STEMMER, return_ids=False,
            show_progress=False) if len(texts) else []
        vocab: dict[str, int] = {}
        ids = [np.fromiter((vocab.setdefault(t, len(vocab)) for t in doc), np.int64, len(doc))
               for doc in tokens]
        lengths = np.array([len(d) for d in ids], dtype=np.int64)
        flat = np.concatenate(ids) if ids else np.zeros(0, np.int64)
        doc_of = np.repeat(np.arange(len(ids), dtype=np.int64), lengths)
        pairs, tf = np.unique(flat * max(len(ids), 1) + doc_of, return_counts=True)
        return cls._of_pairs(np.asarray(rows, dtype=np.int64), lengths, list(vocab),
                             pairs // max(len(ids), 1), pairs % max(len(ids), 1), tf)

    @classmethod
    def _of_pairs(cls, rows: Ints, lengths: Ints, terms: list[str], term: Ints, doc: Ints,
                  tf: npt.NDArray[np.integer[Any]]) -> Postings:
        """From (term, doc, tf) triples, sorted by term then doc."""
        indptr = np.zeros(len(terms) + 1, dtype=np.int64)
        np.cumsum(np.bincount(term, minlength=len(terms)), out=indptr[1:])
        return cls(rows, lengths, terms, indptr, doc.astype(np.int32), tf.astype(np.int32))

    @classmethod
    def merge(cls, parts: Sequence[tuple[Postings, Bools]]) -> Postings:
        """One segment's postings from several, each without the chunks its mask drops."""
        terms = list(dict.fromkeys(t for p, _ in parts for t in p.terms))
        vocab = {t: i for i, t in enumerate(terms)}
        rows = np.concatenate([p.rows[keep] for p, keep in parts] or [np.zeros(0, np.int64)])
        order = np.argsort(rows, kind="stable")
        new_doc = np.empty(len(rows), dtype=np.int64)
        new_doc[order] = np.arange(len(rows))
        term_parts, doc_parts, tf_parts, offset = [], [], [], 0
        for p, keep in parts:
            local = np.cumsum(keep) - 1 + offset  # old position -> position in ``rows``
            term_map = np.array([vocab[t] for t in p.terms], dtype=np.int64)
            term_of = np.repeat(np.arange(len(p.terms)), np.diff(p.indptr))
            alive = keep[p.docs]
            term_parts.append(term_map[term_of[alive]])
            doc_parts.append(new_doc[local[p.docs[alive]]])
            tf_parts.append(p.tf[alive])
            offset += int(keep.sum())
        term = np.concatenate(term_parts or [np.zeros(0, np.int64)])
        doc = np.concatenate(doc_parts or [np.zeros(0, np.int64)])
        tf = np.concatenate(tf_parts or [np.zeros(0, np.int32)])
        by = np.lexsort((doc, term))
        lengths = np.concatenate([p.lengths[keep] for p, keep in parts]
                                 or [np.zeros(0, np.int64)])[order]
        return cls._of_pairs(rows[order], lengths, terms, term[by], doc[by], tf[by])

    def count(self) -> int:
        return len(self.rows)

    def save(self, path: Path) -> None:
        with open(path, "wb") as f:
            np.savez(f, rows=self.rows, lengths=self.lengths, indptr=self.indptr, docs=self.docs,
                     tf=self.tf, terms=np.frombuffer("\n".join(self.terms).encode(), np.uint8))

    @classmethod
    def load(cls, path: Path) -> Postings:
        with np.load(path) as data:
            text = data["terms"].tobytes().decode()
            return cls(data["rows"], data["lengths"], text.split("\n") if text else [],
                       data["indptr"], data["docs"], data["tf"])


class LexicalIndex(Lexical):
    """BM25 over the live chunks of many segments, with the statistics of all of them.

    Every chunk of every segment has a position, positions in row order (segments' rows
    interleave once merges have run); a query term's postings in all segments become one
    array of positions, scored in one pass, and the hits come out in row order.
    """

    def __init__(self, parts: Sequence[tuple[Postings, Bools | None]]) -> None:
        """``parts``: each segment's postings, and which of its chunks are live (None: all)."""
        self._parts = [p for p, _ in parts]
        rows = np.concatenate([p.rows for p in self._parts] or [np.zeros(0, np.int64)])
        order = np.argsort(rows, kind="stable")  # merges the segments' ascending runs
        self._rows: Ints = rows[order]
        self._lengths = np.concatenate([p.lengths for p in self._parts]
                                       or [np.zeros(0, np.int64)])[order]
        self._live: Bools = np.concatenate([np.ones(p.count(), bool) if live is None else live
                                     for p, live in parts] or [np.zeros(0, bool)])[order]
        self._position = []  # each segment's chunk -> its position
        start = 0
        inverse = np.empty(len(order), dtype=np.int64)
        inverse[order] = np.arange(len(order))
        for p in self._parts:
            self._position.append(inverse[start:start + p.count()])
            start += p.count()
        self._n = int(self._live.sum())
        self._avgdl = int(self._lengths[self._live].sum()) / self._n if self._n else 1.0

    @classmethod
    def build(cls, rows: Sequence[int], texts: Sequence[str]) -> LexicalIndex:
        return cls([(Postings.build(rows, texts), None)])

    def count(self) -> int:
        return self._n

    @cached_property
    def ids(self) -> Ints:
        """Every live chunk's row id, ascending."""
        live: Ints = self._rows[self._live]
        return live

    def _postings(self, term: str) -> tuple[Ints, npt.NDArray[np.int32]]:
        """The live chunks holding ``term`` (positions) and its frequency in each."""
        docs, tfs = [], []
        for p, position in zip(self._parts, self._position, strict=True):
            t = p.vocab.get(term)
            if t is not None:
                docs.append(position[p.docs[p.indptr[t]:p.indptr[t + 1]]])
                tfs.append(p.tf[p.indptr[t]:p.indptr[t + 1]])
        if not docs:
            return np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.int32)
        doc, tf = np.concatenate(docs), np.concatenate(tfs)
        live = self._live[doc]
        return doc[live], tf[live]

    def df(self, term: str) -> int:
        return len(self._postings(term)[0])

    def matches(self, query: str) -> tuple[Ints, Scores]:
        acc = None
        for term in query_tokens(query):  # repeated terms count again, as in bm25s
            docs, tf = self._postings(term)
            if not len(docs):
                continue
            idf = np.float64(np.float32(_idf(self._n, len(docs))))  # bm25s keeps it in float32
            norm = K1 * ((1 - B) + B * self._lengths[docs] / self._avgdl)
            tf64 = tf.astype(np.float64)
            if acc is None:
                acc = np.zeros(len(self._rows), dtype=np.float32)
            acc[docs] += (idf * (tf64 / (norm + tf64))).astype(np.float32)
        if acc is None:
            return np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.float32)
        hit = np.flatnonzero(acc)
        return self._rows[hit], acc[hit]


class Bm25sLexical(Lexical):
    """The bm25s model of an index written before segments (format 2, 3, 4 of one folder)."""

    def __init__(self, ids: Ints, model: bm25s.BM25 | None) -> None:
        self._row_ids = ids
        self._model = model

    @property
    def ids(self) -> Ints:
        return self._row_ids

    def df(self, term: str) -> int:
        if self._model is None or term not in self._model.vocab_dict:
            return 0
        t = self._model.vocab_dict[term]
        indptr = self._model.scores["indptr"]
        return int(indptr[t + 1] - indptr[t])

    def matches(self, query: str) -> tuple[Ints, Scores]:
        known = [t for t in query_tokens(query)
                 if self._model is not None and t in self._model.vocab_dict]
        if self._model is None or not known:
            return np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.float32)
        scores = np.asarray(self._model.get_scores(known), dtype=np.float32)
        hit = np.flatnonzero(scores > 0)
        return self._row_ids[hit], scores[hit]

    @classmethod
    def load(cls, folder: Path) -> Bm25sLexical:
        ids = np.load(folder / _IDS_FILE)
        params = json.loads((folder / "lexical.json").read_text())
        model = None
        if params.get("model", len(ids) > 0):
            model = bm25s.BM25.load(str(folder), show_progress=False, verbosity=0)
        return cls(ids.astype(np.int64), model)
