"""The HTTP API: TestClient (lifespan runs) for breadth, a real uvicorn server end to end."""

from __future__ import annotations

import os
import shutil
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from fastapi.testclient import TestClient
from pydantic import SecretStr

from api import create_app
from eval.harness import RAG, serve_rag, wait_ready
from rag.config import RetrieverName, Settings
from rag.embedding import SentenceTransformerEmbedder
from rag.filters import Filter
from rag.pipeline import Pipeline
from rag.scorer import EvidenceScorer
from rag.types import Hit
from tests import formats_corpus as fc
from tests.seed_facts import OFF_TOPIC, SEED_A, SEED_B, SEED_QUESTIONS, SEEDS


def _client(settings: Settings, embedder: SentenceTransformerEmbedder,
            scorer: EvidenceScorer) -> TestClient:
    return TestClient(create_app(settings, Pipeline(settings, embedder=embedder, scorer=scorer)),
                      base_url="http://localhost")  # a host the app answers to (api.security)


@pytest.fixture
def client(tmp_path: Path, seed_index: Path,
           embedder: SentenceTransformerEmbedder, scorer: EvidenceScorer) -> Iterator[TestClient]:
    shutil.copytree(seed_index, tmp_path / "index")
    with _client(Settings(index_dir=tmp_path / "index", max_body_bytes=200_000,
                          max_upload_bytes=100_000), embedder, scorer) as c:
        wait_ready(c, wait=120)
        yield c


def test_health_ready_metrics_and_openapi(client: TestClient) -> None:
    assert client.get("/healthz").json()["status"] == "ok"
    ready = client.get("/readyz").json()
    assert ready["status"] == "ready" and ready["documents"] == 2 and ready["chunks"] == 15
    client.post("/v1/search", json={"query": "Japan"})
    metrics = client.get("/metrics")
    assert metrics.headers["content-type"].startswith("text/plain")
    assert 'rag_http_requests_total{method="POST",route="/v1/search",status="200"} 1.0' \
        in metrics.text
    assert "rag_http_request_duration_seconds_bucket" in metrics.text
    spec = client.get("/openapi.json").json()
    assert {"/v1/search", "/v1/ask", "/v1/documents", "/v1/documents/{doc_id}"} <= \
        set(spec["paths"])
    assert client.get("/docs").status_code == 200


def test_search_and_ask(client: TestClient) -> None:
    question, doc_id, fact = SEED_QUESTIONS[3]
    found = client.post("/v1/search", json={"query": question, "k": 2, "retriever": "dense"})
    assert found.status_code == 200
    hits = found.json()["hits"]
    assert len(hits) == 2 and hits[0]["doc_id"] == doc_id
    assert set(hits[0]["stage_scores"]) == {"dense"}
    asked = client.post("/v1/ask", json={"question": question}).json()
    assert fact in asked["answer"] and not asked["abstained"]
    assert set(asked["citations"][0]) == {"n", "doc_id", "chunk_id", "title", "quote",
                                          "char_start", "char_end", "verified", "locator"}
    assert asked["citations"][0]["locator"] is None and hits[0]["locator"] is None  # .txt
    prov = asked["provenance"]
    assert {"snapshot", "model", "retriever", "timings_ms", "passages",
            "dropped_citations"} <= set(prov)


@pytest.mark.parametrize(("method", "path", "kwargs", "status", "needle"), [
    ("post", "/v1/search", {"json": {"query": "   "}}, 422, "query"),
    ("post", "/v1/search", {"json": {"query": ""}}, 422, "query"),
    ("post", "/v1/search", {"json": {"query": "x", "k": 0}}, 422, "k"),
    ("post", "/v1/search", {"json": {"query": "x", "k": 51}}, 422, "k"),
    ("post", "/v1/search", {"json": {"query": "x", "retriever": "magic"}}, 422, "retriever"),
    ("post", "/v1/search", {"json": {"query": "x", "extra": 1}}, 422, "extra"),
    ("post", "/v1/search", {"json": {}}, 422, "query"),
    ("post", "/v1/search", {"content": b"{not json", "headers": {
        "content-type": "application/json"}}, 422, "JSON"),
    ("post", "/v1/ask", {"json": {"question": "q" * 2001}}, 422, "question"),
    ("post", "/v1/ask", {"json": {"question": "\n\t "}}, 422, "question"),
    ("post", "/v1/ask", {"json": {"question": "x" * 250_000}}, 413, "limit"),
    ("get", "/v1/documents/nope", {}, 404, "nope"),
    ("delete", "/v1/documents/nope", {}, 404, "nope"),
    ("post", "/v1/documents", {"files": {"file": ("a.exe", b"MZ")}}, 415, "a.exe"),
    ("post", "/v1/documents", {"files": {"file": ("a.txt", b"\xff\xfe\xfa")}}, 422, "UTF-8"),
    ("post", "/v1/documents", {"files": {"file": ("a.txt", b"x" * 150_000)}}, 413, "limit"),
    ("post", "/v1/documents", {"data": {"x": "1"}}, 422, "file"),
])
def test_bad_input_is_a_4xx_that_names_the_problem_and_changes_nothing(
        client: TestClient, method: str, path: str, kwargs: dict[str, object], status: int,
        needle: str) -> None:
    before = client.get("/readyz").json()["snapshot"]
    response = getattr(client, method)(path, **kwargs)
    assert response.status_code == status, response.text
    assert needle.lower() in response.json()["detail"].lower()
    assert client.get("/readyz").json()["snapshot"] == before


