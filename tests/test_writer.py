"""Writing snapshots: one writer, a commit that writes only its own segment and manifest,
deletions recorded against the segments holding them, and crash safety."""

from __future__ import annotations

import json
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
from rag.errors import IndexBusyError, IndexMismatchError
from rag.index import Index, current_snapshot, read_snapshot
from rag.pipeline import Pipeline
from rag.types import Chunk
from rag.writer import IndexWriter, writer_lock
from tests.seed_facts import SEED_A, SEED_B, SEEDS


def add(w: IndexWriter, doc_id: str, text: str | None = None) -> None:
    """A one-chunk, one-sentence document with a 3-dimensional vector."""
    doc = parse_bytes((text or f"About {doc_id}.").encode(), f"{doc_id}.txt", doc_id, doc_id)
    chunk = Chunk(doc_id, f"{doc_id}#0", 0, doc.text, 0, len(doc.text), 3)
    vector = np.full((1, 3), 3 ** -0.5, dtype=np.float32)
    w.add(doc, [chunk], vector, [(0, 0, len(doc.text))], vector)


def _files(folder: Path) -> dict[str, tuple[int, int]]:
    return {p.name: (p.stat().st_ino, p.stat().st_mtime_ns) for p in folder.rglob("*")}


def test_writer_refuses_an_index_of_another_model(seed_index: Path) -> None:
    with pytest.raises(IndexMismatchError), IndexWriter(seed_index, "other", 384, {}):
        pass
    assert not list((seed_index / "snapshots").glob(".tmp-*"))
    assert not list((seed_index / "segments").glob(".tmp-*"))


@pytest.mark.unit
def test_a_second_writer_fails_clearly(tmp_path: Path) -> None:
    with writer_lock(tmp_path), pytest.raises(IndexBusyError, match="another process"):
        IndexWriter(tmp_path, "m", 3, {}, wait_s=0.2).__enter__()


@pytest.mark.unit
def test_an_uncommitted_writer_leaves_nothing(tmp_path: Path) -> None:
    with IndexWriter(tmp_path, "m", 3, {}) as w:
        add(w, "a")
    assert current_snapshot(tmp_path) is None
    assert not list((tmp_path / "snapshots").iterdir())
    assert not list((tmp_path / "segments").iterdir())


@pytest.mark.unit
def test_a_commit_writes_its_segment_and_a_manifest_and_changes_no_other_file(
        tmp_path: Path) -> None:
    for doc_ids in (("a", "f"), ("b",)):
        with IndexWriter(tmp_path, "m", 3, {}) as w:
            for doc_id in doc_ids:
                add(w, doc_id)
            w.commit()
    first, second = read_snapshot(tmp_path).segments  # type: ignore[union-attr]
    before = _files(tmp_path / "segments" / first.name)
    with IndexWriter(tmp_path, "m", 3, {}) as w:
        add(w, "c")
        add(w, "d", "About d. And more.")
        add(w, "e")
        w.delete("e")  # added and taken back in the same write: never written
        w.delete("b")  # the whole of the second segment: dropped from the snapshot
        w.commit()
    with IndexWriter(tmp_path, "m", 3, {}) as w:
        w.delete("d")  # a deletion only: no new segment
        add(w, "a", "About a, again.")  # a replacement: deleted where it was, added anew
        w.delete("a")
        add(w, "a", "About a, again.")
        assert w.has("a") and w.has("c") and not w.has("b") and not w.has("e")
        w.commit()
    assert _files(tmp_path / "segments" / first.name) == before
    snapshot = read_snapshot(tmp_path)
    assert snapshot is not None
    names = [s.name for s in snapshot.segments]
    assert names[0] == first.name and second.name not in names and len(names) == 3
    assert [dict(s.deleted) for s in snapshot.segments] == [{"a": (1, 1)}, {"d": (1, 1)}, {}]
    assert (snapshot.manifest["documents"], snapshot.manifest["chunks"],
            snapshot.manifest["sentences"]) == (3, 3, 3)
    index = Index(tmp_path)
    assert [d["doc_id"] for d in index.store.documents()] == ["a", "c", "f"]
    assert index.store.document("a").text == "About a, again."  # type: ignore[union-attr]
    rows = sorted(index.vectors.ids().tolist())
    assert rows == index.lexical.ids.tolist() == index.store.all_chunks()[0]
    assert sorted(index.sentences.chunk_ids()) == rows and index.sentences.count() == 3
    assert [int(i) for i in index.vectors.search(np.ones((1, 3), np.float32), 9)[1][0]
            if i >= 0] == rows
    assert rows[-1] == snapshot.manifest["next_row"] - 1  # row ids are never given twice
    index.close()


@pytest.mark.unit
def test_deleting_every_document_leaves_an_empty_index_that_loads(tmp_path: Path) -> None:
    with IndexWriter(tmp_path, "m", 3, {}) as w:
        add(w, "a")
        w.commit()
    with IndexWriter(tmp_path, "m", 3, {}) as w:
        w.delete("a")
        w.commit()
    index = Index(tmp_path)
    assert index.store.counts() == (0, 0) and index.vectors.count() == 0
    assert index.lexical.search("about", 3)[1].tolist() == []
    assert json.loads((current_snapshot(tmp_path) / "manifest.json").read_text()  # type: ignore[operator]
                      )["segments"] == []


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
            if list((root / "segments").glob(".tmp-*")):
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
    assert not list((root / "segments").glob(".tmp-*"))
    assert len(_consistent(root)) == 42
