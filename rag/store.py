"""SQLite store of documents and chunks, one file per segment.

A chunk's integer row id is also its id in FAISS, in the BM25 postings and in the
sentence index, so the structures agree by construction; ids are global across the
segments of an index (each segment's store starts where the index's ids stand, and a
merge copies rows under their ids). A document's marks (where its text was in the
original file: page, slide, sheet and row, heading path; since format 6 also a table, its
row and caption, and whether the text was OCR'd, with what confidence) are rows of
``marks``; a store written before they existed (index format 2) has no such table, and a
segment copied from it (an upgrade) gets an empty one; a store written before format 6 lacks
the later columns: they are read as unset, and a copy (an upgrade, a merge) leaves them so.

A document's ``source`` is what clients see (a path relative to the ingested folder); its
``path``, where the file was on the ingesting machine, is only read back by a re-ingest and
`rag docs`. A store without that column (index formats 2 and 3, and format 4 of segments)
kept the absolute path in ``source``: its readers show its tail instead (``public_source``),
and copying it into a new segment (an upgrade, a merge: ``copy_from``) moves it to ``path``.

A document's metadata beyond title and source (rag.metadata: format, modified, size, and
what users gave) is one JSON object in ``meta``; a store without that column (format 6 and
older) has none, and a copy of it gets none.
"""

from __future__ import annotations

import json
import sqlite3
import threading
from collections.abc import Iterable, Sequence
from pathlib import Path, PurePosixPath, PureWindowsPath
from typing import Any

from rag import metadata
from rag.types import Chunk, Document, Locator, Mark, spanning

SCHEMA = """
CREATE TABLE IF NOT EXISTS documents (
    doc_id TEXT PRIMARY KEY,
    title TEXT NOT NULL,
    source TEXT NOT NULL,
    sha256 TEXT NOT NULL,
    text TEXT NOT NULL,
    path TEXT,
    meta TEXT
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
CREATE INDEX IF NOT EXISTS documents_path ON documents(path);
CREATE TABLE IF NOT EXISTS marks (
    doc_id TEXT NOT NULL REFERENCES documents(doc_id) ON DELETE CASCADE,
    start INTEGER NOT NULL,
    page INTEGER,
    slide INTEGER,
    sheet TEXT,
    row INTEGER,
    heading TEXT,
    tbl INTEGER,
    caption TEXT,
    ocr INTEGER,
    confidence REAL,
    PRIMARY KEY (doc_id, start)
) WITHOUT ROWID;
"""
# Columns that marks gained in format 6 (tables, OCR): an older store lacks them, and they
# are read from it as unset (NULL).
_LATER_MARK_COLUMNS = ("tbl", "caption", "ocr", "confidence")

_CHUNK_COLUMNS = "id, doc_id, chunk_id, ordinal, text, char_start, char_end, n_tokens"
_LOCATOR_COLUMNS = "page, slide, sheet, row, heading, " + ", ".join(_LATER_MARK_COLUMNS)


def _mark_columns(present: Iterable[str]) -> str:
    """The locator columns to select from a marks table holding ``present``: those it lacks
    (a store older than format 6) as NULL."""
    have = set(present)
    return ", ".join(c if c in have else f"NULL AS {c}" for c in _LOCATOR_COLUMNS.split(", "))


def _locator(row: sqlite3.Row) -> Locator:
    return Locator(page=row["page"], slide=row["slide"], sheet=row["sheet"], row=row["row"],
                   heading=row["heading"], table=row["tbl"], caption=row["caption"],
                   ocr=bool(row["ocr"]), confidence=row["confidence"])


def is_absolute(source: str) -> bool:
    return PurePosixPath(source).is_absolute() or PureWindowsPath(source).is_absolute()


