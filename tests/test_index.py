"""Snapshots on disk: manifest checks, one writer, and crash safety."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import numpy as np
import pytest

from rag.config import Settings
from rag.documents import parse_bytes
from rag.embedding import SentenceTransformerEmbedder
from rag.errors import IndexBusyError, IndexMismatchError, NoIndexError
from rag.index import (
    KEEP_SNAPSHOTS,
    Index,
    IndexHandle,
    IndexWriter,
    current_snapshot,
    writer_lock,
)
from rag.pipeline import Pipeline
from rag.types import Chunk
from tests.seed_facts import SEED_A, SEED_B, SEEDS


def test_loading_checks_model_and_dimension(seed_index: Path) -> None:
    Index(seed_index, "all-MiniLM-L6-v2", 384).close()
    with pytest.raises(IndexMismatchError, match=r"built with model 'all-MiniLM-L6-v2'.*'bge'"):
        Index(seed_index, "bge", None)
    with pytest.raises(IndexMismatchError, match="384-dimensional.*768"):
        Index(seed_index, None, 768)


def test_writer_refuses_an_index_of_another_model(seed_index: Path) -> None:
    with pytest.raises(IndexMismatchError), IndexWriter(seed_index, "other", 384, {}):
        pass
    assert not list((seed_index / "snapshots").glob(".tmp-*"))


@pytest.mark.unit
def test_missing_index_says_what_to_run(tmp_path: Path) -> None:
    with pytest.raises(NoIndexError, match="run `rag ingest PATH`"):
        Index(tmp_path / "nothing")


@pytest.mark.unit
def test_a_second_writer_fails_clearly(tmp_path: Path) -> None:
    with writer_lock(tmp_path), pytest.raises(IndexBusyError, match="another process"):
        IndexWriter(tmp_path, "m", 3, {}, wait_s=0.2).__enter__()


@pytest.mark.unit
def test_an_uncommitted_writer_leaves_nothing(tmp_path: Path) -> None:
    with IndexWriter(tmp_path, "m", 3, {}) as w:
        w.vectors.index([1], np.ones((1, 3), dtype=np.float32))
    assert current_snapshot(tmp_path) is None
    assert not list((tmp_path / "snapshots").iterdir())


def _write_one(root: Path, doc_id: str) -> str:
    doc = parse_bytes(f"About {doc_id}.".encode(), f"{doc_id}.txt", doc_id, doc_id)
    chunk = Chunk(doc_id, f"{doc_id}#0", 0, doc.text, 0, len(doc.text), 3)
    with IndexWriter(root, "m", 3, {}) as w:
        w.add(doc, [chunk], np.ones((1, 3), dtype=np.float32), [], np.zeros((0, 3), np.float32))
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


def test_old_snapshots_are_collected(pipeline: Pipeline, corpus: Path) -> None:
    pipeline.ingest([corpus])
    for n in range(3):
        pipeline.upload(f"n{n}.txt", f"Note number {n} about tea.".encode())
    names = [p.name for p in (pipeline.root / "snapshots").iterdir()]
    assert len(names) == KEEP_SNAPSHOTS
    assert current_snapshot(pipeline.root) is not None
    assert current_snapshot(pipeline.root).name in names  # type: ignore[union-attr]


INGEST = textwrap.dedent("""
    import sys
    from pathlib import Path
    from rag.config import Settings
    from rag.pipeline import Pipeline
    pipeline = Pipeline(Settings(index_dir=Path(sys.argv[1])))
    pipeline.embedder
    print("model loaded", flush=True)
    pipeline.ingest([Path(sys.argv[2])])
""")


def _bulk_corpus(folder: Path, n_docs: int) -> None:
    folder.mkdir()
    topics = ["rivers", "glaciers", "volcanoes", "deserts", "forests", "reefs"]
    for i in range(n_docs):
        t = topics[i % len(topics)]
        body = " ".join(f"Observation {j} of survey {i} describes {t} in region {j * i}."
                        for j in range(40))
        (folder / f"survey_{i:03d}.txt").write_text(f"Survey {i}\n\n{body}\n")


def _consistent(root: Path) -> set[str]:
    index = Index(root, "all-MiniLM-L6-v2", 384)
    try:
        ids, _ = index.store.all_chunks()
        assert sorted(ids) == sorted(index.vectors.ids().tolist()) \
            == sorted(index.lexical.ids.tolist())
        assert index.manifest["chunks"] == len(ids)
        return {d["doc_id"] for d in index.store.documents()}
    finally:
        index.close()


@pytest.mark.slow
@pytest.mark.parametrize("moment", ["embedding", "writing"])
def test_killed_ingest_leaves_the_previous_index_serving(
        moment: str, tmp_path: Path, embedder: SentenceTransformerEmbedder) -> None:
    root = tmp_path / "index"
    Pipeline(Settings(index_dir=root), embedder=embedder).ingest([SEEDS])  # the old snapshot
    before = current_snapshot(root)
    _bulk_corpus(tmp_path / "bulk", 40)
    proc = subprocess.Popen([sys.executable, "-c", INGEST, str(root), str(tmp_path / "bulk")],
                            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    deadline = time.monotonic() + 240
    try:
        assert proc.stdout is not None and proc.stdout.readline().startswith("model loaded")
        if moment == "embedding":
            time.sleep(1.0)  # reading and chunking take well under a second here
        while moment == "writing" and time.monotonic() < deadline and proc.poll() is None:
            if list((root / "snapshots").glob(".tmp-*")):
                break
            time.sleep(0.001)
        assert proc.poll() is None, "the ingest finished before it could be interrupted"
        os.kill(proc.pid, signal.SIGKILL)
    finally:
        proc.wait()
    after = current_snapshot(root)
    assert after == before
    assert _consistent(root) == {SEED_A, SEED_B}
    # The next ingest takes the lock the dead process held, and cleans up after it.
    report = Pipeline(Settings(index_dir=root), embedder=embedder).ingest([tmp_path / "bulk"])
    assert len(report.added) == 40
    assert not list((root / "snapshots").glob(".tmp-*"))
    assert len(_consistent(root)) == 42
