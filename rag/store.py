"""SQLite store of documents and chunks, one file per segment.

A chunk's integer row id is also its id in FAISS, in the BM25 postings and in the
sentence index, so the structures agree by construction; ids are global across the
segments of an index (each segment's store starts where the index's ids stand, and a
merge copies rows under their ids). A document's marks (where its text was in the
original file: page, slide, sheet and row, heading path) are rows of ``marks``; a store
written before they existed (index format 2) has no such table, and gets it when a writer
opens it.
"""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

from rag.types import Chunk, Document, Locator, Mark

SCHEMA = """
CREATE TABLE IF NOT EXISTS documents (
    doc_id TEXT PRIMARY KEY,
    title TEXT NOT NULL,
    source TEXT NOT NULL,
    sha256 TEXT NOT NULL,
    text TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS chunks (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    chunk_id TEXT NOT NULL UNIQUE,
    doc_id TEXT NOT NULL REFERENCES documents(doc_id) ON DELETE CASCADE,
    ordinal INTEGER NOT NULL,
    char_start INTEGER NOT NULL,
    char_end INTEGER NOT NULL,
    n_tokens INTEGER NOT NULL,
    text TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS chunks_doc ON chunks(doc_id);
CREATE INDEX IF NOT EXISTS documents_source ON documents(source);
CREATE TABLE IF NOT EXISTS marks (
    doc_id TEXT NOT NULL REFERENCES documents(doc_id) ON DELETE CASCADE,
    start INTEGER NOT NULL,
    page INTEGER,
    slide INTEGER,
    sheet TEXT,
    row INTEGER,
    heading TEXT,
    PRIMARY KEY (doc_id, start)
) WITHOUT ROWID;
"""

_CHUNK_COLUMNS = "id, doc_id, chunk_id, ordinal, text, char_start, char_end, n_tokens"
_LOCATOR_COLUMNS = "page, slide, sheet, row, heading"


def _locator(row: sqlite3.Row) -> Locator:
    return Locator(page=row["page"], slide=row["slide"], sheet=row["sheet"], row=row["row"],
                   heading=row["heading"])


def _chunk(row: sqlite3.Row) -> Chunk:
    return Chunk(doc_id=row["doc_id"], chunk_id=row["chunk_id"], ordinal=row["ordinal"],
                 text=row["text"], char_start=row["char_start"], char_end=row["char_end"],
                 n_tokens=row["n_tokens"])


