"""Candidate features to the evidence for an answer, and whether there is any.

Fit by ``python -m eval.quality.train_evidence`` on questions (SQuAD 2.0's, half of
them unanswerable) and claims (SciFact's) together, and kept in one folder
(``rag/data/evidence/`` by default). Two forms:

- ``LinearScorer``: logistic regression over rag.evidence.FEATURES, a few dozen
  numbers in ``scorer.json``. Costs nothing next to retrieval.
- ``RerankedScorer``: the linear stage picks its ``top`` candidates, the cross-encoder
  (rag.crossencoder) reads each with the question, and a logistic regression combines
  the two stages' logits (``combiner_inputs``); the others cannot be cited.

Either way a candidate gets a logit, and two things are read off the logits of the
candidates it may cite: how likely it is that they hold the answer at all
(``Answerability``: a logistic regression over ``ANSWERABILITY_INPUTS``, learned from
the unanswerable questions and the claims without evidence), and each candidate's
share of the evidence (a softmax over them). A candidate's probability is the
product: the chance that it is the answer's evidence. One policy per form decides
from these; nothing depends on whether the text looks like a question.
"""

from __future__ import annotations

import json
from abc import ABC, abstractmethod
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from rag.arrays import Floats
from rag.errors import IndexMismatchError
from rag.evidence import FEATURES, Candidate, Features
from rag.phrase import Phrase
from rag.types import SentenceScore

SCORER_FILE = "scorer.json"
FORMAT = 2
_RETRAIN = "retrain it with `python -m eval.quality.train_evidence`"


@dataclass(frozen=True, slots=True)
class Policy:
    """How many sentences to cite.

    Abstain when the answerability is under ``abstain_below``; otherwise cite, most
    probable first, each sentence at least ``cite_from`` and within ``margin`` of the
    best, up to ``max_sentences``: one strong sentence beats three weak ones. An
    answer phrase is given when its probability is at least ``phrase_from``.
    """

    abstain_below: float
    cite_from: float
    margin: float
    max_sentences: int
    phrase_from: float = 1.0

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Policy:
        return cls(float(data["abstain_below"]), float(data["cite_from"]),
                   float(data["margin"]), int(data["max_sentences"]),
                   float(data.get("phrase_from", 1.0)))

    def as_dict(self) -> dict[str, float | int]:
        return {"abstain_below": float(self.abstain_below), "cite_from": float(self.cite_from),
                "margin": float(self.margin), "max_sentences": self.max_sentences,
                "phrase_from": float(self.phrase_from)}


def sigmoid(x: Floats) -> Floats:
    out: Floats = 1 / (1 + np.exp(-np.clip(x, -50, 50)))
    return out


def logsumexp(x: Floats) -> float:
    m = float(np.max(x))
    return m + float(np.log(np.exp(x - m).sum()))


ANSWERABILITY_INPUTS = ("best", "logsumexp", "best_linear")


def answerability_inputs(logits: Floats, linear: Floats) -> Floats:
    """What the answerability regression reads, from the logits of the citable candidates
    and the linear stage's logits of all of them: the best logit (absolute evidence),
    their log-sum-exp (evidence spread over several sentences), the linear stage's best
    (its cosines and word overlap keep off-topic questions low)."""
    return np.array([float(np.max(logits)), logsumexp(logits), float(np.max(linear))])


@dataclass(frozen=True, slots=True)
class Answerability:
    """P(the candidates hold the evidence) from ``answerability_inputs``."""

    weights: tuple[float, ...]
    bias: float

    def __post_init__(self) -> None:
        if len(self.weights) != len(ANSWERABILITY_INPUTS):
            raise IndexMismatchError(f"the answerability model has {len(self.weights)} weights "
                                     f"for {len(ANSWERABILITY_INPUTS)} inputs: {_RETRAIN}")

    def __call__(self, logits: Floats, linear: Floats) -> float:
        z = answerability_inputs(logits, linear) @ np.asarray(self.weights) + self.bias
        return float(sigmoid(np.asarray(z)))

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Answerability:
        return cls(tuple(float(w) for w in data["weights"]), float(data["bias"]))

    def as_dict(self) -> dict[str, Any]:
        return {"inputs": list(ANSWERABILITY_INPUTS),
                "weights": [round(w, 8) for w in self.weights], "bias": round(self.bias, 8)}


@dataclass(frozen=True, slots=True)
class Scores:
    """Per candidate: the probability it is the evidence, each stage's logit, and (for the
    candidates the cross-encoder read) the answer phrase it found."""

    probability: Floats
    answerable: float = 0.0
    stages: Mapping[str, Floats] = field(default_factory=dict)
    phrases: Mapping[int, Phrase] = field(default_factory=dict)

    def explain(self, i: int, rows: Features, n: int = 0) -> SentenceScore:
        """Why candidate ``i`` scored as it did, for provenance (``n``: its citation)."""
        return SentenceScore(n, round(float(self.probability[i]), 6),
                             {k: round(float(v[i]), 6) for k, v in self.stages.items()},
                             {f: round(float(rows[i, j]), 6) for j, f in enumerate(FEATURES)})


def shares(logits: Floats) -> Floats:
    """Each candidate's share of the evidence: a softmax (-inf for those never citable)."""
    finite = np.isfinite(logits)
    out = np.zeros(len(logits))
    if finite.any():
        z = logits[finite]
        e = np.exp(z - z.max())
        out[finite] = e / e.sum()
    return out


