"""What an ingest changes: one rule for files, documents made in code and uploads."""

from __future__ import annotations

from pathlib import Path

import pytest

from rag.config import Settings
from rag.documents import parse_bytes
from rag.errors import FileTooLargeError, UnsupportedFileError
from rag.index import Index
from rag.ingest import Catalog, gone, plan, read_paths, read_upload, safe_doc_id
from rag.pipeline import Pipeline
from rag.types import Document
from tests.standin import HashingEmbedder

pytestmark = pytest.mark.unit


def _doc(doc_id: str, text: str) -> Document:
    return parse_bytes(text.encode(), f"{doc_id}.txt", doc_id, f"/docs/{doc_id}.txt")


def test_plan_adds_new_replaces_changed_and_skips_unchanged() -> None:
    same, edited, new = _doc("a", "Tea is a drink."), _doc("b", "Now longer."), _doc("c", "New.")
    known = {"a": same.sha256, "b": _doc("b", "Old text.").sha256, "gone": "x"}
    todo, report = plan(known.get, [same, edited, new])
    assert [d.doc_id for d in todo] == ["b", "c"]
    assert (report.added, report.replaced, report.skipped) == (["c"], ["b"], ["a"])
    assert report.changed and not report.deleted  # deletions are decided by the caller


def test_an_unchanged_upload_is_written_again_as_a_replacement() -> None:
    doc = _doc("a", "Tea is a drink.")
    todo, report = plan({"a": doc.sha256}.get, [doc], rewrite_unchanged=True)
    assert todo == [doc] and report.replaced == ["a"] and not report.skipped


def test_nothing_to_do_is_no_change() -> None:
    doc = _doc("a", "Tea is a drink.")
    todo, report = plan({"a": doc.sha256}.get, [doc])
    assert todo == [] and not report.changed


def test_read_paths_keeps_indexed_ids_and_reads_a_file_named_twice_once(tmp_path: Path) -> None:
    (tmp_path / "x").mkdir()
    (tmp_path / "tea.md").write_text("# Tea\n\nOolong.")
    (tmp_path / "x" / "tea.md").write_text("# Tea too\n\nGreen.")
    first = str((tmp_path / "tea.md").resolve())
    docs = read_paths([tmp_path, tmp_path / "tea.md"],
                      Catalog({first: ("kept-id", "old")}), 10_000)
    assert sorted(d.doc_id for d in docs) == ["kept-id", "tea"]
    assert len({d.source for d in docs}) == 2


def test_read_paths_lists_a_folder_file_it_cannot_read_and_raises_for_a_named_one(
        tmp_path: Path) -> None:
    (tmp_path / "a.txt").write_text("Alpha.")
    (tmp_path / "photo.txt").write_bytes(b"\x89PNG\r\n\x1a\n" + bytes(64))
    failed: list[tuple[str, str]] = []
    docs = read_paths([tmp_path], Catalog(), 10_000, failed)
    assert [d.doc_id for d in docs] == ["a"]
    assert failed == [(str((tmp_path / "photo.txt").resolve()),
                       "the content is a PNG image, not a document")]
    with pytest.raises(UnsupportedFileError, match="PNG"):
        read_paths([tmp_path], Catalog(), 10_000)  # no list: the first failure raises
    with pytest.raises(UnsupportedFileError, match="PNG"):
        read_paths([tmp_path / "photo.txt"], Catalog(), 10_000, [])  # named directly
    sources = {str((tmp_path / "photo.txt").resolve()): ("photo", "s")}
    assert gone([tmp_path], docs, sources, failed) == []  # still there, only unreadable


def test_gone_names_only_files_missing_from_the_folders_read(tmp_path: Path) -> None:
    (tmp_path / "a.txt").write_text("Alpha.")
    docs = read_paths([tmp_path], Catalog(), 10_000)
    inside = str((tmp_path / "b.txt").resolve())
    elsewhere = "/elsewhere/c.txt"
    sources = {docs[0].source: ("a", "s"), inside: ("b", "s"), elsewhere: ("c", "s")}
    assert gone([tmp_path], docs, sources) == ["b"]


def test_safe_doc_id_never_keeps_path_parts() -> None:
    assert safe_doc_id("../../x/y/report.final.pdf") == "report.final"
    assert safe_doc_id("C:\\Users\\me\\a b.txt") == "a_b"
    assert safe_doc_id("....txt") == "upload"


def test_an_upload_over_the_limit_is_refused_before_it_is_read() -> None:
    with pytest.raises(FileTooLargeError, match="over the upload limit of 4 bytes"):
        read_upload("a.txt", b"hello", 4, 100)
    doc = read_upload("../a b.txt", b"hello", 5, 100)
    assert (doc.doc_id, doc.source) == ("a_b", "upload:a_b")


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
