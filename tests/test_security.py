"""Issue 26's six findings, each against a real `rag serve` on 127.0.0.1 (the browser's
cross-origin page is in test_webui.py), and the rules of api.security on their own.

1. cross-site writes refused; 2. a foreign Host refused on every route, and links built from
the configured URL; 3. parsing bounded in time, memory and concurrency, stopped when the
client goes; 4. ids that cannot collide, no replacement unasked; 5. no absolute path in any
JSON, /metrics behind the key, the headers on every response; 6. injected sentences never
cited.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient
from pydantic import SecretStr
from starlette.datastructures import Headers

from api import create_app
from api.security import FRAME_ANCESTORS, HostRule, _with_security_headers, public_url, scrub
from api.web import PAGE_POLICY
from eval.bench.hostile import paragraph_bomb_docx
from eval.harness import RAG, Server, rss_mb, serve_rag
from rag.config import Settings
from rag.doc_ids import MAX_CHARS
from rag.embedding import SentenceTransformerEmbedder
from rag.pipeline import Pipeline
from rag.scorer import EvidenceScorer
from tests import formats_corpus as fc
from tests.seed_facts import ROOT, SEED_A, SEED_QUESTIONS, SEEDS
from tests.test_injection import ISSUE

KEY = "security-s3cret"
EVIL = "evil.example"
MB = 1 << 20


# The rules on their own.

@pytest.mark.unit
def test_the_host_rule_follows_the_bind_address_and_the_settings() -> None:
    local = HostRule.of(Settings())
    assert local.allows("127.0.0.1:8000") and local.allows("localhost") and local.allows("[::1]:1")
    assert not local.allows(f"{EVIL}:8000") and not local.allows(f"127.0.0.1.{EVIL}")
    assert local.allows(None)  # HTTP/1.0 without Host: no browser
    bound = HostRule.of(Settings(public_url="https://rag.example.com"), ["10.1.2.3"])
    assert bound.allows("10.1.2.3:8000") and bound.allows("RAG.example.com")
    assert not bound.allows("10.1.2.4")
    assert HostRule.of(Settings(), ["0.0.0.0"]).names is None  # every address: off, as /mcp
    listed = HostRule.of(Settings(allowed_hosts=["rag.lan"]), ["0.0.0.0"])
    assert listed.allows("rag.lan:80") and not listed.allows(f"{EVIL}")
    assert HostRule.of(Settings(allowed_hosts=["*"])).names is None


@pytest.mark.unit
@pytest.mark.parametrize(("headers", "refused"), [
    ({}, False),  # curl, the SDKs, `rag`
    ({"sec-fetch-site": "same-origin", "origin": "http://127.0.0.1:8000"}, False),
    ({"sec-fetch-site": "none"}, False),  # typed into the address bar
    ({"sec-fetch-site": "cross-site", "origin": f"http://{EVIL}"}, True),
    ({"sec-fetch-site": "same-site", "origin": "http://127.0.0.1:9999"}, True),
    ({"origin": "http://127.0.0.1:8000"}, False),  # an older browser: Origin against Host
    ({"origin": "http://127.0.0.1:9999"}, True),
    ({"origin": "null"}, True),  # a sandboxed frame, a file:// page
    ({"origin": "https://rag.example.com", "sec-fetch-site": "cross-site"}, False),
])
def test_a_write_from_another_origin_is_told_apart(headers: dict[str, str],
                                                  refused: bool) -> None:
    rule = HostRule.of(Settings(public_url="https://rag.example.com"))
    why = rule.cross_origin(Headers({"host": "127.0.0.1:8000", **headers}))
    assert (why is not None) == refused, why


@pytest.mark.unit
def test_headers_are_added_and_the_page_policy_keeps_its_own() -> None:
    page = dict(_with_security_headers([(b"content-security-policy", b"default-src 'self'")]))
    assert page[b"content-security-policy"] == f"default-src 'self'; {FRAME_ANCESTORS}".encode()
    plain = dict(_with_security_headers([]))
    assert plain[b"content-security-policy"] == FRAME_ANCESTORS.encode()
    assert plain[b"x-frame-options"] == b"DENY" and plain[b"x-content-type-options"] == b"nosniff"
    assert plain[b"referrer-policy"] == b"no-referrer"


@pytest.mark.unit
def test_links_and_messages_never_come_from_the_request_or_name_server_folders(
        tmp_path: Path) -> None:
    assert public_url(Settings(port=8765)) == "http://127.0.0.1:8765"
    assert public_url(Settings(port=80), ["0.0.0.0"]) == "http://127.0.0.1:80"
    assert public_url(Settings(port=80), ["::1"]) == "http://[::1]:80"
    assert public_url(Settings(public_url="https://rag.example.com/")) == \
        "https://rag.example.com"
    settings = Settings(index_dir=tmp_path / "data" / "index")
    message = f"no index at {tmp_path / 'data' / 'index'}: run `rag ingest PATH` first"
    assert scrub(message, settings) == "no index at index: run `rag ingest PATH` first"


# Against a real server.

@pytest.fixture(scope="module")
def root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The seeds, ingested once; each server gets its own copy of the index."""
    root = tmp_path_factory.mktemp("security")
    subprocess.run([RAG, "ingest", str(SEEDS)], env={**os.environ,
                   "RAG_INDEX_DIR": str(root / "index")}, check=True, capture_output=True,
                   timeout=300)
    return root


