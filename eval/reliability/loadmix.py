"""A mixed closed-loop load on a real server: search, ask, upload and delete from threads.

Shared by eval/reliability/concurrency.py and eval/reliability/soak.py. Every request
is recorded with its time, operation, status (0 when the connection failed) and
latency; anything but the operation's success status counts as an error.
"""

from __future__ import annotations

import itertools
import random
import threading
import time
from collections import deque
from dataclasses import dataclass
from typing import TypedDict

import httpx

from eval.harness import percentiles

QUESTIONS = [
    "What areas of cooperation does the NPEC study propose?",
    "Where is the large spent-fuel reprocessing plant in Japan?",
    "Which countries has Japan negotiated defense equipment cooperation agreements with?",
    "What did Chuck Hagel introduce at the Reagan National Defense Forum?",
    "Which survey describes glaciers in region 12?",
    "How long should I bake a sourdough loaf?",
]
SUCCESS = {"search": 200, "ask": 200, "upload": 201, "delete": 200}


@dataclass(frozen=True)
class Sample:
    t: float
    op: str
    status: int
    ms: float

    @property
    def ok(self) -> bool:
        return self.status == SUCCESS[self.op]


def note(n: int) -> bytes:
    """A small document of its own for each upload."""
    lines = [f"Field note {n}", ""]
    lines += [f"Observer {n} logged {w} sightings of herons at station {n % 17} on day {d}."
              for d, w in zip(range(12), itertools.cycle([3, 5, 8, 13]), strict=False)]
    return "\n".join(lines).encode()


class MixedLoad:
    def __init__(self, base: str, weights: dict[str, float], workers: int = 4,
                 api_key: str | None = None, seed: int = 0, prefix: str = "load",
                 api: str = "/v1") -> None:
        """``api``: the routes of the collection to load ("/v1/collections/NAME")."""
        self.base = base
        self.api = api
        self.ops = list(weights)
        self.weights = [weights[o] for o in self.ops]
        self.workers = workers
        self.headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
        self.samples: list[Sample] = []
        self.prefix = prefix
        self._uploaded: deque[str] = deque()
        self._counter = itertools.count()
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._rng = random.Random(seed)
        self._threads: list[threading.Thread] = []

    def _request(self, http: httpx.Client, op: str) -> None:
        if op == "delete":
            with self._lock:
                doc_id = self._uploaded.popleft() if self._uploaded else None
            if doc_id is None:
                op = "upload"
        t0 = time.perf_counter()
        try:
            question = self._rng.choice(QUESTIONS)
            if op == "search":
                status = http.post(f"{self.api}/search",
                                   json={"query": question, "k": 5}).status_code
            elif op == "ask":
                status = http.post(f"{self.api}/ask", json={"question": question}).status_code
            elif op == "upload":
                n = next(self._counter)
                name = f"{self.prefix}_{n}"
                status = http.post(f"{self.api}/documents",
                                   files={"file": (f"{name}.txt", note(n))}).status_code
                if status == 201:
                    with self._lock:
                        self._uploaded.append(name)
            else:
                status = http.delete(f"{self.api}/documents/{doc_id}").status_code
        except httpx.TransportError:
            status = 0
        ms = (time.perf_counter() - t0) * 1000
        with self._lock:
            self.samples.append(Sample(time.monotonic(), op, status, ms))

    def _work(self, index: int) -> None:
        rng = random.Random(index)
        with httpx.Client(base_url=self.base, timeout=120, headers=self.headers) as http:
            while not self._stop.is_set():
                self._request(http, rng.choices(self.ops, self.weights)[0])

    def start(self) -> MixedLoad:
        self._threads = [threading.Thread(target=self._work, args=(i,), daemon=True)
                         for i in range(self.workers)]
        for t in self._threads:
            t.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        for t in self._threads:
            t.join(timeout=180)

    def window(self, since: float, until: float | None = None) -> list[Sample]:
        with self._lock:
            return [s for s in self.samples if s.t >= since and (until is None or s.t < until)]


class Summary(TypedDict):
    requests: int
    errors: int
    by_op: dict[str, int]
    error_statuses: list[int]
    query_p50_ms: float
    query_p99_ms: float


def summary(samples: list[Sample]) -> Summary:
    queries = percentiles([s.ms for s in samples if s.op in ("search", "ask")], digits=1)
    return {"requests": len(samples), "errors": sum(not s.ok for s in samples),
            "by_op": {op: sum(s.op == op for s in samples) for op in SUCCESS},
            "error_statuses": sorted({s.status for s in samples if not s.ok}),
            "query_p50_ms": queries["p50"], "query_p99_ms": queries["p99"]}
