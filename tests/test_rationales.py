"""The citation metric (SciFact's sentence-level "selection only"), on cases worked by hand."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from eval.quality import rationales
from eval.quality.beir import DatasetError
from eval.quality.rationales import Claim, Counts, score_claim, sentences_covered

SPANS = ((10, 20), (21, 30), (31, 40), (41, 50), (51, 60))
# d1 holds two rationales: sentences 1 and 2 together, and sentence 4 alone.
CLAIM = Claim("1", "a claim", {"d1": (frozenset({1, 2}), frozenset({4}))}, {"d1": SPANS})
NO_EVIDENCE = Claim("2", "another claim", {}, {})


def test_a_quote_stands_for_the_gold_sentences_it_mostly_covers() -> None:
    assert sentences_covered(10, 20, SPANS) == {0}  # exact
    assert sentences_covered(12, 18, SPANS) == {0}  # a fragment of sentence 0
    assert sentences_covered(10, 30, SPANS) == {0, 1}  # two whole sentences
    assert sentences_covered(8, 24, SPANS) == {0}  # 10 of its 16 characters are sentence 0
    assert sentences_covered(18, 23, SPANS) == set()  # 2 + 2 of 5 characters: neither
    assert sentences_covered(0, 9, SPANS) == set()  # the title


def test_a_rationale_counts_only_when_all_its_sentences_are_cited() -> None:
    both = score_claim(CLAIM, [("d1", 21, 30), ("d1", 31, 40), ("d1", 41, 50)])
    # predicted {1, 2, 3}: rationale {1, 2} complete (2 correct), {4} missed, 3 is wrong
    assert (both.retrieved, both.correct, both.relevant) == (3, 2, 3)
    assert (both.citations, both.evidence_citations) == (3, 2)
    half = score_claim(CLAIM, [("d1", 21, 30)])
    # sentence 1 without sentence 2 earns nothing, though the citation is evidence
    assert (half.retrieved, half.correct, half.relevant) == (1, 0, 3)
    assert half.evidence_citations == 1


def test_one_quote_over_two_sentences_predicts_both() -> None:
    counts = score_claim(CLAIM, [("d1", 21, 40)])
    assert (counts.retrieved, counts.correct, counts.evidence_citations) == (2, 2, 1)


def test_citations_without_evidence_cost_precision_and_abstaining_costs_recall() -> None:
    nei = score_claim(NO_EVIDENCE, [("d9", 0, 50), ("d9", 60, 90)])
    assert (nei.retrieved, nei.correct, nei.relevant) == (2, 0, 0)
    other_doc = score_claim(CLAIM, [("d2", 21, 30)])  # right offsets, wrong abstract
    assert (other_doc.retrieved, other_doc.correct, other_doc.evidence_citations) == (1, 0, 0)
    abstained = score_claim(CLAIM, [])
    assert (abstained.retrieved, abstained.correct, abstained.relevant) == (0, 0, 3)


def test_totals_give_precision_recall_and_f1() -> None:
    total = Counts()
    for counts in (score_claim(CLAIM, [("d1", 21, 30), ("d1", 31, 40), ("d1", 51, 60)]),
                   score_claim(CLAIM, [("d1", 51, 60)]),
                   score_claim(NO_EVIDENCE, [("d9", 0, 5)])):
        total.add(counts)
    # retrieved 3 + 1 + 1 = 5; correct 3 (both rationales) + 1 + 0 = 4; relevant 3 + 3 = 6
    scores = total.scores()
    assert scores["precision"] == pytest.approx(4 / 5)
    assert scores["recall"] == pytest.approx(4 / 6)
    assert scores["f1"] == pytest.approx(2 * (4 / 5) * (4 / 6) / (4 / 5 + 4 / 6))
    assert scores["citation_precision"] == pytest.approx(4 / 5)
    assert Counts().scores() == {"precision": 0.0, "recall": 0.0, "f1": 0.0,
                                 "citation_precision": 0.0}


def test_load_reads_the_rationales_format_and_refuses_a_wrong_file(tmp_path: Path) -> None:
    good = tmp_path / "r.jsonl"
    good.write_text(json.dumps({"id": "7", "claim": "c", "evidence": {"5": [[0, 2]]},
                                "label": {"5": "SUPPORT"},
                                "sentence_spans": {"5": [[3, 9], [10, 20], [21, 30]]}}) + "\n"
                    + json.dumps({"id": "8", "claim": "d", "evidence": {},
                                  "sentence_spans": {}}) + "\n")
    claims = rationales.load(good)
    assert claims["7"].evidence == {"5": (frozenset({0, 2}),)}
    assert claims["7"].spans["5"][1] == (10, 20) and claims["7"].gold_sentences() == 2
    assert not claims["8"].has_evidence
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"id": "1", "claim": "c", "evidence": {"5": [[0]]}, "sentence_spans": {}}\n')
    with pytest.raises(DatasetError, match="no sentence_spans"):
        rationales.load(bad)
    with pytest.raises(DatasetError, match="missing"):
        rationales.load(tmp_path / "nope.jsonl")
