"""Limits enforced before a request reaches a route: body size and per-client rate; and the
uploads the API indexes at once."""

from __future__ import annotations

import json
import math
import threading
import time

from starlette.types import ASGIApp, Message, Receive, Scope, Send


def route_path(scope: Scope) -> str:
    """The path our routes see: under a proxy's prefix (uvicorn's --root-path), the request's
    path without it, as Starlette's router matches it."""
    path: str = scope["path"]
    root: str = scope.get("root_path", "")
    return path[len(root):] if root and path.startswith(root) else path


def error_json(path: str, status: int, message: str) -> bytes:
    """Our {"detail"} body, or OpenAI's error shape on the OpenAI-compatible paths."""
    from api.openai_compat import PATHS, error_body

    body = error_body(status, message) if path in PATHS else {"detail": message}
    return json.dumps(body).encode()


class BodyTooLarge(Exception):
    pass


class BodyLimitMiddleware:
    """413 for a declared or streamed body over ``max_bytes``; nothing is processed."""

    def __init__(self, app: ASGIApp, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def _reject(self, send: Send, path: str = "") -> None:
        body = error_json(path, 413, f"request body over the limit of {self.max_bytes} bytes")
        await send({"type": "http.response.start", "status": 413,
                    "headers": [(b"content-type", b"application/json")]})
        await send({"type": "http.response.body", "body": body})

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        for name, value in scope["headers"]:
            if name == b"content-length":
                try:
                    declared = int(value)
                except ValueError:
                    declared = -1
                if declared > self.max_bytes or declared < 0:
                    await self._reject(send, route_path(scope))
                    return
        received = 0
        started = False

        async def counting_receive() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.max_bytes:
                    raise BodyTooLarge
            return message

        async def tracking_send(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, counting_receive, tracking_send)
        except BodyTooLarge:
            if not started:
                await self._reject(send, route_path(scope))


class RateLimitMiddleware:
    """Per-client token bucket on /v1 and /mcp: ``per_minute`` sustained, ``burst`` at once;
    429 beyond.

    Clients are told by address (the one uvicorn sees: behind a proxy, run uvicorn with
    --forwarded-allow-ips). Buckets of idle clients are dropped so the table cannot grow
    without bound.
    """

    def __init__(self, app: ASGIApp, per_minute: int, burst: int,
                 prefixes: tuple[str, ...] = ("/v1", "/mcp")) -> None:
        self.app = app
        self.rate = per_minute / 60.0
        self.burst = float(burst)
        self.prefixes = prefixes
        self.buckets: dict[str, tuple[float, float]] = {}  # client -> (tokens, at)
        self._lock = threading.Lock()
        self._swept = time.monotonic()

    def _take(self, client: str) -> float:
        """0 when the request may go, else the seconds until a token is back."""
        now = time.monotonic()
        with self._lock:
            if now - self._swept > 60:
                full = self.burst / self.rate
                self.buckets = {c: b for c, b in self.buckets.items() if now - b[1] < full}
                self._swept = now
            tokens, at = self.buckets.get(client, (self.burst, now))
            tokens = min(self.burst, tokens + (now - at) * self.rate)
            if tokens >= 1.0:
                self.buckets[client] = (tokens - 1.0, now)
                return 0.0
            self.buckets[client] = (tokens, now)
            return (1.0 - tokens) / self.rate

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not route_path(scope).startswith(self.prefixes):
            await self.app(scope, receive, send)
            return
        client = scope.get("client")
        wait = self._take(client[0] if client else "unknown")
        if wait <= 0:
            await self.app(scope, receive, send)
            return
        retry = max(1, math.ceil(wait))
        body = error_json(route_path(scope), 429,
                          f"rate limit of {self.rate * 60:g} requests a "
                          f"minute reached: retry in {retry} s")
        await send({"type": "http.response.start", "status": 429,
                    "headers": [(b"content-type", b"application/json"),
                                (b"retry-after", str(retry).encode())]})
        await send({"type": "http.response.body", "body": body})


class UploadSlots:
    """At most ``size`` uploads parsed and indexed at once (RAG_MAX_CONCURRENT_UPLOADS): each
    holds a worker process and the model for seconds, so one more waits on the client's side
    (503 with Retry-After), not in the server's memory. Taken and released on the event loop
    only, so a counter needs no lock."""

    RETRY_AFTER_S = 5

    def __init__(self, size: int) -> None:
        self.size = size
        self.taken = 0

    def take(self) -> bool:
        if self.taken >= self.size:
            return False
        self.taken += 1
        return True

    def give_back(self) -> None:
        self.taken -= 1
