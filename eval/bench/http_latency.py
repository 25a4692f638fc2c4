"""Latency of a real `rag serve` over HTTP: sequential requests on 127.0.0.1.

    python -m eval.bench.http_latency [--docs seeds] [--requests 200]
    python -m eval.bench.http_latency --index .cache/eval/scifact-*/index \
        --queries ../shared/datasets/scifact/queries.jsonl

Ingests the documents into a temporary index (or serves an existing --index),
starts `rag serve` on a free loopback port, waits for /readyz, then times
/v1/search, /v1/ask and the same ask through /v1/chat/completions (the OpenAI-
compatible route, model rag-extractive) with the default retriever.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from eval.bench.core import QUERIES
from eval.harness import RAG, percentiles, serve_rag


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--docs", type=Path, default=Path("seeds"))
    parser.add_argument("--index", type=Path, default=None, help="serve this index as is")
    parser.add_argument("--queries", type=Path, default=None,
                        help="a BEIR queries.jsonl to draw the questions from")
    parser.add_argument("--requests", type=int, default=200)
    parser.add_argument("--skip-ask", action="store_true")
    args = parser.parse_args()
    queries = QUERIES
    if args.queries is not None:
        queries = [json.loads(line)["text"] for line in
                   args.queries.read_text().splitlines() if line.strip()]
    with tempfile.TemporaryDirectory() as tmp:
        index = args.index or Path(tmp) / "index"
        env = {"RAG_INDEX_DIR": str(index)}
        if args.index is None:
            subprocess.run([RAG, "ingest", str(args.docs)], env={**os.environ, **env},
                           check=True, capture_output=True)
        with serve_rag(env, timeout=60) as server:
            http = server.http
            ready = http.get("/readyz").json()
            result: dict[str, object] = {"requests": args.requests, "index": ready}
            routes: list[tuple[str, Callable[[str], dict[str, object]]]] = [
                ("/v1/search", lambda q: {"query": q}), ("/v1/ask", lambda q: {"question": q}),
                ("/v1/chat/completions", lambda q: {
                    "model": "rag-extractive", "messages": [{"role": "user", "content": q}]})]
            for route, body in routes[:1] if args.skip_ask else routes:
                http.post(route, json=body(queries[0])).raise_for_status()
                times = []
                for i in range(args.requests):
                    t = time.perf_counter()
                    http.post(route, json=body(queries[i % len(queries)]))
                    times.append((time.perf_counter() - t) * 1000)
                result[route] = {**{f"{p}_ms": v for p, v in percentiles(times).items()},
                                 "max_ms": round(max(times), 2)}
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
