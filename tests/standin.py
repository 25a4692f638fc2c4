"""A deterministic stand-in for the model, for unit tests of bookkeeping only.

It gives each text a normalized bag of hashed words: cheap, stable, and similar
texts get similar vectors. It never stands in where behaviour depends on the
model (retrieval quality, answers, citations): those tests use the real MiniLM.
"""

from __future__ import annotations

import re
import zlib
from collections.abc import Sequence

import numpy as np

from rag.arrays import Vectors
from rag.embedding import Embedder


class HashingEmbedder(Embedder):
    name = "standin-hashing"
    dimension = 64

    def __init__(self, fail_after: int | None = None) -> None:
        self.texts_embedded = 0
        self.fail_after = fail_after  # texts; then it raises, as an interrupted ingest would

    def embed_batch(self, texts: Sequence[str]) -> Vectors:
        if self.fail_after is not None and self.texts_embedded + len(texts) > self.fail_after:
            raise KeyboardInterrupt("the ingest was interrupted")
        self.texts_embedded += len(texts)
        out = np.zeros((len(texts), self.dimension), dtype=np.float32)
        for row, text in enumerate(texts):
            for word in re.findall(r"\w+", text.lower()):
                out[row, zlib.crc32(word.encode()) % self.dimension] += 1.0
            if not out[row].any():
                out[row, 0] = 1.0
        norms: Vectors = np.linalg.norm(out, axis=1, keepdims=True)
        return out / norms
