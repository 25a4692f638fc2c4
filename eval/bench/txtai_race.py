"""`rag bench`: this project against txtai, same corpus, queries and model, in one run.

Each system runs in its own process, so peak memory is its own: ours through
``eval.bench.race_ours``, txtai through ``eval/bench/race_txtai.py`` in txtai's own
virtualenv (made on first use under the cache folder). txtai is handed exactly
the chunk texts our chunker made, so both embed the same passages; ours times
the whole ingest, chunking and sentence vectors included. Then each index is
served over HTTP on 127.0.0.1 (``rag serve``; txtai's own API under uvicorn)
and timed with sequential requests.

Ratios are txtai's time divided by ours: above 1 means this project is faster.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx

from eval.harness import HOST, free_port, percentiles, serve_rag, start
from eval.quality import metrics
from eval.quality.beir import Dataset
from eval.quality.runner import documents
from rag.config import Settings
from rag.embedding import packaged_model_path
from rag.pipeline import Pipeline

TXTAI = "txtai==9.14.0"
# Our configurations: the default (best quality), and the fast-ingest one the README offers.
PROFILES = {"ours": {},
            "ours_fast": {"RAG_EMBED_BACKEND": "onnx-int8", "RAG_SENTENCE_VECTORS": "context"}}
RANK_K = 300
HERE = Path(__file__).resolve().parent


def prepare(ds: Dataset, settings: Settings, work: Path) -> int:
    """Write the chunk texts and queries both systems read; returns the chunk count."""
    work.mkdir(parents=True, exist_ok=True)
    chunker = Pipeline(settings).chunker()
    rows = 0
    with (work / "chunks.jsonl").open("w") as f:
        for doc in documents(ds):
            for chunk in chunker.chunk(doc):
                f.write(json.dumps({"row": rows, "doc": doc.doc_id, "text": chunk.text}) + "\n")
                rows += 1
    with (work / "queries.jsonl").open("w") as f:
        for qid, text in ds.queries.items():
            f.write(json.dumps({"id": qid, "text": text}) + "\n")
    (work / "params.json").write_text(json.dumps({"rank_k": RANK_K, "dataset": str(ds.path)}))
    return rows


def txtai_python(cache: Path) -> Path:
    """txtai's virtualenv, made once: torch's CPU build first, as for this project."""
    venv = cache / "txtai-venv"
    python = venv / "bin" / "python"
    if python.is_file() and subprocess.run([str(python), "-c", "import txtai.api"],
                                           capture_output=True).returncode == 0:
        return python
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    pip = [str(python), "-m", "pip", "install", "-q"]
    subprocess.run([*pip, "torch==2.13.0"], check=True)
    subprocess.run([*pip, f"{TXTAI.replace('==', '[api]==')}", "sentence-transformers"],
                   check=True)
    return python


def _timed(send: Callable[[str], httpx.Response], queries: list[str]) -> list[float]:
    send("warm up").raise_for_status()
    latencies = []
    for text in queries:
        t = time.perf_counter()
        send(text).raise_for_status()
        latencies.append((time.perf_counter() - t) * 1000)
    return latencies


def http_ours(work: Path, name: str, queries: list[str]) -> list[float]:
    env = {"RAG_INDEX_DIR": str(work / name / "index"), "RAG_ONNX_DIR": str(work / "onnx"),
           **PROFILES[name]}
    with serve_rag(env) as server:
        return _timed(lambda q: server.http.post("/v1/search", json={"query": q, "k": 10}),
                      queries)


def _txtai_ready(client: httpx.Client) -> bool:
    return client.get("/search", params={"query": "x", "limit": 1}).status_code == 200


def http_txtai(python: Path, index: Path, queries: list[str]) -> list[float]:
    port = free_port()
    config = index.parent / f"{index.name}.yml"
    config.write_text(json.dumps({"path": str(index), "embeddings": {}}))  # YAML reads JSON
    with start([str(python.with_name("uvicorn")), "txtai.api:app", "--host", HOST, "--port",
                str(port), "--log-level", "warning"],
               {"CONFIG": str(config), "HF_HUB_OFFLINE": "1"}, port, _txtai_ready) as server:
        return _timed(lambda q: server.http.get("/search", params={"query": q, "limit": 10}),
                      queries)


def _side(command: list[str], out: Path, env: dict[str, str] | None = None) -> dict[str, Any]:
    t0 = time.perf_counter()
    subprocess.run(command, check=True, env={**os.environ, **(env or {})})
    result: dict[str, Any] = json.loads(out.read_text())
    result["process_s"] = time.perf_counter() - t0
    return result


def summarise(raw: dict[str, Any], ds: Dataset, http: list[float] | None) -> dict[str, Any]:
    inproc = percentiles(raw["latency_ms"])
    return {
        "config": raw["config"], "chunks": raw["chunks"],
        "ingest_s": round(raw["ingest_s"], 1),
        "chunks_per_s": round(raw["chunks"] / raw["ingest_s"], 1),
        "search_p50_ms": inproc["p50"], "search_p99_ms": inproc["p99"],
        "http_search_p50_ms": percentiles(http)["p50"] if http else None,
        "http_search_p99_ms": percentiles(http)["p99"] if http else None,
        "ndcg@10": round(metrics.evaluate(raw["run"], ds.qrels)["ndcg@10"], 4),
        "peak_rss_mb": round(raw["peak_rss_mb"]),
    }


def ratios(ours: dict[str, Any], theirs: dict[str, Any]) -> dict[str, float]:
    """txtai's time over ours for ingest and search: above 1, ours is faster."""
    pairs = {"ingest": "ingest_s", "search_p50": "search_p50_ms", "search_p99": "search_p99_ms",
             "http_search_p50": "http_search_p50_ms", "http_search_p99": "http_search_p99_ms"}
    return {name: round(theirs[key] / ours[key], 2) for name, key in pairs.items()
            if ours[key] and theirs[key]}


