"""`rag eval`: index a BEIR dataset once per settings, run every retriever, report.

Each BEIR document (title + text) is one document, chunked as usual; a
document's score for a query is its best chunk's.
"""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from eval.extras import pyplot
from eval.harness import percentiles
from eval.quality import metrics
from eval.quality.beir import Dataset
from rag.config import RetrieverName, Settings
from rag.embedding import model_id
from rag.index import FORMAT
from rag.pipeline import Pipeline
from rag.retrieval import Retriever
from rag.types import Document

TOP_DOCS = 100
CHUNKS_PER_QUERY = 300


def documents(ds: Dataset) -> list[Document]:
    out = []
    for doc_id, (title, text) in ds.corpus.items():
        body = f"{title}\n\n{text}".strip() if title else text.strip()
        out.append(Document(doc_id=doc_id, title=title or doc_id, source=f"beir:{doc_id}",
                            text=body, sha256=hashlib.sha256(body.encode()).hexdigest()))
    return out


def cached_index(ds: Dataset, settings: Settings, cache: Path,
                 progress: bool = True) -> tuple[Path, float]:
    """The dataset's index for these settings, built on first use; returns (path, build_s)."""
    parts = {"corpus": ds.fingerprint, "format": FORMAT,
             "model": model_id(settings.model_name, settings.embed_backend),
             "model_path": str(settings.model_path), "tokens": settings.chunk_tokens,
             "overlap": settings.chunk_overlap}
    if settings.sentence_vectors != "standalone":
        parts["sentences"] = settings.sentence_vectors
    key = json.dumps(parts, sort_keys=True)
    folder = cache / f"{ds.name}-{hashlib.sha256(key.encode()).hexdigest()[:12]}"
    meta = folder / "build.json"
    if meta.is_file():
        return folder / "index", float(json.loads(meta.read_text())["build_s"])
    pipeline = Pipeline(settings.model_copy(update={"index_dir": folder / "index"}))
    t0 = time.perf_counter()
    report = pipeline.ingest_documents(documents(ds), progress=progress)
    pipeline.wait_for_merges()  # the index as it will be served: its segments merged
    build_s = time.perf_counter() - t0
    meta.write_text(json.dumps({"build_s": build_s, "chunks": report.chunks, "key": key}))
    return folder / "index", build_s


def _best_per_doc(ranked: Sequence[tuple[int, float, Any]],
                  doc_of: dict[int, str]) -> dict[str, float]:
    best: dict[str, float] = {}
    for chunk_id, score, _ in ranked:
        doc = doc_of[chunk_id]
        if doc not in best:
            best[doc] = score
            if len(best) == TOP_DOCS:
                break
    return best


def run_batched(retriever: Retriever, ds: Dataset, doc_of: dict[int, str],
                batch: int = 64) -> dict[str, dict[str, float]]:
    """The same run as ``run_retriever`` with queries embedded in batches (for tuning)."""
    qids = list(ds.queries)
    k = min(CHUNKS_PER_QUERY, max(len(doc_of), 1))
    run: dict[str, dict[str, float]] = {}
    for start in range(0, len(qids), batch):
        part = qids[start:start + batch]
        for qid, ranked in zip(part, retriever.rank([ds.queries[q] for q in part], k),
                               strict=True):
            run[qid] = _best_per_doc(ranked, doc_of)
    return run


def run_retriever(pipeline: Pipeline, name: RetrieverName, ds: Dataset,
                  progress: bool) -> tuple[dict[str, dict[str, float]], list[float]]:
    """Per query: {doc id: best chunk score} for the top documents, and latency in ms."""
    retriever = pipeline.retriever(name)
    doc_of = pipeline.index.store.chunk_doc_ids()
    k = min(CHUNKS_PER_QUERY, max(len(doc_of), 1))
    retriever.rank(["warm up"], 5)
    run: dict[str, dict[str, float]] = {}
    latencies = []
    items: Any = ds.queries.items()
    if progress:
        from tqdm import tqdm

        items = tqdm(items, desc=f"querying {name}", unit="query", leave=False)
    for qid, text in items:
        t0 = time.perf_counter()
        ranked = retriever.rank([text], k)[0]
        latencies.append((time.perf_counter() - t0) * 1000)
        run[qid] = _best_per_doc(ranked, doc_of)
    return run, latencies


def evaluate(dataset: Dataset, retrievers: Sequence[RetrieverName], settings: Settings,
             cache: Path, limit: int | None = None, progress: bool = True) -> dict[str, Any]:
    if limit is not None:
        keep = sorted(dataset.queries)[:limit]
        dataset = Dataset(dataset.name, dataset.path, dataset.corpus,
                          {q: dataset.queries[q] for q in keep},
                          {q: dataset.qrels[q] for q in keep}, dataset.fingerprint)
    index_dir, build_s = cached_index(dataset, settings, cache, progress)
    pipeline = Pipeline(settings.model_copy(update={"index_dir": index_dir}))
    report: dict[str, Any] = {"dataset": dataset.name, "queries": len(dataset.queries),
                              "documents": len(dataset.corpus),
                              "chunks": pipeline.index.vectors.count(),
                              "retrievers": {}, "per_query": {}}
    for name in retrievers:
        run, latencies = run_retriever(pipeline, name, dataset, progress)
        scores = metrics.evaluate(run, dataset.qrels)
        report["retrievers"][name] = {
            **{m: round(v, 4) for m, v in scores.items()},
            "latency_ms": percentiles(latencies, (50, 95, 99)), "build_s": round(build_s, 1)}
        report["per_query"][name] = {q: round(s["ndcg@10"], 4) for q, s in
                                     metrics.per_query(run, dataset.qrels).items()}
    return report


def table(report: dict[str, Any]) -> str:
    cols = ["ndcg@10", "recall@1", "recall@5", "recall@10", "recall@100", "mrr@10", "map@100"]
    head = f"{'retriever':<10}" + "".join(f"{c:>11}" for c in cols) + \
        f"{'p50 ms':>9}{'p95 ms':>9}{'p99 ms':>9}{'build s':>9}"
    lines = [f"{report['dataset']}: {report['queries']} queries, {report['documents']} "
             f"documents, {report['chunks']} chunks", head, "-" * len(head)]
    for name, r in report["retrievers"].items():
        lat = r["latency_ms"]
        lines.append(f"{name:<10}" + "".join(f"{r[c]:>11.4f}" for c in cols) +
                     f"{lat['p50']:>9.2f}{lat['p95']:>9.2f}{lat['p99']:>9.2f}{r['build_s']:>9.1f}")
    return "\n".join(lines)


def plot(report: dict[str, Any], out: Path) -> None:
    plt = pyplot()
    names = list(report["retrievers"])
    x = np.arange(len(names))
    fig, ax = plt.subplots(figsize=(max(4, 1.6 * len(names) + 2), 4))
    for offset, metric in ((-0.2, "ndcg@10"), (0.2, "recall@100")):
        values = [report["retrievers"][n][metric] for n in names]
        bars = ax.bar(x + offset, values, width=0.4, label=metric)
        ax.bar_label(bars, fmt="%.3f", fontsize=8)
    ax.set_xticks(x, names)
    ax.set_ylim(0, 1.05)
    ax.set_title(f"{report['dataset']} ({report['queries']} queries)")
    ax.legend(loc="lower right")
    fig.tight_layout()
    fig.savefig(out, dpi=120)
    plt.close(fig)
