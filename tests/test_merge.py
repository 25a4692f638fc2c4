"""Merging: the tiered policy's choices, a merge that drops deleted documents and carries
over those deleted while it ran, and background merges keeping the segment count bounded."""

from __future__ import annotations

from pathlib import Path

import pytest

from rag.config import Settings
from rag.index import Index, SegmentInfo, read_snapshot
from rag.merge import Merger, TieredPolicy, _swap, merge
from rag.pipeline import Pipeline
from rag.segment import Segment, SegmentBuilder
from rag.writer import IndexWriter, merge_lock, writer_lock
from tests.standin import HashingEmbedder
from tests.test_writer import add

pytestmark = pytest.mark.unit


def _seg(name: str, chunks: int, deleted: int = 0) -> SegmentInfo:
    return SegmentInfo(name, chunks, chunks, chunks, "flat",
                       {f"{name}-{i}": (1, 1) for i in range(deleted)})


def test_within_its_budget_an_index_is_left_alone() -> None:
    policy = TieredPolicy(segments_per_tier=10)
    assert policy.find([_seg(f"s{i}", 1000) for i in range(10)]) == ()
    # A big segment and a tier of small ones below it: still within the budget.
    assert policy.find([_seg("big", 1_000_000)] + [_seg(f"s{i}", 50) for i in range(9)]) == ()


def test_over_its_budget_the_small_segments_of_a_size_merge_together() -> None:
    policy = TieredPolicy(segments_per_tier=10, max_merge_at_once=10)
    big = [_seg(f"big{i}", 100_000) for i in range(5)]
    small = [_seg(f"small{i:02d}", 3 + i % 2) for i in range(25)]
    # 500k chunks may lie in 22 segments: 10 of the floor size, 10 ten times as large, 2 more.
    assert policy.budget([s.live_chunks for s in big + small]) == 22
    chosen = policy.find(big + small)
    assert len(chosen) == 10 and all(n.startswith("small") for n in chosen)
    assert policy.find(big + small[:17]) == ()


def test_a_segment_mostly_deleted_is_rewritten_alone() -> None:
    policy = TieredPolicy(segments_per_tier=10, deletes_pct_allowed=33.0)
    segments = [_seg("a", 500), _seg("b", 900, deleted=400), _seg("c", 700)]
    assert policy.find(segments) == ("b",)
    assert policy.find([_seg("a", 500), _seg("b", 900, deleted=100)]) == ()


def test_forced_merges_go_down_to_the_count_asked_and_drop_deletions() -> None:
    policy = TieredPolicy(max_merge_at_once=3)
    segments = [_seg(f"s{i}", 10 * (i + 1)) for i in range(6)]
    assert policy.forced(segments, 1) == ("s0", "s1", "s2")  # the smallest, at most 3
    assert policy.forced(segments, 4) == ("s0", "s1", "s2")
    assert policy.forced(segments, 5) == ("s0", "s1")
    assert policy.forced(segments[:2], 2) == ()
    assert policy.forced([_seg("a", 10), _seg("b", 20, deleted=1)], 2) == ("b",)


def _write(root: Path, *doc_ids: str) -> None:
    with IndexWriter(root, "m", 3, {}) as w:
        for doc_id in doc_ids:
            add(w, doc_id)
        w.commit()


def test_a_merge_drops_deleted_documents_and_carries_over_those_deleted_meanwhile(
        tmp_path: Path) -> None:
    _write(tmp_path, "a", "b", "c")
    _write(tmp_path, "d", "e")
    with IndexWriter(tmp_path, "m", 3, {}) as w:
        w.delete("a")
        w.commit()
    base = read_snapshot(tmp_path)
    assert base is not None
    at_start = {s.name: s for s in base.segments}
    chosen = tuple(at_start)
    with merge_lock(tmp_path) as ours:  # what merge() holds throughout
        assert ours
        # The merge reads and writes its segment without the writer lock...
        tmp = tmp_path / "segments" / ".merge-m1"
        written = SegmentBuilder.merged(tmp, 3, [(Segment(tmp_path / "segments" / n),
                                                  frozenset(at_start[n].deleted))
                                                 for n in chosen]).finish(200_000)
        assert written.documents == 4  # without "a"
        # ...meanwhile a writer deletes "d" and adds "f" (and leaves the merge's folder)...
        with IndexWriter(tmp_path, "m", 3, {}) as w:
            w.delete("d")
            add(w, "f")
            w.commit()
        # ...and the swap carries "d"'s deletion over to the merged segment.
        merged = SegmentInfo("m1", written.documents, written.chunks, written.sentences, "flat")
        with writer_lock(tmp_path):
            assert _swap(tmp_path, chosen, at_start, merged, tmp) is not None
    snapshot = read_snapshot(tmp_path)
    assert snapshot is not None and snapshot.manifest["operation"] == "merge"
    assert [(s.name, dict(s.deleted)) for s in snapshot.segments][0] == ("m1", {"d": (1, 1)})
    assert len(snapshot.segments) == 2 and snapshot.manifest["documents"] == 4
    index = Index(tmp_path)
    assert [d["doc_id"] for d in index.store.documents()] == ["b", "c", "e", "f"]
    assert index.vectors.count() == index.lexical.count() == index.sentences.count() == 4


