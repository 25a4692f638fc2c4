"""Soak: a long mixed load on a real `rag serve`, sampled every 30 s.

    python -m eval.reliability.soak [--minutes 10] [--workers 4] [--json out.json]

Four client threads on 127.0.0.1 send, without pause, 60% /v1/search, 30% /v1/ask,
5% uploads of new small documents and 5% deletes of earlier uploads, against an
index of the seeds and 20 survey files. Every 30 s it records the window's
requests, errors, query p50/p99 and the server's resident memory. Passes when no
request failed and memory levelled off: the last third of the samples grew by less
than 5% (and 50 MB) over the middle third's peak.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from eval.harness import rss_mb
from eval.reliability.concurrency import serve_seeded
from eval.reliability.loadmix import MixedLoad, summary

MIX = {"search": 0.60, "ask": 0.30, "upload": 0.05, "delete": 0.05}


def run(minutes: float = 10, workers: int = 4, every: float = 30.0) -> dict[str, Any]:
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        # Every client thread may be uploading at once: the soak measures endurance, not
        # RAG_MAX_CONCURRENT_UPLOADS (tests/test_security.py does).
        _, server = serve_seeded(work, {"RAG_MAX_CONCURRENT_UPLOADS": str(workers)})
        samples: list[dict[str, Any]] = [{"t_s": 0, "rss_mb": rss_mb(server.pid)}]
        print(f"{'t s':>5} {'requests':>8} {'errors':>6} {'p50 ms':>7} {'p99 ms':>7} "
              f"{'RSS MB':>7}  search/ask/upload/delete", flush=True)
        load = MixedLoad(server.base_url, MIX, workers, prefix="soak").start()
        t0 = time.monotonic()
        try:
            end = t0 + minutes * 60
            mark = t0
            while mark + every <= end + 0.01:
                time.sleep(max(0.0, mark + every - time.monotonic()))
                window = summary(load.window(mark, mark + every))
                mark += every
                row = {"t_s": round(mark - t0), "rss_mb": rss_mb(server.pid), **window}
                samples.append(row)
                ops = "/".join(str(v) for v in window["by_op"].values())
                print(f"{row['t_s']:>5} {row['requests']:>8} {row['errors']:>6} "
                      f"{row['query_p50_ms']:>7} {row['query_p99_ms']:>7} {row['rss_mb']:>7}  "
                      f"{ops}", flush=True)
        finally:
            load.stop()
            server.stop()
        log = server.log.read_text()
    total = summary(load.samples)
    rss = [s["rss_mb"] for s in samples[1:]]
    third = max(1, len(rss) // 3)
    middle_peak = max(rss[third:2 * third] or rss)
    last_peak = max(rss[-third:])
    growth = last_peak - middle_peak
    report = {"minutes": minutes, "workers": workers, "mix": MIX, "total": total,
              "samples": samples, "rss_growth_last_third_mb": round(growth, 1),
              "server_tracebacks": log.count("Traceback")}
    report["levelled_off"] = growth < max(50.0, 0.05 * middle_peak) or growth <= 0
    report["ok"] = (total["errors"] == 0 and report["levelled_off"]
                    and report["server_tracebacks"] == 0)
    return report


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--minutes", type=float, default=10.0)
    parser.add_argument("--workers", type=int, default=4)
    parser.add_argument("--every", type=float, default=30.0, help="seconds per sample")
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args()
    report = run(args.minutes, args.workers, args.every)
    print(json.dumps({k: report[k] for k in ("total", "rss_growth_last_third_mb",
                                             "levelled_off", "server_tracebacks", "ok")}))
    if args.json:
        args.json.write_text(json.dumps(report, indent=2))
    sys.exit(0 if report["ok"] else 1)


if __name__ == "__main__":
    main()
