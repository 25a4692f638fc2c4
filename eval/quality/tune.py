"""Choose the hybrid fusion on a training split, then report it on the test split.

    python -m eval.quality.tune --dataset ../shared/datasets/scifact [--json OUT]

Every variant is scored on --tune-split (default train); the best by nDCG@10 is
then scored, with the plain retrievers, on --report-split (default test). The
test split is never used to choose anything.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

import rag  # noqa: F401
from eval.quality import beir, metrics, runner
from rag.config import Settings
from rag.pipeline import Pipeline
from rag.retrieval import BM25Retriever, DenseRetriever, HybridRetriever, Retriever

WEIGHTS = (0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8)
SENTENCE_WEIGHTS = (0.1, 0.2, 0.3, 0.5)


def variants(pipeline: Pipeline) -> dict[str, Retriever]:
    index, embedder = pipeline.index, pipeline.embedder
    out: dict[str, Retriever] = {"bm25": BM25Retriever(index),
                                 "dense": DenseRetriever(index, embedder)}
    for method in ("convex", "zscore"):
        for w in WEIGHTS:
            out[f"{method}-w{w}"] = HybridRetriever(index, embedder, w, 100, method)
    out["rrf-k60"] = HybridRetriever(index, embedder, 0.5, 100, "rrf")
    out["convex-w0.5-c300"] = HybridRetriever(index, embedder, 0.5, 300, "convex")
    for w in (0.6, 0.7):
        for s in SENTENCE_WEIGHTS:
            out[f"zscore-w{w}-sent{s}"] = HybridRetriever(index, embedder, w, 100, "zscore", s)
    return out


def score(retrievers: dict[str, Retriever], ds: beir.Dataset,
          doc_of: dict[int, str]) -> dict[str, dict[str, float]]:
    out = {}
    for name, retriever in retrievers.items():
        out[name] = metrics.evaluate(runner.run_batched(retriever, ds, doc_of), ds.qrels)
        print(f"  {name:<18} ndcg@10 {out[name]['ndcg@10']:.4f}  "
              f"recall@100 {out[name]['recall@100']:.4f}", flush=True)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--dataset", type=Path, required=True)
    parser.add_argument("--tune-split", default="train")
    parser.add_argument("--report-split", default="test")
    parser.add_argument("--cache", type=Path, default=Path(".cache/eval"))
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args()
    settings = Settings()
    tune = beir.load(args.dataset, args.tune_split)
    report = beir.load(args.dataset, args.report_split)
    index_dir, _ = runner.cached_index(tune, settings, args.cache)
    pipeline = Pipeline(settings.model_copy(update={"index_dir": index_dir}))
    doc_of = pipeline.index.store.chunk_doc_ids()
    all_variants = variants(pipeline)

    print(f"{args.tune_split} ({len(tune.queries)} queries):")
    on_tune = score(all_variants, tune, doc_of)
    hybrids = {n: s for n, s in on_tune.items() if n not in ("bm25", "dense")}
    best = max(hybrids, key=lambda n: hybrids[n]["ndcg@10"])
    print(f"best on {args.tune_split}: {best}")

    print(f"{args.report_split} ({len(report.queries)} queries), all variants for reference:")
    on_report = score(all_variants, report, doc_of)
    result: dict[str, Any] = {"chosen": best, args.tune_split: on_tune,
                              args.report_split: on_report}
    print(f"chosen {best}: {args.tune_split} ndcg@10 {on_tune[best]['ndcg@10']:.4f}, "
          f"{args.report_split} ndcg@10 {on_report[best]['ndcg@10']:.4f}")
    if args.json:
        args.json.write_text(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
