"""`rag eval --task questions`: the summary's figures on records worked by hand."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from eval.quality.questions import auc, summarize, table


def _record(answerable: bool, abstained: bool, first: bool = False, any_: bool = False,
            citations: int = 0, precise: int = 0, score: float = 0.5) -> dict[str, Any]:
    return {"id": "q", "answerable": answerable, "abstained": abstained, "ms": 10.0,
            "citations": citations, "first_holds": first, "any_holds": any_, "precise": precise,
            "score": score}


RECORDS = [
    # answerable, answered, [1] right, 2 citations of which 1 in an answer sentence
    _record(True, False, True, True, 2, 1, 0.9),
    # answerable, answered, [1] wrong but [2] right
    _record(True, False, False, True, 2, 1, 0.7),
    # answerable, declined
    _record(True, True, score=0.2),
    # unanswerable, declined
    _record(False, True, score=0.1),
    # unanswerable, answered with one citation
    _record(False, False, False, False, 1, 0, 0.8),
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
    # scores: answerable 0.9, 0.7, 0.2 against 0.1, 0.8: 4 of the 6 pairs ordered right
    assert s["score_auc"] == round(4 / 6, 4)
    assert "qa_accuracy" in table({**s, "dataset": "d", "k": 5})


@pytest.mark.unit
def test_auc_counts_ties_half() -> None:
    assert auc([1.0, 0.5], [0.5]) == 0.75
    assert auc([], [0.1]) is None


ARTICLES = {
    "rhine": ("Rhine", "The Rhine rises in the Swiss Alps. It flows 1,230 km to the North Sea, "
              "passing Basel, Strasbourg and Cologne. Barges carry coal and grain on it."),
    "bread": ("Sourdough", "Sourdough bread is leavened by a culture of wild yeast and lactic "
              "acid bacteria. The dough rises slowly, often overnight, which gives the bread "
              "its sour taste."),
}


def _question_set(folder: Path) -> Path:
    folder.mkdir()
    (folder / "corpus.jsonl").write_text("".join(
        json.dumps({"_id": k, "title": t, "text": x}) + "\n" for k, (t, x) in ARTICLES.items()))
    bread = ARTICLES["bread"][1]
    start = bread.index("rises slowly")
    sentence = (bread.index("The dough"), len(bread))
    rows = [
        {"id": "sour", "question": "What gives sourdough its sour taste?", "answerable": True,
         "doc_id": "bread", "answers": [{"text": "rises slowly, often overnight",
                                         "char_start": start, "char_end": start + 29}],
         "answer_sentences": [list(sentence)]},
        {"id": "cup", "question": "Who won the football World Cup final in 2018?",
         "answerable": False, "doc_id": "bread", "answers": []},
    ]
    (folder / "questions.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    return folder


def test_rag_eval_questions_asks_through_the_pipeline(tmp_path: Path) -> None:
    """`rag eval --task questions` on two hand-made articles: the real index, embedder and
    scorer; the report's figures are those of its own per-question records."""
    from click.testing import CliRunner

    from rag.cli import main

    out = tmp_path / "report.json"
    result = CliRunner().invoke(main, [
        "--index", str(tmp_path / "unused"), "eval", "--task", "questions", "--dataset",
        str(_question_set(tmp_path / "set")), "--json", str(out), "--plot",
        str(tmp_path / "q.png"), "--cache", str(tmp_path / "cache")])
    assert result.exit_code == 0, result.output
    assert "set: 2 questions (1 answerable, 1 not), k=5" in result.output
    assert "qa_accuracy" in result.output
    report = json.loads(out.read_text())
    by_id = {r["id"]: r for r in report["per_question"]}
    assert not by_id["sour"]["abstained"] and by_id["sour"]["first_holds"]
    assert by_id["sour"]["precise"] >= 1
    assert by_id["cup"]["abstained"] and by_id["cup"]["citations"] == 0
    assert report["qa_accuracy"] == 1.0 and report["citation_precision"] > 0
    assert {k: v for k, v in summarize(report["per_question"]).items() if k != "ask_ms"} \
        == {k: report[k] for k in summarize(report["per_question"]) if k != "ask_ms"}
    assert (tmp_path / "q.png").read_bytes()[:4] == b"\x89PNG"
