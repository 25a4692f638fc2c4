"""Load on a real `rag serve`: hey at a fixed rate from 50 clients, then wrk flat out.

    python -m eval.loadtest --index .cache/bench/scifact/ours/index \\
        --queries ../shared/datasets/scifact/queries.jsonl [--rate 150] [--seconds 10]

hey (Debian package `hey`) holds 50 clients at ``rate`` requests/s in all and
reports each request's latency; it sends one body per run, so it runs once per
query for ``--runs`` different queries and the latencies are pooled. wrk (Debian
package `wrk`) then saturates the server from 50 connections, cycling through
the queries, for its maximum throughput. Both hit POST /v1/search with k=10.
"""

from __future__ import annotations

import argparse
import csv
import io
import json
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

from eval.bench import RAG, free_port, percentiles, rag_ready, serve

WRK_SCRIPT = """
local bodies = {}
for line in io.lines("%s") do bodies[#bodies + 1] = line end
local n = 0
request = function()
  n = n %% #bodies + 1
  return wrk.format("POST", "/v1/search", {["Content-Type"] = "application/json"}, bodies[n])
end
"""


def _tool(name: str) -> str:
    path = shutil.which(name)
    if path is None:
        sys.exit(f"{name} is not installed: apt-get install {name}")
    return path


def run_hey(url: str, bodies: list[str], clients: int, rate: float, seconds: int,
            work: Path) -> dict[str, Any]:
    latencies: list[float] = []
    statuses: dict[str, int] = {}
    elapsed = 0.0
    for n, body in enumerate(bodies):
        path = work / f"body{n}.json"
        path.write_text(body)
        out = subprocess.run([_tool("hey"), "-z", f"{seconds}s", "-c", str(clients), "-q",
                              f"{rate / clients:.3f}", "-m", "POST", "-T", "application/json",
                              "-D", str(path), "-o", "csv", url],
                             capture_output=True, text=True, check=True).stdout
        rows = list(csv.DictReader(io.StringIO(out)))
        latencies += [float(r["response-time"]) * 1000 for r in rows]
        for r in rows:
            statuses[r["status-code"]] = statuses.get(r["status-code"], 0) + 1
        elapsed += seconds
    return {"clients": clients, "target_rps": rate, "requests": len(latencies),
            "achieved_rps": round(len(latencies) / elapsed, 1), "statuses": statuses,
            **{f"{k}_ms": v for k, v in percentiles(latencies).items()},
            "p90_ms": round(sorted(latencies)[int(0.9 * (len(latencies) - 1))], 2)}


def run_wrk(url: str, bodies: list[str], connections: int, seconds: int,
            work: Path) -> dict[str, Any]:
    lines = work / "bodies.txt"
    lines.write_text("\n".join(bodies) + "\n")
    script = work / "cycle.lua"
    script.write_text(WRK_SCRIPT % lines)
    out = subprocess.run([_tool("wrk"), "-t", "2", "-c", str(connections), "-d",
                          f"{seconds}s", "--latency", "-s", str(script), url],
                         capture_output=True, text=True, check=True).stdout
    rps = re.search(r"Requests/sec:\s+([\d.]+)", out)
    errors = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    quantiles = {}
    for q in ("50", "90", "99"):
        found = re.search(rf"^\s+{q}%\s+([\d.]+)(us|ms|s)\s*$", out, re.MULTILINE)
        if found:
            scale = {"us": 0.001, "ms": 1.0, "s": 1000.0}[found.group(2)]
            quantiles[f"p{q}_ms"] = round(float(found.group(1)) * scale, 2)
    done = re.search(r"(\d+) requests in", out)
    return {"connections": connections, "requests_per_s": float(rps.group(1)) if rps else None,
            "requests": int(done.group(1)) if done else None, **quantiles,
            "non_2xx": int(errors.group(1)) if errors else 0, "output": out}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--index", type=Path, required=True)
    parser.add_argument("--queries", type=Path, required=True, help="a BEIR queries.jsonl")
    parser.add_argument("--rate", type=float, default=150.0)
    parser.add_argument("--clients", type=int, default=50)
    parser.add_argument("--seconds", type=int, default=10)
    parser.add_argument("--runs", type=int, default=6, help="hey runs, one query each")
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args()
    texts = [json.loads(line)["text"] for line in args.queries.read_text().splitlines()
             if line.strip()]
    bodies = [json.dumps({"query": t, "k": 10}) for t in texts]
    port = free_port()
    proc, client = serve([RAG, "serve", "--port", str(port)],
                         {"RAG_INDEX_DIR": str(args.index),
                          "RAG_ONNX_DIR": str(args.index.parent.parent / "onnx")},
                         rag_ready, port)
    url = f"http://127.0.0.1:{port}/v1/search"
    try:
        with tempfile.TemporaryDirectory() as tmp:
            step = max(1, len(bodies) // args.runs)
            hey = run_hey(url, bodies[::step][:args.runs], args.clients, args.rate,
                          args.seconds, Path(tmp))
            wrk = run_wrk(url, bodies, args.clients, args.seconds * 2, Path(tmp))
        rss = int(Path(f"/proc/{proc.pid}/status").read_text().split("VmRSS:")[1].split()[0])
    finally:
        proc.terminate()
        proc.wait(30)
    report = {"index": str(args.index), "hey": hey,
              "wrk": {k: v for k, v in wrk.items() if k != "output"},
              "server_rss_mb": round(rss / 1024)}
    print(json.dumps(report, indent=2))
    print(wrk["output"])
    if args.json is not None:
        args.json.write_text(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
