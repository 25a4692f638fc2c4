"""What the evidence scorer learns from: questions and claims, each as the composer sees it.

Every question (SQuAD 2.0 layout, eval.quality.squad) and every claim (SciFact's
rationales, eval.quality.rationales) is retrieved for exactly as ``POST /v1/ask`` does
(default settings, k=5) and its candidate sentences get the composer's features
(rag.evidence). A candidate is positive when it overlaps an annotator's answer (a
question) or stands for a sentence the annotators marked (a claim); an unanswerable
question or a claim without evidence has none. An answer's span inside a positive
sentence is kept for the answer-phrase head.

Folds: questions are split by article (questions of one article share its paragraphs,
so no question is scored by weights fit on its own article), claims by claim.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from eval.quality import rationales
from eval.quality.rationales import Claim
from eval.quality.squad import Question
from rag.arrays import Floats, Vectors
from rag.evidence import Candidate, features, gather
from rag.index import Index
from rag.pipeline import Pipeline

K = 5  # passages per question, as `rag ask` and /v1/ask default to
SEED = 0

Span = tuple[int, int]


@dataclass
class Example:
    """One question or claim: its candidates as the composer sees them, with labels."""

    source: Question | Claim
    group: str  # the unit of a fold: an article, or a claim
    candidates: list[Candidate]
    vectors: Vectors
    rows: Floats
    labels: Floats  # bool per candidate
    # Per candidate, the answers inside it as spans of its quote (questions only).
    phrases: list[list[Span]] = field(default_factory=list)

    @property
    def text(self) -> str:
        return self.source.text

    @property
    def kind(self) -> str:
        return "question" if isinstance(self.source, Question) else "claim"

    @property
    def answerable(self) -> bool:
        """Whether the annotators say the corpus answers it (it may still not be retrieved)."""
        if isinstance(self.source, Question):
            return self.source.answerable
        return self.source.has_evidence


def _candidates(index: Index, hits: Sequence[object], neighbours: int, text: str,
                vector: Vectors) -> tuple[list[Candidate], Vectors, Floats]:
    cands, vectors = gather(hits, index, index.store.document, neighbours)  # type: ignore[arg-type]
    rows = features(text, vector, cands, vectors, index.lexical.idf, index.lexical.query_tokens)
    return cands, vectors, rows


def phrases_in(q: Question, c: Candidate) -> list[Span]:
    """The annotators' answers that lie inside the candidate, as spans of its quote."""
    if c.doc_id != q.doc_id:
        return []
    return sorted({(a - c.start, b - c.start) for a, b in q.answers
                   if c.start <= a and b <= c.end})


def collect_questions(pipeline: Pipeline, questions: Sequence[Question],
                      neighbours: int) -> list[Example]:
    out = []
    for q in questions:
        index, hits, vector, _ = pipeline.retrieve(q.text, K)
        cands, vectors, rows = _candidates(index, hits, neighbours, q.text, vector)
        labels = np.array([q.holds(c.doc_id, c.start, c.end) for c in cands], dtype=bool)
        out.append(Example(q, q.doc_id, cands, vectors, rows, labels,
                           [phrases_in(q, c) for c in cands]))
    return out


def collect_claims(pipeline: Pipeline, claims: Sequence[Claim], neighbours: int) -> list[Example]:
    out = []
    for claim in claims:
        index, hits, vector, _ = pipeline.retrieve(claim.text, K)
        cands, vectors, rows = _candidates(index, hits, neighbours, claim.text, vector)
        labels = np.array([bool(claim.evidence_sentences(c.doc_id) & rationales.sentences_covered(
            c.start, c.end, claim.spans.get(c.doc_id, ()))) for c in cands], dtype=bool)
        out.append(Example(claim, f"claim:{claim.claim_id}", cands, vectors, rows, labels,
                           [[] for _ in cands]))
    return out


def folds_of(n: int, k: int) -> list[int]:
    """A fold for each of ``n`` items, shuffled with a fixed seed, sizes within one."""
    order = list(range(n))
    random.Random(SEED).shuffle(order)
    fold = [0] * n
    for rank, i in enumerate(order):
        fold[i] = rank % k
    return fold


def assign_folds(examples: Sequence[Example], k: int) -> list[int]:
    """Each example's fold: whole articles for questions, claims one by one.

    Articles are dealt to folds largest first, each to the fold with the fewest
    questions so far, so the folds hold about as many questions each.
    """
    groups: dict[str, int] = {}
    for e in examples:
        if e.kind == "question":
            groups[e.group] = groups.get(e.group, 0) + 1
    sizes = [0] * k
    article_fold: dict[str, int] = {}
    for group, size in sorted(groups.items(), key=lambda g: (-g[1], g[0])):
        f = min(range(k), key=lambda i: (sizes[i], i))
        article_fold[group] = f
        sizes[f] += size
    claims = [i for i, e in enumerate(examples) if e.kind == "claim"]
    claim_fold = folds_of(len(claims), k)
    out = [0] * len(examples)
    for i, e in enumerate(examples):
        if e.kind == "question":
            out[i] = article_fold[e.group]
    for j, i in enumerate(claims):
        out[i] = claim_fold[j]
    return out