def test_documents_upload_ask_delete(client: TestClient) -> None:
    listed = client.get("/v1/documents").json()["documents"]
    assert {d["doc_id"] for d in listed} == {SEED_A, SEED_B}
    full = client.get(f"/v1/documents/{SEED_B}").json()
    assert full["text"].startswith("U.S. reluctance") and len(full["sha256"]) == 64

    question = "At what temperature is sourdough bread baked?"
    assert client.post("/v1/ask", json={"question": question}).json()["abstained"]
    body = (b"# Sourdough\n\nSourdough bread rises with a starter of wild yeast. "
            b"Bake sourdough bread at 250 degrees Celsius for forty minutes.\n")
    up = client.post("/v1/documents", files={"file": ("../secret/sourdough.md", body)})
    assert up.status_code == 201 and up.json()["doc_id"] == "sourdough"
    assert up.json()["status"] == "added" and up.json()["chunks"] == 1
    asked = client.post("/v1/ask", json={"question": question}).json()
    assert not asked["abstained"] and "250 degrees Celsius" in asked["answer"]
    assert asked["citations"][0]["doc_id"] == "sourdough"
    assert client.delete("/v1/documents/sourdough").json()["deleted"] is True
    assert client.post("/v1/ask", json={"question": question}).json()["abstained"]
    assert client.get("/v1/documents/sourdough").status_code == 404


def test_api_key_guards_v1_but_not_health(tmp_path: Path, seed_index: Path,
                                          embedder: SentenceTransformerEmbedder,
                                          scorer: EvidenceScorer) -> None:
    shutil.copytree(seed_index, tmp_path / "index")
    settings = Settings(index_dir=tmp_path / "index", api_key=SecretStr("s3cret"))
    with _client(settings, embedder, scorer) as c:
        wait_ready(c, wait=120)
        assert c.get("/healthz").status_code == 200
        for headers in ({}, {"Authorization": "Bearer wrong"}, {"Authorization": "s3cret"},
                        {"Authorization": "Basic s3cret"}):
            r = c.post("/v1/search", json={"query": "Japan"}, headers=headers)
            assert r.status_code == 401 and "API key" in r.json()["detail"]
            assert c.get("/v1/documents", headers=headers).status_code == 401
            assert c.delete(f"/v1/documents/{SEED_A}", headers=headers).status_code == 401
        good = {"Authorization": "Bearer s3cret"}
        assert c.post("/v1/search", json={"query": "Japan"}, headers=good).status_code == 200
        assert c.get(f"/v1/documents/{SEED_A}", headers=good).status_code == 200
        # Every operation the API publishes declares the key and refuses a request without it.
        spec = c.get("/openapi.json").json()
        assert spec["components"]["securitySchemes"]["HTTPBearer"]["scheme"] == "bearer"
        operations = [(path, method, op) for path, ops in spec["paths"].items()
                      for method, op in ops.items() if path.startswith("/v1/")]
        # Eight routes of a collection (/v1/sync too), on "default" and under
        # /v1/collections/{collection}; seven of collections and keys; the OpenAI-compatible
        # models and chat.
        assert len(operations) == 25
        for path, method, op in operations:
            assert op.get("security") == [{"HTTPBearer": []}], (method, path)
            url = path.replace("{doc_id}", SEED_A).replace("{collection}", "default") \
                .replace("{key_id}", "0123456789ab")
            assert c.request(method, url).status_code == 401, (method, path)
        assert c.get("/v1/documents", headers=good).json()["documents"]  # nothing was deleted