def run(ds: Dataset, settings: Settings, cache: Path, http: bool = True,
        txtai_default: bool = True) -> dict[str, Any]:
    """Both systems on one dataset; returns the report `rag bench --json` writes."""
    work = cache / ds.name
    prepare(ds, settings, work)
    queries = list(ds.queries.values())
    python = txtai_python(cache)
    model = str(settings.model_path or packaged_model_path())
    report: dict[str, Any] = {"dataset": ds.name, "queries": len(queries),
                              "documents": len(ds.corpus)}
    for name, env in PROFILES.items():
        out = work / f"{name}.json"
        raw = _side([sys.executable, "-m", "eval.bench.race_ours", str(work), name, str(out)], out,
                    env)
        report[name] = summarise(raw, ds, http_ours(work, name, queries) if http else None)
    modes = ["fair", "default"] if txtai_default else ["fair"]
    for mode in modes:
        out = work / f"txtai-{mode}.json"
        raw = _side([str(python), str(HERE / "race_txtai.py"), str(work), model, mode,
                     str(out)], out, {"HF_HUB_OFFLINE": "1"})
        timed = http_txtai(python, Path(raw["index"]), queries) if http else None
        report["txtai" if mode == "fair" else "txtai_default"] = summarise(raw, ds, timed)
    for name in PROFILES:
        report["ratios" if name == "ours" else f"ratios_{name.split('_')[1]}"] = ratios(
            report[name], report["txtai"])
    return report


def table(report: dict[str, Any]) -> str:
    rows = [("ours (default)", report["ours"]), ("ours (fast ingest)", report["ours_fast"]),
            ("txtai (exact, 256)", report["txtai"])]
    if "txtai_default" in report:
        rows.append(("txtai (its defaults)", report["txtai_default"]))
    cols = [("ingest s", "ingest_s"), ("chunks/s", "chunks_per_s"),
            ("p50 ms", "search_p50_ms"), ("p99 ms", "search_p99_ms"),
            ("HTTP p50", "http_search_p50_ms"), ("HTTP p99", "http_search_p99_ms"),
            ("nDCG@10", "ndcg@10"), ("peak MB", "peak_rss_mb")]
    head = f"{'system':<22}" + "".join(f"{c:>10}" for c, _ in cols)
    lines = [f"{report['dataset']}: {report['documents']} documents, "
             f"{report['ours']['chunks']} chunks, {report['queries']} queries", head,
             "-" * len(head)]
    for name, r in rows:
        lines.append(f"{name:<22}" + "".join(
            f"{'-' if r[key] is None else r[key]:>10}" for _, key in cols))
    for key, label in (("ratios", "default"), ("ratios_fast", "fast ingest")):
        listed = ", ".join(f"{k} {v}x" for k, v in report[key].items())
        lines.append(f"txtai time / ours ({label}; above 1: ours faster): {listed}")
    return "\n".join(lines)
