"""The MCP server through the SDK's own client: in process (in-memory transport) and `rag mcp`
over stdio."""

from __future__ import annotations

import os
from collections.abc import Awaitable, Callable
from contextlib import AbstractAsyncContextManager
from pathlib import Path
from typing import Any

import anyio
import pytest
from mcp import Client, StdioServerParameters, stdio_client
from mcp.server import MCPServer
from mcp_types import CallToolResult

from api.mcp import create_server
from eval.harness import RAG
from rag.pipeline import Pipeline
from tests.seed_facts import SEED_A, SEED_B, SEED_QUESTIONS, holds

TOOLS = {"search", "ask", "get_document", "list_documents"}


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
    return create_server(lambda: seed_pipeline, anyio.CapacityLimiter(2))


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
