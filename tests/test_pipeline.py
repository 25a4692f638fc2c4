"""Ingest end to end: incremental counts, prune, ids, and the snapshot on disk."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from rag.config import Settings
from rag.embedding import SentenceTransformerEmbedder
from rag.errors import (
    DocumentExistsError,
    DocumentNotFoundError,
    InputError,
    NoIndexError,
    UnreadableFileError,
)
from rag.index import Index, current_snapshot
from rag.pipeline import Pipeline
from tests import formats_corpus as fc
from tests.seed_facts import SEED_A, SEED_B


def _state(root: Path) -> tuple[set[str], list[int], list[int], list[int]]:
    index = Index(root)
    try:
        docs = {d["doc_id"] for d in index.store.documents()}
        store_ids, _ = index.store.all_chunks()
        assert index.sentences.chunk_ids() == set(store_ids)  # every chunk has sentences
        return docs, sorted(store_ids), sorted(index.vectors.ids().tolist()), \
            sorted(index.lexical.ids.tolist())
    finally:
        index.close()


def test_ingest_skips_replaces_and_prunes(pipeline: Pipeline, corpus: Path) -> None:
    first = pipeline.ingest([corpus])
    assert sorted(first.added) == [SEED_A, SEED_B] and first.chunks >= 10

    again = pipeline.ingest([corpus])
    assert (again.added, again.replaced, again.deleted) == ([], [], [])
    assert sorted(again.skipped) == [SEED_A, SEED_B] and again.snapshot is None

    changed = corpus / f"{SEED_B}.txt"
    changed.write_text(changed.read_text() + "\nThe panel met again in the spring of 2016.\n")
    (corpus / "extra.md").write_text("# Tea\n\nGreen tea leaves are steamed to stop oxidation.\n")
    third = pipeline.ingest([corpus])
    assert third.replaced == [SEED_B] and third.added == ["extra"] and third.skipped == [SEED_A]
    assert "spring of 2016" in pipeline.document(SEED_B).text

    (corpus / f"{SEED_A}.txt").unlink()
    kept = pipeline.ingest([corpus])
    assert kept.deleted == [] and SEED_A in {d["doc_id"] for d in pipeline.documents()}
    pruned = pipeline.ingest([corpus], prune=True)
    assert pruned.deleted == [SEED_A]
    assert {d["doc_id"] for d in pipeline.documents()} == {SEED_B, "extra"}

    docs, store_ids, dense_ids, bm25_ids = _state(pipeline.root)
    assert docs == {SEED_B, "extra"}
    assert store_ids == dense_ids == bm25_ids


def test_manifest_describes_the_index(pipeline: Pipeline, corpus: Path) -> None:
    report = pipeline.ingest([corpus])
    snapshot = current_snapshot(pipeline.root)
    assert snapshot is not None and snapshot.name == report.snapshot
    manifest = json.loads((snapshot / "manifest.json").read_text())
    assert manifest["model"] == "all-MiniLM-L6-v2" and manifest["dimension"] == 384
    assert manifest["chunker"] == {"tokenizer": "cl100k_base", "max_tokens": 200,
                                   "overlap": 30, "max_wordpieces": 256}
    assert manifest["documents"] == 2 and manifest["chunks"] == report.chunks


def test_same_file_name_in_two_folders_gets_two_ids(pipeline: Pipeline, tmp_path: Path) -> None:
    for sub in ("a", "b"):
        (tmp_path / "docs" / sub).mkdir(parents=True)
        (tmp_path / "docs" / sub / "notes.txt").write_text(f"Notes from folder {sub}.")
    report = pipeline.ingest([tmp_path / "docs"])
    assert sorted(report.added) == ["a/notes", "b/notes"]  # the whole relative path
    assert {d["source"] for d in pipeline.documents()} == {"a/notes.txt", "b/notes.txt"}


def test_a_file_named_twice_is_indexed_once(pipeline: Pipeline, corpus: Path) -> None:
    report = pipeline.ingest([corpus, corpus / f"{SEED_A}.txt", corpus])
    assert sorted(report.added) == [SEED_A, SEED_B]


def test_a_bad_file_in_a_folder_is_skipped_and_reported(pipeline: Pipeline,
                                                       corpus: Path) -> None:
    pipeline.ingest([corpus])
    before = current_snapshot(pipeline.root)
    (corpus / "bad.txt").write_bytes(b"\xff\xfe\x00broken")
    (corpus / "good.txt").write_text("A perfectly good new document about oolong tea.")
    with pytest.raises(UnreadableFileError, match=r"1 file\(s\).*bad\.txt.*without --strict"):
        pipeline.ingest([corpus], strict=True)
    assert current_snapshot(pipeline.root) == before
    assert "good" not in {d["doc_id"] for d in pipeline.documents()}

    report = pipeline.ingest([corpus])
    assert report.added == ["good"] and report.snapshot is not None
    assert report.failed == [(str((corpus / "bad.txt").resolve()),
                              "not valid UTF-16 text (byte 8); convert it to UTF-8 and retry")]
    assert pipeline.search("oolong tea", k=1)[0].chunk.doc_id == "good"

    # An indexed file that breaks keeps its indexed version, even with --prune.
    (corpus / "good.txt").write_bytes(b"GIF89a" + bytes(64))
    pruned = pipeline.ingest([corpus], prune=True)
    assert pruned.deleted == [] and len(pruned.failed) == 2
    assert "good" in {d["doc_id"] for d in pipeline.documents()}
    # A file named directly is still an error.
    with pytest.raises(UnreadableFileError, match=r"bad\.txt"):
        pipeline.ingest([corpus / "bad.txt"])


def test_no_index_and_unknown_document_errors(pipeline: Pipeline) -> None:
    with pytest.raises(NoIndexError, match="rag ingest"):
        pipeline.search("anything")
    with pytest.raises(NoIndexError):
        pipeline.delete("x")


def test_upload_and_delete_keep_all_three_structures_in_step(pipeline: Pipeline,
                                                             corpus: Path) -> None:
    pipeline.ingest([corpus])
    doc_id, report = pipeline.upload("../../etc/Tea Notes.md",
                                     b"# Tea\n\nOolong is partly oxidised.")
    assert doc_id.startswith("Tea_Notes-") and report.added == [doc_id]
    assert pipeline.document(doc_id).source == "upload:Tea Notes.md"
    edited = b"# Tea\n\nOolong is partly oxidised, slowly."
    with pytest.raises(DocumentExistsError, match=doc_id):  # never replaced unasked
        pipeline.upload("Tea Notes.md", edited)
    assert "slowly" not in pipeline.document(doc_id).text
    _, again = pipeline.upload("Tea Notes.md", edited, replace=True)
    assert again.replaced == [doc_id] and "slowly" in pipeline.document(doc_id).text
    pipeline.delete(doc_id)
    with pytest.raises(DocumentNotFoundError):
        pipeline.delete(doc_id)
    docs, store_ids, dense_ids, bm25_ids = _state(pipeline.root)
    assert docs == {SEED_A, SEED_B} and store_ids == dense_ids == bm25_ids


def test_an_index_of_words_bm25_cannot_use_still_writes_and_serves(pipeline: Pipeline) -> None:
    """Found by fuzzing: a corpus of stopwords and symbols alone gave bm25s an empty
    vocabulary and every upload a 500."""
    pipeline.upload("a.txt", "ß".encode())
    pipeline.upload("b.txt", b"the and of")
    assert Index(pipeline.root).lexical.count() == 2
    assert pipeline.search("the", 3, "bm25") == []
    assert len(pipeline.search("the", 3, "hybrid")) == 2


def test_a_server_sees_an_ingest_made_by_another_process(settings: Settings,
                                                         embedder: SentenceTransformerEmbedder,
                                                         corpus: Path) -> None:
    now = [0.0]
    serving = Pipeline(settings, embedder=embedder, clock=lambda: now[0])
    serving.ingest([corpus])
    first = serving.index.snapshot
    other = Pipeline(settings, embedder=embedder)  # stands for `rag ingest` beside `rag serve`
    other.upload("tea.md", b"# Tea\n\nOolong is partly oxidised.")
    assert serving.index.snapshot == first  # polled at most twice a second
    now[0] += 0.5
    assert serving.index.snapshot != first
    assert "tea" in {d["doc_id"] for d in serving.documents()}


def test_a_question_over_the_configured_length_is_refused(settings: Settings,
                                                          embedder: SentenceTransformerEmbedder,
                                                          corpus: Path) -> None:
    p = Pipeline(settings.model_copy(update={"max_question_chars": 40}), embedder=embedder)
    p.ingest([corpus])
    with pytest.raises(InputError, match="over the limit of 40"):
        p.ask("x" * 41)
    with pytest.raises(InputError, match="query is 41 characters"):
        p.search("x" * 41)


def test_leftovers_of_killed_writers_are_collected(pipeline: Pipeline, corpus: Path) -> None:
    pipeline.ingest([corpus])
    snapshots = pipeline.root / "snapshots"
    (snapshots / ".tmp-20000101T000000000000Z-dead").mkdir()
    (snapshots / "29991231T000000000000Z-orphan").mkdir()  # renamed, never made current
    segments = pipeline.root / "segments"
    for name in (".tmp-20000101T000000000000Z-dead", ".merge-20000101T000000000000Z-dead",
                 "29991231T000000000000Z-orphan"):  # a writer's, a merger's, never listed
        (segments / name).mkdir()
    pipeline.upload("tea.md", b"# Tea\n\nOolong is partly oxidised.")
    names = sorted(p.name for p in snapshots.iterdir())
    assert len(names) == 2 and current_snapshot(pipeline.root).name in names  # type: ignore[union-attr]
    assert not any("dead" in n or "orphan" in n for n in names)
    assert sorted(p.name for p in segments.iterdir()) == sorted(s.name for s in
                                                                pipeline.segments())


def test_a_folder_of_every_format_is_searchable_and_its_quotes_verify(
        pipeline: Pipeline, tmp_path: Path) -> None:
    folder = fc.write_all(tmp_path / "team")
    (folder / "photo.txt").write_bytes(b"GIF89a" + bytes(64))  # refused
    (folder / "scan.pdf").write_bytes(b"%PDF-1.7\n" + b"\x00\xff" * 1000)  # corrupt
    report = pipeline.ingest([folder])
    assert sorted(report.added) == sorted(Path(n).stem for n in fc.FACTS)
    assert sorted(Path(p).name for p, _ in report.failed) == ["photo.txt", "scan.pdf"]
    answered = 0
    for name, (question, fact) in fc.FACTS.items():
        hits = pipeline.search(question, k=2)
        assert any(h.chunk.doc_id == Path(name).stem and fact in h.chunk.text for h in hits), \
            (name, [h.chunk.text for h in hits])
        answer = pipeline.ask(question)
        answered += not answer.abstained
        for c in answer.citations:
            assert c.verified and pipeline.document(c.doc_id).text[c.char_start:c.char_end] \
                == c.quote
    assert answered >= 4