def _serve(root: Path, name: str, **env: str) -> Iterator[Server]:
    shutil.copytree(root / "index", root / name)
    with serve_rag({**os.environ, "RAG_INDEX_DIR": str(root / name), **env}, wait=180,
                   timeout=120) as server:
        yield server


@pytest.fixture(scope="module")
def served(root: Path) -> Iterator[Server]:
    """Keyless, as by default; one upload at a time; uploads up to 20 MB."""
    yield from _serve(root, "open", RAG_MAX_CONCURRENT_UPLOADS="1",
                      RAG_MAX_UPLOAD_BYTES=str(20 * MB), RAG_MAX_BODY_BYTES=str(30 * MB))


@pytest.fixture(scope="module")
def keyed(root: Path, llm: str) -> Iterator[Server]:
    """With a key, an LLM for generative answers, and a public URL for its links."""
    yield from _serve(root, "keyed", RAG_API_KEY=KEY, RAG_LLM_BASE_URL=llm,
                      RAG_LLM_MODEL="gemma", RAG_LLM_MAX_TOKENS="96",
                      RAG_PUBLIC_URL="https://rag.example.test")


def _state(http: httpx.Client) -> tuple[str, list[dict[str, Any]]]:
    return http.get("/readyz").json()["snapshot"], http.get("/v1/documents").json()["documents"]


def test_1_a_cross_site_write_is_refused_and_changes_nothing(served: Server) -> None:
    http = served.http
    before = _state(http)
    upload = {"files": {"file": (f"{SEED_A}.txt", b"The plant was closed in 2020.")},
              "params": {"replace": "true"}}
    for headers in ({"Origin": f"http://{EVIL}", "Sec-Fetch-Site": "cross-site"},
                    {"Origin": "http://127.0.0.1:1", "Sec-Fetch-Site": "same-site"},
                    {"Origin": f"http://{EVIL}"}, {"Origin": "null"}):
        r = http.post("/v1/documents", headers=headers, **upload)  # type: ignore[arg-type]
        assert r.status_code == 403 and "cross-origin request refused" in r.json()["detail"]
        r = http.delete(f"/v1/documents/{SEED_A}", headers=headers)
        assert r.status_code == 403
        r = http.post("/mcp", headers=headers, json={})
        assert r.status_code == 403
    assert _state(http) == before
    # Same origin (the web page) and no browser at all (curl, the SDKs) still write.
    own = {"Origin": served.base_url, "Sec-Fetch-Site": "same-origin"}
    for headers in (own, {}):
        r = http.post("/v1/documents", headers=headers,
                      files={"file": ("tea.txt", b"Green tea is steamed.")},
                      params={"replace": "true"})
        assert r.status_code == 201, r.text
    assert http.delete("/v1/documents/tea", headers=own).status_code == 200


