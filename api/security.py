"""What a request must be to reach the app, and what every response carries.

- **Host** (DNS rebinding): a page on another site can point a domain name of its own at
  127.0.0.1 and then read this server as if it were its own origin. Every request must name
  a host this server answers to (``HostRule``): RAG_HOST, the address `rag serve --host`
  binds, the loopback names, RAG_PUBLIC_URL's host and RAG_ALLOWED_HOSTS; any other is a 421.
  Bound to every address (0.0.0.0, ::), clients may use any name of the machine, so the check
  is off there unless RAG_ALLOWED_HOSTS lists them (as the MCP SDK does; /mcp derives its own
  check from the same rule).
- **Cross-origin writes**: a page on another origin can POST a form to this server without a
  preflight (a "simple" request: the absence of CORS headers stops it from reading the
  answer, not from sending it). A browser always says where such a request comes from, so a
  request with a method other than GET, HEAD or OPTIONS is refused (403) when its
  ``Sec-Fetch-Site`` is ``cross-site`` or ``same-site``, or its ``Origin`` is not this
  server's (the Host it names, or RAG_PUBLIC_URL's); clients that send neither header (curl,
  the SDKs, `rag`) are not browsers and pass. The rule is Go's net/http
  CrossOriginProtection; Django's CsrfViewMiddleware checks Origin the same way.
- **Headers on every response**: no framing by any origin (``frame-ancestors 'none'``, merged
  into a page's own Content-Security-Policy, and ``X-Frame-Options: DENY`` for browsers
  without CSP), ``X-Content-Type-Options: nosniff``, ``Referrer-Policy: no-referrer``.

Error messages never name the server's folders (``scrub``): a client learns the index
folder's name, not where it is.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

from starlette.datastructures import Headers
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from api.limits import route_path
from rag.config import Settings

LOOPBACK = ("127.0.0.1", "localhost", "::1")
EVERY_ADDRESS = ("0.0.0.0", "::", "")
ANY_HOST = "*"
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
FRAME_ANCESTORS = "frame-ancestors 'none'"
HEADERS = ((b"x-frame-options", b"DENY"), (b"x-content-type-options", b"nosniff"),
           (b"referrer-policy", b"no-referrer"))


def _hostname(authority: str) -> str | None:
    """The host of "name", "name:port" or "[::1]:port", lowercased; None when unreadable."""
    try:
        return urlsplit(f"//{authority.strip()}").hostname
    except ValueError:
        return None


def _origin(url: str) -> str | None:
    """scheme://host[:port] of a URL, lowercased, or None when it has no host."""
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}".lower() if parts.scheme and parts.netloc else None


@dataclass(frozen=True, slots=True)
class HostRule:
    """The host names requests may name (None: any) and the origins trusted besides the
    request's own (RAG_PUBLIC_URL's, for a server behind a proxy that rewrites Host)."""

    names: frozenset[str] | None
    origins: frozenset[str]

    @classmethod
    def of(cls, settings: Settings, hosts: Iterable[str] = ()) -> HostRule:
        """From RAG_HOST, ``hosts`` (the addresses `rag serve --host` binds),
        RAG_PUBLIC_URL and RAG_ALLOWED_HOSTS."""
        bound = [settings.host, *hosts]
        listed = [h.strip().lower() for h in settings.allowed_hosts if h.strip()]
        public = _hostname(urlsplit(settings.public_url).netloc) if settings.public_url else None
        origins = frozenset(o for o in [_origin(settings.public_url or "")] if o)
        if ANY_HOST in listed or (not listed and any(h in EVERY_ADDRESS for h in bound)):
            return cls(None, origins)
        names = [_hostname(h) or h.strip("[]").lower() for h in bound if h not in EVERY_ADDRESS]
        return cls(frozenset([*names, *LOOPBACK, *listed, *([public] if public else [])]),
                   origins)

    def allows(self, host_header: str | None) -> bool:
        """Whether a request naming ``host_header`` (any port) is served; one naming none
        (HTTP/1.0) is not a browser's and is."""
        if self.names is None or host_header is None:
            return True
        return _hostname(host_header) in self.names

    def cross_origin(self, headers: Headers) -> str | None:
        """Why a state-changing request comes from another origin, or None when it does not
        (Go's CrossOriginProtection: Sec-Fetch-Site first, else Origin against Host)."""
        site, origin = headers.get("sec-fetch-site"), headers.get("origin")
        if origin is not None and origin.lower() in self.origins:
            return None
        if site is not None:
            if site in ("same-origin", "none"):
                return None
            return f"the browser says it comes from a {site} page ({origin or 'origin not sent'})"
        if origin is None:
            return None
        host = headers.get("host")
        if origin != "null" and host is not None and \
                urlsplit(origin).netloc.lower() == host.strip().lower():
            return None
        return f"it comes from a page on {origin[:100]}"


