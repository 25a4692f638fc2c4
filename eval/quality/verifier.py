"""How well rag.verify tells a sentence's support apart, on SciFact's train rationales.

    python -m eval.quality.verifier --dataset ../shared/datasets/scifact \\
        --rationales ../shared/datasets/scifact/rationales/train.jsonl [--json out.json]

Each train claim with evidence stands for a generated sentence, and its gold abstract
for the passage it cites: the abstract's gold rationale sentences are "supported", its
other sentences "not supported". The verifier decides a sentence supports the claim when
its probability reaches the threshold and the claim's numbers and names appear in the
sentences that do (rag.verify.Verifier.supported). Every claim is scored by the scorer of
the cross-validation fold that held it out (``eval.quality.train_evidence --cv-dir``),
so no figure is in-sample; the test claims are never read. Claims without evidence,
judged against the abstract retrieved first for them, give the share of sentences with
no support behind them that the verifier would still keep. The threshold with the best
F0.5 (precision counts double) is the one to ship (rag.config.VERIFY_THRESHOLD).
"""

from __future__ import annotations

import argparse
import json
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from eval.quality import citations, rationales
from eval.quality.questions import HELD_OUT
from rag.arrays import Floats
from rag.config import Settings
from rag.index import Index
from rag.pipeline import Pipeline
from rag.types import Hit
from rag.verify import Verifier, facts_missing

THRESHOLDS = [round(float(t), 2) for t in np.arange(0.02, 0.91, 0.01)]


@dataclass(frozen=True)
class Judged:
    """One claim against one abstract: each sentence's probability and gold label."""

    claim: str
    quotes: list[str]
    probability: Floats
    gold: list[bool]
    evidence: bool  # the claim has evidence in this abstract


def abstract_hits(index: Index, doc_id: str) -> list[Hit]:
    """Every chunk of one abstract, as the passages a generated sentence would cite."""
    rows = [row for row, _ in index.store.chunk_rows(doc_id)]
    chunks = index.store.chunks_by_ids(rows)
    title, source = index.store.titles([doc_id])[doc_id]
    return [Hit(n, 0.0, chunks[row], title, source, {}, row)
            for n, row in enumerate(rows, start=1)]


def judge_fold(pipeline: Pipeline, claims: list[rationales.Claim]) -> list[Judged]:
    verifier = Verifier(pipeline.scorer, pipeline.embedder, 0.0)
    index = pipeline.index
    out = []
    for claim in claims:
        vector = pipeline.embedder.embed_query(claim.text)
        docs = list(claim.evidence) or [pipeline.search(claim.text, 1)[0].chunk.doc_id]
        for doc_id in docs:
            candidates, scores, _ = verifier.support(claim.text, vector,
                                                     abstract_hits(index, doc_id), index)
            gold = [bool(claim.evidence_sentences(doc_id) & rationales.sentences_covered(
                c.start, c.end, claim.spans.get(doc_id, ()))) for c in candidates]
            out.append(Judged(claim.text, [c.quote for c in candidates],
                              scores.probability, gold, bool(claim.evidence)))
    return out


def figures(judged: list[Judged], threshold: float, facts: str = "passage"
            ) -> dict[str, Any]:
    """Decisions at ``threshold``; ``facts``: where the claim's numbers and names must
    appear — the cited "passage" (rag.verify), only its "supporting" sentences, or "none"."""
    tp = fp = fn = kept_ev = kept_nei = 0
    for j in judged:
        strong = [q for q, p in zip(j.quotes, j.probability, strict=True) if p >= threshold]
        source = " ".join(strong if facts == "supporting" else j.quotes)
        facts_ok = facts == "none" or not facts_missing(j.claim, source)
        decided = [bool(p >= threshold) and facts_ok for p in j.probability]
        if j.evidence:
            tp += sum(d and g for d, g in zip(decided, j.gold, strict=True))
            fp += sum(d and not g for d, g in zip(decided, j.gold, strict=True))
            fn += sum(g and not d for d, g in zip(decided, j.gold, strict=True))
            kept_ev += any(decided)
        else:
            kept_nei += any(decided)
    with_ev = sum(j.evidence for j in judged)
    without = len(judged) - with_ev
    p = tp / (tp + fp) if tp + fp else 0.0
    r = tp / (tp + fn) if tp + fn else 0.0
    return {"threshold": threshold, "precision": round(p, 4), "recall": round(r, 4),
            "f1": round(2 * p * r / (p + r), 4) if p + r else 0.0,
            "f0.5": round(1.25 * p * r / (0.25 * p + r), 4) if p + r else 0.0,
            "claims_kept_with_evidence": round(kept_ev / with_ev, 4) if with_ev else None,
            "claims_kept_without_evidence": round(kept_nei / without, 4) if without else None}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--dataset", type=Path, required=True)
    parser.add_argument("--rationales", type=Path, required=True)
    parser.add_argument("--cv-dir", type=Path, default=Path(".cache/evidence-cv"))
    parser.add_argument("--cache", type=Path, default=Path(".cache/eval"))
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args()
    t0 = time.time()
    settings = Settings()
    claims, index_dir = citations.claims_and_index(args.dataset, args.rationales, settings,
                                                   args.cache)
    folders = sorted(p.parent for p in args.cv_dir.glob(f"*/{HELD_OUT}"))
    if not folders:
        raise SystemExit(f"{args.cv_dir} holds no fold scorer: run python -m "
                         "eval.quality.train_evidence first (it writes --cv-dir)")
    judged: list[Judged] = []
    for folder in folders:
        held = set(json.loads((folder / HELD_OUT).read_text())["claims"])
        pipeline = Pipeline(settings.model_copy(update={"index_dir": index_dir,
                                                        "evidence_model": folder}))
        judged += judge_fold(pipeline, [c for c in claims if c.claim_id in held])
        print(f"{folder.name} judged ({time.time() - t0:.0f} s)", flush=True)
    table = [figures(judged, t) for t in THRESHOLDS]
    # A verifier's mistakes are not even: showing an unsupported sentence breaks the
    # promise, dropping a supported one costs a sentence (the extractive answer steps in
    # when none is left). So precision weighs double: the threshold with the best F0.5.
    best = max(table, key=lambda row: (row["f0.5"], -row["threshold"]))
    report = {"claims": len(claims), "pairs": len(judged),
              "sentences": int(sum(len(j.quotes) for j in judged)),
              "gold_sentences": int(sum(sum(j.gold) for j in judged)),
              "chosen": best,
              "facts_in_supporting": figures(judged, best["threshold"], "supporting"),
              "no_fact_check": figures(judged, best["threshold"], "none"),
              "table": table, "seconds": round(time.time() - t0, 1)}
    shown = sorted({0.05, 0.1, 0.15, 0.2, 0.3, 0.4, 0.5, best["threshold"]})
    print("threshold  precision  recall    F1   F0.5  kept(evidence)  kept(no evidence)")
    for row in table:
        if row["threshold"] in shown:
            print(f"{row['threshold']:>9.2f}  {row['precision']:>9.3f}  {row['recall']:>6.3f}"
                  f"  {row['f1']:.3f}  {row['f0.5']:.3f}  {row['claims_kept_with_evidence']:>14}"
                  f"  {row['claims_kept_without_evidence']:>17}")
    print(f"chosen: {best['threshold']} (best F0.5)")
    print(f"  facts checked in the supporting sentences only: "
          f"{report['facts_in_supporting']}")
    print(f"  no fact check: {report['no_fact_check']}")
    if args.json is not None:
        args.json.write_text(json.dumps(report, indent=2) + "\n")


if __name__ == "__main__":
    main()
