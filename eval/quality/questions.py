"""`rag eval --task questions`: answers to questions, some of them unanswerable.

Indexes a question set's articles (cached as ``eval.quality.runner`` does), asks every
question through ``Pipeline.ask`` (what ``POST /v1/ask`` runs) and scores the answer:
its citation [1] should overlap an annotator's answer, an unanswerable question should
be declined, and the answer phrase should match the annotators' answers.

With ``cv`` (a folder of per-fold scorers written by ``eval.quality.train_evidence``,
each naming the articles it was not fit on), every question is asked with the scorer
that never saw its article: the cross-validated figures.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from eval.extras import pyplot
from eval.harness import percentiles
from eval.quality import runner
from eval.quality.metrics import figure_lines
from eval.quality.squad import Question, QuestionSet, exact_match, token_f1
from rag.config import Settings
from rag.pipeline import Pipeline
from rag.types import Answer

HELD_OUT = "held_out.json"  # in a fold scorer's folder: the articles it was not fit on


def record(q: Question, answer: Answer, ms: float) -> dict[str, Any]:
    """What one answer scored; everything the summary needs."""
    cites = [(c.doc_id, c.char_start, c.char_end) for c in answer.citations]
    span = answer.answer_span
    phrase = span.text if span is not None else None
    return {
        "id": q.qid, "answerable": q.answerable, "abstained": answer.abstained, "ms": ms,
        "citations": len(cites),
        "first_holds": bool(cites) and q.holds(*cites[0]),
        "any_holds": any(q.holds(*c) for c in cites),
        "precise": sum(q.in_answer_sentence(*c) for c in cites),
        "score": answer.provenance.best_score,
        "phrase": phrase,
        "phrase_em": exact_match(phrase, q.answer_texts) if phrase and q.answerable else 0.0,
        "phrase_f1": token_f1(phrase, q.answer_texts) if phrase and q.answerable else 0.0,
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
    with_phrase = [r for r in answered_yes if r["phrase"]]
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
        "phrase_given": _share(len(with_phrase), len(answered_yes)),
        "phrase_em": _share(sum(r["phrase_em"] for r in answered_yes), len(answered_yes)),
        "phrase_f1": _share(sum(r["phrase_f1"] for r in answered_yes), len(answered_yes)),
        "phrase_f1_given": _share(sum(r["phrase_f1"] for r in with_phrase), len(with_phrase)),
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


def fold_scorers(cv: Path) -> dict[str, Path]:
    """Article -> the fold scorer folder that was not fit on it."""
    out: dict[str, Path] = {}
    for held in sorted(cv.glob(f"*/{HELD_OUT}")):
        for article in json.loads(held.read_text())["articles"]:
            out[article] = held.parent
    return out


def ask_all(settings: Settings, qs: QuestionSet, index_dir: Path, k: int,
            cv: Path | None = None, progress: bool = False) -> list[dict[str, Any]]:
    """Every question asked through ``Pipeline.ask``, by the scorer that applies to it."""
    scorer_of = fold_scorers(cv) if cv is not None else {}
    missing = sorted({q.doc_id for q in qs.questions} - set(scorer_of)) if cv else []
    if missing:
        raise SystemExit(f"{cv} has no fold scorer held out on {missing[:3]}")
    groups: dict[Path | None, list[Question]] = {}
    for q in qs.questions:
        groups.setdefault(scorer_of.get(q.doc_id), []).append(q)
    bar: Any = None
    if progress:
        from tqdm import tqdm

        bar = tqdm(total=len(qs.questions), desc="asking", unit="question", leave=False)
    out = []
    for folder, questions in groups.items():
        update: dict[str, Any] = {"index_dir": index_dir}
        if folder is not None:
            update["evidence_model"] = folder
        pipeline = Pipeline(settings.model_copy(update=update))
        pipeline.ask("warm up", k)
        for q in questions:
            t0 = time.perf_counter()
            answer = pipeline.ask(q.text, k)
            out.append(record(q, answer, (time.perf_counter() - t0) * 1000))
            if bar is not None:
                bar.update()
    if bar is not None:
        bar.close()
    return out


def evaluate(qs: QuestionSet, settings: Settings, cache: Path, k: int = 5,
             limit: int | None = None, cv: Path | None = None,
             progress: bool = True) -> dict[str, Any]:
    """Ask every question (the first ``limit``) and score the answers."""
    if limit is not None:
        qs = QuestionSet(qs.dataset, qs.questions[:limit])
    index_dir, build_s = runner.cached_index(qs.dataset, settings, cache, progress)
    records = ask_all(settings, qs, index_dir, k, cv, progress)
    return {"dataset": qs.name, "k": k, "cross_validated": cv is not None,
            "build_s": round(build_s, 1), **summarize(records), "per_question": records}


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
        ("answer phrase given", "phrase_given"),
        ("answer phrase exact match", "phrase_em"),
        ("answer phrase token F1", "phrase_f1"),
        ("answer phrase F1, when given", "phrase_f1_given"),
        ("evidence score AUC (ans. vs not)", "score_auc")]


def table(report: dict[str, Any]) -> str:
    cv = ", cross-validated by article" if report["cross_validated"] else ""
    lines = [f"{report['dataset']}: {report['questions']} questions ({report['answerable']} "
             f"answerable, {report['unanswerable']} not), k={report['k']}{cv}"]
    return "\n".join(lines + figure_lines(report, ROWS, 38))


def curve(records: Iterable[dict[str, Any]], thresholds: Sequence[float]
          ) -> list[dict[str, float]]:
    """Answered-when-answerable against declined-when-not, for abstention thresholds on the
    score each answer recorded (records made with abstention off)."""
    rows = list(records)
    yes = [r["score"] or 0.0 for r in rows if r["answerable"]]
    no = [r["score"] or 0.0 for r in rows if not r["answerable"]]
    right = [(r["score"] or 0.0, r["first_holds"]) for r in rows if r["answerable"]]
    out = []
    for t in thresholds:
        answered = sum(s >= t for s in yes)
        declined = sum(s < t for s in no)
        correct = sum(1 for s, ok in right if s >= t and ok)
        out.append({"threshold": t, "answered_answerable": answered / max(len(yes), 1),
                    "abstained_unanswerable": declined / max(len(no), 1),
                    "qa_accuracy": (correct + declined) / max(len(rows), 1)})
    return out


def plot(report: dict[str, Any], out: Path) -> None:
    plt = pyplot()
    keys = ["qa_accuracy", "answered_answerable", "abstained_unanswerable",
            "first_holds_answer", "citation_precision", "phrase_f1"]
    values = [report[k] or 0.0 for k in keys]
    fig, ax = plt.subplots(figsize=(7, 3.6))
    bars = ax.bar(range(len(keys)), values)
    ax.bar_label(bars, fmt="%.3f", fontsize=8)
    ax.set_xticks(range(len(keys)), ["QA acc.", "answered", "declined", "[1] right",
                                     "cite P", "phrase F1"])
    ax.set_ylim(0, 1.05)
    ax.set_title(f"{report['dataset']} questions ({report['questions']})")
    fig.tight_layout()
    fig.savefig(out, dpi=120)
    plt.close(fig)
