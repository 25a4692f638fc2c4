"""The txtai side of `rag bench`, run by the Python of txtai's own virtualenv.

It imports nothing from this project (txtai lives in another environment): it
reads the chunk texts and queries `rag bench` wrote, indexes them with txtai,
times ingest and search, and writes what it measured as JSON.

    <venv>/bin/python eval/bench/race_txtai.py WORK MODEL_FOLDER {fair,default} OUT.json
"""

import json
import resource
import sys
import time
from pathlib import Path
from typing import Any


def configuration(model: str, mode: str) -> dict[str, Any]:
    config: dict[str, Any] = {"path": model, "content": False, "backend": "faiss"}
    if mode == "fair":
        # Exact search (its default turns approximate above 5,000 rows) and the model's
        # own 256-word-piece limit (it would otherwise read the tokenizer's 512).
        config.update({"faiss": {"components": "IDMap,Flat"}, "maxlength": 256})
    return config


def main() -> None:
    work, model, mode, out = Path(sys.argv[1]), sys.argv[2], sys.argv[3], Path(sys.argv[4])
    from txtai import Embeddings

    chunks = [json.loads(line) for line in (work / "chunks.jsonl").open()]
    queries = [json.loads(line) for line in (work / "queries.jsonl").open()]
    top = int(json.loads((work / "params.json").read_text())["rank_k"])
    embeddings = Embeddings(configuration(model, mode))
    folder = work / f"txtai-{mode}"
    t0 = time.perf_counter()
    embeddings.index((c["row"], c["text"], None) for c in chunks)
    embeddings.save(str(folder))
    ingest_s = time.perf_counter() - t0
    embeddings.search("warm up", 10)
    latencies = []
    for q in queries:
        t = time.perf_counter()
        embeddings.search(q["text"], 10)
        latencies.append((time.perf_counter() - t) * 1000)
    doc_of = {c["row"]: c["doc"] for c in chunks}
    run = {}
    for q in queries:
        best: dict[str, float] = {}  # a document scores as its best chunk, as in `rag eval`
        for row, score in embeddings.search(q["text"], top):
            best.setdefault(doc_of[int(row)], float(score))
        run[q["id"]] = dict(list(best.items())[:100])
    out.write_text(json.dumps({
        "config": configuration(model, mode), "chunks": embeddings.count(),
        "ingest_s": ingest_s, "latency_ms": latencies, "run": run, "index": str(folder),
        "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}))


if __name__ == "__main__":
    main()
