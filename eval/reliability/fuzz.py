"""Fuzz a real `rag serve` with schemathesis against its own /openapi.json.

    python -m eval.reliability.fuzz [--max-examples 100] [--json out.json]

Two servers over fresh copies of the seeds index: one open, one with an API key
(fuzzed with the key, so requests get past authentication). schemathesis runs
every phase (examples, coverage, fuzzing, stateful) with every check — no 5xx,
status codes, content types, headers and bodies all as the schema says — except
the two that cannot apply to a file upload (eval/reliability/fuzz.toml says why). The server's
own log is scanned for tracebacks too.
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

from eval import SEEDS
from eval.harness import RAG, serve_rag

CONFIG = Path(__file__).resolve().with_name("fuzz.toml")
KEY = "fuzz-key"


def fuzz_server(index: Path, max_examples: int, api_key: str | None, log: Path,
                seed: int) -> dict[str, Any]:
    env = {"RAG_INDEX_DIR": str(index), **({"RAG_API_KEY": api_key} if api_key else {})}
    log.write_text("")
    with serve_rag(env, log=log) as server:
        command = [str(Path(sys.executable).with_name("st")), "--config-file",
                   str(CONFIG), "run", server.base_url + "/openapi.json", "--max-examples",
                   str(max_examples), "--workers", "1", "--seed", str(seed), "--no-color"]
        if api_key:
            command += ["-H", f"Authorization: Bearer {api_key}"]
        else:  # a key made here would close the open server to the rest of the run
            command += ["--exclude-path", "/v1/keys"]
        start = log.stat().st_size  # the readiness polls above are not the fuzzer's
        t0 = time.monotonic()
        done = subprocess.run(command, capture_output=True, text=True, timeout=1800)
        seconds = time.monotonic() - t0
    text = done.stdout + done.stderr
    cases = re.search(r"(\d+) generated, (.*)", text)
    server_log = log.read_text()[start:]
    statuses = [int(s) for s in re.findall(r'HTTP/1\.1" (\d{3})', server_log)]
    return {
        "api_key": bool(api_key),
        "exit_code": done.returncode,
        "generated": int(cases.group(1)) if cases else 0,
        "outcome": cases.group(2).strip() if cases else text[-2000:],
        "requests_seen_by_server": len(statuses),
        "status_counts": {str(s): statuses.count(s) for s in sorted(set(statuses))},
        "server_5xx": sum(s >= 500 for s in statuses),
        "server_tracebacks": server_log.count("Traceback"),
        "seconds": round(seconds, 1),
        "failures": text[text.find("FAILURES"):][:4000] if done.returncode else "",
    }


def run(max_examples: int = 100, seed: int = 1) -> dict[str, Any]:
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        base = work / "base"
        subprocess.run([RAG, "ingest", str(SEEDS)], check=True, capture_output=True,
                       env={**os.environ, "RAG_INDEX_DIR": str(base)})
        runs = []
        for api_key in (None, KEY):
            index = work / ("keyed" if api_key else "open")
            shutil.copytree(base, index)
            runs.append(fuzz_server(index, max_examples, api_key, work / "server.log", seed))
    total = sum(r["generated"] for r in runs)
    ok = all(r["exit_code"] == 0 and r["server_5xx"] == 0 and r["server_tracebacks"] == 0
             for r in runs)
    return {"cases": total, "ok": ok, "runs": runs}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--max-examples", type=int, default=100,
                        help="schemathesis examples per operation and phase")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args()
    report = run(args.max_examples, args.seed)
    for r in report["runs"]:
        print(f"{'with API key' if r['api_key'] else 'open':12} {r['generated']} cases: "
              f"{r['outcome']}; server saw {r['requests_seen_by_server']} requests "
              f"{r['status_counts']}, 5xx {r['server_5xx']}, tracebacks "
              f"{r['server_tracebacks']} ({r['seconds']} s)")
        if r["failures"]:
            print(r["failures"])
    print(json.dumps({"cases": report["cases"], "ok": report["ok"]}))
    if args.json:
        args.json.write_text(json.dumps(report, indent=2))
    sys.exit(0 if report["ok"] else 1)


if __name__ == "__main__":
    main()