class _HeldPipeline(Pipeline):
    """The real pipeline, whose searches wait for ``release`` once they have started."""

    def __init__(self, settings: Settings, embedder: SentenceTransformerEmbedder) -> None:
        super().__init__(settings, embedder=embedder)
        self.started = 0
        self.release = threading.Event()

    def search(self, query: str, k: int = 5, retriever: RetrieverName | None = None,
               where: Filter | None = None) -> list[Hit]:
        self.started += 1
        assert self.release.wait(60)
        return super().search(query, k, retriever, where)


def test_searches_wait_in_their_own_lane_and_uploads_and_listings_pass(
        tmp_path: Path, seed_index: Path, embedder: SentenceTransformerEmbedder) -> None:
    shutil.copytree(seed_index, tmp_path / "index")
    settings = Settings(index_dir=tmp_path / "index", search_threads=1)
    pipeline = _HeldPipeline(settings, embedder)
    question, doc_id, _ = SEED_QUESTIONS[3]
    with TestClient(create_app(settings, pipeline), base_url="http://localhost") as c:
        wait_ready(c, wait=120)
        answers: list[httpx.Response] = []
        senders = [threading.Thread(target=lambda: answers.append(
            c.post("/v1/search", json={"query": question, "k": 1}))) for _ in range(2)]
        senders[0].start()
        deadline = time.monotonic() + 30
        while pipeline.started == 0 and time.monotonic() < deadline:
            time.sleep(0.01)
        senders[1].start()
        time.sleep(0.5)
        assert pipeline.started == 1  # the second search waits for the lane's one thread
        assert c.get("/v1/documents").status_code == 200  # the rest of the API still answers
        upload = c.post("/v1/documents", files={"file": ("extra.txt", b"Lanes keep order.")})
        assert upload.status_code == 201
        pipeline.release.set()
        for sender in senders:
            sender.join(60)
        assert pipeline.started == 2
        assert [a.status_code for a in answers] == [200, 200]
        assert all(a.json()["hits"][0]["doc_id"] == doc_id for a in answers)
        assert answers[0].headers["content-type"] == "application/json"


def test_without_a_key_openapi_declares_none(client: TestClient) -> None:
    spec = client.get("/openapi.json").json()
    assert "securitySchemes" not in spec.get("components", {})
    assert client.get("/v1/documents").status_code == 200


def test_method_not_allowed_lists_every_method_of_the_path(client: TestClient) -> None:
    r = client.put("/v1/documents")
    assert r.status_code == 405 and r.headers["allow"] == "GET, POST"
    r = client.post(f"/v1/documents/{SEED_A}")
    assert r.status_code == 405 and r.headers["allow"] == "DELETE, GET, PATCH"


def test_undecodable_bodies_are_documented_400s(client: TestClient) -> None:
    r = client.post("/v1/documents", content=b"--b\r\n-100--b--\r\n",
                    headers={"content-type": "multipart/form-data; boundary=b"})
    assert r.status_code == 400 and r.json()["detail"]
    spec = client.get("/openapi.json").json()
    for path, ops in spec["paths"].items():
        for op in ops.values():
            if path.startswith("/v1/"):
                assert {"400", "401", "422", "429"} <= set(op["responses"])


def test_rate_limit_per_client_is_off_by_default_and_429s_when_set(
        tmp_path: Path, seed_index: Path, embedder: SentenceTransformerEmbedder,
        scorer: EvidenceScorer, client: TestClient) -> None:
    for _ in range(30):  # the default: no limit
        assert client.get("/v1/documents").status_code == 200
    shutil.copytree(seed_index, tmp_path / "limited")
    settings = Settings(index_dir=tmp_path / "limited", rate_limit_per_minute=60,
                        rate_limit_burst=3)
    with _client(settings, embedder, scorer) as c:
        wait_ready(c, wait=120)
        assert [c.get("/v1/documents").status_code for _ in range(3)] == [200] * 3
        r = c.get("/v1/documents")
        assert r.status_code == 429 and r.headers["retry-after"] == "1"
        assert "60 requests a minute" in r.json()["detail"]
        assert c.get("/healthz").status_code == 200 and c.get("/readyz").status_code == 200
        time.sleep(1.05)  # one token back a second
        assert c.get("/v1/documents").status_code == 200
        assert c.get("/v1/documents").status_code == 429