def test_2_a_foreign_host_is_refused_on_every_route_and_links_use_the_configured_url(
        served: Server, keyed: Server) -> None:
    spec = served.http.get("/openapi.json").json()
    routes = [(method.upper(), path.replace("{doc_id}", SEED_A))
              for path, ops in spec["paths"].items() for method in ops]
    routes += [("GET", p) for p in ("/", "/docs", "/redoc", "/openapi.json", "/static/app.js",
                                    "/healthz", "/readyz", "/metrics")]
    routes += [("POST", "/mcp"), ("GET", "/nowhere")]
    assert len(routes) >= 18
    for method, path in routes:
        for host in (EVIL, f"{EVIL}:{served.base_url.rsplit(':', 1)[1]}", f"127.0.0.1.{EVIL}"):
            r = served.http.request(method, path, headers={"Host": host})
            assert r.status_code == 421, (method, path, host, r.status_code)
            assert "RAG_ALLOWED_HOSTS" in r.text
    chat = {"model": "rag-extractive",
            "messages": [{"role": "user", "content": SEED_QUESTIONS[4][0]}]}
    port = served.base_url.rsplit(":", 1)[1]
    answer = served.http.post("/v1/chat/completions", json=chat,
                              headers={"Host": f"localhost:{port}"}).json()
    urls = [a["url_citation"]["url"] for a in answer["choices"][0]["message"]["annotations"]]
    assert urls and all(u.startswith(f"{served.base_url}/v1/documents/") for u in urls)
    answer = keyed.http.post("/v1/chat/completions", json=chat,
                             headers={"Authorization": f"Bearer {KEY}"}).json()
    urls = [a["url_citation"]["url"] for a in answer["choices"][0]["message"]["annotations"]]
    assert urls and all(u.startswith("https://rag.example.test/v1/documents/") for u in urls)


def test_3_the_paragraph_bomb_is_refused_in_seconds_and_the_memory_comes_back(
        served: Server) -> None:
    http = served.http
    assert http.post("/v1/documents", files={"file": ("warm.docx", fc.docx_bytes())},
                     params={"replace": "true"}).status_code == 201
    before_rss, before = rss_mb(served.pid), _state(http)
    bomb = paragraph_bomb_docx()  # issue 26's: 5.3 million paragraphs, 180 MB unpacked
    assert len(bomb) < 600_000
    t0 = time.monotonic()
    r = http.post("/v1/documents", files={"file": ("bomb.docx", bomb)})
    seconds = time.monotonic() - t0
    assert r.status_code == 413 and "XML elements" in r.json()["detail"]
    assert seconds < 5, seconds
    assert rss_mb(served.pid) < before_rss + 200, (before_rss, rss_mb(served.pid))
    assert _state(http) == before


def _workers(pid: int) -> set[int]:
    """The server's parse workers: children of its children (the forkserver's)."""
    parents: dict[int, int] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            parents[int(stat.parent.name)] = int(stat.read_text().rsplit(")", 1)[1].split()[1])
        except (OSError, ValueError, IndexError):
            continue
    children = {p for p, parent in parents.items() if parent == pid}
    return {p for p, parent in parents.items() if parent in children}


def _until(condition: Any, seconds: float) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.05)
    return False


