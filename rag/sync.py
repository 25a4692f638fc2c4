"""Folders kept in sync with the index: `rag watch` and `rag serve --watch`.

A run is an ordinary folder ingest with pruning (``Pipeline.ingest(paths, prune=True)``) into
one collection (`rag watch --collection`, RAG_WATCH_COLLECTION):
added and changed files are indexed, deleted ones pruned, unreadable ones skipped and
reported, all by the same rules (sha256, checkpoints) as `rag ingest --prune`. So a run
writes as every write does (rag/writer.py): one new segment with the files it added or
changed and tombstones for those it replaced or pruned, nothing else rewritten; an unchanged
file is not even parsed again (a scan is not read with OCR again). The first run happens at
start, once the watcher listens, so a watcher that was killed catches up with whatever
changed while it was down. Then watchfiles reports changes; a burst (an editor's save, a
copied folder) is gathered until the folders are quiet for ``quiet_ms`` (at most
``MAX_BATCH_MS``), and makes one run, so one snapshot (more only past
RAG_INGEST_CHECKPOINT_DOCS changed files). A run that failed (the index busy, a folder gone)
is retried every ``RETRY_S`` until one succeeds.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from rag.documents import indexable
from rag.errors import RagError
from rag.ingest import IngestReport

log = logging.getLogger("rag.sync")
MAX_BATCH_MS = 30_000  # a burst that never goes quiet still makes a run this often
RETRY_S = 5.0
MAX_LISTED = 100  # pending files a status lists


@dataclass(frozen=True, slots=True)
class SyncRun:
    """One run: when, what set it off, what it changed, and the error if it failed."""

    started: str  # ISO 8601, UTC
    seconds: float
    trigger: str  # "start", "changes", "retry"
    changed_files: int  # changes that set it off
    added: int = 0
    replaced: int = 0
    deleted: int = 0
    failed: int = 0
    ocr_pages: int = 0
    snapshot: str | None = None
    error: str | None = None


@dataclass
class SyncState:
    """What GET /v1/sync and `rag watch` show."""

    watching: list[str] = field(default_factory=list)  # the folders' names, not their paths
    running: bool = False
    runs: int = 0
    last_run: SyncRun | None = None
    pending: list[str] = field(default_factory=list)  # changed, not yet in a snapshot
    failed: list[tuple[str, str]] = field(default_factory=list)  # (file, reason) now

    def as_dict(self) -> dict[str, Any]:
        return {"watching": self.watching, "running": self.running, "runs": self.runs,
                "last_run": None if self.last_run is None else asdict(self.last_run),
                "pending": self.pending[:MAX_LISTED], "pending_count": len(self.pending),
                "failed": [{"path": p, "reason": r} for p, r in self.failed]}


class Syncer:
    """Keeps the index equal to ``paths``: ``ingest(paths)`` is the pipeline's pruning
    folder ingest; ``ignore`` (the index folder) is never watched."""

    def __init__(self, paths: Sequence[Path], ingest: Callable[[Sequence[Path]], IngestReport],
                 quiet_ms: int = 1000, ignore: Path | None = None,
                 on_run: Callable[[SyncRun], None] | None = None) -> None:
        self.paths = [Path(p).resolve() for p in paths]
        self.ingest, self.quiet_ms, self.on_run = ingest, quiet_ms, on_run
        self.ignore = None if ignore is None else Path(ignore).resolve()
        self._lock = threading.Lock()
        self._state = SyncState(watching=[p.name for p in self.paths])
        self._pending: set[str] = set()
        self.stop_event = threading.Event()
        self._thread: threading.Thread | None = None

    def status(self) -> dict[str, Any]:
        with self._lock:
            self._state.pending = sorted(self._pending)
            return self._state.as_dict()

    def _relative(self, path: str) -> str:
        p = Path(path)
        for root in self.paths:
            if p.is_relative_to(root):
                return p.relative_to(root).as_posix() or p.name
        return p.name

    def wanted(self, path: str) -> bool:
        """A change worth a run: under a watched folder, outside the index, and a file the
        folder ingest reads (or a folder: moving one out moves its files)."""
        p = Path(path)
        if self.ignore is not None and p.is_relative_to(self.ignore):
            return False
        root = next((r for r in self.paths if p.is_relative_to(r) or p == r), None)
        if root is None:
            return False
        hidden = any(part.startswith(".") for part in p.relative_to(root).parts)
        return indexable(p, root) or (not p.suffix and not hidden)

    def run(self, trigger: str, changed: Iterable[str] = ()) -> SyncRun:
        """One ingest of the folders now; its outcome is the status's last run."""
        changed = {self._relative(c) for c in changed}
        with self._lock:
            self._pending |= changed
            self._state.running = True
        t0, started = time.perf_counter(), datetime.now(UTC).isoformat(timespec="seconds")
        try:
            report = self.ingest(self.paths)
            done = SyncRun(started, round(time.perf_counter() - t0, 3), trigger, len(changed),
                           len(report.added), len(report.replaced), len(report.deleted),
                           len(report.failed), report.ocr_pages, report.snapshot)
            failed = [(self._relative(p), r) for p, r in report.failed]
        except Exception as exc:  # a run's failure is reported and retried, never fatal
            reason = str(exc) if isinstance(exc, RagError) else f"{type(exc).__name__}: {exc}"
            log.warning("sync run failed: %s", reason)
            done = SyncRun(started, round(time.perf_counter() - t0, 3), trigger, len(changed),
                           error=reason)
            failed = None
        with self._lock:
            self._state.running = False
            self._state.runs += 1
            self._state.last_run = done
            if done.error is None:
                self._pending.clear()
                self._state.failed = failed or []
        if self.on_run is not None:
            self.on_run(done)
        return done

    def watch(self) -> None:
        """Run once, then again after each quiet burst of changes, until ``stop_event``.

        The first run starts once the watcher is listening (its first report, at most
        ``quiet_ms`` after start), so a change made while it runs makes the next run; the
        watcher gathers changes while a run is under way.
        """
        import watchfiles

        last: SyncRun | None = None
        ended = 0.0
        for changes in watchfiles.watch(
                *self.paths, watch_filter=lambda _, path: self.wanted(path),
                debounce=MAX_BATCH_MS, step=self.quiet_ms, stop_event=self.stop_event,
                rust_timeout=self.quiet_ms, yield_on_timeout=True, raise_interrupt=False):
            if last is not None and not changes and (
                    last.error is None or time.monotonic() - ended < RETRY_S):
                continue
            trigger = "start" if last is None else "changes" if changes else "retry"
            last = self.run(trigger, (path for _, path in changes))
            ended = time.monotonic()

    def start(self) -> threading.Thread:
        """``watch`` in a daemon thread (a server's)."""
        self._thread = threading.Thread(target=self.watch, name="rag-sync", daemon=True)
        self._thread.start()
        return self._thread

    def stop(self, wait_s: float = 30) -> None:
        self.stop_event.set()
        if self._thread is not None:
            self._thread.join(wait_s)
