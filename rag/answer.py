"""Retrieved passages to a short extractive answer whose every sentence is a verified quote.

No language model writes anything: the answer is made of sentences copied from
the stored documents, each cited by its exact character span, and each checked
against the store before it is returned. Which sentences, and how many, is the
evidence scorer's call (rag.evidence, rag.scorer): the sentences most likely to
be what a person would mark as the evidence, strongest first, as few as its
policy allows — and none when no sentence is likely enough, in which case the
composer says the documents don't say.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import replace

import numpy as np

from rag.arrays import Vectors
from rag.evidence import Candidate, features, gather
from rag.index import Index
from rag.scorer import EvidenceScorer, Policy, Scores
from rag.types import (
    Answer,
    AnswerSpan,
    Citation,
    Document,
    Hit,
    Passage,
    Provenance,
    SentenceScore,
)

ABSTENTION = "The documents don't say: no indexed passage answers this question closely enough."


def _passage(c: Candidate) -> Passage:
    """The passage a cited sentence came from: retrieved itself, or a neighbour of one."""
    if c.own is not None:
        return Passage.of(c.own)
    return replace(Passage.of(c.doc_best), chunk_id=c.chunk.chunk_id, rank=None,
                   char_start=c.chunk.char_start, char_end=c.chunk.char_end,
                   neighbour_of=c.doc_best.chunk.chunk_id)


def cite(c: Candidate, n: int, index: Index) -> Citation | None:
    """Citation ``n`` of ``c``, once its quote is re-read from the store and still matches
    character for character; None when it does not (the document changed or is gone)."""
    fresh = index.store.document(c.doc_id)
    if fresh is None or fresh.text[c.start:c.end] != c.quote:
        return None
    return Citation(n, c.doc_id, c.chunk.chunk_id, c.doc_best.title, c.quote, c.start, c.end,
                    True, index.store.locator(c.doc_id, c.start))


def choose(scores: Scores, policy: Policy, candidates: Sequence[Candidate], vectors: Vectors,
           max_words: int = 120, duplicate_cosine: float = 0.92) -> list[int]:
    """The candidates to cite under ``policy``, most probable first; empty to abstain.

    The best is cited whenever the answerability reaches the threshold; each other
    must reach ``cite_from`` and lie within ``margin`` of the best. A sentence nearly
    the same as one already chosen (cosine over ``duplicate_cosine``) adds nothing;
    the answer stays under ``max_words``.
    """
    p = scores.probability
    if not len(p) or scores.answerable < policy.abstain_below or float(p.max()) <= 0:
        return []
    best = float(p.max())
    chosen: list[int] = []
    words = 0
    for i in np.argsort(-p, kind="stable").tolist():
        if len(chosen) == policy.max_sentences or p[i] <= 0 or chosen and (
                p[i] < policy.cite_from or p[i] < best - policy.margin):
            break
        if any(float(vectors[i] @ vectors[j]) > duplicate_cosine for j in chosen):
            continue
        if words + candidates[i].words > max_words:
            continue
        chosen.append(i)
        words += candidates[i].words
    return chosen


# A sentence that opens on one of these says who or what only through the sentence before.
_PRONOUN = re.compile(r"(?i)^\W*(?:(?:in addition|however|moreover|also|then|later|instead),?\s+)?"
                      r"(he|she|it|they|his|her|its|their|this|these|those|him|them)\b")


def named_before(i: int, candidates: Sequence[Candidate], text: str) -> int | None:
    """The candidate right before ``i`` in its document, when ``i`` refers to its subject by
    a pronoun only and nothing but white space stands between the two."""
    c = candidates[i]
    if not _PRONOUN.match(c.quote):
        return None
    before = [j for j, d in enumerate(candidates) if d.doc_id == c.doc_id and d.end <= c.start]
    if not before:
        return None
    j = max(before, key=lambda k: candidates[k].end)
    gap = text[candidates[j].end:c.start]
    return j if not gap.strip() and "\n\n" not in gap else None


def with_subject(i: int, candidates: Sequence[Candidate], chosen: Sequence[int],
                 fetch: Callable[[str], Document | None]) -> Candidate:
    """Candidate ``i``, its quote reaching back over the sentence that names its subject
    when it names it by a pronoun only (unless that sentence is cited on its own)."""
    c = candidates[i]
    doc = fetch(c.doc_id)
    j = named_before(i, candidates, doc.text) if doc is not None else None
    if doc is None or j is None or j in chosen:
        return c
    start = candidates[j].start
    return replace(c, start=start, quote=doc.text[start:c.end])


class Composer:
    """Gather candidate sentences, score them, cite what the scorer's policy allows.

    ``abstain_below`` overrides the policy's abstention threshold (a deployment
    that would rather answer more, or less, than the trained trade-off).
    """

    def __init__(self, scorer: EvidenceScorer, max_words: int = 120, neighbours: int = 1,
                 duplicate_cosine: float = 0.92, abstain_below: float | None = None,
                 ocr_floor: float = 0.0) -> None:
        self.scorer = scorer
        self.ocr_floor = ocr_floor  # OCR'd text less sure than this is never quoted
        self.max_words = max_words
        self.neighbours = neighbours
        self.duplicate_cosine = duplicate_cosine
        self.abstain_below = abstain_below

    @property
    def policy(self) -> Policy:
        """The scorer's policy, with the threshold override."""
        policy = self.scorer.policy
        if self.abstain_below is None:
            return policy
        return replace(policy, abstain_below=self.abstain_below)

    def compose(self, question: str, hits: Sequence[Hit], index: Index,
                query_vector: Vectors) -> Answer:
        fetch = index.store.document
        candidates, vectors = gather(hits, index, fetch, self.neighbours,
                                     max_words=self.max_words, ocr_floor=self.ocr_floor)
        policy = self.policy
        abstain = Provenance(self.scorer.name, len(candidates), None, policy.abstain_below,
                             closest=tuple(Passage.of(h) for h in hits[:3]))
        if not candidates:
            return Answer(question, ABSTENTION, (), True, abstain)
        rows = features(question, query_vector, candidates, vectors, index.lexical.idf,
                        index.lexical.query_tokens)
        scores = self.scorer.score(question, candidates, rows)
        abstain = replace(abstain, best_score=round(scores.answerable, 6))
        chosen = choose(scores, policy, candidates, vectors, self.max_words,
                        self.duplicate_cosine)
        citations: list[Citation] = []
        explained: list[SentenceScore] = []
        passages: dict[str, Passage] = {}
        span: AnswerSpan | None = None
        for i in chosen:
            citation = cite(with_subject(i, candidates, chosen, fetch), len(citations) + 1, index)
            if citation is None:
                continue
            if not citations:
                span = answer_span(scores, i, candidates[i], citation, policy)
            citations.append(citation)
            passages.setdefault(candidates[i].chunk.chunk_id, _passage(candidates[i]))
            explained.append(scores.explain(i, rows, citation.n))
        abstain = replace(abstain, dropped_citations=len(chosen) - len(citations))
        if not citations:
            return Answer(question, ABSTENTION, (), True, abstain)
        text = " ".join(f"{c.quote} [{c.n}]" for c in citations)
        provenance = replace(abstain, passages=tuple(passages.values()),
                             sentence_scores=tuple(explained), closest=())
        return Answer(question, text, tuple(citations), False, provenance, span)


def answer_span(scores: Scores, i: int, c: Candidate, citation: Citation,
                policy: Policy) -> AnswerSpan | None:
    """The answer phrase of candidate ``i`` inside its (verified) citation, when confident."""
    phrase = scores.phrases.get(i)
    if phrase is None or phrase.probability < policy.phrase_from:
        return None
    start, end = c.start + phrase.start, c.start + phrase.end
    if not citation.char_start <= start < end <= citation.char_end:
        return None
    text = citation.quote[start - citation.char_start:end - citation.char_start]
    return AnswerSpan(text, start, end, round(phrase.probability, 6))
