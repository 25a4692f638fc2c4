"""What a filter costs a search: SciFact searched with and without one.

    python -m eval.bench.filtered --dataset ../shared/datasets/scifact [--source INDEX]
        [--json out.json]
    rag bench --filters --dataset ../shared/datasets/scifact    (the same)

The SciFact index (the `rag eval` one, or --source) is written once more under the cache with
metadata (eval/bench/segmented.py: the same chunks and vectors, nothing embedded): each
document gets ``bucket`` = its position mod 10, so ``bucket=3`` selects 10 % of them. Every
test query (embedded beforehand) is then searched (k=10) by each retriever:

- unfiltered;
- ``bucket=3`` (10 %): the selection made once and kept (rag.selection caches it per
  snapshot), as when a user asks several questions of one filter;
- ``bucket=3`` and not one query-specific doc_id (10 %): a filter never seen before for
  every query, so each search also pays the scan of every document's metadata;
- 10 % of the doc_ids listed (``{"doc_id": [...]}``: a lookup, not a scan).

The issue's bar: a filtered search costs at most 2x an unfiltered one at 10 % selectivity.
Also timed: the first selection in a freshly opened index, which reads the segments' document
tables (rag.doctable) and the filtered field's column once.
"""

from __future__ import annotations

import argparse
import json
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from eval.bench.segmented import rewrite
from eval.harness import percentiles
from eval.quality import beir
from eval.quality.runner import cached_index
from rag import filters
from rag.config import RetrieverName, Settings
from rag.embedding import SentenceTransformerEmbedder
from rag.index import Index
from rag.pipeline import Pipeline

RETRIEVERS: tuple[RetrieverName, ...] = ("hybrid", "bm25", "dense")


def with_buckets(source: Path, root: Path) -> Path:
    if not (root / "CURRENT").is_file():
        rewrite(Index(source), root, metadata=lambda n, _: {"bucket": n % 10})
    return root


def run(dataset: Path, settings: Settings, cache: Path, eval_cache: Path,
        source: Path | None = None, log: Callable[[str], None] = print) -> dict[str, Any]:
    cache.mkdir(parents=True, exist_ok=True)
    ds = beir.load(dataset, "test")
    if source is None:
        source, _ = cached_index(ds, settings, eval_cache)
    root = with_buckets(source, cache / f"{ds.name}-buckets" / "index")
    embedder = SentenceTransformerEmbedder(settings.model_name, settings.model_path,
                                           cache / "onnx", settings.embed_backend)
    pipeline = Pipeline(settings.model_copy(update={"index_dir": root, "auto_merge": False}),
                        embedder=embedder)
    index = pipeline.index
    t0 = time.perf_counter()
    index.select(filters.parse("bucket=3"))  # the first: reads the tables and the column
    first_ms = round((time.perf_counter() - t0) * 1000, 1)
    qids = list(ds.queries)
    queries = [ds.queries[q] for q in qids]
    vectors = embedder.embed_queries(queries)
    doc_ids = sorted(d for d, _ in index.store.metadata())
    tenth = filters.parse({"doc_id": doc_ids[::10]})
    cases: dict[str, Callable[[int], filters.Filter | None]] = {
        "unfiltered": lambda _: None,
        "bucket=3 (kept)": lambda _: filters.parse("bucket=3"),
        "bucket=3, new each query": lambda i: filters.parse(
            {"and": [{"field": "bucket", "eq": 3}, {"not": {"doc_id": f"q{qids[i]}"}}]}),
        "10% of doc_ids": lambda _: tenth,
    }
    report: dict[str, Any] = {"documents": len(doc_ids), "chunks": index.vectors.count(),
                              "queries": len(queries), "first_selection_ms": first_ms,
                              "selected_documents": {}}
    for case, where in cases.items():
        f = where(0)
        if f is not None:
            report["selected_documents"][case] = index.select(f).documents
    for name in RETRIEVERS:
        row: dict[str, Any] = {}
        for case, where in cases.items():
            pipeline.retriever(name, index, where(0)).search(queries[0], 10, vectors[0])
            times = []
            for i, (q, v) in enumerate(zip(queries, vectors, strict=True)):
                t0 = time.perf_counter()
                pipeline.retriever(name, index, where(i)).search(q, 10, v)
                times.append((time.perf_counter() - t0) * 1000)
            row[case] = percentiles(times, (50, 99))
        base = row["unfiltered"]["p50"]
        row["worst_ratio_p50"] = round(max(r["p50"] for c, r in row.items()
                                           if c != "unfiltered") / base, 2)
        report[name] = row
        log(f"{name}: {json.dumps(row)}")
    return report


def table(report: dict[str, Any]) -> str:
    lines = [f"search with and without a filter: {report['documents']:,} documents, "
             f"{report['chunks']:,} chunks, {report['queries']} queries, k=10 "
             "(ms p50 / p99, the query embedded beforehand)"]
    cases = [c for c in report[RETRIEVERS[0]] if c != "worst_ratio_p50"]
    for name in RETRIEVERS:
        row = report[name]
        cells = ", ".join(f"{c} {row[c]['p50']} / {row[c]['p99']}" for c in cases)
        lines.append(f"  {name:<7} {cells}; filtered/unfiltered p50 at most "
                     f"{row['worst_ratio_p50']}x")
    lines.append("  selected: " + ", ".join(f"{c} {n} documents" for c, n in
                                           report["selected_documents"].items()))
    lines.append(f"  the first selection in a freshly opened index (reads the document tables): "
                 f"{report['first_selection_ms']} ms")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--dataset", type=Path, required=True)
    parser.add_argument("--source", type=Path, default=None,
                        help="an index of the dataset (default: the `rag eval` one)")
    parser.add_argument("--cache", type=Path, default=Path(".cache/bench/filtered"))
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args()
    report = run(args.dataset, Settings(), args.cache.resolve(), Path(".cache/eval"),
                 args.source)
    print(table(report))
    if args.json is not None:
        args.json.write_text(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
