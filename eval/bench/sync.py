"""How long from a file's save to a searchable snapshot under `rag serve --watch`.

    python -m eval.bench.sync [--files 10] [--quiet-ms 1000] [--json out.json]

Starts `rag serve --watch` on a temporary folder (holding the seeds) and a free loopback
port, then saves ``--files`` new text files one at a time, each with a fact of its own, and
times each from the write to the first /v1/search that finds it (polled every 50 ms). The
delay is the quiet time a burst waits for (RAG_SYNC_QUIET_MS), a folder ingest (every file
hashed, the new one parsed and embedded) and the snapshot's commit and reload.
"""

from __future__ import annotations

import argparse
import json
import shutil
import tempfile
import time
from pathlib import Path
from typing import Any

from eval.harness import percentiles, serve_rag

SEEDS = Path(__file__).resolve().parents[2] / "seeds"


def run(files: int, quiet_ms: int) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="rag-sync-bench-") as tmp:
        folder = Path(tmp) / "watched"
        shutil.copytree(SEEDS, folder)
        env = {"RAG_INDEX_DIR": str(Path(tmp) / "index"), "RAG_SYNC_QUIET_MS": str(quiet_ms)}
        delays = []
        with serve_rag(env, "--watch", str(folder), wait=600) as server:
            deadline = time.monotonic() + 600
            while server.http.get("/v1/sync").json()["runs"] < 1:  # the first, catch-up run
                if time.monotonic() > deadline:
                    raise RuntimeError(server.tail())
                time.sleep(0.2)
            documents = len(server.http.get("/v1/documents").json()["documents"])
            for n in range(files):
                word = f"zephyrine{n}"
                t0 = time.perf_counter()
                (folder / f"note{n}.txt").write_text(
                    f"The {word} valve on boiler {n} was replaced in week {n + 10}.\n")
                while True:
                    hits = server.http.post("/v1/search", json={"query": f"{word} valve",
                                                                "k": 1}).json()["hits"]
                    if hits and word in hits[0]["text"]:
                        break
                    if time.perf_counter() - t0 > 300:
                        raise RuntimeError(f"note{n}.txt never searchable\n{server.tail()}")
                    time.sleep(0.05)
                delays.append(time.perf_counter() - t0)
                time.sleep(quiet_ms / 1000 + 0.5)
    return {"files": files, "documents_in_folder": documents, "quiet_ms": quiet_ms,
            "delay_s": percentiles(delays, (50, 90, 100))}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--files", type=int, default=10)
    parser.add_argument("--quiet-ms", type=int, default=1000)
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args()
    report = run(args.files, args.quiet_ms)
    print(json.dumps(report, indent=2))
    if args.json is not None:
        args.json.write_text(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
