"""What an ingest changes: one rule for files, documents made in code and uploads. The
tests that read files parse them in worker processes (rag.isolation), so only the pure
planning ones are in the unit tier."""

from __future__ import annotations

import hashlib
import json
import os
import sqlite3
from pathlib import Path
from typing import Any

import pytest

from eval.bench.hostile import paragraph_bomb_docx
from rag.config import Settings
from rag.documents import parse_bytes
from rag.errors import DocumentExistsError, FileTooLargeError, UnsupportedFileError
from rag.index import SEGMENTS, Index, read_snapshot
from rag.ingest import Catalog, gone, plan, read_paths, read_upload
from rag.isolation import ParseLimits
from rag.pipeline import Pipeline
from rag.segment import STORE
from rag.store import Store
from rag.types import Document
from tests.formats_corpus import slow_html
from tests.legacy import write_legacy, write_unpathed_segments
from tests.standin import HashingEmbedder

LIMITS = ParseLimits(max_chars=10_000, timeout_s=60, memory_mb=2048)


def _doc(doc_id: str, text: str) -> Document:
    return parse_bytes(text.encode(), f"{doc_id}.txt", doc_id, f"{doc_id}.txt")


@pytest.mark.unit
def test_plan_adds_new_replaces_changed_and_skips_unchanged() -> None:
    same, edited, new = _doc("a", "Tea is a drink."), _doc("b", "Now longer."), _doc("c", "New.")
    known = {"a": same.sha256, "b": _doc("b", "Old text.").sha256, "gone": "x"}
    todo, report = plan(known.get, [same, edited, new])
    assert [d.doc_id for d in todo] == ["b", "c"]
    assert (report.added, report.replaced, report.skipped) == (["c"], ["b"], ["a"])
    assert report.changed and not report.deleted  # deletions are decided by the caller


@pytest.mark.unit
def test_an_unchanged_upload_is_written_again_as_a_replacement() -> None:
    doc = _doc("a", "Tea is a drink.")
    todo, report = plan({"a": doc.sha256}.get, [doc], rewrite_unchanged=True)
    assert todo == [doc] and report.replaced == ["a"] and not report.skipped


@pytest.mark.unit
def test_nothing_to_do_is_no_change() -> None:
    doc = _doc("a", "Tea is a drink.")
    todo, report = plan({"a": doc.sha256}.get, [doc])
    assert todo == [] and not report.changed


def test_read_paths_keeps_indexed_ids_and_reads_a_file_named_twice_once(tmp_path: Path) -> None:
    (tmp_path / "x").mkdir()
    (tmp_path / "tea.md").write_text("# Tea\n\nOolong.")
    (tmp_path / "x" / "tea.md").write_text("# Tea too\n\nGreen.")
    first = str((tmp_path / "tea.md").resolve())
    docs = read_paths([tmp_path, tmp_path / "tea.md"], Catalog({first: ("kept-id", "old")}),
                      LIMITS)
    assert sorted(d.doc_id for d in docs) == ["kept-id", "x/tea"]
    assert sorted((d.source, d.path) for d in docs) == [
        ("tea.md", first), ("x/tea.md", str((tmp_path / "x" / "tea.md").resolve()))]


