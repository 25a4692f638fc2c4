from __future__ import annotations

import pytest

from rag.sentence_split import sentence_spans

pytestmark = pytest.mark.unit


def _sentences(text: str) -> list[str]:
    spans = sentence_spans(text)
    assert all(text[a:b] == text[a:b].strip() for a, b in spans)
    return [text[a:b] for a, b in spans]


def test_sentences_split_on_ends_and_lines() -> None:
    assert _sentences("One here. Two there! Three?\nFour") == \
        ["One here.", "Two there!", "Three?", "Four"]


def test_abbreviations_initials_and_quotes_do_not_end_sentences() -> None:
    text = "The U.S. and Mr. Smith met J. Doe. “It works,” he said. Then “Yes.” Done."
    assert _sentences(text) == ["The U.S. and Mr. Smith met J. Doe.", "“It works,” he said.",
                                "Then “Yes.”", "Done."]


def test_list_markers_are_not_part_of_the_quote() -> None:
    text = "Measures:\n- moving spent fuel;\n2. Second item. And more.\n• last"
    assert _sentences(text) == ["Measures:", "moving spent fuel;", "Second item.", "And more.",
                                "last"]


def test_a_window_of_the_text() -> None:
    text = "Alpha one. Beta two. Gamma three."
    assert [text[a:b] for a, b in sentence_spans(text, 11, 33)] == ["Beta two.", "Gamma three."]
