"""What the eval scripts and the tests share: real servers on loopback, and percentiles.

A server is started as its own process on 127.0.0.1 and a free port, polled until
it says it is ready, and stopped with SIGTERM (SIGKILL if it lingers). Its output
goes to a log the caller names or to a temporary file, so that a server that dies
or never becomes ready fails with the end of what it printed rather than a bare
timeout.

Latency figures all come from ``percentiles``: numpy's default definition (linear
interpolation between the two nearest ranks), so every report, `rag eval`'s and
`rag bench`'s included, means the same thing by p50 and p99.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING, BinaryIO

import numpy as np

if TYPE_CHECKING:
    import httpx  # imported where a server starts: `rag eval` needs only percentiles here

HOST = "127.0.0.1"
RAG = str(Path(sys.executable).with_name("rag"))  # the console script of this environment
READY_WAIT_S = 300.0  # a first start may export the model to ONNX
Ready = Callable[["httpx.Client"], bool]


class ServerError(RuntimeError):
    """A server exited before it was ready, or was not ready in time."""


def percentiles(values: Sequence[float], ps: Iterable[float] = (50, 99),
                digits: int = 2) -> dict[str, float]:
    """``{"p50": ..., "p99": ...}`` for ``ps``, rounded to ``digits``; 0.0 each for no values."""
    wanted = list(ps)
    if not values:
        return {f"p{p:g}": 0.0 for p in wanted}
    found = np.percentile(np.asarray(values, dtype=np.float64), wanted)
    return {f"p{p:g}": round(float(v), digits) for p, v in zip(wanted, found, strict=True)}


def free_port() -> int:
    """A port nothing listens on now (another process could still take it before us)."""
    with socket.socket() as s:
        s.bind((HOST, 0))
        return int(s.getsockname()[1])


def rss_mb(pid: int) -> float:
    """A process's resident memory, from /proc."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return round(int(line.split()[1]) / 1024, 1)
    return 0.0


def rag_ready(client: httpx.Client) -> bool:
    """`rag serve` is ready once /readyz answers 200 (503 while it loads the index)."""
    return client.get("/readyz").status_code == 200


def wait_ready(client: httpx.Client, ready: Ready = rag_ready, wait: float = READY_WAIT_S,
               server: Server | None = None) -> None:
    """Poll ``ready`` until it holds; raise ServerError if ``server`` exits or ``wait`` passes.

    ``client`` may be any httpx client, FastAPI's in-process TestClient included.
    """
    import httpx

    deadline = time.monotonic() + wait
    while time.monotonic() < deadline:
        if server is not None and server.proc.poll() is not None:
            raise ServerError(f"{server.name} exited with {server.proc.returncode} before it "
                              f"was ready; its output ends:\n{server.tail()}")
        try:
            if ready(client):
                return
        except httpx.TransportError:
            pass
        time.sleep(0.1)
    if server is None:
        raise ServerError(f"{client.base_url} was not ready after {wait:g} s")
    server.proc.kill()
    server.proc.wait()
    raise ServerError(f"{server.name} was not ready after {wait:g} s; its output ends:\n"
                      f"{server.tail()}")


class Server:
    """A running server process, a client on its base URL, and the file its output goes to."""

    def __init__(self, command: Sequence[str], env: Mapping[str, str], port: int,
                 log: Path | None, timeout: float) -> None:
        import httpx

        self.name = " ".join(command)
        self.base_url = f"http://{HOST}:{port}"
        self._temporary = log is None
        if log is None:
            fd, name = tempfile.mkstemp(prefix=f"server-{os.getpid()}-", suffix=".log")
            os.close(fd)
            log = Path(name)
        self.log = log
        self._output: BinaryIO = open(log, "a+b")  # noqa: SIM115  (closed by stop)
        self.proc = subprocess.Popen(list(command), env={**os.environ, **env},
                                     stdout=self._output, stderr=subprocess.STDOUT)
        self.http = httpx.Client(base_url=self.base_url, timeout=timeout)

    @property
    def pid(self) -> int:
        return self.proc.pid

    def tail(self, chars: int = 3000) -> str:
        """The end of what the server printed (stdout and stderr)."""
        size = os.fstat(self._output.fileno()).st_size
        data = os.pread(self._output.fileno(), chars, max(0, size - chars))
        return data.decode(errors="replace")

    def stop(self, wait: float = 60) -> None:
        """SIGTERM, then SIGKILL after ``wait`` seconds; a temporary output file is removed."""
        self.http.close()
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(wait)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self._output.close()
        if self._temporary:
            self.log.unlink(missing_ok=True)

    def __enter__(self) -> Server:
        return self

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.stop()


def start(command: Sequence[str], env: Mapping[str, str], port: int, ready: Ready = rag_ready,
          log: Path | None = None, timeout: float = 30,
          wait: float = READY_WAIT_S) -> Server:
    """Run a server listening on ``port`` and return it once ``ready`` holds.

    ``env`` is added to this process's environment; output is appended to ``log``
    when given; ``timeout`` is the returned client's per-request timeout and
    ``wait`` how long it may take to become ready.
    """
    server = Server(command, env, port, log, timeout)
    try:
        wait_ready(server.http, ready, wait, server)
    except BaseException:
        server.stop()
        raise
    return server


def serve_rag(env: Mapping[str, str], *args: str, via: Sequence[str] = (RAG,),
              log: Path | None = None, timeout: float = 30,
              wait: float = READY_WAIT_S) -> Server:
    """`rag serve` on 127.0.0.1 and a free port, ready; ``args`` follow `serve --port N`.

    ``via`` is what runs the `rag` command line: the console script, or a launcher
    that takes `rag` arguments after it (eval.reliability.killpoint).
    """
    port = free_port()
    return start([*via, "serve", "--host", HOST, "--port", str(port), *args], env, port,
                 log=log, timeout=timeout, wait=wait)