def test_no_index_yet_then_first_upload_creates_it(tmp_path: Path,
                                                   embedder: SentenceTransformerEmbedder,
                                                   scorer: EvidenceScorer) -> None:
    settings = Settings(index_dir=tmp_path / "index")
    with _client(settings, embedder, scorer) as c:
        time.sleep(0.5)
        not_ready = c.get("/readyz")
        assert not_ready.status_code == 503 and "rag ingest" in not_ready.json()["status"]
        assert c.post("/v1/search", json={"query": "x"}).status_code == 503
        up = c.post("/v1/documents", files={"file": ("tea.txt", b"Green tea is steamed.")})
        assert up.status_code == 201
        assert c.get("/readyz").status_code == 200


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """`rag serve` as a real process on 127.0.0.1, over a freshly ingested copy of the seeds."""
    root = tmp_path_factory.mktemp("served")
    env = {**os.environ, "RAG_INDEX_DIR": str(root / "index")}
    subprocess.run([RAG, "ingest", str(SEEDS)], env=env, check=True, capture_output=True,
                   timeout=300)
    with serve_rag(env, wait=120) as served:
        yield served.base_url


def test_real_server_answers_with_verifiable_quotes(server: str) -> None:
    with httpx.Client(base_url=server, timeout=60) as http:
        for question, doc_id, fact in SEED_QUESTIONS:
            answer = http.post("/v1/ask", json={"question": question}).json()
            assert not answer["abstained"] and fact in answer["answer"], question
            assert any(c["doc_id"] == doc_id for c in answer["citations"])
            for c in answer["citations"]:
                text = http.get(f"/v1/documents/{c['doc_id']}").json()["text"]
                assert text[c["char_start"]:c["char_end"]] == c["quote"] and c["verified"]
        for question in OFF_TOPIC:
            answer = http.post("/v1/ask", json={"question": question}).json()
            assert answer["abstained"] and answer["citations"] == []


def test_real_server_upload_ask_delete(server: str) -> None:
    """Without the linear stage's gate this off-topic question is answered over the seeds
    alone, with a sentence about 5G (docs "Answers and abstention"): the upload is what
    brings the answer, and the delete takes it away."""
    question = "What makes oolong tea different from green tea?"
    body = b"Oolong tea is partly oxidised, while green tea is steamed to stop oxidation."
    with httpx.Client(base_url=server, timeout=60) as http:
        before = http.post("/v1/ask", json={"question": question}).json()
        assert "oxidised" not in before["answer"]
        up = http.post("/v1/documents", files={"file": ("oolong.txt", body)})
        assert up.status_code == 201
        answer = http.post("/v1/ask", json={"question": question}).json()
        assert "partly oxidised" in answer["answer"]
        assert answer["citations"][0]["doc_id"] == "oolong"
        assert http.delete("/v1/documents/oolong").status_code == 200
        after = http.post("/v1/ask", json={"question": question}).json()
        assert "oxidised" not in after["answer"]
        assert all(c["doc_id"] != "oolong" for c in after["citations"])
        assert http.get("/metrics").status_code == 200


def test_uploads_take_office_files_and_refuse_hostile_ones(client: TestClient) -> None:
    up = client.post("/v1/documents", files={"file": ("staff.xlsx", fc.xlsx_bytes())})
    assert up.status_code == 201 and up.json()["doc_id"] == "staff"
    hits = client.post("/v1/search", json={"query": "Alice Moreau city", "k": 1}).json()["hits"]
    assert hits[0]["doc_id"] == "staff" and "City: Lisbon" in hits[0]["text"]
    bomb = client.post("/v1/documents", files={"file": ("laughs.docx", fc.entity_bomb_docx())})
    assert bomb.status_code == 422 and "declares XML entities" in bomb.json()["detail"]
    fake = client.post("/v1/documents", files={"file": ("deck.pptx", b"GIF89a" * 9)})
    assert fake.status_code == 415 and "GIF image" in fake.json()["detail"]
    # An image's bytes are read as an image (with OCR), whatever the name says.
    broken = client.post("/v1/documents", files={"file": ("deck.pptx", b"\x89PNG\r\n\x1a\n" * 9)})
    assert broken.status_code == 422 and "not a readable image" in broken.json()["detail"]


def test_a_document_span_is_its_text_between_the_offsets(client: TestClient) -> None:
    whole = client.get(f"/v1/documents/{SEED_A}").json()
    assert whole["span"] is None
    part = client.get(f"/v1/documents/{SEED_A}?start=10&end=40").json()
    assert part["span"] == {"start": 10, "end": 40, "text": whole["text"][10:40]}
    for query in ("start=40&end=10", f"end={len(whole['text']) + 1}"):
        r = client.get(f"/v1/documents/{SEED_A}?{query}")
        assert r.status_code == 404 and "outside" in r.json()["detail"]
