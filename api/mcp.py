"""The MCP server (official ``mcp`` SDK): search, ask, get_document and list_documents as tools.

``rag mcp`` serves it over stdio (``run_stdio``); ``create_app`` routes ``/mcp`` to it over
streamable HTTP behind the API key (``HttpEndpoint``). Library errors come back as tool errors
(``isError`` with the message), never as a crash.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from typing import Annotated, TypeVar

import anyio
import anyio.to_thread
from fastapi.responses import JSONResponse
from mcp.server import MCPServer
from mcp.server.mcpserver.exceptions import ToolError
from mcp.server.streamable_http_manager import StreamableHTTPSessionManager
from mcp.server.transport_security import TransportSecuritySettings
from pydantic import BaseModel, Field
from starlette.datastructures import Headers, State
from starlette.routing import Route
from starlette.types import Receive, Scope, Send

from api.deps import KEY_MISSING, STARTING, key_ok
from api.schemas import CitationOut, DocumentList, SearchResponse
from api.security import HostRule, scrub
from rag import __version__
from rag.config import DEFAULT_K, MAX_K, MAX_QUESTION_CHARS, AnswerMode, RetrieverName, Settings
from rag.errors import NoIndexError, RagError
from rag.pipeline import Pipeline

log = logging.getLogger("rag.mcp")
T = TypeVar("T")

INSTRUCTIONS = ("Answers from the user's indexed documents. `ask` returns an answer whose every "
                "sentence cites a quote with its exact span in the stored text (`get_document` "
                "with start/end returns that span), or abstains when the documents don't say.")


class AskResult(BaseModel):
    question: str
    answer: str
    citations: list[CitationOut]
    abstained: bool
    mode: str


class DocumentText(BaseModel):
    doc_id: str
    title: str
    source: str
    sha256: str
    text: str = Field(description="the stored text, or its [char_start:char_end] slice")
    char_start: int
    char_end: int
    length: int = Field(description="characters in the whole stored text")


Query = Annotated[str, Field(min_length=1, max_length=MAX_QUESTION_CHARS)]
K = Annotated[int, Field(ge=1, le=MAX_K, description="passages to retrieve")]
Offset = Annotated[int | None, Field(ge=0, description="a character offset into the stored text")]


Lifespan = Callable[[MCPServer], AbstractAsyncContextManager[None]]


def create_server(pipeline: Callable[[], Pipeline], lane: anyio.CapacityLimiter,
                  lifespan: Lifespan | None = None,
                  tell: Callable[[str], str] = lambda message: message) -> MCPServer:
    """The tools over ``pipeline()``; their blocking work runs in ``lane``'s threads. A
    library error becomes a tool error whose text is ``tell(message)``."""
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    server: MCPServer = MCPServer("rag", version=__version__, instructions=INSTRUCTIONS,
                                  lifespan=lifespan)
    # The SDK's constructor calls logging.basicConfig (a rich handler on the root logger):
    # logging is the application's to configure, so undo it.
    for handler in root.handlers[len(handlers):]:
        root.removeHandler(handler)
    root.setLevel(level)

    async def run(work: Callable[[Pipeline], T]) -> T:
        def call() -> T:
            try:
                return work(pipeline())
            except RagError as exc:
                raise ToolError(tell(str(exc))) from exc

        return await anyio.to_thread.run_sync(call, limiter=lane)

    @server.tool()
    async def search(query: Query, k: K = DEFAULT_K,
                     retriever: RetrieverName | None = None) -> SearchResponse:
        """Ranked passages for the query, each with its document and character span."""
        hits = await run(lambda p: p.search(query, k, retriever))
        return SearchResponse.model_validate({"query": query, "hits": [h.as_dict() for h in hits]})

    @server.tool()
    async def ask(question: Query, k: K = DEFAULT_K, mode: AnswerMode | None = None,
                  retriever: RetrieverName | None = None) -> AskResult:
        """A short answer whose every sentence cites a verified quote (doc_id, char_start,
        char_end), or an abstention. mode: extractive (quotes) or generative (needs an LLM
        configured with RAG_LLM_BASE_URL); default: generative when one is configured."""
        answer = await run(lambda p: p.ask(question, k, retriever, mode))
        return AskResult.model_validate({**answer.as_dict(), "mode": answer.provenance.mode})

    @server.tool()
    async def get_document(doc_id: str, start: Offset = None, end: Offset = None) -> DocumentText:
        """The stored text of a document (what every citation offset points into), or its
        [start:end] slice."""
        doc = await run(lambda p: p.document(doc_id))
        n = len(doc.text)
        lo, hi = 0 if start is None else start, n if end is None else end
        if not lo <= hi <= n:
            raise ToolError(f"bad range [{lo}:{hi}] for {doc_id!r}: need 0 <= start <= end <= "
                            f"{n}, the document's length")
        return DocumentText(doc_id=doc.doc_id, title=doc.title, source=doc.source,
                            sha256=doc.sha256, text=doc.text[lo:hi], char_start=lo, char_end=hi,
                            length=n)

    @server.tool()
    async def list_documents() -> DocumentList:
        """The indexed documents: doc_id, title, source, sha256, characters and chunks."""
        return DocumentList.model_validate({"documents": await run(lambda p: p.documents())})

    return server


def run_stdio(settings: Settings) -> None:
    """Serve over stdin/stdout until the client leaves; the SDK points fd 1 at stderr meanwhile,
    so nothing but protocol reaches stdout. The model and index load in the background."""
    pipeline = Pipeline(settings)

    def load() -> None:
        try:
            pipeline.load()
        except NoIndexError as exc:
            log.warning("%s", exc)
        except Exception:  # the tools report it when they call the pipeline
            log.exception("loading the model and index failed")

    @asynccontextmanager
    async def lifespan(_: MCPServer) -> AsyncIterator[None]:
        threading.Thread(target=load, name="rag-loader", daemon=True).start()
        yield

    create_server(lambda: pipeline, anyio.CapacityLimiter(settings.search_threads),
                  lifespan).run("stdio")


def transport_security(rule: HostRule) -> TransportSecuritySettings:
    """The SDK's own DNS-rebinding check (Host and Origin headers, every method) from the
    app's host rule (api.security, which checks every route first): its names, any port.
    Where the rule allows any host (bound to every address), it is off, as in the SDK."""
    if rule.names is None:
        return TransportSecuritySettings(enable_dns_rebinding_protection=False)
    names = [f"[{h}]" if ":" in h else h for h in sorted(rule.names)]
    return TransportSecuritySettings(
        allowed_hosts=[f"{n}{port}" for n in names for port in ("", ":*")],
        allowed_origins=[f"{scheme}://{n}{port}" for n in names for scheme in ("http", "https")
                         for port in ("", ":*")] + sorted(rule.origins))


class HttpEndpoint:
    """``/mcp`` (``route``): the API key as on /v1, then the SDK's streamable-HTTP session
    manager, which ``running`` starts and stops inside the app's lifespan."""

    def __init__(self, settings: Settings, rule: HostRule, path: str = "/mcp") -> None:
        self.settings = settings
        self.security = transport_security(rule)
        self.route = Route(path, self)  # every method: the transport answers POST, GET, DELETE
        self._sessions: StreamableHTTPSessionManager | None = None

    @asynccontextmanager
    async def running(self, state: State) -> AsyncIterator[None]:
        def ready() -> Pipeline:
            if not state.ready.is_set():
                failed = state.load_error
                raise ToolError(f"start-up failed: {failed}" if failed else STARTING)
            pipeline: Pipeline = state.pipeline
            return pipeline

        server = create_server(ready, state.search_lane,
                               tell=lambda message: scrub(message, self.settings))
        # Builds server.session_manager; its Starlette app is unused: /mcp is a route of ours.
        server.streamable_http_app(transport_security=self.security)
        async with server.session_manager.run():
            self._sessions = server.session_manager
            try:
                yield
            finally:
                self._sessions = None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        scope["route"] = self.route  # a plain Route does not record itself; metrics label by it
        scheme, _, token = Headers(scope=scope).get("authorization", "").partition(" ")
        if not key_ok(self.settings, token if scheme.lower() == "bearer" else None):
            await _error(401, KEY_MISSING, {"WWW-Authenticate": "Bearer"})(scope, receive, send)
        elif self._sessions is None:
            await _error(503, STARTING, {})(scope, receive, send)
        else:
            await self._sessions.handle_request(scope, receive, send)


def _error(status: int, detail: str, headers: dict[str, str]) -> JSONResponse:
    return JSONResponse({"detail": detail}, status_code=status, headers=headers)