class Store:
    def __init__(self, path: Path, readonly: bool = False) -> None:
        self.path = path
        uri = f"file:{path}?mode=ro" if readonly else f"file:{path}"
        self._db = sqlite3.connect(uri, uri=True, check_same_thread=False)
        self._db.row_factory = sqlite3.Row
        self._lock = threading.Lock()
        self._db.execute("PRAGMA foreign_keys = ON")
        if not readonly:
            # Only a segment being built is opened for writing: a crash leaves a temporary
            # folder that is thrown away, and the finished one is fsynced whole before it
            # is renamed into place, so SQLite's own journal and syncs would buy nothing.
            self._db.execute("PRAGMA journal_mode = OFF")
            self._db.execute("PRAGMA synchronous = OFF")
            self._db.executescript(SCHEMA)
        self.has_marks = bool(self._rows(
            "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'marks'"))

    def close(self) -> None:
        self._db.close()

    def _rows(self, sql: str, params: Sequence[Any] = ()) -> list[sqlite3.Row]:
        """Run a read under the lock: API threads share one connection."""
        with self._lock:
            return self._db.execute(sql, params).fetchall()

    def commit(self) -> None:
        self._db.commit()

    def start_rows_at(self, first: int) -> None:
        """Number this (empty) store's chunks from ``first`` on."""
        self._db.execute("INSERT INTO sqlite_sequence (name, seq) VALUES ('chunks', ?)",
                         (first - 1,))

    def last_row(self) -> int:
        """The highest chunk row id this store ever gave out (0 for none)."""
        rows = self._rows("SELECT seq FROM sqlite_sequence WHERE name = 'chunks'")
        return int(rows[0][0]) if rows else 0

    def copy_from(self, path: Path, dropped: Iterable[str]) -> None:
        """Copy another store's documents, chunks (under their row ids) and marks, except
        those of the ``dropped`` documents (a merge of segments)."""
        self._db.commit()
        self._db.execute("ATTACH DATABASE ? AS src", (f"file:{path}?mode=ro",))
        try:
            self._db.execute("CREATE TEMP TABLE IF NOT EXISTS dropped (doc_id TEXT PRIMARY KEY)")
            self._db.execute("DELETE FROM temp.dropped")
            self._db.executemany("INSERT OR IGNORE INTO temp.dropped VALUES (?)",
                                 [(d,) for d in dropped])
            keep = "WHERE doc_id NOT IN (SELECT doc_id FROM temp.dropped)"
            for table, columns in (("documents", "doc_id, title, source, sha256, text"),
                                   ("chunks", _CHUNK_COLUMNS)):
                self._db.execute(f"INSERT INTO {table} ({columns}) SELECT {columns} "
                                 f"FROM src.{table} {keep}")
            if self._db.execute("SELECT 1 FROM src.sqlite_master WHERE type = 'table' AND "
                                "name = 'marks'").fetchone():
                columns = f"doc_id, start, {_LOCATOR_COLUMNS}"
                self._db.execute(f"INSERT INTO marks ({columns}) SELECT {columns} "
                                 f"FROM src.marks {keep}")
            self._db.commit()
        except BaseException:
            self._db.rollback()
            raise
        finally:
            self._db.execute("DETACH DATABASE src")

    def add_document(self, doc: Document, chunks: Sequence[Chunk]) -> list[int]:
        """Insert a document and its chunks; return the chunks' row ids in order."""
        self._db.execute("INSERT INTO documents VALUES (?, ?, ?, ?, ?)",
                         (doc.doc_id, doc.title, doc.source, doc.sha256, doc.text))
        ids = []
        for c in chunks:
            cur = self._db.execute(
                "INSERT INTO chunks (chunk_id, doc_id, ordinal, char_start, char_end, n_tokens,"
                " text) VALUES (?, ?, ?, ?, ?, ?, ?)",
                (c.chunk_id, c.doc_id, c.ordinal, c.char_start, c.char_end, c.n_tokens, c.text))
            assert cur.lastrowid is not None
            ids.append(cur.lastrowid)
        self._db.executemany(
            f"INSERT OR REPLACE INTO marks (doc_id, start, {_LOCATOR_COLUMNS}) "
            "VALUES (?, ?, ?, ?, ?, ?, ?)",
            [(doc.doc_id, m.start, m.locator.page, m.locator.slide, m.locator.sheet,
              m.locator.row, m.locator.heading) for m in doc.marks])
        return ids

    def delete_document(self, doc_id: str) -> list[int]:
        """Delete a document and its chunks; return the removed chunk row ids."""
        ids = [r[0] for r in self._rows("SELECT id FROM chunks WHERE doc_id = ?", (doc_id,))]
        self._db.execute("DELETE FROM chunks WHERE doc_id = ?", (doc_id,))
        self._db.execute("DELETE FROM marks WHERE doc_id = ?", (doc_id,))
        self._db.execute("DELETE FROM documents WHERE doc_id = ?", (doc_id,))
        return ids

    def document(self, doc_id: str, with_marks: bool = False) -> Document | None:
        """The stored document; its marks only when asked (a sheet has one a row)."""
        rows = self._rows("SELECT * FROM documents WHERE doc_id = ?", (doc_id,))
        if not rows:
            return None
        row = rows[0]
        marks = tuple(Mark(r["start"], _locator(r)) for r in self._rows(
            f"SELECT start, {_LOCATOR_COLUMNS} FROM marks WHERE doc_id = ? ORDER BY start",
            (doc_id,))) if with_marks and self.has_marks else ()
        return Document(doc_id=row["doc_id"], title=row["title"], source=row["source"],
                        text=row["text"], sha256=row["sha256"], marks=marks)

    def locators(self, spans: Iterable[tuple[str, int]]) -> dict[tuple[str, int], Locator]:
        """(doc_id, offset) -> where that offset is in the original file: its document's last
        mark at or before it (rag.types.locate), one index lookup a span; spans without a
        mark (plain text, an index of format 2) are left out."""
        found: dict[tuple[str, int], Locator] = {}
        for doc_id, start in dict.fromkeys(spans) if self.has_marks else ():
            rows = self._rows(f"SELECT {_LOCATOR_COLUMNS} FROM marks WHERE doc_id = ? AND "
                              "start <= ? ORDER BY start DESC LIMIT 1", (doc_id, start))
            if rows:
                found[doc_id, start] = _locator(rows[0])
        return found

    def locator(self, doc_id: str, start: int) -> Locator | None:
        return self.locators([(doc_id, start)]).get((doc_id, start))

    def sha256(self, doc_id: str) -> str | None:
        rows = self._rows("SELECT sha256 FROM documents WHERE doc_id = ?", (doc_id,))
        return str(rows[0][0]) if rows else None

    def by_source(self, source: str) -> list[tuple[str, str]]:
        """(doc_id, sha256) of the documents read from ``source``."""
        return [(r[0], r[1]) for r in self._rows(
            "SELECT doc_id, sha256 FROM documents WHERE source = ?", (source,))]

    def has_document(self, doc_id: str) -> bool:
        return bool(self._rows("SELECT 1 FROM documents WHERE doc_id = ?", (doc_id,)))

    def doc_ids(self) -> list[str]:
        return [r[0] for r in self._rows("SELECT doc_id FROM documents")]

    def rows_of(self, doc_ids: Iterable[str]) -> list[int]:
        """The chunk row ids of these documents."""
        wanted = list(dict.fromkeys(doc_ids))
        found: list[int] = []
        for start in range(0, len(wanted), 500):
            part = wanted[start:start + 500]
            found += [int(r[0]) for r in self._rows(
                f"SELECT id FROM chunks WHERE doc_id IN ({','.join('?' * len(part))})", part)]
        return found

    def documents(self) -> list[dict[str, Any]]:
        """Metadata of every document (no text), ordered by doc_id."""
        rows = self._rows(
            "SELECT d.doc_id, d.title, d.source, d.sha256, length(d.text) AS chars,"
            " (SELECT count(*) FROM chunks c WHERE c.doc_id = d.doc_id) AS chunks"
            " FROM documents d ORDER BY d.doc_id")
        return [dict(r) for r in rows]

    def sources(self) -> dict[str, tuple[str, str]]:
        """source path -> (doc_id, sha256), for incremental ingest."""
        rows = self._rows("SELECT source, doc_id, sha256 FROM documents")
        return {r["source"]: (r["doc_id"], r["sha256"]) for r in rows}

    def chunks_by_ids(self, ids: Iterable[int]) -> dict[int, Chunk]:
        wanted = list(dict.fromkeys(int(i) for i in ids))
        found: dict[int, Chunk] = {}
        for start in range(0, len(wanted), 500):
            part = wanted[start:start + 500]
            marks = ",".join("?" * len(part))
            for row in self._rows(
                    f"SELECT {_CHUNK_COLUMNS} FROM chunks WHERE id IN ({marks})", part):
                found[row["id"]] = _chunk(row)
        return found

    def chunk_rows(self, doc_id: str) -> list[tuple[int, str]]:
        """(row id, text) of one document's chunks."""
        rows = self._rows("SELECT id, text FROM chunks WHERE doc_id = ? ORDER BY id", (doc_id,))
        return [(int(r[0]), str(r[1])) for r in rows]

    def chunks_near(self, doc_id: str, ordinals: Iterable[int],
                    radius: int) -> dict[int, Chunk]:
        """Row id -> chunk for one document's chunks at most ``radius`` away from ``ordinals``."""
        wanted = sorted({o + d for o in ordinals for d in range(-radius, radius + 1) if o + d >= 0})
        if not wanted:
            return {}
        marks = ",".join("?" * len(wanted))
        rows = self._rows(f"SELECT {_CHUNK_COLUMNS} FROM chunks WHERE doc_id = ? AND ordinal "
                          f"IN ({marks})", [doc_id, *wanted])
        return {int(r["id"]): _chunk(r) for r in rows}

    def titles(self, doc_ids: Iterable[str]) -> dict[str, tuple[str, str]]:
        wanted = list(set(doc_ids))
        marks = ",".join("?" * len(wanted))
        rows = self._rows(
            f"SELECT doc_id, title, source FROM documents WHERE doc_id IN ({marks})", wanted)
        return {r["doc_id"]: (r["title"], r["source"]) for r in rows}

    def all_chunks(self) -> tuple[list[int], list[str]]:
        """Every chunk's row id and text, in row-id order (what BM25 is built from)."""
        rows = self._rows("SELECT id, text FROM chunks ORDER BY id")
        return [r[0] for r in rows], [r[1] for r in rows]

    def chunk_doc_ids(self) -> dict[int, str]:
        """chunk row id -> doc_id for every chunk (to aggregate chunk hits per document)."""
        return {r[0]: r[1] for r in self._rows("SELECT id, doc_id FROM chunks")}

    def counts(self) -> tuple[int, int]:
        docs = self._rows("SELECT count(*) FROM documents")[0][0]
        chunks = self._rows("SELECT count(*) FROM chunks")[0][0]
        return int(docs), int(chunks)
