"""`rag eval --task citations`: are the answer's citations the evidence people marked?

Indexes a BEIR corpus (cached as ``eval.quality.runner`` does), asks every claim of a
rationales file through ``Pipeline.ask`` (what ``POST /v1/ask`` runs) and scores the
citations against the human-marked evidence sentences (``eval.quality.rationales``).
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from eval.extras import pyplot
from eval.harness import percentiles
from eval.quality import beir, rationales, runner
from eval.quality.beir import Dataset, DatasetError
from eval.quality.metrics import figure_lines
from eval.quality.rationales import Claim, Counts
from rag.config import Settings
from rag.pipeline import Pipeline
from rag.types import Answer


def claims_of(claims: Mapping[str, Claim], dataset: Dataset | None,
              limit: int | None) -> list[Claim]:
    """The claims to ask: those of the split when one is given, the first ``limit`` by id."""
    chosen = list(claims.values())
    if dataset is not None:
        chosen = [c for c in chosen if c.claim_id in dataset.queries]
        if not chosen:
            raise DatasetError(f"the rationales file holds no claim of the {dataset.name} split "
                               "given: pass the split its claims come from")
    chosen.sort(key=lambda c: (len(c.claim_id), c.claim_id))
    return chosen[:limit] if limit is not None else chosen


def claims_and_index(dataset_dir: Path, rationales_path: Path, settings: Settings,
                     cache: Path) -> tuple[list[Claim], Path]:
    """Every claim of a rationales file, and the dataset's cached index to ask them over."""
    dataset = beir.load(dataset_dir, beir.any_split(dataset_dir))
    claims = claims_of(rationales.load(rationales_path), None, None)
    index_dir, _ = runner.cached_index(dataset, settings, cache)
    return claims, index_dir


def summarize(per_claim: list[dict[str, Any]]) -> dict[str, Any]:
    """The report's figures from the per-claim records that ``ask_all`` makes."""
    total = Counts()
    for record in per_claim:
        total.add(record["counts"])
    with_evidence = [r for r in per_claim if r["has_evidence"]]
    without = [r for r in per_claim if not r["has_evidence"]]
    answered = [r for r in per_claim if not r["abstained"]]
    first = [r for r in with_evidence if r["first_is_evidence"] is not None]

    def share(part: int, whole: int) -> float | None:
        return round(part / whole, 4) if whole else None

    return {
        **{k: round(v, 4) for k, v in total.scores().items()},
        "claims": len(per_claim), "with_evidence": len(with_evidence),
        "gold_sentences": total.relevant, "predicted_sentences": total.retrieved,
        "correct_sentences": total.correct,
        "evidence_at_1": share(sum(1 for r in first if r["first_is_evidence"]),
                               len(with_evidence)),
        "abstained_without_evidence": share(sum(r["abstained"] for r in without), len(without)),
        "abstained_with_evidence": share(sum(r["abstained"] for r in with_evidence),
                                         len(with_evidence)),
        "citations_per_answer": round(sum(r["counts"].citations for r in answered)
                                      / len(answered), 3) if answered else 0.0,
        "ask_ms": percentiles([r["ms"] for r in per_claim], (50, 95)),
    }


def record(claim: Claim, answer: Answer, ms: float) -> dict[str, Any]:
    cited = [(c.doc_id, c.char_start, c.char_end) for c in answer.citations]
    counts = rationales.score_claim(claim, cited)
    first = None
    if cited:
        doc_id, start, end = cited[0]
        first = bool(claim.evidence_sentences(doc_id)
                     & rationales.sentences_covered(start, end, claim.spans.get(doc_id, ())))
    return {"id": claim.claim_id, "has_evidence": claim.has_evidence,
            "abstained": answer.abstained, "counts": counts, "first_is_evidence": first,
            "cited": cited, "ms": ms}


def ask_all(pipeline: Pipeline, claims: list[Claim], k: int,
            progress: bool = False) -> list[dict[str, Any]]:
    pipeline.ask("warm up", k)
    items: Any = claims
    if progress:
        from tqdm import tqdm

        items = tqdm(claims, desc="asking", unit="claim", leave=False)
    out = []
    for claim in items:
        t0 = time.perf_counter()
        answer = pipeline.ask(claim.text, k)
        out.append(record(claim, answer, (time.perf_counter() - t0) * 1000))
    return out


def evaluate(dataset: Dataset, rationales_file: Path, settings: Settings, cache: Path,
             k: int = 5, split_filter: bool = False, limit: int | None = None,
             progress: bool = True) -> dict[str, Any]:
    """Ask every claim and score its citations; ``split_filter`` keeps the split's claims."""
    claims = claims_of(rationales.load(rationales_file), dataset if split_filter else None,
                       limit)
    missing = sorted({d for c in claims for d in c.evidence if d not in dataset.corpus})
    if missing:
        raise DatasetError(f"the rationales name {len(missing)} abstract(s) not in the corpus, "
                           f"e.g. {missing[:3]}: pass the dataset they were marked in")
    index_dir, build_s = runner.cached_index(dataset, settings, cache, progress)
    pipeline = Pipeline(settings.model_copy(update={"index_dir": index_dir}))
    per_claim = ask_all(pipeline, claims, k, progress)
    return {"dataset": dataset.name, "rationales": str(rationales_file), "k": k,
            "build_s": round(build_s, 1), **summarize(per_claim),
            "per_claim": [{**r, "counts": vars(r["counts"])} for r in per_claim]}


ROWS = [("sentence precision (official)", "precision"), ("sentence recall (official)", "recall"),
        ("sentence F1 (official)", "f1"), ("citation precision", "citation_precision"),
        ("evidence at citation [1]", "evidence_at_1"),
        ("no-evidence claims abstained", "abstained_without_evidence"),
        ("evidence claims abstained", "abstained_with_evidence"),
        ("citations per answer", "citations_per_answer")]


def table(report: dict[str, Any]) -> str:
    lines = [f"{report['dataset']}: {report['claims']} claims ({report['with_evidence']} with "
             f"evidence, {report['gold_sentences']} gold sentences), k={report['k']}"]
    return "\n".join(lines + figure_lines(report, ROWS, 32))


def plot(report: dict[str, Any], out: Path) -> None:
    plt = pyplot()
    keys = ["precision", "recall", "f1", "citation_precision", "evidence_at_1",
            "abstained_without_evidence"]
    values = [report[k] or 0.0 for k in keys]
    fig, ax = plt.subplots(figsize=(7, 3.6))
    bars = ax.bar(range(len(keys)), values)
    ax.bar_label(bars, fmt="%.3f", fontsize=8)
    ax.set_xticks(range(len(keys)), ["P", "R", "F1", "cite P", "[1] evid.", "NEI abst."])
    ax.set_ylim(0, 1.05)
    ax.set_title(f"{report['dataset']} citations ({report['claims']} claims)")
    fig.tight_layout()
    fig.savefig(out, dpi=120)
    plt.close(fig)