def test_3_uploads_over_the_limit_wait_outside_and_a_client_that_goes_stops_its_parse(
        served: Server) -> None:
    slow = fc.slow_html()
    results: list[httpx.Response] = []
    first = threading.Thread(target=lambda: results.append(served.http.post(
        "/v1/documents", files={"file": ("slow.html", slow)}, params={"replace": "true"})))
    first.start()
    assert _until(lambda: _workers(served.pid), 30)  # the first is being parsed
    second = served.http.post("/v1/documents", files={"file": ("other.txt", b"Other text.")})
    assert second.status_code == 503 and second.headers["retry-after"] == "5"
    assert "RAG_MAX_CONCURRENT_UPLOADS" in second.json()["detail"]
    first.join(120)
    assert results[0].status_code == 201, results[0].text

    # A client that sends the whole upload and goes: its worker is stopped at once.
    body = httpx.Request("POST", f"{served.base_url}/v1/documents",
                         files={"file": ("slow.html", slow)}, params={"replace": "true"})
    raw = body.read()
    host, port = served.base_url.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port))) as client:
        head = f"POST {body.url.raw_path.decode()} HTTP/1.1\r\nHost: {host}:{port}\r\n"
        head += "".join(f"{k}: {v}\r\n" for k, v in body.headers.items() if k != "host")
        client.sendall(head.encode() + b"\r\n" + raw)
        assert _until(lambda: _workers(served.pid), 30)
        started = time.monotonic()
    assert _until(lambda: not _workers(served.pid), 10)
    assert time.monotonic() - started < 2  # a parse of this file takes seconds more
    assert served.http.get("/healthz").status_code == 200


def test_4_names_never_collide_and_nothing_is_replaced_unasked(served: Server) -> None:
    http = served.http
    report = "Отчёт о проверке: реактор остановлен в марте.".encode()
    contract = "Договор подписан в апреле.".encode()
    one = http.post("/v1/documents", files={"file": ("отчёт.txt", report)})
    two = http.post("/v1/documents", files={"file": ("договор.txt", contract)})
    assert (one.status_code, two.status_code) == (201, 201)
    assert (one.json()["doc_id"], two.json()["doc_id"]) == ("отчёт", "договор")
    assert http.get("/v1/documents/отчёт").json()["text"] == report.decode()
    again = http.post("/v1/documents", files={"file": ("отчёт.txt", b"Replaced text.")})
    assert again.status_code == 409 and "'отчёт'" in again.json()["detail"]
    assert http.get("/v1/documents/отчёт").json()["text"] == report.decode()
    replaced = http.post("/v1/documents", files={"file": ("отчёт.txt", b"Replaced text.")},
                         data={"replace": "true"})  # the form field works as the query does
    assert replaced.status_code == 201 and replaced.json()["status"] == "replaced"
    long = http.post("/v1/documents", files={"file": ("n" * 4000 + ".txt", b"Long name.")})
    assert long.status_code == 201 and len(long.json()["doc_id"]) == MAX_CHARS
    for doc_id in ("отчёт", "договор", long.json()["doc_id"]):
        assert http.delete(f"/v1/documents/{doc_id}").status_code == 200


def _strings(value: Any) -> Iterator[str]:
    if isinstance(value, str):
        yield value
    elif isinstance(value, dict):
        for k, v in value.items():
            yield k
            yield from _strings(v)
    elif isinstance(value, list):
        for v in value:
            yield from _strings(v)


def test_5_no_absolute_path_in_any_json(served: Server, root: Path,
                                       embedder: SentenceTransformerEmbedder,
                                       scorer: EvidenceScorer) -> None:
    http = served.http
    question = SEED_QUESTIONS[4][0]
    uploaded = http.post("/v1/documents", files={"file": ("paths.txt", b"Paths stay here.")},
                         params={"replace": "true"})
    bodies = [http.get("/readyz"), http.get("/v1/documents"), http.get(f"/v1/documents/{SEED_A}"),
              http.post("/v1/search", json={"query": question}),
              http.post("/v1/ask", json={"question": question}),
              http.post("/v1/chat/completions", json={
                  "model": "rag-extractive", "messages": [{"role": "user", "content": question}]}),
              uploaded, http.get("/v1/documents/nope"), http.delete("/v1/documents/nope"),
              http.post("/v1/documents", files={"file": ("x.png", b"GIF89a" * 9)})]
    assert [b.status_code for b in bodies] == [200] * 6 + [201, 404, 404, 415]
    for body in bodies:
        for text in _strings(body.json()):
            assert str(root) not in text and str(ROOT) not in text, (body.url, text)
    sources = [h["source"] for h in bodies[3].json()["hits"]]
    sources += [d["source"] for d in bodies[1].json()["documents"]]
    assert f"{SEED_A}.txt" in sources and "upload:paths.txt" in sources
    assert not any(s.startswith("/") for s in sources)

    # No index yet: the 503s say so without saying where (in process: no folder to ingest).
    settings = Settings(index_dir=root / "empty" / "index")
    app = create_app(settings, Pipeline(settings, embedder=embedder, scorer=scorer))
    with TestClient(app, base_url="http://localhost") as client:
        assert _until(lambda: client.get("/readyz").json()["status"] != "loading", 120)
        for r in (client.get("/readyz"), client.post("/v1/search", json={"query": "x"})):
            assert r.status_code == 503 and str(root) not in r.text, r.text
            assert "no index at index: run `rag ingest PATH`" in r.text


