"""Ingest throughput, one change at a time, on the first N SciFact documents.

    python -m eval.bench.ingest --dataset ../shared/datasets/scifact [--docs 400]

Each variant ingests the same documents into a fresh index with the model
already loaded, so the figure is chunking + embedding + writing the snapshot.
The last line re-ingests after editing one document in ten, to show the
vectors of unchanged chunks being kept.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import tempfile
import time
from pathlib import Path
from typing import Any

from eval.quality import beir
from eval.quality.runner import documents
from rag.config import Settings
from rag.pipeline import Pipeline
from rag.types import Document

VARIANTS: list[tuple[str, dict[str, Any]]] = [
    ("torch, 32 a batch (before)", {"embed_backend": "torch"}),
    ("onnx fp32, token-budget batches (default)", {"embed_backend": "onnx"}),
    ("onnx int8", {"embed_backend": "onnx-int8"}),
    ("onnx int8, sentence vectors in context", {"embed_backend": "onnx-int8",
                                                "sentence_vectors": "context"}),
]


def ingest(docs: list[Document], settings: Settings, onnx: Path) -> dict[str, Any]:
    with tempfile.TemporaryDirectory() as tmp:
        pipeline = Pipeline(settings.model_copy(update={"index_dir": Path(tmp) / "index",
                                                        "onnx_dir": onnx}))
        pipeline.embedder.embed_query("load the model before the clock starts")
        pipeline.chunker().chunk(docs[0])
        t0 = time.perf_counter()
        report = pipeline.ingest_documents(docs)
        seconds = time.perf_counter() - t0
        result: dict[str, Any] = {
            "chunks": report.chunks, "sentences": pipeline.index.sentences.count(),
            "seconds": round(seconds, 1), "chunks_per_s": round(report.chunks / seconds, 1)}
        if settings.embed_backend == "onnx" and settings.sentence_vectors == "standalone":
            edited = [dataclasses.replace(d, text=d.text + "\n\nA sentence added later.",
                                          sha256=d.sha256[::-1]) if n % 10 == 0 else d
                      for n, d in enumerate(docs)]
            t0 = time.perf_counter()
            again = pipeline.ingest_documents(edited)
            result["edit_one_in_ten"] = {
                "replaced": len(again.replaced), "chunks_written": again.chunks,
                "chunks_reused": again.reused, "seconds": round(time.perf_counter() - t0, 1)}
        return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--dataset", type=Path, required=True)
    parser.add_argument("--docs", type=int, default=400)
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args()
    docs = documents(beir.load(args.dataset))[:args.docs]
    rows = {}
    with tempfile.TemporaryDirectory() as onnx:
        for name, changes in VARIANTS:
            rows[name] = ingest(docs, Settings(**changes), Path(onnx))
            print(f"{name:<44} {json.dumps(rows[name])}", flush=True)
    if args.json is not None:
        args.json.write_text(json.dumps(rows, indent=2))


if __name__ == "__main__":
    main()
