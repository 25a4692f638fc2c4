"""Merging segments: which ones (a tiered policy, after Lucene's TieredMergePolicy), and
folding them into one.

Every commit adds a segment, and every search reads each segment once, so segments are
merged as they accumulate: segments of about the same size are merged together, at most
``max_merge_at_once`` at a time, once there are more than ``segments_per_tier`` of a
size; a segment whose deleted documents pass ``deletes_pct_allowed`` is rewritten without
them. The number of segments then grows with the logarithm of the index's size, and each
chunk is rewritten about once per tier.

A merge reads its segments and writes the merged one without any lock a reader or a
writer waits for (only the merge lock, which keeps a second merger out); its last step — a
manifest in which the merged segment replaces its sources, with the deletions made
meanwhile carried over to it — takes the writer lock, as a commit does. If its sources are
no longer all current by then, it is dropped.
"""

from __future__ import annotations

import logging
import math
import shutil
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from rag.index import SEGMENTS, SegmentInfo, manifest, read_snapshot
from rag.segment import STORE, Segment, SegmentBuilder, deleted_counts
from rag.store import Store
from rag.writer import merge_lock, new_name, place, publish, writer_lock

log = logging.getLogger("rag.merge")


@dataclass(frozen=True)
class TieredPolicy:
    segments_per_tier: int = 10
    max_merge_at_once: int = 10
    floor_chunks: int = 2_000  # smaller segments count as this large
    max_segment_chunks: int = 5_000_000  # merges stop growing a segment past this
    deletes_pct_allowed: float = 33.0

    def budget(self, sizes: Sequence[int]) -> int:
        """How many segments an index of these sizes may hold before it must merge."""
        level = max(min(sizes, default=1), self.floor_chunks)
        left, allowed = float(sum(sizes)), 0
        while True:
            count = left / level
            if count < self.segments_per_tier or level >= self.max_segment_chunks:
                allowed += math.ceil(count)
                break
            allowed += self.segments_per_tier
            left -= self.segments_per_tier * level
            level = min(self.max_segment_chunks, level * self.max_merge_at_once)
        return max(allowed, self.segments_per_tier)

    def _deleted_pct(self, s: SegmentInfo) -> float:
        return 100.0 * (s.chunks - s.live_chunks) / max(s.chunks, 1)

    def find(self, segments: Sequence[SegmentInfo]) -> tuple[str, ...]:
        """The segments to merge next: over the budget, the best window of segments of
        about the same size by Lucene's score (low skew, small result, deletions
        reclaimed); within it, the segment with the most deletions past the allowed share,
        alone; else ()."""
        ranked = sorted(segments, key=lambda s: (-s.live_chunks, s.name))
        if len(ranked) <= self.budget([s.live_chunks for s in ranked]):
            worst = max(ranked, key=self._deleted_pct, default=None)
            if worst is not None and self._deleted_pct(worst) > self.deletes_pct_allowed:
                return (worst.name,)
            return ()
        best: tuple[float, tuple[str, ...]] | None = None
        for start in range(len(ranked) - 1):
            window: list[SegmentInfo] = []
            total = 0
            for s in ranked[start:]:
                if len(window) == self.max_merge_at_once:
                    break
                if total + s.live_chunks <= self.max_segment_chunks:
                    window.append(s)
                    total += s.live_chunks
            if len(window) < 2:
                continue
            floored = [max(s.live_chunks, self.floor_chunks) for s in window]
            live = sum(s.live_chunks for s in window) / max(sum(s.chunks for s in window), 1)
            score = max(floored) / sum(floored) * max(total, 1) ** 0.05 * live ** 2
            if best is None or score < best[0]:
                best = (score, tuple(s.name for s in window))
        return best[1] if best else ()

    def forced(self, segments: Sequence[SegmentInfo], max_segments: int) -> tuple[str, ...]:
        """Merges down to ``max_segments`` segments without deleted documents (the smallest
        first), as Lucene's forceMerge."""
        ranked = sorted(segments, key=lambda s: (s.live_chunks, s.name))
        if len(ranked) > max_segments:
            n = min(self.max_merge_at_once, len(ranked) - max_segments + 1)
            return tuple(s.name for s in ranked[:n])
        return next(((s.name,) for s in ranked if s.deleted), ())


