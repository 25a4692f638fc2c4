"""The HTTP API's examples, answered by a real server: `rag serve` over a fresh index of the
seeds, one request after another, each recorded with the curl command that sends it and the
status and body that came back. The API page shows them; nothing in them is typed by hand.

    python -m eval.docsite.examples [--out docs/api-examples.json]

`tests/test_docs.py` runs it too, so the file follows the code: every route of the app's
OpenAPI must have an example here, and every example must get the status it expects. The file
is rewritten only when something other than snapshot names, timings, response ids, key ids
and secrets, and modification times changed.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import tempfile
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx

from eval.docsite.recording import BASE, Call, Recorder
from eval.harness import RAG, serve_rag

ROOT = Path(__file__).resolve().parents[2]
OUT = ROOT / "docs" / "api-examples.json"
SEEDS = ROOT / "seeds"
ANSWERED = "Which countries has Japan negotiated defense equipment cooperation agreements with?"
UNANSWERED = "Who won the football World Cup final in 2018?"
NOTE_NAME = "notes.md"
NOTE = (b"# Field notes\n\nThe Lindenfeld bicycle scheme opened in May 2019 with 400 bicycles. "
        b"It is run by the city's transport office.\n")
COLLECTION = "legal"  # the collection the collection and key examples make, fill and delete
MEMO_NAME = "nda.md"
MEMO = (b"# Non-disclosure agreement\n\nThis agreement binds both parties for five years after "
        b"it is signed.\n\nAny dispute under this agreement is settled by arbitration in "
        b"Geneva.\n")
MEMO_QUESTION = "Where are disputes under the agreement settled?"
# What changes from run to run without the behaviour changing.
VOLATILE = frozenset({"snapshot", "timings_ms", "llm_ms", "verify_ms", "id", "created",
                      "started", "seconds", "key", "revoked", "modified"})
KEY_ID = re.compile(r"(?<=/v1/keys/)[0-9a-f]{12}")


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
    """Every example, in an order that leaves the seeds' documents as it found them; the
    collection it makes is deleted at the end, and the keys it makes are left revoked or
    unused in this (temporary) index."""
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
    _metadata_and_filters(run, cited["doc_id"])
    _collection(run)
    run(Call("GET /v1/models", "The models: one per answer mode and collection", "/v1/models"))
    chat = {"model": "rag-extractive", "messages": [{"role": "user", "content": ANSWERED}]}
    run(Call("POST /v1/chat/completions", "An OpenAI chat completion", "/v1/chat/completions",
             chat))
    run(Call("POST /v1/chat/completions", "Streamed chat completion chunks",
             "/v1/chat/completions", {**chat, "stream": True}))
    run(Call("POST /v1/chat/completions", "An unknown model, in OpenAI's error shape",
             "/v1/chat/completions", {**chat, "model": "gpt-4o"}, expect=404))
    run(Call("POST /v1/chat/completions", "A collection's model: rag-extractive@NAME",
             "/v1/chat/completions", {"model": f"rag-extractive@{COLLECTION}", "messages": [
                 {"role": "user", "content": MEMO_QUESTION}]}))
    _keys(run)
    return run.examples


def _metadata_and_filters(run: Recorder, doc_id: str) -> None:
    """PATCH of a seed's metadata (then undone), and filters on /v1/search and /v1/ask."""
    run(Call("PATCH /v1/documents/{doc_id}", "Give a document metadata (nothing is embedded)",
             f"/v1/documents/{doc_id}", {"metadata": {"reviewed": True, "year": 2021}}))
    run(Call("POST /v1/search", "Only the documents a filter selects (terms)", "/v1/search",
             {"query": "defense equipment cooperation", "k": 2,
              "filter": "reviewed=true year>=2020"}))
    run(Call("POST /v1/ask", "A filter that matches nothing: an abstention", "/v1/ask",
             {"question": ANSWERED, "filter": {"field": "year", "lt": 2000}}))
    run(Call("POST /v1/search", "A bad filter is refused, naming the bad part", "/v1/search",
             {"query": "cooperation", "filter": {"or": [{"field": "year", "gte": 2020,
                                                          "lt": "2024"}]}}, expect=422))
    run(Call("PATCH /v1/documents/{doc_id}", "null removes a key (JSON Merge Patch)",
             f"/v1/documents/{doc_id}", {"metadata": {"reviewed": None, "year": None}}))