def test_a_file_is_read_again_only_when_its_bytes_or_user_metadata_changed(
        tmp_path: Path) -> None:
    """A folder ingest (a sync run) does not parse an indexed file whose bytes are the same
    (a scan is not read with OCR again), unless its user metadata changed: a new sidecar, or
    other --meta; then it is read and, by the plan, replaced."""
    (tmp_path / "a.txt").write_text("The ferry leaves at noon.\n")
    (tmp_path / "b.txt").write_text("The bus leaves at one.\n")
    held = {str((tmp_path / n).resolve()): (n.removesuffix(".txt"), hashlib.sha256(
        (tmp_path / n).read_bytes()).hexdigest()) for n in ("a.txt", "b.txt")}

    def read(given: dict[str, Any]) -> tuple[list[str], list[str]]:
        unchanged: list[tuple[str, str]] = []
        docs = read_paths([tmp_path], Catalog(held), LIMITS, [], unchanged=unchanged,
                          given=given)
        return sorted(d.doc_id for d in docs), sorted(doc_id for _, doc_id in unchanged)

    os.utime(tmp_path / "a.txt", (1, 1))  # touched, not changed
    assert read({}) == ([], ["a", "b"])
    (tmp_path / "b.txt.meta.json").write_text(json.dumps({"team": "transport"}))
    assert read({}) == (["b"], ["a"])
    assert read({"owner": "ann"}) == (["a", "b"], [])
    (tmp_path / "b.txt.meta.json").write_text("{not json")  # read, so that it is reported
    assert read({}) == ([], ["a"])

    pipeline = Pipeline(Settings(index_dir=tmp_path / "index"), embedder=HashingEmbedder())
    (tmp_path / "b.txt.meta.json").write_text(json.dumps({"team": "transport"}))
    pipeline.ingest([tmp_path])
    (tmp_path / "b.txt.meta.json").write_text(json.dumps({"team": "buses"}))
    report = pipeline.ingest([tmp_path])
    assert report.replaced == ["b"] and report.skipped == ["a"] and report.reused == 1
    assert pipeline.document("b").metadata["team"] == "buses"


def test_read_paths_lists_a_folder_file_it_cannot_read_and_raises_for_a_named_one(
        tmp_path: Path) -> None:
    (tmp_path / "a.txt").write_text("Alpha.")
    (tmp_path / "photo.txt").write_bytes(b"GIF89a" + bytes(64))
    failed: list[tuple[str, str]] = []
    docs = read_paths([tmp_path], Catalog(), LIMITS, failed)
    assert [d.doc_id for d in docs] == ["a"]
    assert failed == [(str((tmp_path / "photo.txt").resolve()),
                       "the content is a GIF image, not a document")]
    with pytest.raises(UnsupportedFileError, match="GIF"):
        read_paths([tmp_path], Catalog(), LIMITS)  # no list: the first failure raises
    with pytest.raises(UnsupportedFileError, match="GIF"):
        read_paths([tmp_path / "photo.txt"], Catalog(), LIMITS, [])  # named directly
    sources = {str((tmp_path / "photo.txt").resolve()): ("photo", "s")}
    assert gone([tmp_path], docs, sources, failed) == []  # still there, only unreadable


def test_a_folder_file_over_a_parse_limit_is_skipped_and_reported(tmp_path: Path) -> None:
    """The limits of uploads hold for each file of a folder: issue 26's .docx, and a file
    its worker cannot parse within the time budget, are listed with the limit named."""
    (tmp_path / "a.txt").write_text("Alpha.")
    (tmp_path / "bomb.docx").write_bytes(paragraph_bomb_docx())
    (tmp_path / "slow.html").write_bytes(slow_html())
    failed: list[tuple[str, str]] = []
    docs = read_paths([tmp_path], Catalog(), ParseLimits(10_000, 1.0, 2048), failed)
    assert [d.doc_id for d in docs] == ["a"]
    reasons = dict(failed)
    assert "more than 4000000 XML elements" in reasons[str(tmp_path / "bomb.docx")]
    assert "more than 1 s (RAG_PARSE_TIMEOUT_S)" in reasons[str(tmp_path / "slow.html")]


def test_gone_names_only_files_missing_from_the_folders_read(tmp_path: Path) -> None:
    (tmp_path / "a.txt").write_text("Alpha.")
    docs = read_paths([tmp_path], Catalog(), LIMITS)
    inside = str((tmp_path / "b.txt").resolve())
    elsewhere = "/elsewhere/c.txt"
    assert docs[0].path is not None
    sources = {docs[0].path: ("a", "s"), inside: ("b", "s"), elsewhere: ("c", "s")}
    assert gone([tmp_path], docs, sources) == ["b"]


