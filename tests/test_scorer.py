"""The evidence scorer's stages and the citation policy, on hand-made numbers."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from rag.answer import choose
from rag.errors import IndexMismatchError
from rag.evidence import FEATURES, Candidate
from rag.scorer import (
    SCORER_FILE,
    EvidenceScorer,
    LinearScorer,
    Policies,
    Policy,
    RerankedScorer,
    load,
    sigmoid,
)
from rag.types import Chunk, Hit

POLICY = Policy(abstain_below=0.3, cite_from=0.2, margin=0.25, max_sentences=3)
LENIENT = Policy(abstain_below=0.05, cite_from=0.05, margin=0.25, max_sentences=3)


def _candidates(words: list[int]) -> list[Candidate]:
    chunk = Chunk("d", "d#0", 0, "", 0, 0, 0)
    hit = Hit(1, 1.0, chunk, "D", "src")
    return [Candidate("d", chunk, 10 * i, 10 * i + 5, " ".join(["w"] * n), 1, hit, hit)
            for i, n in enumerate(words)]


def _vectors(n: int) -> np.ndarray:
    return np.eye(n, dtype=np.float32)  # all different


@pytest.mark.unit
def test_cite_strongest_first_within_the_margin_and_the_cap() -> None:
    p = np.array([0.5, 0.9, 0.7, 0.66, 0.1])
    assert choose(p, POLICY, _candidates([5] * 5), _vectors(5)) == [1, 2, 3]
    # max_sentences 1: one strong sentence, not three
    assert choose(p, Policy(0.3, 0.2, 0.25, 1), _candidates([5] * 5), _vectors(5)) == [1]
    # a sentence more than the margin below the best is left out: 0.5 < 0.9 - 0.25
    assert 0 not in choose(p, Policy(0.3, 0.2, 0.25, 4), _candidates([5] * 5), _vectors(5))


@pytest.mark.unit
def test_abstain_when_the_best_is_under_the_threshold() -> None:
    p = np.array([0.29, 0.1])
    assert choose(p, POLICY, _candidates([5, 5]), _vectors(2)) == []
    assert choose(np.zeros(0), POLICY, [], np.zeros((0, 3), dtype=np.float32)) == []
    # above it, weak companions under cite_from stay out
    assert choose(np.array([0.31, 0.19]), Policy(0.3, 0.2, 1.0, 3), _candidates([5, 5]),
                  _vectors(2)) == [0]


@pytest.mark.unit
def test_near_duplicates_and_the_word_budget_are_skipped() -> None:
    p = np.array([0.9, 0.85, 0.8])
    same = np.array([[1, 0], [1, 0], [0, 1]], dtype=np.float32)
    assert choose(p, POLICY, _candidates([5, 5, 5]), same) == [0, 2]
    assert choose(p, POLICY, _candidates([100, 30, 10]), _vectors(3), max_words=120) == [0, 2]


@pytest.mark.unit
def test_linear_scorer_is_a_logistic_regression_over_the_features() -> None:
    weights = np.linspace(-1, 1, len(FEATURES))
    scorer = LinearScorer(weights.tolist(), 0.5, Policies(POLICY, LENIENT))
    rows = np.arange(2 * len(FEATURES), dtype=np.float64).reshape(2, -1) / 10
    scores = scorer.score("q", _candidates([5, 5]), rows)
    assert np.allclose(scores.probability, 1 / (1 + np.exp(-(rows @ weights + 0.5))))
    assert np.allclose(scores.stages["linear"], rows @ weights + 0.5)
    with pytest.raises(IndexMismatchError, match="retrain"):
        LinearScorer([1.0, 2.0], 0.0, Policies(POLICY, POLICY))
    assert sigmoid(np.array([-1e6, 0.0, 1e6])).tolist() == [pytest.approx(0), 0.5,
                                                            pytest.approx(1)]


@pytest.mark.unit
def test_load_refuses_a_scorer_for_other_features(tmp_path: Path) -> None:
    shipped = json.loads((Path(__file__).parents[1] / "rag" / "data" / "evidence"
                          / SCORER_FILE).read_text())
    assert shipped["features"] == list(FEATURES)
    good = tmp_path / "good"
    good.mkdir()
    (good / SCORER_FILE).write_text(json.dumps(shipped))
    assert isinstance(load(good), LinearScorer)  # no cross-encoder given: the linear stage
    bad = tmp_path / "bad"
    bad.mkdir()
    (bad / SCORER_FILE).write_text(json.dumps({**shipped, "features": ["cosine"]}))
    with pytest.raises(IndexMismatchError, match="retrain"):
        load(bad)
    with pytest.raises(IndexMismatchError, match="RAG_EVIDENCE_MODEL"):
        load(tmp_path / "missing")


@pytest.mark.unit
def test_questions_and_claims_get_their_own_policy() -> None:
    policies = Policies(POLICY, LENIENT)
    for question in ("Who is Karl Friedhoff affiliated with?", "what lowers fever",
                     "Does aspirin lower fever", "  How many players are on a team"):
        assert policies.for_text(question) == LENIENT, question
    for claim in ("Aspirin lowers fever.", "0-dimensional biomaterials lack inductive "
                  "properties.", "Whole genome sequencing is cheap.", "Isoniazid cures TB."):
        assert policies.for_text(claim) == POLICY, claim
    assert Policies.from_dict({"policy": {"abstain_below": 0.3, "cite_from": 0.2,
                                          "margin": 0.25, "max_sentences": 3}}).questions \
        == POLICY  # no question policy written: the claims' one


def test_reranked_scorer_reads_only_the_top_candidates_and_combines_by_hand(
        scorer: EvidenceScorer) -> None:
    assert isinstance(scorer, RerankedScorer)
    cross = scorer.cross  # the shipped cross-encoder, through its ONNX export
    first = LinearScorer([1.0] + [0.0] * (len(FEATURES) - 1), 0.0, Policies(POLICY, POLICY))
    rows = np.zeros((3, len(FEATURES)))
    rows[:, 0] = [2.0, 0.0, 1.0]  # linear logits 2, 0, 1: the top two are 0 and 2
    candidates = _candidates([1, 9, 3])
    reranked = RerankedScorer(first, cross, 2, [0.5, 2.0], -1.0, Policies(POLICY, POLICY))
    scores = reranked.score("q", candidates, rows)
    c = cross.logits("q", [candidates[0].quote, candidates[2].quote]).astype(np.float64)
    expected = np.array([0.5 * 2 + 2.0 * c[0] - 1, 0.5 * 1 + 2.0 * c[1] - 1])
    assert np.allclose(scores.probability[[0, 2]], sigmoid(expected))
    assert np.allclose(scores.stages["cross"][[0, 2]], c)
    # candidate 1 is outside the linear stage's top two: never read, never cited
    assert scores.probability[1] < 1e-20 and np.isnan(scores.stages["cross"][1])
    with pytest.raises(IndexMismatchError, match="retrain"):
        RerankedScorer(first, cross, 2, [1.0, 1.0, 1.0], 0.0, Policies(POLICY, POLICY))


@pytest.mark.unit
def test_a_policy_round_trips_and_an_old_gate_is_ignored() -> None:
    policy = Policy(0.03, 0.03, 0.5, 3)
    assert Policy.from_dict(policy.as_dict()) == policy
    # a scorer.json written before the linear stage's gate was dropped still loads
    assert Policy.from_dict({**policy.as_dict(), "first_stage_below": 0.07}) == policy
