"""Load on a real `rag serve` from wrk: 50 connections at fixed offered rates, then flat out.

    python -m eval.bench.loadtest --index .cache/bench/scifact/ours/index \\
        --queries ../shared/datasets/scifact/queries.jsonl [--rates 50,100,150] [--seconds 20]

wrk (Debian package `wrk`) holds 50 connections open and cycles POST /v1/search
(k=10) through every query of the file. At a fixed rate its Lua ``delay()``
schedules each send on an open-loop clock with exponential gaps (Poisson
arrivals at ``rate`` requests/s in all): a send waits for its own time, never
for the previous answer, and the latency is measured from the send. Then it
runs flat out (each connection sends again when answered) for the maximum
throughput. The server's own CPU seconds per request come from /proc.

This machine's speed drifts (the same server's CPU per request moved by a third within
an hour), so every report starts with the query model's own CPU per query, fp32 and int8,
one query at a time: compare tables only at similar figures, or interleave A/B runs.

hey was used here before; its rate limit starts every worker's ticker at the
same moment, so 50 clients at 150 requests/s in all send 50 requests at once,
three times a second: it measured how long a burst of 50 takes to drain.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from eval.harness import rss_mb, serve_rag

CYCLE = """
local bodies = {}
for line in io.lines("%(bodies)s") do bodies[#bodies + 1] = line end
local n = 0
local threads = 0
function setup(thread)
  threads = threads + 1
  thread:set("id", threads)
end
function init(args)
  math.randomseed(id * 7919 + os.time())  -- each thread its own arrivals and starting query
  n = math.random(#bodies)
end
function request()
  n = n %% #bodies + 1
  return wrk.format("POST", "/v1/search", {["Content-Type"] = "application/json"}, bodies[n])
end
"""

PACED = CYCLE + """
local ffi = require("ffi")
ffi.cdef[[
typedef struct { long tv_sec; long tv_usec; } rag_timeval;
int gettimeofday(rag_timeval *tv, void *tz);
]]
local tv = ffi.new("rag_timeval")
local function now_ms()
  ffi.C.gettimeofday(tv, nil)
  return tonumber(tv.tv_sec) * 1000 + tonumber(tv.tv_usec) / 1000
end
local gap_ms = 1000 / %(thread_rate)f
local next_ms = nil
function delay()
  local t = now_ms()
  if next_ms == nil then next_ms = t end
  next_ms = next_ms - gap_ms * math.log(1 - math.random())
  return math.max(0, next_ms - t)
end
"""


def _wrk() -> str:
    path = shutil.which("wrk")
    if path is None:
        sys.exit("wrk is not installed: apt-get install wrk")
    return path


def _cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def parse_wrk(out: str) -> dict[str, Any]:
    rps = re.search(r"Requests/sec:\s+([\d.]+)", out)
    errors = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    socket = re.search(r"Socket errors: (.*)", out)
    quantiles = {}
    for q in ("50", "90", "99"):
        found = re.search(rf"^\s+{q}(?:\.000)?%\s+([\d.]+)(us|ms|s)\s*$", out, re.MULTILINE)
        if found:
            scale = {"us": 0.001, "ms": 1.0, "s": 1000.0}[found.group(2)]
            quantiles[f"p{q}_ms"] = round(float(found.group(1)) * scale, 2)
    done = re.search(r"(\d+) requests in", out)
    return {"requests": int(done.group(1)) if done else None,
            "achieved_rps": float(rps.group(1)) if rps else None, **quantiles,
            "errors": (int(errors.group(1)) if errors else 0) + (1 if socket else 0)}


def run_wrk(url: str, bodies: Path, connections: int, seconds: int, rate: float | None,
            work: Path, pid: int) -> dict[str, Any]:
    """One wrk run, paced at ``rate`` requests/s in all, or flat out when None."""
    threads = 2
    script = work / f"load-{rate}.lua"
    values = {"bodies": bodies, "thread_rate": (rate or 0) / threads}
    script.write_text((PACED if rate else CYCLE) % values)
    before = _cpu_seconds(pid)
    out = subprocess.run([_wrk(), "-t", str(threads), "-c", str(connections), "-d",
                          f"{seconds}s", "--latency", "-s", str(script), url],
                         capture_output=True, text=True, check=True).stdout
    result = {"offered_rps": rate, "connections": connections, "seconds": seconds,
              **parse_wrk(out)}
    if result["requests"]:
        result["server_cpu_ms_per_request"] = round(
            (_cpu_seconds(pid) - before) * 1000 / result["requests"], 2)
    return result


def model_ms(onnx_dir: Path, texts: list[str], n: int = 200) -> dict[str, float]:
    """CPU ms per query of the one-thread query model, fp32 and int8: the machine's speed now."""
    from rag.embedding import SentenceTransformerEmbedder

    out = {}
    for int8 in (False, True):
        embedder = SentenceTransformerEmbedder("all-MiniLM-L6-v2", onnx_cache=onnx_dir,
                                               backend="onnx", query_int8=int8)
        for text in texts[:20]:
            embedder.embed_query(text)
        start = time.process_time()
        for text in texts[:n]:
            embedder.embed_query(text)
        out["int8" if int8 else "fp32"] = round((time.process_time() - start) * 1000 / n, 2)
    return out


def table(runs: list[dict[str, Any]]) -> str:
    lines = ["| load | requests | achieved req/s | p50 ms | p90 ms | p99 ms "
             "| server CPU ms/request | errors |",
             "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |"]
    for r in runs:
        load = (f"{r['offered_rps']:g} req/s offered" if r["offered_rps"] else "flat out")
        lines.append(f"| {load}, {r['connections']} connections, {r['seconds']} s | "
                     f"{r['requests']:,} | {r['achieved_rps']} | {r.get('p50_ms')} | "
                     f"{r.get('p90_ms')} | {r.get('p99_ms')} | "
                     f"{r.get('server_cpu_ms_per_request')} | {r['errors']} |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--index", type=Path, required=True)
    parser.add_argument("--queries", type=Path, required=True, help="a BEIR queries.jsonl")
    parser.add_argument("--rates", default="50,100,150",
                        help="offered requests/s, comma-separated (then one run flat out)")
    parser.add_argument("--connections", type=int, default=50)
    parser.add_argument("--seconds", type=int, default=20)
    parser.add_argument("--env", action="append", default=[], metavar="RAG_X=VALUE",
                        help="a setting for the server (repeatable), e.g. RAG_QUERY_INT8=true")
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args()
    texts = [json.loads(line)["text"] for line in args.queries.read_text().splitlines()
             if line.strip()]
    rates = [float(r) for r in args.rates.split(",") if r.strip()]
    extra = dict(item.split("=", 1) for item in args.env)
    speed = model_ms(args.index.parent.parent / "onnx", texts)
    print(f"query model CPU per query now: fp32 {speed['fp32']} ms, int8 {speed['int8']} ms",
          flush=True)
    server = serve_rag({"RAG_INDEX_DIR": str(args.index),
                        "RAG_ONNX_DIR": str(args.index.parent.parent / "onnx"), **extra})
    url = f"{server.base_url}/v1/search"
    runs = []
    with server, tempfile.TemporaryDirectory() as tmp:
        bodies = Path(tmp) / "bodies.txt"
        bodies.write_text("".join(json.dumps({"query": t, "k": 10}) + "\n" for t in texts))
        run_wrk(url, bodies, args.connections, 3, None, Path(tmp), server.pid)  # warm up
        for rate in [*rates, None]:
            time.sleep(2)  # the previous run's queue drains first
            runs.append(run_wrk(url, bodies, args.connections, args.seconds, rate,
                                Path(tmp), server.pid))
            print(json.dumps(runs[-1]), flush=True)
        rss = rss_mb(server.pid)
    report = {"index": str(args.index), "settings": extra, "queries": len(texts),
              "model_cpu_ms_per_query": speed, "runs": runs,
              "server_rss_mb": round(rss)}
    print(table(runs))
    print(f"server memory after the runs: {report['server_rss_mb']} MB resident")
    if args.json is not None:
        args.json.write_text(json.dumps(report, indent=2) + "\n")


if __name__ == "__main__":
    main()
