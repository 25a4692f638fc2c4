"""Is a generated sentence supported by the passages it cites? One verdict per sentence.

A sentence is kept only when (1) it cites passages that were given, (2) the
evidence scorer — the same one that picks extractive citations — finds a
sentence inside those passages likely enough to be its evidence, and (3) every
number and capitalised name it states appears in those passages. The best
supporting sentence becomes its citation, a span checked against the store.
A passage's sentence that reads as an instruction to a model ("ignore previous
instructions…") is never a candidate (rag.evidence), so an injected instruction
cannot vouch for what it made the model say.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np

from rag.arrays import Vectors
from rag.embedding import Embedder
from rag.evidence import Candidate, Features, features, gather
from rag.index import Index
from rag.scorer import EvidenceScorer, Scores
from rag.sentence_split import sentence_spans
from rag.types import Hit, SentenceScore

Reason = Literal["no citation", "citation out of range", "not supported",
                 "number or name not in the source"]
_MARKER = re.compile(r"\[(\d{1,3})\]")
_NUMBER = re.compile(r"\d+(?:[.,]\d+)*")
_NAME = re.compile(r"\b[A-Z][\w-]*[A-Za-z0-9]")


@dataclass(frozen=True, slots=True)
class Claim:
    """One generated sentence: its text without markers and the passages it cites."""

    text: str
    cites: tuple[int, ...]
    start: int  # where it starts in the generated text
    end: int  # where its last marker ends


def split_claims(generated: str) -> list[Claim]:
    """Sentences of the generated text, each with the [n] markers inside or right after it."""
    blank = _MARKER.sub(lambda m: " " * len(m.group()), generated)
    spans = [s for s in sentence_spans(blank) if any(ch.isalnum() for ch in blank[s[0]:s[1]])]
    cites: list[list[int]] = [[] for _ in spans]
    ends = [b for _, b in spans]
    for m in _MARKER.finditer(generated):
        owner = max((i for i, (a, _) in enumerate(spans) if a <= m.start()), default=0)
        if spans:
            cites[owner].append(int(m.group(1)))
            ends[owner] = max(ends[owner], m.end())
    return [Claim(_tidy(blank[a:b]), tuple(dict.fromkeys(c)), a, e)
            for (a, b), c, e in zip(spans, cites, ends, strict=True)]


def _tidy(text: str) -> str:
    """One line, and no space left before punctuation where a marker was taken out."""
    return re.sub(r"\s+([.!?,;:])", r"\1", " ".join(text.split()))


def facts_missing(sentence: str, source: str) -> list[str]:
    """Numbers and capitalised names of ``sentence`` that ``source`` does not contain.

    The sentence's first word is capitalised by grammar, not because it is a name.
    """
    flat = " ".join(source.split()).lower()
    digits = flat.replace(",", "")
    missing = [n for n in _NUMBER.findall(sentence) if n.replace(",", "") not in digits]
    first = re.match(r"\W*\w+", sentence)
    skip = first.end() if first else 0
    for m in _NAME.finditer(sentence):
        name = re.sub(r"'s$", "", m.group())
        if m.start() >= skip and name.lower() not in flat:
            missing.append(name)
    return missing


@dataclass(frozen=True, slots=True)
class Verdict:
    claim: Claim
    reason: Reason | None  # None: supported
    probability: float | None = None
    support: Candidate | None = None
    score: SentenceScore | None = None  # n is filled in by the composer
    missing: tuple[str, ...] = ()


class Verifier:
    """Judges generated sentences against the passages they cite."""

    def __init__(self, scorer: EvidenceScorer, embedder: Embedder, threshold: float) -> None:
        self.scorer = scorer
        self.embedder = embedder
        self.threshold = threshold

    def judge(self, claims: Sequence[Claim], hits: Sequence[Hit], index: Index) -> list[Verdict]:
        vectors = self.embedder.embed_queries([c.text for c in claims]) if claims else None
        out = []
        for i, claim in enumerate(claims):
            assert vectors is not None
            out.append(self._judge(claim, vectors[i], hits, index))
        return out

    def support(self, claim: str, vector: Vectors, cited: Sequence[Hit], index: Index
                ) -> tuple[list[Candidate], Scores, Features]:
        """Each sentence of the cited passages, with the scorer's probability that it is
        the claim's evidence (rag.evidence.gather leaves out instructions to a model)."""
        candidates, cvecs = gather(cited, index, index.store.document, neighbours=0,
                                   min_words=1)
        rows = features(claim, vector, candidates, cvecs, index.lexical.idf,
                        index.lexical.query_tokens)
        if not candidates:
            return [], Scores(np.zeros(0)), rows
        return candidates, self.scorer.score(claim, candidates, rows), rows

    def supported(self, claim: str, candidates: Sequence[Candidate], scores: Scores,
                  ) -> tuple[bool, list[str]]:
        """Whether any sentence supports ``claim``, and the claim's facts the cited
        passages lack (checked in the whole passages: on SciFact train that keeps more
        supported claims than checking the supporting sentences alone, at no cost in
        precision; python -m eval.quality.verifier)."""
        strong = any(q >= self.threshold for q in scores.probability)
        return strong, facts_missing(claim, " ".join(c.quote for c in candidates))

    def _judge(self, claim: Claim, vector: Vectors, hits: Sequence[Hit],
               index: Index) -> Verdict:
        if not claim.cites:
            return Verdict(claim, "no citation")
        if any(not 1 <= n <= len(hits) for n in claim.cites):
            return Verdict(claim, "citation out of range")
        cited = [hits[n - 1] for n in claim.cites]
        candidates, scores, rows = self.support(claim.text, vector, cited, index)
        if not candidates:
            return Verdict(claim, "not supported", 0.0)
        best = int(np.argmax(scores.probability))
        p = round(float(scores.probability[best]), 6)
        explained = scores.explain(best, rows)
        found, missing = self.supported(claim.text, candidates, scores)
        if not found:
            return Verdict(claim, "not supported", p, candidates[best], explained)
        if missing:
            return Verdict(claim, "number or name not in the source", p, candidates[best],
                           explained, tuple(missing))
        return Verdict(claim, None, p, candidates[best], explained)