def test_an_upload_over_the_limit_or_of_an_existing_id_is_refused_before_it_is_read() -> None:
    with pytest.raises(FileTooLargeError, match="over the upload limit of 4 bytes"):
        read_upload("a.txt", b"hello", 4, LIMITS)
    doc = read_upload("../a b.txt", b"hello", 5, LIMITS)
    assert doc.doc_id.startswith("a_b-") and (doc.source, doc.path) == ("upload:a b.txt", None)
    with pytest.raises(DocumentExistsError, match="replace=true"):
        read_upload("a b.txt", b"%PDF- never parsed", 100, LIMITS, known={doc.doc_id: "s"}.get)
    assert read_upload("a b.txt", b"again", 100, LIMITS, {doc.doc_id: "s"}.get, True).text \
        == "again"


def _agree(root: Path) -> set[str]:
    """The documents in the current snapshot, after checking its three structures agree."""
    index = Index(root)
    try:
        ids, _ = index.store.all_chunks()
        assert sorted(ids) == sorted(index.vectors.ids().tolist()) \
            == sorted(index.lexical.ids.tolist())
        assert index.sentences.chunk_ids() == set(ids)
        return {d["doc_id"] for d in index.store.documents()}
    finally:
        index.close()


def test_edits_reuse_vectors_and_every_path_keeps_the_snapshot_whole(tmp_path: Path) -> None:
    docs = tmp_path / "docs"
    docs.mkdir()
    body = " ".join(f"Survey {n} found basalt and granite in valley {n}." for n in range(80))
    (docs / "rocks.txt").write_text(f"Rocks\n\n{body}\n")
    (docs / "tea.md").write_text("# Tea\n\nOolong is partly oxidised. Green tea is steamed.\n")
    model = HashingEmbedder()
    pipeline = Pipeline(Settings(index_dir=tmp_path / "index", chunk_tokens=64,
                                 chunk_overlap=8), embedder=model)
    first = pipeline.ingest([docs])
    assert sorted(first.added) == ["rocks", "tea"] and first.reused == 0 and first.chunks > 3
    assert _agree(pipeline.root) == {"rocks", "tea"}

    (docs / "rocks.txt").write_text(f"Rocks\n\n{body} A last survey found obsidian.\n")
    before = model.texts_embedded
    second = pipeline.ingest([docs])
    assert second.replaced == ["rocks"] and second.skipped == ["tea"]
    assert 0 < second.reused < second.chunks  # only the changed chunk meets the model
    assert model.texts_embedded - before < first.chunks

    pipeline.upload("notes.txt", b"Obsidian is volcanic glass.")
    assert _agree(pipeline.root) == {"rocks", "tea", "notes"}
    (docs / "tea.md").unlink()
    pruned = pipeline.ingest([docs], prune=True)
    assert pruned.deleted == ["tea"] and _agree(pipeline.root) == {"rocks", "notes"}
    assert pipeline.search("obsidian glass", 2, "bm25")[0].chunk.doc_id == "notes"


