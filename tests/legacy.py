"""Indexes in the layouts older versions wrote, for the tests that each still loads,
searches the same, and is upgraded on its next write.

``write_legacy``: the layout before segments, made the way that version's
IndexWriter.commit made it: the whole index in the snapshot folder, BM25 as a bm25s model.
Issue 29's format 5 (a development build) has the store's ``path`` column and the marks'
table, caption, OCR and confidence columns; issue 26's format 4 lacks those mark columns; 3
keeps the absolute path as the source instead, and 2 has no marks table either.
``write_unpathed_segments``: issue 27's format 4, segments whose stores keep the absolute path
as the source. ``write_old_segments``: issue 27's format 5, segments whose stores have the
``path`` column but marks without the columns of format 6. ``write_format_6``: either format
6, segments whose stores have the mark columns but no ``meta`` (issue 29's release), or
``meta`` but not the mark columns (issue 28's development build). Every layout but the last
lacks the documents' ``meta`` column of format 7."""

from __future__ import annotations

import json
import shutil
import sqlite3
from pathlib import Path

import bm25s
import numpy as np
import Stemmer

from rag.index import MANIFEST, SEGMENTS, SNAPSHOTS, read_snapshot
from rag.lexical import K1, LANGUAGE, B, parameters
from rag.segment import LEGACY_LEXICAL, SENTENCES, STORE, VECTORS
from rag.store import Store

NAME = "20200101T000000000000Z-0f0f0f0f"


def without_paths(store: Path) -> None:
    """Make a store as written before the ``path`` column: the absolute path as source."""
    with sqlite3.connect(store) as db:
        db.execute("UPDATE documents SET source = path WHERE path IS NOT NULL")
        db.execute("DROP INDEX IF EXISTS documents_path")
        db.execute("ALTER TABLE documents DROP COLUMN path")
    db.close()


def without_meta(store: Path) -> None:
    """Make a store as written before format 7 (issue 28's 6 aside): no metadata column."""
    with sqlite3.connect(store) as db:
        db.execute("ALTER TABLE documents DROP COLUMN meta")
    db.close()


def without_later_marks(store: Path) -> None:
    """Make a store as written before format 6: marks without table, caption, OCR."""
    with sqlite3.connect(store) as db:
        for column in ("tbl", "caption", "ocr", "confidence"):
            db.execute(f"ALTER TABLE marks DROP COLUMN {column}")
    db.close()


def write_legacy(root: Path, fmt: int = 3) -> Path:
    """Rewrite the index at ``root`` (segments, one of them, nothing deleted) into the
    format-``fmt`` layout (2, 3, issue 26's 4 or issue 29's 5); returns the snapshot
    folder."""
    assert fmt in (2, 3, 4, 5)
    snapshot = read_snapshot(root)
    assert snapshot is not None and len(snapshot.segments) == 1
    info = snapshot.segments[0]
    assert not info.deleted
    segment = root / SEGMENTS / info.name
    folder = root / SNAPSHOTS / NAME
    folder.mkdir()
    for name in (STORE, VECTORS, SENTENCES):
        shutil.copy2(segment / name, folder / name)
    store = Store(folder / STORE, readonly=True)
    ids, texts = store.all_chunks()
    store.close()
    tokens = bm25s.tokenize(texts, stopwords="en", stemmer=Stemmer.Stemmer(LANGUAGE),
                            return_ids=False, show_progress=False)
    lexical = folder / LEGACY_LEXICAL
    lexical.mkdir()
    np.save(lexical / "ids.npy", np.asarray(ids, dtype=np.int64))
    model = bm25s.BM25(k1=K1, b=B)
    model.index(tokens, show_progress=False)
    model.save(str(lexical), show_progress=False)
    (lexical / "lexical.json").write_text(json.dumps(
        {**parameters(), "stemmer": LANGUAGE, "stopwords": "en", "model": True}))
    m = snapshot.manifest
    (folder / MANIFEST).write_text(json.dumps({
        "format": fmt, "snapshot": NAME, "previous": None, "created": m["created"],
        "model": m["model"], "dimension": m["dimension"], "metric": m["metric"],
        "vectors": info.vectors, "chunker": m["chunker"], "lexical": m["lexical"],
        "documents": info.documents, "chunks": info.chunks, "sentences": info.sentences}))
    without_meta(folder / STORE)
    if fmt < 4:
        without_paths(folder / STORE)
    if fmt in (3, 4):
        without_later_marks(folder / STORE)
    if fmt == 2:
        with sqlite3.connect(folder / STORE) as db:
            db.execute("DROP TABLE marks")
        db.close()
    for path in (root / SNAPSHOTS).iterdir():
        if path.name != NAME:
            shutil.rmtree(path)
    shutil.rmtree(root / SEGMENTS)
    (root / "CURRENT").write_text(NAME + "\n")
    return folder


def write_unpathed_segments(root: Path) -> Path:
    """Rewrite the index at ``root`` into issue 27's format 4: its segments' stores without
    the ``path`` column, its manifest of format 4; returns the snapshot folder."""
    snapshot = read_snapshot(root)
    assert snapshot is not None and not snapshot.legacy
    for info in snapshot.segments:
        without_paths(root / SEGMENTS / info.name / STORE)
        without_later_marks(root / SEGMENTS / info.name / STORE)
        without_meta(root / SEGMENTS / info.name / STORE)
    (snapshot.path / MANIFEST).write_text(json.dumps({**snapshot.manifest, "format": 4}))
    return snapshot.path


def write_old_segments(root: Path) -> Path:
    """Rewrite the index at ``root`` into issue 27's format 5: its segments' marks without
    the columns of format 6, its manifest of format 5; returns the snapshot folder."""
    snapshot = read_snapshot(root)
    assert snapshot is not None and not snapshot.legacy
    for info in snapshot.segments:
        without_later_marks(root / SEGMENTS / info.name / STORE)
        without_meta(root / SEGMENTS / info.name / STORE)
    (snapshot.path / MANIFEST).write_text(json.dumps({**snapshot.manifest, "format": 5}))
    return snapshot.path


def write_format_6(root: Path, issue: int) -> Path:
    """Rewrite the index at ``root`` into a format 6: issue 29's (its segments' stores without
    ``meta``) or issue 28's (without the mark columns of issue 29); returns the snapshot
    folder."""
    assert issue in (28, 29)
    snapshot = read_snapshot(root)
    assert snapshot is not None and not snapshot.legacy
    for info in snapshot.segments:
        if issue == 29:
            without_meta(root / SEGMENTS / info.name / STORE)
        else:
            without_later_marks(root / SEGMENTS / info.name / STORE)
    (snapshot.path / MANIFEST).write_text(json.dumps({**snapshot.manifest, "format": 6}))
    return snapshot.path
