"""The OpenAI-compatible chat endpoint, driven by the real `openai` SDK against a real
`rag serve` on 127.0.0.1 over the seeds."""

from __future__ import annotations

import json
import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

import httpx
import openai
import pytest
from fastapi.testclient import TestClient

from api.app import create_app
from eval.harness import RAG, serve_rag
from rag.answer import ABSTENTION
from rag.config import Settings
from tests.seed_facts import OFF_TOPIC, SEED_QUESTIONS, SEEDS

KEY = "chat-test-key"


@pytest.fixture(scope="module")
def index(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("chat") / "index"
    subprocess.run([RAG, "ingest", str(SEEDS)], env={**os.environ, "RAG_INDEX_DIR": str(root)},
                   check=True, capture_output=True, timeout=300)
    return root


@pytest.fixture(scope="module")
def keyed(index: Path) -> Iterator[str]:
    """A server that requires an API key and streams Open WebUI's source events."""
    with serve_rag({"RAG_INDEX_DIR": str(index), "RAG_API_KEY": KEY,
                    "RAG_OPENAI_CITATIONS": "openwebui"}, wait=120) as served:
        yield served.base_url


@pytest.fixture(scope="module")
def open_server(index: Path) -> Iterator[str]:
    with serve_rag({"RAG_INDEX_DIR": str(index)}, wait=120) as served:
        yield served.base_url


def _client(base: str, key: str = "unused") -> openai.OpenAI:
    return openai.OpenAI(base_url=f"{base}/v1", api_key=key, max_retries=0, timeout=120)


def _check_annotations(content: str, notes: list[dict[str, object]], http: httpx.Client,
                       quotes: dict[int, str]) -> None:
    assert notes, content
    for note in notes:
        cited = note["url_citation"]
        assert isinstance(cited, dict) and note["type"] == "url_citation"
        marker = content[cited["start_index"]:cited["end_index"]]
        assert marker.startswith("[") and marker.endswith("]")
        span = http.get(cited["url"]).json()["span"]
        assert span["text"] == quotes[int(marker[1:-1])]


def test_models_and_an_answer_with_readable_citations(open_server: str) -> None:
    client = _client(open_server)
    assert [m.id for m in client.models.list()] == ["rag-extractive"]
    with httpx.Client(timeout=60) as http:
        for question, doc_id, fact in SEED_QUESTIONS[:4]:
            r = client.chat.completions.create(
                model="rag-extractive", messages=[
                    {"role": "system", "content": "You are helpful."},
                    {"role": "user", "content": "Something earlier."},
                    {"role": "assistant", "content": "An earlier answer."},
                    {"role": "user", "content": question}])
            message = r.choices[0].message
            assert r.choices[0].finish_reason == "stop" and fact in (message.content or "")
            rag = (r.model_extra or {})["rag"]
            assert rag["question"] == question and rag["answer"] == message.content
            assert any(c["doc_id"] == doc_id for c in rag["citations"])
            quotes = {c["n"]: c["quote"] for c in rag["citations"]}
            _check_annotations(message.content or "",
                               [a.model_dump() for a in message.annotations or []], http, quotes)


def test_streaming_sends_chunks_with_annotations_then_done(open_server: str) -> None:
    client = _client(open_server)
    question, _, fact = SEED_QUESTIONS[5]
    content, notes, finish, rag = "", [], None, None
    for chunk in client.chat.completions.create(
            model="rag-extractive", messages=[{"role": "user", "content": question}],
            stream=True):
        assert chunk.object == "chat.completion.chunk"
        delta = chunk.choices[0].delta
        content += delta.content or ""
        notes += (delta.model_extra or {}).get("annotations") or []
        finish = chunk.choices[0].finish_reason or finish
        rag = (chunk.model_extra or {}).get("rag") or rag
    assert finish == "stop" and rag is not None and fact in content
    assert content == rag["answer"]
    with httpx.Client(timeout=60) as http:
        _check_annotations(content, notes, http, {c["n"]: c["quote"] for c in rag["citations"]})


def test_an_abstention_is_a_normal_message(open_server: str) -> None:
    r = _client(open_server).chat.completions.create(
        model="rag-extractive", messages=[{"role": "user", "content": OFF_TOPIC[0]}])
    assert r.choices[0].message.content == ABSTENTION
    assert not r.choices[0].message.annotations
    assert (r.model_extra or {})["rag"]["abstained"] is True


@pytest.mark.parametrize(("kwargs", "error", "status", "needle"), [
    ({"model": "gpt-4o", "messages": [{"role": "user", "content": "hi"}]},
     openai.NotFoundError, 404, "does not exist"),
    ({"model": "rag-generative", "messages": [{"role": "user", "content": "hi"}]},
     openai.NotFoundError, 404, "rag-extractive"),
    ({"model": "rag-extractive", "messages": [{"role": "system", "content": "x"}]},
     openai.BadRequestError, 400, "no user message"),
    ({"model": "rag-extractive", "messages": [{"role": "user", "content": "   "}]},
     openai.BadRequestError, 400, "empty"),
    ({"model": "rag-extractive", "messages": []}, openai.BadRequestError, 400, "messages"),
])
def test_bad_input_gets_an_openai_error(open_server: str, kwargs: dict[str, object],
                                        error: type[openai.APIStatusError], status: int,
                                        needle: str) -> None:
    with pytest.raises(error) as caught:
        _client(open_server).chat.completions.create(**kwargs)  # type: ignore[call-overload]
    assert caught.value.status_code == status
    body = caught.value.body
    assert isinstance(body, dict) and set(body) == {"message", "type", "code"}
    assert needle in str(body["message"])


def test_the_api_key_applies_and_open_webui_gets_source_events(keyed: str) -> None:
    with pytest.raises(openai.AuthenticationError) as caught:
        _client(keyed, "wrong").models.list()
    assert caught.value.status_code == 401 and caught.value.body["code"] == "invalid_api_key"
    client = _client(keyed, KEY)
    assert [m.id for m in client.models.list()] == ["rag-extractive"]
    question, _, fact = SEED_QUESTIONS[0]
    with httpx.stream("POST", f"{keyed}/v1/chat/completions", timeout=120,
                      headers={"Authorization": f"Bearer {KEY}"},
                      json={"model": "rag-extractive", "stream": True,
                            "messages": [{"role": "user", "content": question}]}) as r:
        frames = [line[len("data: "):] for line in r.iter_lines() if line.startswith("data: ")]
    assert frames[-1] == "[DONE]"
    chunks = [json.loads(f) for f in frames[:-1]]
    sources = [c["event"] for c in chunks if "event" in c]
    assert all("annotations" not in c["choices"][0]["delta"] for c in chunks)  # never both
    rag = chunks[-1]["rag"]
    assert fact in "".join(c["choices"][0]["delta"].get("content", "") for c in chunks)
    assert len(sources) == len(rag["citations"])
    for event, citation in zip(sources, rag["citations"], strict=True):
        assert event["type"] == "source" and event["data"]["document"] == [citation["quote"]]
        meta = event["data"]["metadata"][0]
        assert (meta["char_start"], meta["char_end"]) == (citation["char_start"],
                                                         citation["char_end"])


def test_the_rate_limit_applies_with_an_openai_error(index: Path) -> None:
    app = create_app(Settings(index_dir=index, rate_limit_per_minute=1, rate_limit_burst=1))
    with TestClient(app, base_url="http://localhost") as client:
        assert client.get("/v1/models").status_code in (200, 503)
        limited = client.get("/v1/models")
        assert limited.status_code == 429 and "retry-after" in limited.headers
        assert limited.json()["error"]["type"] == "rate_limit_error"
        assert client.post("/mcp", json={}).status_code == 429  # MCP shares the client's bucket
