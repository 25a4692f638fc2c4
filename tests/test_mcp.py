"""The MCP server through the SDK's own client: in process (in-memory transport), `rag mcp`
over stdio, and `rag serve`'s /mcp over streamable HTTP with the API key and the host check."""

from __future__ import annotations

import os
import subprocess
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from pathlib import Path
from typing import Any

import anyio
import httpx
import httpx2
import pytest
from fastapi.testclient import TestClient
from mcp import Client, MCPError, StdioServerParameters, stdio_client
from mcp.client.streamable_http import streamable_http_client
from mcp.server import MCPServer
from mcp_types import CallToolResult

from api import create_app
from api.mcp import create_server
from eval.harness import RAG, serve_rag
from rag.config import Settings
from rag.embedding import SentenceTransformerEmbedder
from rag.pipeline import Pipeline
from rag.pipelines import Pipelines
from rag.scorer import EvidenceScorer
from tests.seed_facts import SEED_A, SEED_B, SEED_QUESTIONS, SEEDS, holds

TOOLS = {"search", "ask", "get_document", "list_documents", "list_collections"}
KEY = "s3cret"
RAG_HOST = "rag.example.internal"  # a name the server is reached by, not loopback


def structured(result: CallToolResult) -> dict[str, Any]:
    assert not result.is_error, result.content
    assert result.structured_content is not None
    return result.structured_content


def error(result: CallToolResult) -> str:
    """The message of a tool error: an isError result, not a protocol error or a crash."""
    assert result.is_error and result.structured_content is None
    text: str = result.content[0].text  # type: ignore[union-attr]
    return text


async def check_tools(client: Client) -> None:
    """The schemas a client sees, and one question answered with spans that check out."""
    tools = {t.name: t for t in (await client.list_tools()).tools}
    assert set(tools) == TOOLS
    ask = tools["ask"]
    assert ask.input_schema["required"] == ["question"]
    k = ask.input_schema["properties"]["k"]
    assert (k["minimum"], k["maximum"], k["default"]) == (1, 50, 5)
    modes = ask.input_schema["properties"]["mode"]["anyOf"][0]["enum"]
    assert modes == ["extractive", "generative"]
    assert ask.output_schema is not None
    assert set(ask.output_schema["required"]) == {"question", "answer", "citations",
                                                  "abstained", "mode"}
    citation = ask.output_schema["$defs"]["CitationOut"]["properties"]
    assert {"doc_id", "chunk_id", "title", "quote", "char_start", "char_end",
            "verified"} <= set(citation)
    assert tools["get_document"].input_schema["required"] == ["doc_id"]
    for name in TOOLS:
        assert tools[name].output_schema is not None, name
        assert tools[name].description, name

    question, doc_id, fact = SEED_QUESTIONS[6]
    answer = structured(await client.call_tool("ask", {"question": question, "k": 3}))
    assert holds(fact, answer["answer"]) and not answer["abstained"]
    assert answer["mode"] == "extractive"
    assert any(c["doc_id"] == doc_id for c in answer["citations"])
    for c in answer["citations"]:
        span = structured(await client.call_tool("get_document", {
            "doc_id": c["doc_id"], "start": c["char_start"], "end": c["char_end"]}))
        assert span["text"] == c["quote"] and c["verified"]


def run(client: Callable[[], AbstractAsyncContextManager[Client]],
        check: Callable[[Client], Awaitable[None]]) -> None:
    async def main() -> None:
        async with client() as connected:
            await check(connected)

    anyio.run(main)


@pytest.fixture
def server(seed_pipeline: Pipeline) -> MCPServer:
    served = Pipelines(seed_pipeline)
    return create_server(lambda: served, anyio.CapacityLimiter(2))


def test_in_process_tools_schemas_and_cited_answers(server: MCPServer) -> None:
    run(lambda: Client(server, mode="legacy"), check_tools)  # the in-memory transport


