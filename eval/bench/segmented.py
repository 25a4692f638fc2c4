"""An index of a chosen shape from an existing one, without the model.

``rewrite`` writes the live documents of an index into another folder in ``commits``
commits (so ``commits`` segments, merging off), each document with the chunk, sentence
vectors and marks the source holds: the same content as the source, only cut differently.
The benchmark uses it for SciFact in 1, 8 and 32 segments; tests/test_segments.py to
compare an index grown by writes, deletions and merges with one written in one commit.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np

from rag.index import Index
from rag.writer import IndexWriter


def rewrite(source: Index, root: Path, commits: int = 1, ann_threshold: int = 200_000,
            order: Sequence[str] | None = None,
            metadata: Callable[[int, str], Mapping[str, Any]] | None = None) -> None:
    """``source``'s documents (in ``order``, default by doc_id) into ``commits`` commits;
    ``metadata(n, doc_id)`` is added to the n-th document's, when given."""
    m = source.manifest
    doc_ids = list(order) if order is not None else [d["doc_id"] for d in
                                                      source.store.documents()]
    position = 0
    for part in np.array_split(np.array(doc_ids, dtype=object), commits):
        with IndexWriter(root, m["model"], int(m["dimension"]), m["chunker"],
                         ann_threshold=ann_threshold) as w:
            for doc_id in part.tolist():
                doc = source.store.document(doc_id, with_marks=True)
                assert doc is not None
                if metadata is not None:
                    doc = replace(doc, metadata={**doc.metadata, **metadata(position, doc_id)})
                position += 1
                rows = [r for r, _ in source.store.chunk_rows(doc_id)]
                by_row = source.store.chunks_by_ids(rows)
                sentences, vectors = [], []
                for n, row in enumerate(rows):
                    starts, ends, stored = source.sentences.of_chunk(row)
                    sentences += [(n, int(a), int(b)) for a, b in zip(starts, ends, strict=True)]
                    vectors.append(stored)
                w.add(doc, [by_row[r] for r in rows], source.vectors.vectors(rows), sentences,
                      np.concatenate(vectors) if vectors else
                      np.zeros((0, int(m["dimension"])), dtype=np.float32))
            w.commit()
