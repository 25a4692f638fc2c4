"""`rag eval --task questions`: the summary's figures on records worked by hand."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from eval.quality.questions import HELD_OUT, auc, curve, fold_scorers, summarize, table


def _record(answerable: bool, abstained: bool, first: bool = False, any_: bool = False,
            citations: int = 0, precise: int = 0, score: float = 0.5,
            phrase: str | None = None, f1: float = 0.0, em: float = 0.0) -> dict[str, Any]:
    return {"id": "q", "answerable": answerable, "abstained": abstained, "ms": 10.0,
            "citations": citations, "first_holds": first, "any_holds": any_, "precise": precise,
            "score": score, "phrase": phrase, "phrase_em": em, "phrase_f1": f1}


RECORDS = [
    # answerable, answered, [1] right, 2 citations of which 1 in an answer sentence
    _record(True, False, True, True, 2, 1, 0.9, "1973", 1.0, 1.0),
    # answerable, answered, [1] wrong but [2] right; phrase half right
    _record(True, False, False, True, 2, 1, 0.7, "October", 0.5, 0.0),
    # answerable, declined
    _record(True, True, score=0.2),
    # unanswerable, declined
    _record(False, True, score=0.1),
    # unanswerable, answered with one citation
    _record(False, False, False, False, 1, 0, 0.8, "x"),
]


@pytest.mark.unit
def test_summary_figures_by_hand() -> None:
    s = summarize(RECORDS)
    assert (s["questions"], s["answerable"], s["unanswerable"]) == (5, 3, 2)
    assert s["qa_accuracy"] == 0.4  # the first answer and the declined unanswerable one
    assert s["decision_accuracy"] == 0.6  # two answerable answered + one declined
    assert s["answered_answerable"] == round(2 / 3, 4)
    assert s["abstained_unanswerable"] == 0.5
    assert s["first_holds_answer"] == round(1 / 3, 4)
    assert s["first_holds_answered"] == 0.5
    assert s["some_citation_holds"] == round(2 / 3, 4)
    assert s["citation_precision"] == 0.4  # 2 of the 5 citations of the three answers
    assert s["citation_precision_answerable"] == 0.5  # 2 of the 4 of the answerable ones
    assert s["citations_per_answer"] == round(5 / 3, 4)
    assert s["phrase_given"] == 1.0
    assert s["phrase_em"] == 0.5 and s["phrase_f1"] == 0.75
    # scores: answerable 0.9, 0.7, 0.2 against 0.1, 0.8: 4 of the 6 pairs ordered right
    assert s["score_auc"] == round(4 / 6, 4)
    assert "qa_accuracy" in table({**s, "dataset": "d", "k": 5, "cross_validated": True})


@pytest.mark.unit
def test_auc_counts_ties_half_and_the_curve_moves_with_the_threshold() -> None:
    assert auc([1.0, 0.5], [0.5]) == 0.75
    assert auc([], [0.1]) is None
    rows = curve(RECORDS, [0.0, 0.5, 1.0])
    assert rows[0]["answered_answerable"] == 1.0 and rows[0]["abstained_unanswerable"] == 0.0
    # at 0.5: answerable 0.9 and 0.7 answered, unanswerable 0.1 declined, 0.8 answered
    assert rows[1]["answered_answerable"] == pytest.approx(2 / 3)
    assert rows[1]["abstained_unanswerable"] == 0.5
    assert rows[1]["qa_accuracy"] == pytest.approx(2 / 5)
    assert rows[2]["abstained_unanswerable"] == 1.0


@pytest.mark.unit
def test_each_article_gets_the_fold_scorer_that_held_it_out(tmp_path: Path) -> None:
    for f, articles in enumerate([["a", "b"], ["c"]]):
        (tmp_path / f"fold-{f}").mkdir()
        (tmp_path / f"fold-{f}" / HELD_OUT).write_text(json.dumps({"articles": articles}))
    assert fold_scorers(tmp_path) == {"a": tmp_path / "fold-0", "b": tmp_path / "fold-0",
                                      "c": tmp_path / "fold-1"}
