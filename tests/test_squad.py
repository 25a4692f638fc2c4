"""Question sets in SQuAD 2.0 layout and SQuAD's answer metrics, on cases worked by hand."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from eval.quality import squad
from eval.quality.beir import DatasetError
from eval.quality.squad import Question, exact_match, normalize, token_f1

TEXT = "The Rhine rises in Switzerland. It flows 1,230 km to the North Sea."


def _write(folder: Path, questions: list[dict[str, object]]) -> Path:
    folder.mkdir()
    (folder / "corpus.jsonl").write_text(json.dumps(
        {"_id": "sq2-rhine", "title": "Rhine", "text": TEXT}) + "\n")
    (folder / "questions.jsonl").write_text("".join(json.dumps(q) + "\n" for q in questions))
    return folder


@pytest.mark.unit
def test_offsets_are_shifted_into_the_stored_text(tmp_path: Path) -> None:
    start = TEXT.index("1,230 km")
    folder = _write(tmp_path / "set", [
        {"id": "a", "question": "How long is the Rhine?", "answerable": True,
         "doc_id": "sq2-rhine", "answers": [{"text": "1,230 km", "char_start": start,
                                             "char_end": start + 8}],
         "answer_sentences": [[32, len(TEXT)]]},
        {"id": "b", "question": "How wide is the Rhine?", "answerable": False,
         "doc_id": "sq2-rhine", "answers": [], "answer_sentences": []}])
    qs = squad.load(folder)
    stored = squad.stored_text(*qs.dataset.corpus["sq2-rhine"])
    a, b = qs.questions
    assert [stored[x:y] for x, y in a.answers] == ["1,230 km"]
    assert a.answerable and not b.answerable
    assert qs.dataset.qrels == {"a": {"sq2-rhine": 1}}
    assert qs.articles() == ["sq2-rhine"]
    # "It flows 1,230 km ..." holds the answer; "The Rhine rises ..." does not
    second = stored.index("It flows")
    assert a.holds("sq2-rhine", second, len(stored))
    assert not a.holds("sq2-rhine", 0, second - 1)
    assert not a.holds("other", second, len(stored))
    assert a.in_answer_sentence("sq2-rhine", second, second + 5)  # inside the answer sentence


@pytest.mark.unit
def test_a_bad_folder_fails_with_a_clear_message(tmp_path: Path) -> None:
    with pytest.raises(DatasetError, match="corpus.jsonl is missing"):
        squad.load(tmp_path)
    folder = _write(tmp_path / "bad", [{"id": "x", "question": "?", "doc_id": "nope",
                                        "answers": []}])
    with pytest.raises(DatasetError, match="doc_id must be in corpus.jsonl"):
        squad.load(folder)
    flagged = _write(tmp_path / "flag", [{"id": "x", "question": "?", "doc_id": "sq2-rhine",
                                          "answerable": True, "answers": []}])
    with pytest.raises(DatasetError, match="answerable disagrees"):
        squad.load(flagged)


@pytest.mark.unit
def test_squad_normalisation_exact_match_and_token_f1() -> None:
    assert normalize("The  Rhine, river!") == "rhine river"
    assert exact_match("the North Sea", ["North Sea", "sea"]) == 1.0
    assert exact_match("North Sea coast", ["North Sea"]) == 0.0
    # "north sea coast" against "north sea": 2 common tokens, P = 2/3, R = 1: F1 = 0.8
    assert token_f1("North Sea coast", ["North Sea"]) == pytest.approx(0.8)
    # the best gold counts: "1,230 km" normalises to "1230 km"
    assert token_f1("1,230 km long", ["Switzerland", "1230 km"]) == pytest.approx(0.8)
    assert token_f1("Switzerland", ["North Sea"]) == 0.0
    assert token_f1("the", ["a"]) == 1.0  # both empty once articles go


@pytest.mark.unit
def test_a_question_without_answers_is_unanswerable() -> None:
    q = Question("q", "Who?", "d", (), (), ())
    assert not q.answerable and not q.holds("d", 0, 100)
