"""Ingest throughput and search latency on a folder (default: seeds/), in-process.

    python -m eval.bench.core [--docs seeds] [--queries 200] [--repeat 3] [--torch-only]

Prints chunks/s for a fresh ingest (model already loaded, so load time is
reported apart) and per-retriever search latency percentiles.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

import rag  # noqa: F401
from eval.harness import percentiles
from rag.config import Settings
from rag.embedding import SentenceTransformerEmbedder
from rag.pipeline import Pipeline

QUERIES = [
    "What areas of cooperation does the NPEC study propose?",
    "Which countries has Japan negotiated defense agreements with?",
    "Open RAN 5G software",
    "vulnerability of nuclear plants to drone attacks",
    "Who is Jeffrey Bialos?",
    "Defense Innovation Initiative robotics",
    "spent fuel reprocessing Rokkasho",
    "How can the US compete with China's Belt and Road?",
]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--docs", type=Path, default=Path("seeds"))
    parser.add_argument("--queries", type=int, default=200)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--torch-only", action="store_true",
                        help="the torch backend (the product default is onnx)")
    args = parser.parse_args()

    onnx_dir = None if args.torch_only else Path(tempfile.mkdtemp()) / "onnx"
    t0 = time.perf_counter()
    embedder = SentenceTransformerEmbedder("all-MiniLM-L6-v2", onnx_cache=onnx_dir,
                                           backend="torch" if args.torch_only else "onnx")
    load_s = time.perf_counter() - t0
    ingest = []
    for _ in range(args.repeat):
        with tempfile.TemporaryDirectory() as tmp:
            pipeline = Pipeline(Settings(index_dir=Path(tmp) / "index"), embedder=embedder)
            report = pipeline.ingest([args.docs])
            ingest.append((report.chunks, report.seconds))
    chunks = ingest[0][0]
    best = min(s for _, s in ingest)
    result: dict[str, object] = {
        "query_path": "torch" if args.torch_only else "onnx",
        "model_load_s": round(load_s, 2), "documents": args.docs.name, "chunks": chunks,
        "ingest_s_best": round(best, 3), "chunks_per_s": round(chunks / best, 1)}
    with tempfile.TemporaryDirectory() as tmp:
        pipeline = Pipeline(Settings(index_dir=Path(tmp) / "index"), embedder=embedder)
        pipeline.ingest([args.docs])
        for name in ("dense", "bm25", "hybrid"):
            retriever = pipeline.retriever(name)
            retriever.search(QUERIES[0], 5)
            times = []
            for i in range(args.queries):
                t = time.perf_counter()
                retriever.search(QUERIES[i % len(QUERIES)], 5)
                times.append((time.perf_counter() - t) * 1000)
            result[f"search_{name}_ms"] = percentiles(times, (50, 95, 99))
        times = []
        for i in range(min(args.queries, 50)):
            t = time.perf_counter()
            pipeline.ask(QUERIES[i % len(QUERIES)])
            times.append((time.perf_counter() - t) * 1000)
        result["ask_hybrid_ms"] = percentiles(times, (50, 95))
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
