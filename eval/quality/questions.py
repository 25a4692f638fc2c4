"""`rag eval --task questions`: answers to questions, some of them unanswerable.

Indexes a question set's articles (cached as ``eval.quality.runner`` does), asks every
question through ``Pipeline.ask`` (what ``POST /v1/ask`` runs) and scores the answer:
its citation [1] should overlap an annotator's answer, an unanswerable question should
be declined.

The figures are those of whatever evidence scorer the settings name; the shipped one
was fit on SciFact's claims and never saw these articles.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
from tqdm import tqdm

from eval.harness import percentiles
from eval.quality import runner
from eval.quality.metrics import bar_figure, figure_lines
from eval.quality.squad import Question, QuestionSet
from rag.config import Settings
from rag.pipeline import Pipeline
from rag.types import Answer


def record(q: Question, answer: Answer, ms: float) -> dict[str, Any]:
    """What one answer scored; everything the summary needs."""
    cites = [(c.doc_id, c.char_start, c.char_end) for c in answer.citations]
    return {
        "id": q.qid, "answerable": q.answerable, "abstained": answer.abstained, "ms": ms,
        "citations": len(cites),
        "first_holds": bool(cites) and q.holds(*cites[0]),
        "any_holds": any(q.holds(*c) for c in cites),
        "precise": sum(q.in_answer_sentence(*c) for c in cites),
        "score": answer.provenance.best_score,
    }


def _share(part: float, whole: int) -> float | None:
    return round(part / whole, 4) if whole else None


def summarize(records: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """The table's figures from per-question records."""
    yes = [r for r in records if r["answerable"]]
    no = [r for r in records if not r["answerable"]]
    answered = [r for r in records if not r["abstained"]]
    answered_yes = [r for r in yes if not r["abstained"]]
    right_first = sum(1 for r in yes if not r["abstained"] and r["first_holds"])
    declined = sum(1 for r in no if r["abstained"])
    citations = sum(r["citations"] for r in answered)
    return {
        "questions": len(records), "answerable": len(yes), "unanswerable": len(no),
        "qa_accuracy": _share(right_first + declined, len(records)),
        "decision_accuracy": _share(len(answered_yes) + declined, len(records)),
        "answered_answerable": _share(len(answered_yes), len(yes)),
        "abstained_unanswerable": _share(declined, len(no)),
        "first_holds_answer": _share(right_first, len(yes)),
        "first_holds_answered": _share(right_first, len(answered_yes)),
        "some_citation_holds": _share(sum(1 for r in answered_yes if r["any_holds"]), len(yes)),
        "citation_precision": _share(sum(r["precise"] for r in answered), citations),
        "citation_precision_answerable": _share(sum(r["precise"] for r in answered_yes),
                                                sum(r["citations"] for r in answered_yes)),
        "citations_per_answer": _share(citations, len(answered)),
        "score_auc": auc([r["score"] or 0.0 for r in yes], [r["score"] or 0.0 for r in no]),
        "ask_ms": percentiles([r["ms"] for r in records], (50, 95)),
    }


def auc(positives: Sequence[float], negatives: Sequence[float]) -> float | None:
    """The probability that a random positive scores above a random negative (ties half)."""
    if not positives or not negatives:
        return None
    pos, neg = np.asarray(positives), np.sort(np.asarray(negatives))
    below = np.searchsorted(neg, pos, side="left")
    ties = np.searchsorted(neg, pos, side="right") - below
    return round(float((below + ties / 2).sum() / (len(pos) * len(neg))), 4)


def ask_all(settings: Settings, qs: QuestionSet, index_dir: Path, k: int,
            progress: bool = False) -> list[dict[str, Any]]:
    """Every question asked through ``Pipeline.ask``, as ``POST /v1/ask`` asks it."""
    pipeline = Pipeline(settings.model_copy(update={"index_dir": index_dir}))
    pipeline.ask("warm up", k)
    out = []
    for q in tqdm(qs.questions, desc="asking", unit="question", leave=False,
                  disable=not progress):
        t0 = time.perf_counter()
        answer = pipeline.ask(q.text, k)
        out.append(record(q, answer, (time.perf_counter() - t0) * 1000))
    return out


def evaluate(qs: QuestionSet, settings: Settings, cache: Path, k: int = 5,
             limit: int | None = None, progress: bool = True) -> dict[str, Any]:
    """Ask every question (the first ``limit``) and score the answers."""
    if limit is not None:
        qs = QuestionSet(qs.dataset, qs.questions[:limit])
    index_dir, build_s = runner.cached_index(qs.dataset, settings, cache, progress)
    records = ask_all(settings, qs, index_dir, k, progress)
    return {"dataset": qs.name, "k": k, "build_s": round(build_s, 1), **summarize(records),
            "per_question": records}


ROWS = [("qa_accuracy ([1] right, or declined)", "qa_accuracy"),
        ("decision accuracy", "decision_accuracy"),
        ("answerable: answered", "answered_answerable"),
        ("unanswerable: declined", "abstained_unanswerable"),
        ("answerable: [1] holds the answer", "first_holds_answer"),
        ("answered: [1] holds the answer", "first_holds_answered"),
        ("answerable: some citation holds it", "some_citation_holds"),
        ("citation precision", "citation_precision"),
        ("citation precision, answerable only", "citation_precision_answerable"),
        ("citations per answer", "citations_per_answer"),
        ("evidence score AUC (ans. vs not)", "score_auc")]


def table(report: dict[str, Any]) -> str:
    lines = [f"{report['dataset']}: {report['questions']} questions ({report['answerable']} "
             f"answerable, {report['unanswerable']} not), k={report['k']}"]
    return "\n".join(lines + figure_lines(report, ROWS, 38))


def plot(report: dict[str, Any], out: Path) -> None:
    bar_figure(report, [("QA acc.", "qa_accuracy"), ("answered", "answered_answerable"),
                        ("declined", "abstained_unanswerable"), ("[1] right", "first_holds_answer"),
                        ("cite P", "citation_precision")],
               f"{report['dataset']} questions ({report['questions']})", out)
