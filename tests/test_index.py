"""Snapshots on disk: manifest checks, loading, the live snapshot of a serving process,
and an index of the format before segments."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from rag.config import RETRIEVER_NAMES, Settings
from rag.embedding import SentenceTransformerEmbedder
from rag.errors import IndexMismatchError, NoIndexError
from rag.index import (
    FORMAT,
    KEEP_SNAPSHOTS,
    MANIFEST,
    Index,
    IndexHandle,
    current_snapshot,
    read_snapshot,
)
from rag.lexical import Bm25sLexical
from rag.pipeline import Pipeline
from rag.writer import IndexWriter
from tests.legacy import write_legacy
from tests.seed_facts import SEED_QUESTIONS
from tests.test_writer import add


def test_loading_checks_model_and_dimension(seed_index: Path) -> None:
    Index(seed_index, "all-MiniLM-L6-v2", 384).close()
    with pytest.raises(IndexMismatchError, match=r"built with model 'all-MiniLM-L6-v2'.*'bge'"):
        Index(seed_index, "bge", None)
    with pytest.raises(IndexMismatchError, match="384-dimensional.*768"):
        Index(seed_index, None, 768)


@pytest.mark.unit
def test_missing_index_says_what_to_run(tmp_path: Path) -> None:
    with pytest.raises(NoIndexError, match="run `rag ingest PATH`"):
        Index(tmp_path / "nothing")


def _write_one(root: Path, doc_id: str) -> str:
    with IndexWriter(root, "m", 3, {}) as w:
        add(w, doc_id)
        return w.commit()


@pytest.mark.unit
def test_a_handle_reloads_once_the_pointer_moves_and_its_poll_is_due(tmp_path: Path) -> None:
    now = [0.0]
    handle = IndexHandle(tmp_path, "m", lambda: 3, poll_s=0.5, clock=lambda: now[0])
    with pytest.raises(NoIndexError):
        handle.current()
    first = _write_one(tmp_path, "a")
    index = handle.current()
    assert index.snapshot == first and handle.current() is index
    second = _write_one(tmp_path, "b")
    now[0] += 0.4
    assert handle.current() is index  # not due: no stat, no reload
    now[0] += 0.1
    assert handle.current().snapshot == second
    assert handle.current() is handle.current()
    # The reload opened the new segment only; the first is the same object, still open.
    shared = set(index.segments) & set(handle.current().segments)
    assert len(shared) == 1 and len(handle.current().segments) == 2
    assert all(index.segments[n] is handle.current().segments[n] for n in shared)


def test_old_snapshots_are_collected(pipeline: Pipeline, corpus: Path) -> None:
    pipeline.ingest([corpus])
    for n in range(3):
        pipeline.upload(f"n{n}.txt", f"Note number {n} about tea.".encode())
    names = [p.name for p in (pipeline.root / "snapshots").iterdir()]
    assert len(names) == KEEP_SNAPSHOTS
    assert current_snapshot(pipeline.root) is not None
    assert current_snapshot(pipeline.root).name in names  # type: ignore[union-attr]
    pipeline.delete("n1")
    pipeline.delete("n2")
    listed = {s.name for s in pipeline.segments()}  # the seeds and n0 (n1, n2: deleted whole)
    kept = pipeline.root / "snapshots" / str(pipeline.index.manifest["previous"]) / MANIFEST
    previous = {s["name"] for s in json.loads(kept.read_text())["segments"]}
    on_disk = {p.name for p in (pipeline.root / "segments").iterdir()}
    assert len(listed) == 2 and on_disk == listed | previous


def test_an_index_of_format_3_reads_as_one_segment_and_becomes_segments_on_its_next_write(
        seed_index: Path, tmp_path: Path, embedder: SentenceTransformerEmbedder) -> None:
    root = tmp_path / "index"
    shutil.copytree(seed_index, root)
    ours = Pipeline(Settings(index_dir=seed_index), embedder=embedder)
    questions = [q for q, _, _ in SEED_QUESTIONS]
    before = {(n, q): ours.search(q, 5, n) for n in RETRIEVER_NAMES for q in questions}
    folder = write_legacy(root, fmt=3)
    old = Pipeline(Settings(index_dir=root), embedder=embedder)
    index = old.index
    assert index.path == folder and len(index.segments) == 1
    assert isinstance(index.lexical, Bm25sLexical)  # the bm25s model it was written with
    for (name, q), hits in before.items():  # the same hits, scores included
        assert [(h.chunk, h.score, h.row) for h in old.search(q, 5, name)] == \
            [(h.chunk, h.score, h.row) for h in hits], (name, q)

    # Its next write turns it into segments: the same as an index of segments given that write.
    note = b"The kettle whistles at exactly ninety degrees."
    old.upload("note.txt", note)
    snapshot = read_snapshot(root)
    assert snapshot is not None and not snapshot.legacy and len(snapshot.segments) == 2
    assert snapshot.manifest["format"] == FORMAT and snapshot.manifest["documents"] == 3
    shutil.copytree(seed_index, tmp_path / "reference")
    reference = Pipeline(Settings(index_dir=tmp_path / "reference"), embedder=embedder)
    reference.upload("note.txt", note)
    for name in RETRIEVER_NAMES:
        for q in [*questions, "When does the kettle whistle?"]:
            assert [(h.chunk, h.score, h.row) for h in old.search(q, 5, name)] == \
                [(h.chunk, h.score, h.row) for h in reference.search(q, 5, name)], (name, q)


