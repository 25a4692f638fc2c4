"""What a crash trial checks an index against: its parts agree, and its content is exactly
one known state (eval/reliability/crash.py)."""

from __future__ import annotations

import hashlib
import json
import sqlite3
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from rag.index import Index
from rag.segment import STORE


class Broken(Exception):
    """The index after a kill is not a complete snapshot of either side."""


@dataclass
class State:
    digest: str
    vectors: dict[str, np.ndarray[Any, Any]]
    documents: int
    chunks: int
    segments: int


def _orphans(store: Path) -> tuple[int, int]:
    with sqlite3.connect(f"file:{store}?mode=ro", uri=True) as db:
        orphans = db.execute("SELECT count(*) FROM chunks WHERE doc_id NOT IN "
                             "(SELECT doc_id FROM documents)").fetchone()[0]
        empty = db.execute("SELECT count(*) FROM documents WHERE doc_id NOT IN "
                           "(SELECT doc_id FROM chunks)").fetchone()[0]
    return int(orphans), int(empty)


def inspect(root: Path) -> State:
    """Load the current snapshot and check that its parts agree; raise Broken if not."""
    index = Index(root)
    try:
        ids, _ = index.store.all_chunks()
        faiss_ids = sorted(index.vectors.ids().tolist())
        if sorted(ids) != faiss_ids:
            raise Broken(f"store has {len(ids)} chunks, FAISS {len(faiss_ids)}")
        if sorted(ids) != sorted(index.lexical.ids.tolist()):
            raise Broken("BM25 ids differ from the store's")
        if not index.sentences.chunk_ids() <= set(ids):
            raise Broken("sentence vectors of chunks that are not stored")
        docs, n_chunks = index.store.counts()
        if (index.manifest["documents"], index.manifest["chunks"],
                index.manifest["sentences"]) != (docs, n_chunks, index.sentences.count()):
            raise Broken("manifest counts differ from the store")
        for segment in index.segments.values():
            orphans, empty = _orphans(segment.path / STORE)
            if orphans or empty:
                raise Broken(f"segment {segment.name}: {orphans} chunks without a document, "
                             f"{empty} documents without chunks")
        chunks = index.store.chunks_by_ids(ids)
        vectors = index.vectors.vectors(ids)
        rows = sorted((c.doc_id, c.chunk_id, c.char_start, c.char_end, c.text)
                      for c in chunks.values())
        sha = sorted((d["doc_id"], d["sha256"]) for d in index.store.documents())
        digest = hashlib.sha256(json.dumps([sha, rows, index.sentences.count()])
                                .encode()).hexdigest()[:16]
        by_chunk = {chunks[i].chunk_id: vectors[n] for n, i in enumerate(ids)}
        return State(digest, by_chunk, docs, n_chunks, len(index.segments))
    finally:
        index.close()


def classify(state: State, before: State, after: State) -> str:
    for name, side in (("previous", before), ("new", after)):
        if state.digest == side.digest:
            worst = max((float(np.abs(v - side.vectors[k]).max())
                         for k, v in state.vectors.items()), default=0.0)
            if worst > 1e-4:
                raise Broken(f"content of the {name} snapshot, but vectors differ by {worst}")
            return name
    raise Broken(f"content is neither the previous snapshot ({before.documents} documents, "
                 f"{before.chunks} chunks) nor the new one ({after.documents}, {after.chunks}): "
                 f"{state.documents} documents, {state.chunks} chunks")


def side(kind: str, state: State, before: State, after: State, unmoved: bool) -> str:
    """Which state the index is in. A merge keeps the content and folds the segments: the
    index must hold the same content, in the segments of one side or the other."""
    if kind != "merge":
        return classify(state, before, after)
    classify(state, before, before)
    name, expected = ("previous", before) if unmoved else ("new", after)
    if state.segments != expected.segments:
        raise Broken(f"{state.segments} segments on the {name} side, which has "
                     f"{expected.segments}")
    return name


def leftovers(root: Path) -> list[str]:
    """Folders no kept snapshot needs: what a dead writer or merger left behind."""
    keep = {p.name for p in (root / "snapshots").iterdir()}
    listed = {s["name"] for name in keep if (root / "snapshots" / name / "manifest.json").is_file()
              for s in json.loads((root / "snapshots" / name / "manifest.json").read_text())
              .get("segments", [])}
    extra = [f"snapshots/{n}" for n in keep if n.startswith(".")] + \
        [f"segments/{p.name}" for p in (root / "segments").iterdir() if p.name not in listed]
    return sorted(extra) + (["snapshots (more than 2)"] if len(keep) > 2 else [])
