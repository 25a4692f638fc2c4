"""Questions with answer spans, some unanswerable (SQuAD 2.0 layout), and SQuAD's answer metrics.

A question set folder holds::

    corpus.jsonl     {"_id", "title", "text"} per article
    questions.jsonl  {"id", "question", "answerable", "doc_id", "answers":
                      [{"text", "char_start", "char_end"}, ...], "answer_sentences": [[a, b], ...]}

Offsets in ``questions.jsonl`` point into the article's ``text``; the index stores
``title + "\\n\\n" + text`` (as ``eval.quality.runner`` indexes any BEIR corpus), so
they are shifted by the title's length here, once, on reading.
"""

from __future__ import annotations

import hashlib
import re
import string
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from eval.quality.beir import Dataset, DatasetError, json_lines

Span = tuple[int, int]


@dataclass(frozen=True, slots=True)
class Question:
    """A question; an answerable one has its annotators' answers as spans in its document."""

    qid: str
    text: str
    doc_id: str
    answers: tuple[Span, ...]  # in the stored text (title line included)
    answer_texts: tuple[str, ...]
    answer_sentences: tuple[Span, ...]

    @property
    def answerable(self) -> bool:
        return bool(self.answers)

    def holds(self, doc_id: str, start: int, end: int) -> bool:
        """Whether a quote ``[start, end)`` of ``doc_id`` overlaps an annotator's answer."""
        return doc_id == self.doc_id and any(a < end and start < b for a, b in self.answers)

    def in_answer_sentence(self, doc_id: str, start: int, end: int) -> bool:
        """Whether a quote overlaps a sentence that holds an answer (or an answer itself)."""
        return self.holds(doc_id, start, end) or doc_id == self.doc_id and any(
            a < end and start < b for a, b in self.answer_sentences)


@dataclass(frozen=True)
class QuestionSet:
    dataset: Dataset  # the corpus, as the BEIR runner indexes it
    questions: list[Question]

    @property
    def name(self) -> str:
        return self.dataset.name

    def articles(self) -> list[str]:
        return sorted({q.doc_id for q in self.questions})


def load(path: Path) -> QuestionSet:
    """Read a question set folder, checking it so a wrong folder fails with a clear message."""
    path = Path(path)
    corpus_file, questions_file = path / "corpus.jsonl", path / "questions.jsonl"
    for f in (corpus_file, questions_file):
        if not f.is_file():
            raise DatasetError(f"{f} is missing: a question set needs corpus.jsonl and "
                               "questions.jsonl (SQuAD 2.0 layout, see eval.quality.squad)")
    corpus: dict[str, tuple[str, str]] = {}
    for n, row in json_lines(corpus_file):
        if "_id" not in row or "text" not in row:
            raise DatasetError(f"{corpus_file}:{n}: each line needs _id and text")
        corpus[str(row["_id"])] = (row.get("title") or "", row["text"])
    questions = []
    for n, row in json_lines(questions_file):
        try:
            doc_id = str(row["doc_id"])
            title = corpus[doc_id][0]
            shift = len(title) + 2 if title else 0
            answers = tuple((int(a["char_start"]) + shift, int(a["char_end"]) + shift)
                            for a in row["answers"])
            texts = tuple(str(a["text"]) for a in row["answers"])
            sentences = tuple((int(a) + shift, int(b) + shift)
                              for a, b in row.get("answer_sentences", []))
            q = Question(str(row["id"]), str(row["question"]), doc_id, answers, texts, sentences)
        except (KeyError, TypeError, ValueError) as exc:
            raise DatasetError(f"{questions_file}:{n}: not a question record ({exc!r}); each "
                               "line needs id, question, doc_id and answers, and doc_id must "
                               "be in corpus.jsonl") from None
        if bool(row.get("answerable", q.answerable)) != q.answerable:
            raise DatasetError(f"{questions_file}:{n}: answerable disagrees with its answers")
        questions.append(q)
    if not questions:
        raise DatasetError(f"{questions_file} holds no questions")
    sha = hashlib.sha256(corpus_file.read_bytes()).hexdigest()
    queries = {q.qid: q.text for q in questions}
    qrels = {q.qid: {q.doc_id: 1} for q in questions if q.answerable}
    return QuestionSet(Dataset(path.name, path, corpus, queries, qrels, sha), questions)


def stored_text(title: str, text: str) -> str:
    """The text the index holds for an article (eval.quality.runner.documents)."""
    return f"{title}\n\n{text}".strip() if title else text.strip()


# SQuAD's official normalisation (evaluate-v2.0.py): lower case, no punctuation, no articles.
_ARTICLES = re.compile(r"\b(a|an|the)\b", re.UNICODE)
_PUNCTUATION = frozenset(string.punctuation)


def normalize(text: str) -> str:
    text = "".join(ch for ch in text.lower() if ch not in _PUNCTUATION)
    return " ".join(_ARTICLES.sub(" ", text).split())


def exact_match(prediction: str, golds: Sequence[str]) -> float:
    return float(any(normalize(prediction) == normalize(g) for g in golds))


def token_f1(prediction: str, golds: Sequence[str]) -> float:
    """The best token F1 of ``prediction`` against any of the gold answers."""
    pred = normalize(prediction).split()
    best = 0.0
    for gold in golds:
        ref = normalize(gold).split()
        common = sum((Counter(pred) & Counter(ref)).values())
        if not pred or not ref:
            best = max(best, float(pred == ref))
        elif common:
            p, r = common / len(pred), common / len(ref)
            best = max(best, 2 * p * r / (p + r))
    return best