def test_an_interrupted_folder_ingest_resumes_without_embedding_again(tmp_path: Path) -> None:
    docs = tmp_path / "docs"
    docs.mkdir()
    for i in range(6):
        (docs / f"note{i}.txt").write_text(
            f"Note {i}\n\nSurvey {i} found basalt in valley {i}. It rained on day {i}.\n")
    whole = HashingEmbedder()
    Pipeline(Settings(index_dir=tmp_path / "all"), embedder=whole).ingest([docs])
    settings = Settings(index_dir=tmp_path / "index", ingest_checkpoint_docs=2)
    with pytest.raises(KeyboardInterrupt):
        Pipeline(settings, embedder=HashingEmbedder(fail_after=whole.texts_embedded * 3 // 4)
                 ).ingest([docs])
    kept = _agree(settings.index_dir)
    assert len(kept) in (2, 4)  # whole checkpoints only, each a complete snapshot
    resumed = HashingEmbedder()
    report = Pipeline(settings, embedder=resumed).ingest([docs])
    assert sorted(report.skipped) == sorted(kept) and len(report.added) == 6 - len(kept)
    assert resumed.texts_embedded < whole.texts_embedded  # what was committed is not redone
    assert _agree(settings.index_dir) == {f"note{i}" for i in range(6)}


def _stores(root: Path) -> list[Path]:
    """The store files the current snapshot reads."""
    snapshot = read_snapshot(root)
    assert snapshot is not None
    if snapshot.legacy:
        return [snapshot.path / STORE]
    return [root / SEGMENTS / s.name / STORE for s in snapshot.segments]


@pytest.mark.parametrize("layout", ["format 3", "issue 26's format 4", "issue 27's format 4"])
def test_an_older_index_keeps_its_ids_and_shows_no_absolute_path(
        tmp_path: Path, layout: str) -> None:
    """What an older version wrote. Format 3 and issue 27's format 4 (segments, before the
    store's ``path`` column) kept the absolute path as source and made ids by the older rule
    (the file name alone for a nested file); issue 26's format 4 (before segments) has the
    column and today's ids. Read as it is, sources show their relative part; a re-ingest
    finds every file by its path (nothing added twice), and once rewritten into segments
    (the next write, then a merge) every store has the paths in their column. (The folder a
    file was ingested from is not recorded in the older stores: a source shows the file's
    name and as many folders as its doc_id has.)"""
    docs = tmp_path / "docs"
    (docs / "x").mkdir(parents=True)
    (docs / "x" / "tea.md").write_text("# Tea\n\nOolong is partly oxidised.\n")
    (docs / "rocks.txt").write_text("Rocks\n\nBasalt is volcanic.\n")
    settings = Settings(index_dir=tmp_path / "index", auto_merge=False)
    pipeline = Pipeline(settings, embedder=HashingEmbedder())
    pipeline.ingest([docs])
    if layout == "issue 27's format 4":
        write_unpathed_segments(pipeline.root)
    else:
        write_legacy(pipeline.root, fmt=3 if layout == "format 3" else 4)
    tea = "x/tea"
    if layout != "issue 26's format 4":  # the older id rule
        tea = "tea"
        for store in _stores(pipeline.root):
            with sqlite3.connect(store) as db:
                db.execute("UPDATE documents SET doc_id = 'tea' WHERE doc_id = 'x/tea'")
                db.execute("UPDATE chunks SET doc_id = 'tea' WHERE doc_id = 'x/tea'")
                db.execute("UPDATE marks SET doc_id = 'tea' WHERE doc_id = 'x/tea'")
            db.close()

    old = Pipeline(settings, embedder=HashingEmbedder())
    listed = {d["doc_id"]: d["source"] for d in old.documents()}
    assert listed == {tea: f"{tea}.md", "rocks": "rocks.txt"}
    assert old.document(tea).source == f"{tea}.md"
    assert {h.source for h in old.search("oolong basalt", 2, "bm25")} == set(listed.values())
    assert old.documents(with_paths=True)[1]["path"] == str((docs / "x" / "tea.md").resolve())

    (docs / "new.txt").write_text("New\n\nGranite is plutonic.\n")
    report = old.ingest([docs])
    assert report.added == ["new"] and sorted(report.skipped) == sorted(["rocks", tea])
    old.compact(max_segments=1)
    [path] = _stores(pipeline.root)
    store = Store(path, readonly=True)
    try:
        rows = store._rows("SELECT doc_id, source, path FROM documents ORDER BY doc_id")
    finally:
        store.close()
    assert [tuple(r) for r in rows] == [
        ("new", "new.txt", str((docs / "new.txt").resolve())),
        ("rocks", "rocks.txt", str((docs / "rocks.txt").resolve())),
        (tea, f"{tea}.md", str((docs / "x" / "tea.md").resolve()))]