def test_in_process_every_seed_question(server: MCPServer) -> None:
    async def check(client: Client) -> None:
        docs = structured(await client.call_tool("list_documents"))["documents"]
        texts = {}
        for d in docs:
            whole = structured(await client.call_tool("get_document", {"doc_id": d["doc_id"]}))
            assert whole["length"] == d["chars"] == len(whole["text"])
            assert (whole["char_start"], whole["char_end"]) == (0, d["chars"])
            texts[d["doc_id"]] = whole["text"]
        assert set(texts) == {SEED_A, SEED_B}
        for question, doc_id, fact in SEED_QUESTIONS:
            found = structured(await client.call_tool("search", {"query": question, "k": 3}))
            assert found["hits"][0]["doc_id"] == doc_id, question
            hit = found["hits"][0]
            assert texts[doc_id][hit["char_start"]:hit["char_end"]] == hit["text"]
            answer = structured(await client.call_tool("ask", {"question": question}))
            assert holds(fact, answer["answer"]), question
            for c in answer["citations"]:
                assert texts[c["doc_id"]][c["char_start"]:c["char_end"]] == c["quote"]

    run(lambda: Client(server), check)  # the SDK's default: dispatched directly in process


def test_in_process_errors_are_tool_errors(server: MCPServer) -> None:
    async def check(client: Client) -> None:
        async def fails(tool: str, args: dict[str, Any], *needles: str) -> None:
            message = error(await client.call_tool(tool, args))
            assert message.startswith(f"Error executing tool {tool}: "), message
            for needle in needles:
                assert needle in message, (tool, args, message)

        await fails("get_document", {"doc_id": "nope"}, "no document with doc_id 'nope'")
        length = len(structured(await client.call_tool(
            "get_document", {"doc_id": SEED_A}))["text"])
        for start, end in ((10, 5), (0, length + 1), (length + 1, None)):
            await fails("get_document", {"doc_id": SEED_A, "start": start, "end": end},
                        "bad range", f"need 0 <= start <= end <= {length}")
        await fails("get_document", {"doc_id": SEED_A, "start": -1}, "start",
                    "greater than or equal to 0")
        await fails("ask", {"question": "Japan?", "k": 0}, "k", "greater than or equal to 1")
        await fails("ask", {"question": "Japan?", "k": 51}, "k", "less than or equal to 50")
        await fails("ask", {"question": ""}, "question", "at least 1 character")
        await fails("ask", {"question": "   "}, "empty question")
        await fails("ask", {}, "question", "Field required")
        await fails("ask", {"question": "Japan?", "mode": "generative"}, "RAG_LLM_BASE_URL")
        await fails("ask", {"question": "Japan?", "mode": "poetic"}, "mode")
        await fails("search", {"query": "Japan", "retriever": "magic"}, "retriever")
        await fails("search", {"query": "x" * 2001}, "query", "at most 2000 characters")
        assert error(await client.call_tool("nope", {})) == "Unknown tool: nope"
        # The server is still there after every error.
        assert structured(await client.call_tool("search", {"query": "Japan", "k": 1}))["hits"]

    run(lambda: Client(server, mode="legacy"), check)


def test_stdio_rag_mcp(seed_index: Path, tmp_path: Path) -> None:
    """`rag --index DIR mcp` as a subprocess, as a desktop agent starts it."""
    errlog = tmp_path / "stderr.txt"
    params = StdioServerParameters(command=RAG, args=["--index", str(seed_index), "mcp"],
                                   env={**os.environ, "HF_HUB_OFFLINE": "1"})

    async def check(client: Client) -> None:
        await check_tools(client)
        message = error(await client.call_tool("get_document", {"doc_id": SEED_B, "end": 10**6}))
        assert "bad range" in message

    with errlog.open("w") as stderr:
        run(lambda: Client(stdio_client(params, errlog=stderr)), check)


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """`rag serve` on 127.0.0.1 with an API key and RAG_HOST naming another host."""
    root = tmp_path_factory.mktemp("served-mcp")
    env = {**os.environ, "RAG_INDEX_DIR": str(root / "index"), "RAG_API_KEY": KEY,
           "RAG_HOST": RAG_HOST, "HF_HUB_OFFLINE": "1"}
    subprocess.run([RAG, "ingest", str(SEEDS)], env=env, check=True, capture_output=True,
                   timeout=300)
    with serve_rag(env, wait=120) as server:
        yield server.base_url


@asynccontextmanager
async def http_client(base_url: str, headers: dict[str, str],
                      mode: str = "auto") -> AsyncIterator[Client]:
    """The SDK's streamable-HTTP client, its HTTP client carrying ``headers``."""
    async with httpx2.AsyncClient(headers=headers, timeout=60) as http, \
            Client(streamable_http_client(f"{base_url}/mcp", http_client=http), mode=mode) as c:
        yield c