def test_a_merge_whose_source_was_dropped_meanwhile_is_dropped(tmp_path: Path) -> None:
    _write(tmp_path, "a")
    _write(tmp_path, "b")
    base = read_snapshot(tmp_path)
    assert base is not None
    at_start = {s.name: s for s in base.segments}
    tmp = tmp_path / "segments" / ".merge-m1"
    with merge_lock(tmp_path):
        written = SegmentBuilder.merged(tmp, 3, [(Segment(tmp_path / "segments" / n),
                                                  frozenset()) for n in at_start]).finish(200_000)
        with IndexWriter(tmp_path, "m", 3, {}) as w:
            w.delete("b")  # its segment's only document: the segment leaves the snapshot
            w.commit()
        merged = SegmentInfo("m1", written.documents, written.chunks, written.sentences, "flat")
        with writer_lock(tmp_path):
            assert _swap(tmp_path, tuple(at_start), at_start, merged, tmp) is None
    assert [d["doc_id"] for d in Index(tmp_path).store.documents()] == ["a"]


def test_merge_runs_one_merge_and_says_when_there_is_none(tmp_path: Path) -> None:
    for n in range(4):
        _write(tmp_path, f"d{n}")
    policy = TieredPolicy(segments_per_tier=10)
    assert merge(tmp_path, policy, 200_000, 1.0) is None  # within the budget
    report = merge(tmp_path, policy, 200_000, 1.0, max_segments=1)
    assert report is not None and len(report.merged) == 4 and report.chunks == 4
    assert [s.name for s in read_snapshot(tmp_path).segments] == [report.into]  # type: ignore[union-attr]
    assert merge(tmp_path, policy, 200_000, 1.0, max_segments=1) is None
    leftover = [p.name for p in (tmp_path / "segments").iterdir()]
    assert report.into in leftover and not [n for n in leftover if n.startswith(".")]


def test_background_merges_keep_the_segment_count_bounded(tmp_path: Path) -> None:
    pipeline = Pipeline(Settings(index_dir=tmp_path / "index", segments_per_tier=2),
                        embedder=HashingEmbedder())
    trees = ["alder", "birch", "cedar", "elm", "fir", "hazel", "larch", "maple", "oak", "pine",
             "rowan", "yew"]
    for n, tree in enumerate(trees):
        pipeline.upload(f"n{n}.txt", f"The heron count at the {tree} station.".encode())
    pipeline.wait_for_merges()
    segments = pipeline.segments()
    policy = TieredPolicy(segments_per_tier=2)
    assert len(segments) <= policy.budget([s.live_chunks for s in segments]) < 12
    assert policy.find(segments) == ()
    assert len(pipeline.documents()) == 12
    for n in (0, 5, 11):
        assert pipeline.search(f"herons by the {trees[n]}", 1, "bm25")[0].chunk.doc_id == f"n{n}"


def test_a_failing_merge_is_logged_and_the_next_kick_runs_again(
        caplog: pytest.LogCaptureFixture) -> None:
    calls: list[int] = []

    def once() -> None:
        calls.append(1)
        raise OSError("disk full")

    merger = Merger(once, lambda _: None)  # type: ignore[arg-type]
    merger.kick()
    merger.wait()
    merger.kick()
    merger.wait()
    assert len(calls) == 2 and "merging segments failed" in caplog.text
