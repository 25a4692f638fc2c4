"""Candidate features to the probability that a sentence is the evidence.

Two stages, both fit by ``python -m eval.quality.train_evidence`` on SciFact's train
claims and kept in one folder (``rag/data/evidence/`` by default):

- ``LinearScorer``: logistic regression over rag.evidence.FEATURES, a few dozen
  numbers in ``scorer.json``. Costs nothing next to retrieval.
- ``RerankedScorer``: the linear stage picks its ``top`` candidates, the cross-encoder
  (rag.crossencoder) reads each with the question, and a second logistic regression
  combines the two stages' evidence for those (``combiner_inputs``); the others
  cannot be cited.

Each stage carries the citation policies chosen with it (thresholds on its own
probabilities: the two stages' are not on the same scale), one for claims and one
for questions (``Policies``).
"""

from __future__ import annotations

import json
from abc import ABC, abstractmethod
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from rag.arrays import Floats
from rag.errors import IndexMismatchError
from rag.evidence import FEATURES, Candidate, Features
from rag.sentence_split import is_question
from rag.types import SentenceScore

SCORER_FILE = "scorer.json"
FORMAT = 1


@dataclass(frozen=True, slots=True)
class Policy:
    """How many sentences to cite, read off their probabilities.

    Abstain when the best is under ``abstain_below``; otherwise cite, strongest
    first, each sentence at least ``cite_from`` and within ``margin`` of the best,
    up to ``max_sentences``: one strong sentence beats three weak ones.
    """

    abstain_below: float
    cite_from: float
    margin: float
    max_sentences: int

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Policy:
        return cls(float(data["abstain_below"]), float(data["cite_from"]),
                   float(data["margin"]), int(data["max_sentences"]))

    def as_dict(self) -> dict[str, float | int]:
        """What ``from_dict`` reads."""
        return {"abstain_below": float(self.abstain_below), "cite_from": float(self.cite_from),
                "margin": float(self.margin), "max_sentences": self.max_sentences}


@dataclass(frozen=True, slots=True)
class Policies:
    """The policy for claims, fit on SciFact, and the one for questions.

    SciFact holds claims only, and its claims without evidence are on topic, so
    its abstention threshold asks a lot; a question scores lower against the
    sentence that answers it than a claim against its evidence (it does not say
    the answer), and under that threshold most answerable questions would go
    unanswered. Questions get the threshold that separates the answerable from the
    off-topic seed questions (eval.quality.calibrate), with the claims' margin and cap.
    """

    claims: Policy
    questions: Policy

    def for_text(self, text: str) -> Policy:
        return self.questions if is_question(text) else self.claims

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Policies:
        claims = Policy.from_dict(data["policy"])
        questions = data.get("question_policy")
        return cls(claims, Policy.from_dict(questions) if questions else claims)


@dataclass(frozen=True, slots=True)
class Scores:
    """Per candidate: the probability it is evidence, and what each stage said."""

    probability: Floats
    stages: Mapping[str, Floats] = field(default_factory=dict)

    def explain(self, i: int, rows: Features, n: int = 0) -> SentenceScore:
        """Why candidate ``i`` scored as it did, for provenance (``n``: its citation)."""
        return SentenceScore(n, round(float(self.probability[i]), 6),
                             {k: round(float(v[i]), 6) for k, v in self.stages.items()},
                             {f: round(float(rows[i, j]), 6) for j, f in enumerate(FEATURES)})


def sigmoid(x: Floats) -> Floats:
    out: Floats = 1 / (1 + np.exp(-np.clip(x, -50, 50)))
    return out


COMBINER_INPUTS = ("linear", "cross")


def combiner_inputs(linear: Floats, cross: Floats) -> Floats:
    """The second stage's inputs for the top candidates, one row each: the two logits.

    Both are absolute, so the combined probability also says whether there is any
    evidence at all. Adding a candidate's share of the cross-encoder's softmax over
    the top ten raised cross-validated F1 on SciFact train (0.419 to 0.445) but made
    a relative score of it: an off-topic seed question then outscored an answerable
    one and no abstention threshold separated them (README "Citations").
    """
    return np.column_stack([linear, cross])


class EvidenceScorer(ABC):
    name: str
    policies: Policies

    @abstractmethod
    def score(self, question: str, candidates: Sequence[Candidate], rows: Features) -> Scores:
        """The probability of each candidate (one row of FEATURES each) being evidence."""


class LinearScorer(EvidenceScorer):
    def __init__(self, weights: Sequence[float], bias: float, policies: Policies,
                 name: str = "linear") -> None:
        if len(weights) != len(FEATURES):
            raise IndexMismatchError(f"the evidence scorer has {len(weights)} weights for "
                                     f"{len(FEATURES)} features: retrain it with "
                                     "`python -m eval.quality.train_evidence`")
        self.weights = np.asarray(weights, dtype=np.float64)
        self.bias = float(bias)
        self.policies = policies
        self.name = name

    def logits(self, rows: Features) -> Floats:
        out: Floats = rows @ self.weights + self.bias
        return out

    def score(self, question: str, candidates: Sequence[Candidate], rows: Features) -> Scores:
        z = self.logits(rows)
        return Scores(sigmoid(z), {"linear": z})


class PairScorer(ABC):
    """What the second stage needs of a cross-encoder (rag.crossencoder.CrossEncoder)."""

    name: str

    @abstractmethod
    def logits(self, question: str, sentences: Sequence[str]) -> npt.NDArray[np.float32]:
        """One logit per sentence read together with the question."""


class RerankedScorer(EvidenceScorer):
    def __init__(self, first: LinearScorer, cross: PairScorer, top: int,
                 weights: Sequence[float], bias: float, policies: Policies) -> None:
        if len(weights) != len(COMBINER_INPUTS):
            raise IndexMismatchError(f"the evidence scorer's second stage has {len(weights)} "
                                     f"weights for {len(COMBINER_INPUTS)} inputs: retrain it "
                                     "with `python -m eval.quality.train_evidence`")
        self.first, self.cross, self.top = first, cross, top
        self.weights = np.asarray(weights, dtype=np.float64)  # one per COMBINER_INPUTS
        self.bias = float(bias)
        self.policies = policies
        self.name = f"{first.name}+{cross.name}"

    def score(self, question: str, candidates: Sequence[Candidate], rows: Features) -> Scores:
        z1 = self.first.logits(rows)
        chosen = np.argsort(-z1, kind="stable")[:self.top]
        cross = np.full(len(z1), np.nan)
        cross[chosen] = self.cross.logits(question, [candidates[i].quote for i in chosen])
        z = np.full(len(z1), -np.inf)
        z[chosen] = combiner_inputs(z1[chosen], cross[chosen]) @ self.weights + self.bias
        return Scores(sigmoid(z), {"linear": z1, "cross": cross})


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
                                 "another format: retrain it with "
                                 "`python -m eval.quality.train_evidence`")
    lin = data["linear"]
    first = LinearScorer(lin["weights"], lin["bias"], Policies.from_dict(lin))
    rerank = data.get("rerank")
    if cross_encoder is None or rerank is None:
        return first
    return RerankedScorer(first, cross_encoder, int(rerank["top"]), rerank["weights"],
                          rerank["bias"], Policies.from_dict(rerank))