def _collection(run: Recorder) -> None:
    """A collection made, filled by an upload with metadata, read, searched and asked; its
    routes are those of /v1 under /v1/collections/{collection}. Deleted by ``_keys``."""
    base = f"/v1/collections/{COLLECTION}"
    run(Call("POST /v1/collections", "Make a collection", "/v1/collections",
             {"name": COLLECTION}, expect=201))
    run(Call("POST /v1/collections", "A name that is not one", "/v1/collections",
             {"name": "Legal Team"}, expect=422))
    added = run(Call("POST /v1/collections/{collection}/documents",
                     "Upload into it, with metadata in form fields", f"{base}/documents",
                     upload=(MEMO_NAME, MEMO), form=(("team", "legal"), ("year", "2024")),
                     expect=201))
    memo = added["json"]["doc_id"]
    run(Call("GET /v1/collections", "The collections, with their counts", "/v1/collections"))
    run(Call("GET /v1/collections/{collection}", "One collection", base))
    run(Call("GET /v1/collections/{collection}/documents", "Its documents, with their metadata",
             f"{base}/documents"))
    run(Call("GET /v1/collections/{collection}/documents/{doc_id}", "One of its documents",
             f"{base}/documents/{memo}"))
    run(Call("PATCH /v1/collections/{collection}/documents/{doc_id}", "Change its metadata",
             f"{base}/documents/{memo}", {"metadata": {"reviewed": True}}))
    run(Call("POST /v1/collections/{collection}/search", "Search it, filtered",
             f"{base}/search", {"query": "arbitration", "k": 1, "filter": "team=legal"}))
    run(Call("POST /v1/collections/{collection}/ask", "Ask it", f"{base}/ask",
             {"question": MEMO_QUESTION, "k": 1}))
    run(Call("GET /v1/collections/{collection}/sync", "Its sync (rag serve watches default)",
             f"{base}/sync"))
    run(Call("POST /v1/collections/{collection}/search", "A collection that does not exist",
             "/v1/collections/no-such/search", {"query": "arbitration"}, expect=404))
    run(Call("DELETE /v1/collections/{collection}/documents/{doc_id}", "Delete a document of it",
             f"{base}/documents/{memo}"))
    run(Call("POST /v1/collections/{collection}/documents", "Upload it again",
             f"{base}/documents", upload=(MEMO_NAME, MEMO), form=(("team", "legal"),),
             expect=201))


def _keys(run: Recorder) -> None:
    """Keys, last: the first one made closes this open server to requests without a key."""
    admin = run(Call("POST /v1/keys", "An admin key of every collection (the first key made "
                     "closes the server to requests without one)", "/v1/keys",
                     {"collections": ["*"], "role": "admin", "label": "IT"}, expect=201))
    run.keys["ADMIN_KEY"] = admin["json"]["key"]
    reader = run(Call("POST /v1/keys", "A read key of one collection", "/v1/keys",
                      {"collections": [COLLECTION], "role": "read", "label": "legal team",
                       "expires": "2099-01-01"}, key="ADMIN_KEY", expect=201))
    run.keys["LEGAL_KEY"] = reader["json"]["key"]
    run(Call("GET /v1/keys", "The keys (never their secrets)", "/v1/keys", key="ADMIN_KEY"))
    run(Call("GET /v1/collections", "A key sees only its collections", "/v1/collections",
             key="LEGAL_KEY"))
    run(Call("POST /v1/search", "Any other is not found, as if it did not exist", "/v1/search",
             {"query": "cooperation"}, key="LEGAL_KEY", expect=404))
    run(Call("DELETE /v1/collections/{collection}", "A read key may not delete",
             f"/v1/collections/{COLLECTION}", key="LEGAL_KEY", expect=403))
    run(Call("GET /v1/documents", "No key, once keys exist", "/v1/documents", expect=401))
    run(Call("DELETE /v1/keys/{key_id}", "Revoke a key", f"/v1/keys/{reader['json']['id']}",
             key="ADMIN_KEY"))
    run(Call("GET /v1/collections", "A revoked key is refused at once", "/v1/collections",
             key="LEGAL_KEY", expect=401))
    run(Call("DELETE /v1/collections/{collection}", "Delete a collection, whole",
             f"/v1/collections/{COLLECTION}", key="ADMIN_KEY"))


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
    if isinstance(value, str):
        return KEY_ID.sub("KEY_ID", value)
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
