"""Ingest throughput without Ray, on a one-node and on a two-node local Ray cluster.

    python -m eval.bench.ray_ingest [--docs 2000] [--json out.json]

The same generated corpus (one chunk of two sentences per document) is ingested
into a fresh index three times: in-process, then with `ray_address` pointing at a
ray.cluster_utils.Cluster of one node (1 CPU, one embedding actor) and of two
nodes (1 CPU each, two actors). Wall time includes the actors loading the model.
All nodes here share the same 2 cores, so this measures the overhead and the
plumbing, not the speed-up real machines would add.
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time
from pathlib import Path
from typing import Any

from rag.config import Settings
from rag.pipeline import Pipeline
from rag.types import Document

TOPICS = ["glacier", "volcano", "reef", "desert", "forest", "river", "tundra", "delta"]


def corpus(n: int) -> list[Document]:
    docs = []
    for i in range(n):
        t, u = TOPICS[i % len(TOPICS)], TOPICS[(i * 3 + 1) % len(TOPICS)]
        text = (f"Field report {i} on the {t}. The {t} near station {i % 29} changed in season "
                f"{i % 7}, and the {u} downstream was measured {i % 11} times.")
        docs.append(Document(f"r{i:05d}", f"Report {i}", f"gen:{i}", text, f"{i:064x}"))
    return docs


def ingest(root: Path, docs: list[Document], address: str | None) -> dict[str, Any]:
    settings = Settings(index_dir=root, onnx_dir=Path(".cache/onnx").resolve(),
                        ray_address=address)
    pipeline = Pipeline(settings)
    _ = pipeline.embedder  # the driver's local model, loaded before the clock starts
    t0 = time.perf_counter()
    report = pipeline.ingest_documents(docs)
    seconds = time.perf_counter() - t0
    remote = getattr(pipeline.embedder, "remote_texts", 0)
    return {"chunks": report.chunks, "seconds": round(seconds, 1),
            "chunks_per_s": round(report.chunks / seconds, 1), "texts_on_ray": remote}


def on_cluster(nodes: int, root: Path, docs: list[Document]) -> dict[str, Any]:
    os.environ["RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER"] = "0"
    os.environ["RAY_AUTH_MODE"] = "disabled"
    import ray
    from ray.cluster_utils import Cluster

    cluster = Cluster(initialize_head=True, head_node_args={"num_cpus": 1})
    for _ in range(nodes - 1):
        cluster.add_node(num_cpus=1)
    cluster.wait_for_nodes()
    try:
        return {"nodes": nodes, **ingest(root, docs, str(cluster.address))}
    finally:
        ray.shutdown()
        cluster.shutdown()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--docs", type=int, default=2000)
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args()
    docs = corpus(args.docs)
    with tempfile.TemporaryDirectory() as tmp:
        rows = [{"nodes": 0, **ingest(Path(tmp) / "local", docs, None)}]
        for nodes in (1, 2):
            rows.append(on_cluster(nodes, Path(tmp) / f"ray{nodes}", docs))
    for r in rows:
        where = "no Ray (in-process)" if r["nodes"] == 0 else f"Ray, {r['nodes']} node(s)"
        print(f"{where:22} {r['chunks']} chunks in {r['seconds']} s = {r['chunks_per_s']} "
              f"chunks/s ({r['texts_on_ray']} texts embedded on the cluster)")
    if args.json:
        args.json.write_text(json.dumps(rows, indent=2))


if __name__ == "__main__":
    main()
