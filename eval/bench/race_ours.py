"""This project's side of `rag bench`, in its own process so its peak memory is its own.

    python -m eval.bench.race_ours WORK NAME OUT.json

Ingests the BEIR dataset named in WORK/params.json into WORK/NAME/index (a
fresh one), then times in-process search and ranks every query for nDCG.
Settings come from the environment (RAG_*), as for `rag`.
"""

from __future__ import annotations

import json
import resource
import shutil
import sys
import time
from pathlib import Path

from eval.quality import beir
from eval.quality.runner import documents, run_batched
from rag.config import Settings
from rag.pipeline import Pipeline


def main() -> None:
    work, name, out = Path(sys.argv[1]), sys.argv[2], Path(sys.argv[3])
    params = json.loads((work / "params.json").read_text())
    ds = beir.load(Path(params["dataset"]), params.get("split", "test"))
    folder = work / name / "index"
    shutil.rmtree(folder, ignore_errors=True)
    settings = Settings(index_dir=folder, onnx_dir=work / "onnx")  # the rest from RAG_*
    pipeline = Pipeline(settings)
    pipeline.embedder.embed_query("load the model and its export before the clock starts")
    docs = documents(ds)
    t0 = time.perf_counter()
    report = pipeline.ingest_documents(docs)
    ingest_s = time.perf_counter() - t0
    retriever = pipeline.retriever()
    pipeline.search("warm up", 10)
    latencies = []
    for text in ds.queries.values():
        t = time.perf_counter()
        pipeline.search(text, 10)
        latencies.append((time.perf_counter() - t) * 1000)
    doc_of = pipeline.index.store.chunk_doc_ids()
    run = run_batched(retriever, ds, doc_of)
    out.write_text(json.dumps({
        "config": {"retriever": settings.retriever, "backend": settings.embed_backend,
                   "sentence_vectors": settings.sentence_vectors,
                   "chunk_tokens": settings.chunk_tokens,
                   "vectors": pipeline.index.vectors.describe()},
        "chunks": report.chunks, "sentences": pipeline.index.sentences.count(),
        "ingest_s": ingest_s, "latency_ms": latencies, "run": run, "index": str(folder),
        "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}))


if __name__ == "__main__":
    main()