def test_5_metrics_need_the_key_unless_opened(keyed: Server, tmp_path: Path,
                                             embedder: SentenceTransformerEmbedder) -> None:
    assert keyed.http.get("/metrics").status_code == 401
    opened = keyed.http.get("/metrics", headers={"Authorization": f"Bearer {KEY}"})
    assert opened.status_code == 200 and "rag_http_requests_total" in opened.text
    for open_path in ("/healthz", "/readyz"):
        assert keyed.http.get(open_path).status_code == 200
    settings = Settings(index_dir=tmp_path / "index", api_key=SecretStr(KEY),
                        metrics_public=True)
    app = create_app(settings, Pipeline(settings, embedder=embedder))
    with TestClient(app, base_url="http://localhost") as client:
        assert client.get("/metrics").status_code == 200  # RAG_METRICS_PUBLIC=1


def test_5_every_response_forbids_framing_and_sniffing(served: Server) -> None:
    http = served.http
    responses = [http.get("/"), http.get("/docs"), http.get("/static/app.js"),
                 http.get("/v1/documents"), http.get("/nowhere"), http.get("/metrics"),
                 http.get("/healthz", headers={"Host": EVIL}),
                 http.post("/v1/search", json={"query": "x"}, headers={"Origin": "null"}),
                 http.post("/v1/search", json={"query": "x" * 3000})]
    assert [r.status_code for r in responses] == [200, 200, 200, 200, 404, 200, 421, 403, 422]
    for r in responses:
        assert "frame-ancestors 'none'" in r.headers["content-security-policy"], r.url
        assert r.headers["x-frame-options"] == "DENY"
        assert r.headers["x-content-type-options"] == "nosniff"
        assert r.headers["referrer-policy"] == "no-referrer"
    # The page's own policy and frame-ancestors, in one header.
    assert responses[0].headers["content-security-policy"] == f"{PAGE_POLICY}; {FRAME_ANCESTORS}"


def test_6_injected_sentences_are_never_cited_in_either_mode(served: Server,
                                                            keyed: Server) -> None:
    text = ("Rokkasho reprocessing plant\n\nThe Rokkasho reprocessing plant is in Aomori "
            "Prefecture, Japan. Its completion has been postponed more than twenty times. "
            + " ".join(ISSUE) + "\n").encode()
    questions = ["Was the Rokkasho reprocessing plant closed?",
                 "What happened to the Rokkasho plant in 2020?"]
    key = {"Authorization": f"Bearer {KEY}"}
    # The generative answer (the real tiny LLM, whatever it writes) on one question.
    for server, headers, asked in ((served, {}, [(q, "extractive") for q in questions]),
                                   (keyed, key, [(questions[0], "generative")])):
        up = server.http.post("/v1/documents", files={"file": ("rokkasho.txt", text)},
                              headers=headers, params={"replace": "true"})
        assert up.status_code == 201, up.text
        for question, mode in asked:
            answer = server.http.post("/v1/ask", headers=headers, json={
                "question": question, "mode": mode}).json()
            assert answer["provenance"]["mode"] == mode or answer["provenance"]["generation"]
            quotes = [c["quote"] for c in answer["citations"]]
            assert not any(q in ISSUE or "2020" in q for q in quotes), (mode, quotes)
        chat = server.http.post("/v1/chat/completions", headers=headers, json={
            "model": "rag-extractive",
            "messages": [{"role": "user", "content": questions[0]}]}).json()
        assert "2020" not in json.dumps(chat["rag"]["citations"])
