"""An OpenAI-compatible server that misbehaves on purpose, for the LLM failure tests.

Run as ``python -m tests.bad_llm PORT``; the first path segment picks the failure:
``/slow/v1`` answers after 30 s, ``/500/v1`` with HTTP 500, ``/junk/v1`` with a 200
that is not JSON, ``/junk-stream/v1`` with server-sent events that are not JSON,
``/hang-stream/v1`` starts a stream and then stalls. ``/health`` is the readiness probe.
"""

from __future__ import annotations

import sys
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


class Handler(BaseHTTPRequestHandler):
    def log_message(self, format: str, *args: object) -> None:  # quiet
        return

    def do_GET(self) -> None:
        self._send(200, b'{"ok": true}', "application/json")

    def do_POST(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        self.rfile.read(length)
        mode = self.path.strip("/").split("/")[0]
        if mode == "slow":
            time.sleep(30)
            self._send(200, b"{}", "application/json")
        elif mode == "500":
            self._send(500, b'{"error": {"message": "model crashed"}}', "application/json")
        elif mode == "junk":
            self._send(200, b"<html>this is not an API</html>", "application/json")
        elif mode == "junk-stream":
            self._send(200, b"data: {broken json\n\ndata: [DONE]\n\n", "text/event-stream")
        elif mode == "hang-stream":
            self.send_response(200)
            self.send_header("Content-Type", "text/event-stream")
            self.end_headers()
            chunk = (b'data: {"id":"x","object":"chat.completion.chunk","created":0,'
                     b'"model":"m","choices":[{"index":0,"delta":{"content":"Tea is"},'
                     b'"finish_reason":null}]}\n\n')
            self.wfile.write(chunk)
            self.wfile.flush()
            time.sleep(30)
        else:
            self._send(404, b'{"error": {"message": "no such mode"}}', "application/json")

    def _send(self, status: int, body: bytes, kind: str) -> None:
        self.send_response(status)
        self.send_header("Content-Type", kind)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


if __name__ == "__main__":
    server = ThreadingHTTPServer(("127.0.0.1", int(sys.argv[1])), Handler)
    server.daemon_threads = True
    server.serve_forever()
