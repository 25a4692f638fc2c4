"""Exact against approximate vector search at 200k chunks: build time, memory, latency, recall.

    python -m eval.bench.ann --dataset ../shared/datasets/scifact [--size 200000]

The corpus: every real vector of the SciFact index `rag eval` builds (11,883
chunks and 49,881 sentences, MiniLM) plus generated ones up to ``--size``, each
the normalized blend of two random real vectors (as if two passages were
merged): embedding 140k more texts would take over an hour on two cores.
Queries are SciFact's own 1,109 questions, embedded by the product's encoder.
Recall@10 is against exact search; latency is one query at a time on one
thread, as `rag serve` searches.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path
from typing import Any

import faiss
import numpy as np

from eval.harness import percentiles
from eval.quality import beir
from eval.quality.runner import cached_index
from rag.config import Settings
from rag.index import Index
from rag.pipeline import Pipeline
from rag.vector_index import VectorIndex


def corpus(index: Index, size: int, seed: int = 0) -> np.ndarray:
    real = np.concatenate([index.vectors.vectors(index.vectors.ids().tolist()),
                           index.sentences.vectors])
    rng = np.random.default_rng(seed)
    extra = max(0, size - len(real))
    a, b = rng.integers(0, len(real), extra), rng.integers(0, len(real), extra)
    w = rng.uniform(0.3, 0.7, (extra, 1)).astype(np.float32)
    blend = w * real[a] + (1 - w) * real[b]
    blend /= np.linalg.norm(blend, axis=1, keepdims=True)
    return np.ascontiguousarray(np.concatenate([real, blend])[:size], dtype=np.float32)


def timed_search(search: Any, queries: np.ndarray, k: int = 10) -> tuple[np.ndarray, list[float]]:
    faiss.omp_set_num_threads(1)  # as `rag serve` searches; builds use both cores
    found, latencies = [], []
    for q in queries:
        t = time.perf_counter()
        _, ids = search(q[None, :], k)
        latencies.append((time.perf_counter() - t) * 1000)
        found.append(ids[0])
    return np.array(found), latencies


def recall(found: np.ndarray, truth: np.ndarray) -> float:
    return float(np.mean([len(set(f) & set(t)) / len(t) for f, t in zip(found, truth,
                                                                         strict=True)]))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--dataset", type=Path, required=True)
    parser.add_argument("--size", type=int, default=200_000)
    parser.add_argument("--cache", type=Path, default=Path(".cache/eval"))
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args()
    settings = Settings()
    ds = beir.load(args.dataset)
    folder, _ = cached_index(ds, settings, args.cache)
    pipeline = Pipeline(settings.model_copy(update={"index_dir": folder}))
    x = corpus(pipeline.index, args.size)
    texts = [json.loads(line)["text"] for line in
             (args.dataset / "queries.jsonl").read_text().splitlines() if line.strip()]
    queries = pipeline.embedder.embed(texts)
    ids = np.arange(len(x), dtype=np.int64)
    rows: list[dict[str, Any]] = []

    t0 = time.perf_counter()
    flat = VectorIndex(x.shape[1])
    flat.index(ids.tolist(), x)
    build = time.perf_counter() - t0
    truth, lat = timed_search(flat.search, queries)
    rows.append({"index": "flat (exact)", "build_s": round(build, 1),
                 "bytes_mb": round(len(faiss.serialize_index(flat._index)) / 2**20),
                 "recall@10": 1.0, **percentiles(lat)})

    faiss.omp_set_num_threads(2)
    t0 = time.perf_counter()
    ivf = VectorIndex(x.shape[1])
    ivf.index(ids.tolist(), x)
    ivf.make_approximate(1)
    build = time.perf_counter() - t0
    size = round(len(faiss.serialize_index(ivf._index)) / 2**20)
    for nprobe in (8, 16, 32, 64, 96, 128, 192):
        ivf.nprobe = nprobe
        found, lat = timed_search(ivf.search, queries)
        rows.append({"index": f"{ivf.describe()} nprobe={nprobe}", "build_s": round(build, 1),
                     "bytes_mb": size, "recall@10": round(recall(found, truth), 4),
                     **percentiles(lat)})

    faiss.omp_set_num_threads(2)
    t0 = time.perf_counter()
    hnsw = faiss.IndexHNSWFlat(x.shape[1], 32, faiss.METRIC_INNER_PRODUCT)
    hnsw.hnsw.efConstruction = 80
    hnsw.add(x)
    build = time.perf_counter() - t0
    size = round(len(faiss.serialize_index(hnsw)) / 2**20)
    for ef in (32, 64, 128):
        hnsw.hnsw.efSearch = ef
        found, lat = timed_search(hnsw.search, queries)
        rows.append({"index": f"hnsw32 efSearch={ef} (not used: no removal)",
                     "build_s": round(build, 1), "bytes_mb": size,
                     "recall@10": round(recall(found, truth), 4), **percentiles(lat)})

    print(f"{len(x)} vectors ({min(len(x), 61764)} real), {len(queries)} queries, 1 thread")
    head = f"{'index':<44}{'build s':>9}{'MB':>7}{'recall@10':>11}{'p50 ms':>9}{'p99 ms':>9}"
    print(head + "\n" + "-" * len(head))
    for r in rows:
        print(f"{r['index']:<44}{r['build_s']:>9}{r['bytes_mb']:>7}{r['recall@10']:>11}"
              f"{r['p50']:>9}{r['p99']:>9}")
    if args.json is not None:
        args.json.write_text(json.dumps({"vectors": len(x), "queries": len(queries),
                                         "rows": rows}, indent=2))


if __name__ == "__main__":
    main()