def public_source(source: str, doc_id: str) -> str:
    """``source`` as clients may see it. An absolute path (what a store without the ``path``
    column holds) is cut to the parts its doc_id was made from: the file name, and one folder
    more for each "/" in the doc_id (the file's path relative to the ingested folder)."""
    if not is_absolute(source):
        return source
    pure = PureWindowsPath(source) if PureWindowsPath(source).drive else PurePosixPath(source)
    parts = pure.parts[1:]  # the root ("/", "C:\\") is never kept
    return "/".join(parts[-(doc_id.count("/") + 1):])


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
        mark_columns = {r["name"] for r in self._rows("PRAGMA table_info(marks)")}
        self.has_ocr_marks = "ocr" in mark_columns
        self._locator_columns = _mark_columns(mark_columns)
        columns = {r["name"] for r in self._rows("PRAGMA table_info(documents)")}
        self.has_paths = "path" in columns
        self.has_meta = "meta" in columns

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
        those of the ``dropped`` documents (a merge of segments). A store without the
        ``path`` column has each absolute source moved there, its public form left; marks
        without the columns of format 6 keep them unset, and documents without ``meta``
        (before format 7) have none."""
        self._db.commit()
        self._db.execute("ATTACH DATABASE ? AS src", (f"file:{path}?mode=ro",))
        try:
            self._db.execute("CREATE TEMP TABLE IF NOT EXISTS dropped (doc_id TEXT PRIMARY KEY)")
            self._db.execute("DELETE FROM temp.dropped")
            self._db.executemany("INSERT OR IGNORE INTO temp.dropped VALUES (?)",
                                 [(d,) for d in dropped])
            keep = "WHERE doc_id NOT IN (SELECT doc_id FROM temp.dropped)"
            columns = "doc_id, title, source, sha256, text, path, meta"
            select = columns
            source_columns = {r[1] for r in self._db.execute(
                "PRAGMA src.table_info(documents)")}
            if "path" not in source_columns:
                self._db.create_function("public_source", 2, public_source, deterministic=True)
                self._db.create_function("is_absolute", 1, is_absolute, deterministic=True)
                select = ("doc_id, title, public_source(source, doc_id), sha256, text, "
                          "CASE WHEN is_absolute(source) THEN source END, meta")
            if "meta" not in source_columns:  # a store of format 6 or older: no metadata
                select = select.removesuffix("meta") + "NULL"
            self._db.execute(f"INSERT INTO documents ({columns}) SELECT {select} "
                             f"FROM src.documents {keep}")
            self._db.execute(f"INSERT INTO chunks ({_CHUNK_COLUMNS}) SELECT {_CHUNK_COLUMNS} "
                             f"FROM src.chunks {keep}")
            if self._db.execute("SELECT 1 FROM src.sqlite_master WHERE type = 'table' AND "
                                "name = 'marks'").fetchone():
                present = [r[1] for r in self._db.execute("PRAGMA src.table_info(marks)")]
                self._db.execute(f"INSERT INTO marks (doc_id, start, {_LOCATOR_COLUMNS}) "
                                 f"SELECT doc_id, start, {_mark_columns(present)} "
                                 f"FROM src.marks {keep}")
            self._db.commit()
        except BaseException:
            self._db.rollback()
            raise
        finally:
            self._db.execute("DETACH DATABASE src")

    def add_document(self, doc: Document, chunks: Sequence[Chunk]) -> list[int]:
        """Insert a document and its chunks; return the chunks' row ids in order."""
        self._db.execute(
            "INSERT INTO documents (doc_id, title, source, sha256, text, path, meta) "
            "VALUES (?, ?, ?, ?, ?, ?, ?)",
            (doc.doc_id, doc.title, public_source(doc.source, doc.doc_id), doc.sha256, doc.text,
             doc.path, metadata.dumps(doc.metadata)))
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
            "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            [(doc.doc_id, m.start, m.locator.page, m.locator.slide, m.locator.sheet,
              m.locator.row, m.locator.heading, m.locator.table, m.locator.caption,
              int(m.locator.ocr), m.locator.confidence) for m in doc.marks])
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
            f"SELECT start, {self._locator_columns} FROM marks WHERE doc_id = ? ORDER BY start",
            (doc_id,))) if with_marks and self.has_marks else ()
        path = row["path"] if self.has_paths else None
        if path is None and is_absolute(row["source"]):
            path = row["source"]
        return Document(doc_id=row["doc_id"], title=row["title"],
                        source=public_source(row["source"], row["doc_id"]), text=row["text"],
                        sha256=row["sha256"], marks=marks, path=path,
                        metadata=self._stored(row["meta"] if self.has_meta else None))

    def locators(self, spans: Iterable[tuple[str, int]]) -> dict[tuple[str, int], Locator]:
        """(doc_id, offset) -> where that offset is in the original file: its document's last
        mark at or before it (rag.types.locate), one index lookup a span; spans without a
        mark (plain text, an index of format 2) are left out."""
        found: dict[tuple[str, int], Locator] = {}
        for doc_id, start in dict.fromkeys(spans) if self.has_marks else ():
            rows = self._rows(f"SELECT {self._locator_columns} FROM marks WHERE doc_id = ? "
                              "AND start <= ? ORDER BY start DESC LIMIT 1", (doc_id, start))
            if rows:
                found[doc_id, start] = _locator(rows[0])
        return found

    def span_locators(self, spans: Iterable[tuple[str, int, int]]
                      ) -> dict[tuple[str, int], Locator]:
        """``locators`` of the spans' starts, each naming its pages when the span
        (doc_id, start, end) runs over a page break (rag.types.spanning)."""
        spans = list(spans)
        found = self.locators((doc_id, start) for doc_id, start, _ in spans)
        for doc_id, start, end in spans:
            first = found.get((doc_id, start))
            if first is None or first.page is None:
                continue
            inside = [r[0] for r in self._rows(
                "SELECT page FROM marks WHERE doc_id = ? AND start > ? AND start < ? AND "
                "page IS NOT NULL", (doc_id, start, end))]
            found[doc_id, start] = spanning(first, [first.page, *inside]) or first
        return found

    def low_confidence(self, doc_id: str, floor: float) -> list[tuple[int, int]]:
        """The spans (start, end) of ``doc_id``'s text OCR'd below ``floor``: indexed and
        searchable, but not quoted as an answer (rag.evidence.gather)."""
        if not self.has_ocr_marks or floor <= 0:
            return []
        rows = self._rows(
            "SELECT m.start, (SELECT min(n.start) FROM marks n WHERE n.doc_id = m.doc_id AND "
            "n.start > m.start) AS next FROM marks m WHERE m.doc_id = ? AND m.ocr = 1 AND "
            "coalesce(m.confidence, 0) < ? ORDER BY m.start", (doc_id, floor))
        return [(int(r[0]), int(r[1]) if r[1] is not None else 1 << 62) for r in rows]

    def locator(self, doc_id: str, start: int) -> Locator | None:
        return self.locators([(doc_id, start)]).get((doc_id, start))

    def sha256(self, doc_id: str) -> str | None:
        rows = self._rows("SELECT sha256 FROM documents WHERE doc_id = ?", (doc_id,))
        return str(rows[0][0]) if rows else None

    def fingerprint(self, doc_id: str) -> str | None:
        """Its content and user-given metadata, as rag.metadata.fingerprint says."""
        rows = self._rows(f"SELECT sha256, {self._meta} AS meta FROM documents WHERE "
                          "doc_id = ?", (doc_id,))
        return metadata.fingerprint(rows[0][0], self._stored(rows[0][1])) if rows else None

    @property
    def _meta(self) -> str:
        return "meta" if self.has_meta else "NULL"

    @staticmethod
    def _stored(meta: str | None) -> dict[str, Any]:
        return dict(json.loads(meta)) if meta else {}

    def metadata(self) -> list[tuple[str, dict[str, Any]]]:
        """(doc_id, every metadata key: rag.metadata.full) of each document (to filter by)."""
        rows = self._rows(f"SELECT doc_id, title, source, {self._meta} AS meta FROM documents")
        return [(r[0], metadata.full(r[1], public_source(r[2], r[0]), self._stored(r[3])))
                for r in rows]

    def by_path(self, path: str) -> list[tuple[str, str]]:
        """(doc_id, sha256) of the documents read from the file at ``path`` (absolute): its
        ``path`` column, or in a store without one its ``source``."""
        column = "path" if self.has_paths else "source"
        return [(r[0], r[1]) for r in self._rows(
            f"SELECT doc_id, sha256 FROM documents WHERE {column} = ?", (path,))]

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

    def documents(self, with_paths: bool = False) -> list[dict[str, Any]]:
        """Metadata of every document (no text), ordered by doc_id; ``path`` (where the file
        was on the ingesting machine) only when asked."""
        rows = self._rows(
            f"SELECT d.doc_id, d.title, d.source, {self._path} AS path, d.sha256, "
            f"{self._meta} AS meta, length(d.text) AS chars,"
            " (SELECT count(*) FROM chunks c WHERE c.doc_id = d.doc_id) AS chunks"
            " FROM documents d ORDER BY d.doc_id")
        out = []
        for r in rows:
            doc = dict(r)
            path = doc.pop("path")
            if with_paths:
                doc["path"] = path if is_absolute(path) else None
            doc["source"] = public_source(doc["source"], doc["doc_id"])
            doc["metadata"] = metadata.full(doc["title"], doc["source"],
                                            self._stored(doc.pop("meta")))
            out.append(doc)
        return out

    @property
    def _path(self) -> str:
        """Where a document's file was: its path column, else (uploads, documents made in
        code, stores without the column) its source."""
        return "coalesce(d.path, d.source)" if self.has_paths else "d.source"

    def sources(self) -> dict[str, tuple[str, str]]:
        """File path (or, for uploads and documents made in code, source) -> (doc_id,
        sha256), for incremental ingest."""
        rows = self._rows(f"SELECT {self._path} AS path, doc_id, sha256 FROM documents d")
        return {r["path"]: (r["doc_id"], r["sha256"]) for r in rows}

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
        return {r["doc_id"]: (r["title"], public_source(r["source"], r["doc_id"])) for r in rows}

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