class RequestChecks:
    """The host and cross-origin checks, before any route runs (inside the metrics, so
    refusals are counted: route "unmatched", status 421 or 403)."""

    def __init__(self, app: ASGIApp, rule: HostRule) -> None:
        self.app = app
        self.rule = rule

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = Headers(scope=scope)
        host = headers.get("host")
        if not self.rule.allows(host):
            await _refuse(send, route_path(scope), 421,
                          f"this server does not answer to the host {(host or '')[:100]!r} "
                          "(Host header): add that name to RAG_ALLOWED_HOSTS on the server, "
                          "or use one it answers to")
            return
        if scope["method"] not in SAFE_METHODS:
            why = self.rule.cross_origin(headers)
            if why is not None:
                await _refuse(send, route_path(scope), 403,
                              f"cross-origin request refused: {why}, and only pages served by "
                              "this server may change it")
                return
        await self.app(scope, receive, send)


class SecurityHeaders:
    """The headers every response carries, whichever layer answered (the outermost)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                message["headers"] = _with_security_headers(list(message.get("headers", [])))
            await send(message)

        await self.app(scope, receive, send_with_headers)


def _with_security_headers(headers: list[tuple[bytes, bytes]]) -> list[tuple[bytes, bytes]]:
    names = {name.lower() for name, _ in headers}
    out = [(name, value) for name, value in headers
           if name.lower() != b"content-security-policy"]
    policies = [value.decode("latin-1") for name, value in headers
                if name.lower() == b"content-security-policy"]
    policy = "; ".join(p.strip().rstrip(";") for p in policies if p.strip())
    if "frame-ancestors" not in policy:
        policy = f"{policy}; {FRAME_ANCESTORS}" if policy else FRAME_ANCESTORS
    out.append((b"content-security-policy", policy.encode("latin-1")))
    out.extend((name, value) for name, value in HEADERS if name not in names)
    return out


async def _refuse(send: Send, path: str, status: int, message: str) -> None:
    from api.limits import error_json

    body = error_json(path, status, message)
    await send({"type": "http.response.start", "status": status,
                "headers": [(b"content-type", b"application/json"),
                            (b"content-length", str(len(body)).encode())]})
    await send({"type": "http.response.body", "body": body})


def public_url(settings: Settings, hosts: Iterable[str] = ()) -> str:
    """The base of the URLs the server writes into responses: RAG_PUBLIC_URL, else the bound
    address (127.0.0.1 for every address) and RAG_PORT; never a request's Host header."""
    if settings.public_url:
        return settings.public_url
    host = next(iter(hosts), settings.host)
    host = "127.0.0.1" if host in EVERY_ADDRESS else host
    host = f"[{host}]" if ":" in host and not host.startswith("[") else host
    return f"http://{host}:{settings.port}"


def root_path(settings: Settings) -> str:
    """The path prefix a reverse proxy serves us under: RAG_PUBLIC_URL's path ("/rag" for
    https://example.com/rag), "" without one."""
    return urlsplit(settings.public_url).path.rstrip("/") if settings.public_url else ""


def scrub(message: str, settings: Settings) -> str:
    """``message`` with the server's configured folders cut to their names."""
    folders = [settings.index_dir, settings.onnx_dir, settings.model_path,
               settings.evidence_model, settings.reranker_model, *settings.watch]
    for folder in (Path(f) for f in folders if f is not None):
        for spelled in sorted({str(folder.resolve()), str(folder.absolute())}, key=len,
                              reverse=True):
            message = message.replace(spelled, folder.name or "the index folder")
    return message
