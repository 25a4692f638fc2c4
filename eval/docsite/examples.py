"""The HTTP API's examples, answered by a real server: `rag serve` over a fresh index of the
seeds, one request after another, each recorded with the curl command that sends it and the
status and body that came back. The API page shows them; nothing in them is typed by hand.

    python -m eval.docsite.examples [--out docs/api-examples.json]

`tests/test_docs.py` runs it too, so the file follows the code: every route of the app's
OpenAPI must have an example here, and every example must get the status it expects. The file
is rewritten only when something other than snapshot names, timings and response ids changed.
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import subprocess
import sys
import tempfile
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx

from eval.harness import RAG, serve_rag

ROOT = Path(__file__).resolve().parents[2]
OUT = ROOT / "docs" / "api-examples.json"
SEEDS = ROOT / "seeds"
# The address the examples show: where `make run` serves. The server's links say it too.
BASE = "http://127.0.0.1:8000"
ANSWERED = "Which countries has Japan negotiated defense equipment cooperation agreements with?"
UNANSWERED = "Who won the football World Cup final in 2018?"
NOTE_NAME = "notes.md"
NOTE = (b"# Field notes\n\nThe Lindenfeld bicycle scheme opened in May 2019 with 400 bicycles. "
        b"It is run by the city's transport office.\n")
# What changes from run to run without the behaviour changing.
VOLATILE = frozenset({"snapshot", "timings_ms", "llm_ms", "verify_ms", "id", "created",
                      "started", "seconds"})


@dataclass(frozen=True)
class Call:
    """One request: the route it documents (OpenAPI's method and path) and what it sends."""

    route: str
    title: str
    path: str
    json: Any = None
    upload: tuple[str, bytes] | None = None
    expect: int = 200

    @property
    def method(self) -> str:
        return self.route.split()[0]

    def curl(self) -> str:
        url = shlex.quote(BASE + self.path)
        streams = isinstance(self.json, dict) and self.json.get("stream")
        words = ["curl", "-sN" if streams else "-s"]
        if self.method not in ("GET", "POST"):
            words += ["-X", self.method]
        if self.upload is not None:
            return " ".join([*words, "-F", f"file=@{self.upload[0]}", url])
        if self.json is None:
            return " ".join([*words, url])
        body = shlex.quote(json.dumps(self.json, ensure_ascii=False))
        return " ".join(words) + f" {url} \\\n  -H 'Content-Type: application/json' -d {body}"


@dataclass
class Recorder:
    """Sends calls to a server and keeps what each got back."""

    http: httpx.Client
    examples: list[dict[str, Any]] = field(default_factory=list)

    def __call__(self, call: Call) -> dict[str, Any]:
        files = {"file": (call.upload[0], call.upload[1])} if call.upload else None
        response = self.http.request(call.method, call.path, json=call.json, files=files)
        media = response.headers.get("content-type", "").split(";")[0]
        answered: dict[str, Any] = {"status": response.status_code, "content_type": media}
        if media == "application/json":
            answered["json"] = response.json()
        else:
            answered["text"] = response.text
        if response.status_code != call.expect:
            raise AssertionError(f"{call.route} ({call.title}): expected {call.expect}, got "
                                 f"{response.status_code}: {response.text[:500]}")
        example = {"route": call.route, "title": call.title, "curl": call.curl(),
                   "request": {"method": call.method, "path": call.path, "json": call.json,
                               "upload": call.upload[0] if call.upload else None},
                   "response": answered}
        self.examples.append(example)
        return answered


def _synced(http: httpx.Client, within_s: float = 120.0) -> None:
    """Wait for the watched folders' first run (`rag serve --watch` runs one at start), so
    GET /v1/sync shows a finished run rather than whichever moment it was asked."""
    deadline = time.monotonic() + within_s
    while time.monotonic() < deadline:
        status = http.get("/v1/sync").json()
        if not status["watching"] or (status["runs"] and not status["running"]):
            return
        time.sleep(0.2)
    raise AssertionError(f"the watched folders' first sync did not end in {within_s:.0f} s")


def record(http: httpx.Client) -> list[dict[str, Any]]:
    """Every example, in an order that leaves the index as it found it."""
    run = Recorder(http)
    run(Call("GET /healthz", "The process is up", "/healthz"))
    run(Call("GET /readyz", "The index is loaded", "/readyz"))
    run(Call("GET /v1/documents", "The indexed documents", "/v1/documents"))
    _synced(http)
    run(Call("GET /v1/sync", "The sync of the folders watched by rag serve --watch seeds",
             "/v1/sync"))
    run(Call("POST /v1/search", "Ranked passages", "/v1/search",
             {"query": "What areas of cooperation does the NPEC study propose?", "k": 2}))
    run(Call("POST /v1/search", "A blank query is refused", "/v1/search", {"query": "  "},
             expect=422))
    answer = run(Call("POST /v1/ask", "An answer, every sentence a verified quote", "/v1/ask",
                      {"question": ANSWERED, "k": 3}))
    run(Call("POST /v1/ask", "An abstention: the documents don't say", "/v1/ask",
             {"question": UNANSWERED}))
    run(Call("POST /v1/ask", "Streamed as server-sent events", "/v1/ask",
             {"question": ANSWERED, "k": 3, "stream": True}))
    run(Call("POST /v1/ask", "Generative without an LLM configured", "/v1/ask",
             {"question": ANSWERED, "mode": "generative"}, expect=422))
    cited = answer["json"]["citations"][0]
    run(Call("GET /v1/documents/{doc_id}", "A document with the span a citation quotes",
             f"/v1/documents/{cited['doc_id']}?start={cited['char_start']}"
             f"&end={cited['char_end']}"))
    run(Call("GET /v1/documents/{doc_id}", "An unknown document", "/v1/documents/no-such-doc",
             expect=404))
    added = run(Call("POST /v1/documents", "Upload a file", "/v1/documents",
                     upload=(NOTE_NAME, NOTE), expect=201))
    run(Call("POST /v1/documents", "The same name again is a conflict", "/v1/documents",
             upload=(NOTE_NAME, NOTE), expect=409))
    run(Call("POST /v1/documents", "Replace it", "/v1/documents?replace=true",
             upload=(NOTE_NAME, NOTE), expect=201))
    run(Call("DELETE /v1/documents/{doc_id}", "Delete it",
             f"/v1/documents/{added['json']['doc_id']}"))
    run(Call("GET /v1/models", "The models: one per answer mode", "/v1/models"))
    chat = {"model": "rag-extractive", "messages": [{"role": "user", "content": ANSWERED}]}
    run(Call("POST /v1/chat/completions", "An OpenAI chat completion", "/v1/chat/completions",
             chat))
    run(Call("POST /v1/chat/completions", "Streamed chat completion chunks",
             "/v1/chat/completions", {**chat, "stream": True}))
    run(Call("POST /v1/chat/completions", "An unknown model, in OpenAI's error shape",
             "/v1/chat/completions", {**chat, "model": "gpt-4o"}, expect=404))
    return run.examples


def stable(value: Any) -> Any:
    """``value`` without what changes from run to run, for deciding whether to rewrite."""
    if isinstance(value, dict):
        return {k: stable(v) for k, v in value.items() if k not in VOLATILE}
    if isinstance(value, list):
        return [stable(v) for v in value]
    if isinstance(value, float):
        return round(value, 3)
    if isinstance(value, str) and value.startswith(("event:", "data:")):
        return "(stream)"  # an event stream carries ids and timings inside its text
    return value


def write(examples: list[dict[str, Any]], out: Path) -> bool:
    """Write ``out`` unless it holds the same examples already; True when it wrote."""
    document = {"generated_by": "python -m eval.docsite.examples", "base_url": BASE,
                "examples": examples}
    if out.exists() and stable(json.loads(out.read_text())) == stable(document):
        return False
    out.write_text(json.dumps(document, indent=2, ensure_ascii=False) + "\n")
    return True


def served(index: Path, env: Mapping[str, str] | None = None) -> list[dict[str, Any]]:
    """Ingest the seeds into ``index`` (a fresh folder) and record the examples against a
    `rag serve --watch seeds` on it (its start-up sync finds nothing changed)."""
    environ = {**os.environ, **(env or {}), "RAG_INDEX_DIR": str(index),
               "RAG_PUBLIC_URL": BASE, "RAG_WATCH": str(SEEDS)}
    environ.pop("RAG_API_KEY", None)
    environ.pop("RAG_LLM_BASE_URL", None)
    subprocess.run([RAG, "ingest", str(SEEDS)], env=environ, check=True, capture_output=True,
                   timeout=600)
    with serve_rag(environ, wait=300, timeout=120) as server:
        # the Host the examples name is the one of BASE's address, on the server's port
        assert urlsplit(server.base_url).hostname == urlsplit(BASE).hostname
        return record(server.http)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=OUT)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as work:
        examples = served(Path(work) / "index")
    wrote = write(examples, args.out)
    print(f"{len(examples)} examples; {args.out} " + ("written" if wrote else "unchanged"),
          file=sys.stderr)


if __name__ == "__main__":
    main()
