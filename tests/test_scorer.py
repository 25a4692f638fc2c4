"""The evidence scorer's stages and the citation policy, on hand-made numbers."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from rag.answer import choose
from rag.errors import IndexMismatchError
from rag.evidence import FEATURES, Candidate
from rag.phrase import Phrase, best_span
from rag.scorer import (
    SCORER_FILE,
    Answerability,
    EvidenceScorer,
    LinearScorer,
    Policy,
    RerankedScorer,
    Scores,
    load,
    logsumexp,
    shares,
    sigmoid,
)
from rag.types import Chunk, Hit

POLICY = Policy(abstain_below=0.3, cite_from=0.2, margin=0.25, max_sentences=3)
# P(answerable) = sigmoid(best logit): the other two inputs weigh nothing
BEST = Answerability((1.0, 0.0, 0.0), 0.0)


def _candidates(words: list[int]) -> list[Candidate]:
    chunk = Chunk("d", "d#0", 0, "", 0, 0, 0)
    hit = Hit(1, 1.0, chunk, "D", "src")
    return [Candidate("d", chunk, 10 * i, 10 * i + 5, " ".join(["w"] * n), 1, hit, hit)
            for i, n in enumerate(words)]


def _vectors(n: int) -> np.ndarray:
    return np.eye(n, dtype=np.float32)  # all different


def _scores(p: list[float], answerable: float) -> Scores:
    return Scores(np.array(p), answerable)


@pytest.mark.unit
def test_cite_strongest_first_within_the_margin_and_the_cap() -> None:
    s = _scores([0.5, 0.9, 0.7, 0.66, 0.1], 0.95)
    assert choose(s, POLICY, _candidates([5] * 5), _vectors(5)) == [1, 2, 3]
    # max_sentences 1: one strong sentence, not three
    assert choose(s, Policy(0.3, 0.2, 0.25, 1), _candidates([5] * 5), _vectors(5)) == [1]
    # a sentence more than the margin below the best is left out: 0.5 < 0.9 - 0.25
    assert 0 not in choose(s, Policy(0.3, 0.2, 0.25, 4), _candidates([5] * 5), _vectors(5))


@pytest.mark.unit
def test_abstain_when_the_answerability_is_under_the_threshold() -> None:
    # the best sentence is cited whenever the answerability passes, however low its own share
    assert choose(_scores([0.15, 0.1], 0.31), POLICY, _candidates([5, 5]), _vectors(2)) == [0]
    assert choose(_scores([0.29, 0.1], 0.29), POLICY, _candidates([5, 5]), _vectors(2)) == []
    assert choose(_scores([], 0.9), POLICY, [], np.zeros((0, 3), dtype=np.float32)) == []
    # above it, weak companions under cite_from stay out
    assert choose(_scores([0.31, 0.19], 0.5), Policy(0.3, 0.2, 1.0, 3), _candidates([5, 5]),
                  _vectors(2)) == [0]


@pytest.mark.unit
def test_near_duplicates_and_the_word_budget_are_skipped() -> None:
    s = _scores([0.9, 0.85, 0.8], 0.95)
    same = np.array([[1, 0], [1, 0], [0, 1]], dtype=np.float32)
    assert choose(s, POLICY, _candidates([5, 5, 5]), same) == [0, 2]
    assert choose(s, POLICY, _candidates([100, 30, 10]), _vectors(3), max_words=120) == [0, 2]


@pytest.mark.unit
def test_linear_scorer_shares_the_evidence_and_reads_answerability_off_its_logits() -> None:
    weights = np.linspace(-1, 1, len(FEATURES))
    scorer = LinearScorer(weights.tolist(), 0.5, BEST, POLICY)
    rows = np.arange(2 * len(FEATURES), dtype=np.float64).reshape(2, -1) / 10
    scores = scorer.score("q", _candidates([5, 5]), rows)
    z = rows @ weights + 0.5
    assert np.allclose(scores.stages["linear"], z)
    assert scores.answerable == pytest.approx(float(sigmoid(np.array(z.max()))))
    share = np.exp(z - z.max()) / np.exp(z - z.max()).sum()
    assert np.allclose(scores.probability, scores.answerable * share)
    assert scores.probability.sum() == pytest.approx(scores.answerable)
    with pytest.raises(IndexMismatchError, match="retrain"):
        LinearScorer([1.0, 2.0], 0.0, BEST, POLICY)
    with pytest.raises(IndexMismatchError, match="retrain"):
        Answerability((1.0,), 0.0)
    assert sigmoid(np.array([-1e6, 0.0, 1e6])).tolist() == [pytest.approx(0), 0.5,
                                                            pytest.approx(1)]


@pytest.mark.unit
def test_answerability_inputs_and_shares_by_hand() -> None:
    # logits 0 and ln 3: best ln 3, log-sum-exp ln 4; linear best 2
    logits = np.array([0.0, np.log(3.0)])
    a = Answerability((1.0, 1.0, 1.0), -2.0)
    assert a(logits, np.array([2.0, -1.0])) == pytest.approx(
        float(sigmoid(np.array(np.log(3.0) + np.log(4.0)))))
    assert logsumexp(logits) == pytest.approx(np.log(4.0))
    assert shares(np.array([0.0, np.log(3.0), -np.inf])).tolist() == pytest.approx(
        [0.25, 0.75, 0.0])


@pytest.mark.unit
def test_the_answer_phrase_is_the_best_span_within_the_length_limit() -> None:
    offsets = [(0, 3), (4, 9), (10, 14), (15, 19)]  # "The Rhine rose 1973"
    start = np.array([0.0, 3.0, 0.0, 1.0])
    end = np.array([0.0, 0.0, 1.0, 2.0])
    # best sum: start token 1 (3) + end token 3 (2)
    found = best_span(start, end, offsets)
    assert found is not None and (found.start, found.end) == (4, 19)
    es, ee = np.exp(start), np.exp(end)
    assert found.probability == pytest.approx(es[1] / es.sum() * ee[3] / ee.sum())
    # at most two tokens long: token 1 to token 2
    assert best_span(start, end, offsets, max_tokens=2) == Phrase(4, 14, pytest.approx(
        es[1] / es.sum() * ee[2] / ee.sum()), 4.0)
    assert found.score == 5.0
    # an end before the start is never chosen
    short = best_span(np.array([0.0, 5.0]), np.array([5.0, 0.0]), [(0, 1), (2, 3)])
    assert short is not None and short.start <= short.end
    assert best_span(np.zeros(0), np.zeros(0), []) is None


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
    old = tmp_path / "old"
    old.mkdir()
    (old / SCORER_FILE).write_text(json.dumps({**shipped, "format": 1}))
    with pytest.raises(IndexMismatchError, match="retrain"):
        load(old)
    with pytest.raises(IndexMismatchError, match="RAG_EVIDENCE_MODEL"):
        load(tmp_path / "missing")


def test_reranked_scorer_reads_only_the_top_candidates_and_combines_by_hand(
        scorer: EvidenceScorer) -> None:
    assert isinstance(scorer, RerankedScorer)
    cross = scorer.cross  # the shipped cross-encoder, through its ONNX export
    first = LinearScorer([1.0] + [0.0] * (len(FEATURES) - 1), 0.0, BEST, POLICY)
    rows = np.zeros((3, len(FEATURES)))
    rows[:, 0] = [2.0, 0.0, 1.0]  # linear logits 2, 0, 1: the top two are 0 and 2
    candidates = _candidates([1, 9, 3])
    reranked = RerankedScorer(first, cross, 2, [0.5, 2.0], -1.0, BEST, POLICY)
    scores = reranked.score("q", candidates, rows)
    reading = cross.read("q", [candidates[0].quote, candidates[2].quote])
    c = reading.logits
    z = np.array([0.5 * 2 + 2.0 * c[0] - 1, 0.5 * 1 + 2.0 * c[1] - 1])
    assert np.allclose(scores.stages["combined"][[0, 2]], z)
    assert scores.answerable == pytest.approx(float(sigmoid(np.array(z.max()))))
    assert np.allclose(scores.probability[[0, 2]], scores.answerable * np.exp(z) / np.exp(z).sum())
    assert np.allclose(scores.stages["cross"][[0, 2]], c)
    # candidate 1 is outside the linear stage's top two: never read, never cited
    assert scores.probability[1] == 0 and np.isnan(scores.stages["cross"][1])
    assert set(scores.phrases) <= {0, 2}
    for i, phrase in scores.phrases.items():
        assert 0 <= phrase.start < phrase.end <= len(candidates[i].quote)
    with pytest.raises(IndexMismatchError, match="retrain"):
        RerankedScorer(first, cross, 2, [1.0, 1.0, 1.0], 0.0, BEST, POLICY)