def decide(logits: Floats, linear: Floats, answerability: Answerability,
           stages: Mapping[str, Floats], phrases: Mapping[int, Phrase] | None = None) -> Scores:
    """Scores from each candidate's logit (-inf: never citable) and the linear stage's."""
    finite = np.isfinite(logits)
    if not finite.any():
        return Scores(np.zeros(len(logits)), 0.0, stages, phrases or {})
    p = answerability(logits[finite], linear)
    return Scores(p * shares(logits), p, stages, phrases or {})


class EvidenceScorer(ABC):
    name: str
    policy: Policy

    @abstractmethod
    def score(self, question: str, candidates: Sequence[Candidate], rows: Features) -> Scores:
        """The probability of each candidate (one row of FEATURES each) being the evidence."""


class LinearScorer(EvidenceScorer):
    def __init__(self, weights: Sequence[float], bias: float, answerability: Answerability,
                 policy: Policy, name: str = "linear") -> None:
        if len(weights) != len(FEATURES):
            raise IndexMismatchError(f"the evidence scorer has {len(weights)} weights for "
                                     f"{len(FEATURES)} features: {_RETRAIN}")
        self.weights = np.asarray(weights, dtype=np.float64)
        self.bias = float(bias)
        self.answerability = answerability
        self.policy = policy
        self.name = name

    def logits(self, rows: Features) -> Floats:
        out: Floats = rows @ self.weights + self.bias
        return out

    def score(self, question: str, candidates: Sequence[Candidate], rows: Features) -> Scores:
        z = self.logits(rows)
        return decide(z, z, self.answerability, {"linear": z})


@dataclass(frozen=True, slots=True)
class Reading:
    """What the cross-encoder says of each sentence: its logit, and its answer phrase."""

    logits: Floats
    phrases: tuple[Phrase | None, ...]


class PairScorer(ABC):
    """What the second stage needs of a cross-encoder (rag.crossencoder.CrossEncoder)."""

    name: str

    @abstractmethod
    def read(self, question: str, sentences: Sequence[str]) -> Reading:
        """Each sentence read together with the question."""


COMBINER_INPUTS = ("linear", "cross")


def combiner_inputs(linear: Floats, cross: Floats) -> Floats:
    """The second stage's inputs for the top candidates, one row each: the two logits."""
    return np.column_stack([linear, cross])


class RerankedScorer(EvidenceScorer):
    def __init__(self, first: LinearScorer, cross: PairScorer, top: int,
                 weights: Sequence[float], bias: float, answerability: Answerability,
                 policy: Policy) -> None:
        if len(weights) != len(COMBINER_INPUTS):
            raise IndexMismatchError(f"the evidence scorer's second stage has {len(weights)} "
                                     f"weights for {len(COMBINER_INPUTS)} inputs: {_RETRAIN}")
        self.first, self.cross, self.top = first, cross, top
        self.weights = np.asarray(weights, dtype=np.float64)  # one per COMBINER_INPUTS
        self.bias = float(bias)
        self.answerability = answerability
        self.policy = policy
        self.name = f"{first.name}+{cross.name}"

    def score(self, question: str, candidates: Sequence[Candidate], rows: Features) -> Scores:
        z1 = self.first.logits(rows)
        chosen = np.argsort(-z1, kind="stable")[:self.top]
        reading = self.cross.read(question, [candidates[i].quote for i in chosen])
        cross = np.full(len(z1), np.nan)
        cross[chosen] = reading.logits
        z = np.full(len(z1), -np.inf)
        z[chosen] = combiner_inputs(z1[chosen], cross[chosen]) @ self.weights + self.bias
        phrases = {int(i): p for i, p in zip(chosen, reading.phrases, strict=True)
                   if p is not None}
        return decide(z, z1, self.answerability, {"linear": z1, "cross": cross, "combined": z},
                      phrases)


def _stage(data: Mapping[str, Any], key: str, path: Path) -> tuple[Answerability, Policy]:
    try:
        return Answerability.from_dict(data[key]["answerability"]), \
            Policy.from_dict(data[key]["policy"])
    except (KeyError, TypeError, ValueError):
        raise IndexMismatchError(f"the evidence scorer {path} lacks the {key} stage's "
                                 f"answerability or policy: {_RETRAIN}") from None


def load(folder: Path, cross_encoder: PairScorer | None = None) -> EvidenceScorer:
    """The scorer kept in ``folder``; with a cross-encoder, its reranked form."""
    path = folder / SCORER_FILE
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        raise IndexMismatchError(f"cannot read the evidence scorer {path} ({exc}): set "
                                 "RAG_EVIDENCE_MODEL to a folder made by "
                                 "`python -m eval.quality.train_evidence`") from None
    if data.get("format") != FORMAT or list(data.get("features", [])) != list(FEATURES):
        raise IndexMismatchError(f"the evidence scorer {path} was made for other features or "
                                 f"another format: {_RETRAIN}")
    lin = data["linear"]
    first = LinearScorer(lin["weights"], lin["bias"], *_stage(data, "linear", path))
    rerank = data.get("rerank")
    if cross_encoder is None or rerank is None:
        return first
    return RerankedScorer(first, cross_encoder, int(rerank["top"]), rerank["weights"],
                          rerank["bias"], *_stage(data, "rerank", path))