INITIALIZE = {"jsonrpc": "2.0", "id": 1, "method": "initialize",
              "params": {"protocolVersion": "2025-11-25", "capabilities": {},
                         "clientInfo": {"name": "test", "version": "0"}}}
ACCEPT = {"Accept": "application/json, text/event-stream"}


def test_http_needs_the_api_key(served: str) -> None:
    with httpx.Client(base_url=served, timeout=30) as http:
        for headers in ({}, {"Authorization": "Bearer wrong"}, {"Authorization": KEY},
                        {"Authorization": f"Basic {KEY}"}):
            r = http.post("/mcp", json=INITIALIZE, headers={**ACCEPT, **headers})
            assert r.status_code == 401 and "API key" in r.json()["detail"], headers
            assert r.headers["WWW-Authenticate"] == "Bearer"
        ok = http.post("/mcp", json=INITIALIZE,
                       headers={**ACCEPT, "Authorization": f"Bearer {KEY}"})
        assert ok.status_code == 200, ok.text
        metrics = http.get("/metrics", headers={"Authorization": f"Bearer {KEY}"}).text
        assert 'rag_http_requests_total{method="POST",route="/mcp",status="401"} 4.0' in metrics

    # The SDK's client without the key: the connection fails (its error does not carry the
    # status: "Server returned an error response").
    with pytest.raises(BaseExceptionGroup) as refused:
        run(lambda: http_client(served, {}), check_tools)
    assert refused.value.subgroup(MCPError) is not None


@pytest.mark.parametrize("mode", ["auto", "legacy"])
def test_http_with_the_key(served: str, mode: str) -> None:
    """The SDK's streamable-HTTP client; legacy is the initialize handshake with a session."""
    run(lambda: http_client(served, {"Authorization": f"Bearer {KEY}"}, mode), check_tools)


def test_http_host_check_accepts_rag_host_only(served: str) -> None:
    port = served.rsplit(":", 1)[1]
    key = {"Authorization": f"Bearer {KEY}"}
    run(lambda: http_client(served, {**key, "Host": f"{RAG_HOST}:{port}"}), check_tools)
    with httpx.Client(base_url=served, timeout=30) as http:
        for host in (RAG_HOST, f"{RAG_HOST}:{port}", f"localhost:{port}", f"127.0.0.1:{port}"):
            r = http.post("/mcp", json=INITIALIZE, headers={**ACCEPT, **key, "Host": host})
            assert r.status_code == 200, (host, r.text)
        for host in (f"evil.example:{port}", f"{RAG_HOST}.evil.example:{port}"):
            r = http.post("/mcp", json=INITIALIZE, headers={**ACCEPT, **key, "Host": host})
            assert r.status_code == 421 and "does not answer to the host" in r.text, host
        r = http.post("/mcp", json=INITIALIZE,
                      headers={**ACCEPT, **key, "Origin": "http://evil.example"})
        assert r.status_code == 403
        # The rest of the API is unchanged.
        assert http.post("/v1/search", json={"query": "Japan"}, headers=key).status_code == 200


@pytest.mark.parametrize(("bind", "allowed", "refused"), [
    ("10.1.2.3", ["10.1.2.3:8000", "10.1.2.3", "localhost:8000", "[::1]:8000"],
     ["evil.example:8000", "10.1.2.4:8000"]),
    ("::1", ["[::1]:8000", "127.0.0.1:8000"], ["evil.example:8000"]),
    ("0.0.0.0", ["192.168.1.5:8000", "any.name.example"], []),  # every address: check off
])
def test_app_host_check_follows_the_bind_address(tmp_path: Path, seed_index: Path,
                                                 embedder: SentenceTransformerEmbedder,
                                                 scorer: EvidenceScorer, bind: str,
                                                 allowed: list[str], refused: list[str]) -> None:
    """`rag serve --host ADDRESS` passes its address to create_app (hosts=), besides RAG_HOST."""
    settings = Settings(index_dir=seed_index)
    app = create_app(settings, Pipeline(settings, embedder=embedder, scorer=scorer),
                     hosts=[bind])
    with TestClient(app) as http:
        for host in allowed:
            r = http.post("/mcp", json=INITIALIZE, headers={**ACCEPT, "Host": host})
            assert r.status_code == 200 and '"serverInfo"' in r.text, (host, r.text)
        for host in refused:
            r = http.post("/mcp", json=INITIALIZE, headers={**ACCEPT, "Host": host})
            assert r.status_code == 421, (host, r.text)