@dataclass(frozen=True)
class MergeReport:
    merged: tuple[str, ...]
    into: str
    chunks: int
    seconds: float
    snapshot: str


def merge(root: Path, policy: TieredPolicy, ann_threshold: int, wait_s: float,
          max_segments: int | None = None, lock_wait_s: float = 0.0) -> MergeReport | None:
    """One merge, if one is due (or, with ``max_segments``, forced); None when there is
    none, or when another merger is at work (after ``lock_wait_s``). ``wait_s``: how long
    the last step waits for a writer's lock."""
    with merge_lock(root, lock_wait_s) as ours:
        if not ours:
            return None
        t0 = time.perf_counter()
        base = read_snapshot(root)
        if base is None or base.legacy:
            return None  # an index without segments becomes segments on its next write
        at_start = {s.name: s for s in base.segments}
        chosen = policy.find(base.segments) if max_segments is None \
            else policy.forced(base.segments, max_segments)
        if not chosen:
            return None
        name = new_name()
        tmp = root / SEGMENTS / f".merge-{name}"
        try:
            sources = [(Segment(root / SEGMENTS / n), frozenset(at_start[n].deleted))
                       for n in chosen]
            written = SegmentBuilder.merged(tmp, int(base.manifest["dimension"]),
                                            sources).finish(ann_threshold)
            for segment, _ in sources:
                segment.close()
            merged = SegmentInfo(name, written.documents, written.chunks, written.sentences,
                                 written.vectors)
            with writer_lock(root, wait_s):
                snapshot = _swap(root, chosen, at_start, merged, tmp)
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
        if snapshot is None:
            return None
        return MergeReport(chosen, name, merged.live_chunks, time.perf_counter() - t0, snapshot)


def _swap(root: Path, chosen: tuple[str, ...], at_start: dict[str, SegmentInfo],
          merged: SegmentInfo, tmp: Path) -> str | None:
    """Under the writer lock: the current manifest with ``merged`` in place of ``chosen``."""
    now = read_snapshot(root)
    current = {s.name: s for s in now.segments} if now is not None and not now.legacy else {}
    if now is None or any(n not in current for n in chosen):
        return None  # another write dropped a source meanwhile
    # Documents deleted from the sources while the merge ran are deleted from its result.
    later = [d for n in chosen for d in current[n].deleted if d not in at_start[n].deleted]
    if later:
        store = Store(tmp / STORE, readonly=True)
        rows = {doc_id: store.rows_of([doc_id]) for doc_id in later}
        store.close()
        merged = merged.without(deleted_counts(tmp, rows))
    place(tmp, root / SEGMENTS / merged.name)
    first = min(now.segments.index(current[n]) for n in chosen)
    infos = [s for s in now.segments if s.name not in chosen]
    infos.insert(first, merged)
    name = new_name()
    publish(root, manifest(name, now.name, now.manifest, infos, int(now.manifest["next_row"]),
                           "merge"), merging=True)
    return name


class Merger:
    """Runs due merges on one background thread, started by ``kick`` after a write; a
    kick during a merge makes it look again once done. Errors are logged, never raised:
    an unmerged index is still a whole one."""

    def __init__(self, merge_once: Callable[[], MergeReport | None],
                 merged: Callable[[MergeReport], None]) -> None:
        self._merge_once, self._merged = merge_once, merged
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self._again = False

    def kick(self) -> None:
        with self._lock:
            self._again = True
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name="rag-merge", daemon=True)
                self._thread.start()

    def _run(self) -> None:
        while True:
            with self._lock:
                if not self._again:
                    self._thread = None
                    return
                self._again = False
            try:
                while (report := self._merge_once()) is not None:
                    self._merged(report)
            except Exception:
                log.exception("merging segments failed; the index is left as it was")

    def wait(self) -> None:
        """Until no merge is running or due (a CLI ingest's exit, tests)."""
        while (thread := self._thread) is not None:
            thread.join()
