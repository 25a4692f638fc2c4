"""Concurrent queries share model calls and each gets its own vector back."""

from __future__ import annotations

import threading
from collections.abc import Sequence

import numpy as np
import pytest

from rag.arrays import Vectors
from rag.batching import QueryBatcher
from rag.embedding import SentenceTransformerEmbedder


def test_concurrent_queries_share_calls_and_get_their_own_vectors(
        embedder: SentenceTransformerEmbedder) -> None:
    texts = [f"question number {n} about {word}" for n, word in
             enumerate(["fuel", "satellites", "Samsung", "Rokkasho", "alliances", "R&D"] * 4)]
    expected = embedder.embed_batch(texts)
    batcher = QueryBatcher(embedder.embed_batch)
    _ask_together(batcher, texts, expected, rounds=1)
    assert batcher.queries == len(texts) and batcher.calls < len(texts)


@pytest.mark.unit
def test_an_error_reaches_every_query_of_its_batch_and_the_next_batch_runs() -> None:
    def embed(texts: Sequence[str]) -> Vectors:
        if "bad" in texts:
            raise ValueError("the model refused")
        return np.ones((len(texts), 2), dtype=np.float32)

    batcher = QueryBatcher(embed)
    with pytest.raises(ValueError, match="refused"):
        batcher.embed("bad")
    assert batcher.embed("good").tolist() == [1.0, 1.0]


def test_embed_query_goes_through_one_batcher(embedder: SentenceTransformerEmbedder) -> None:
    one = embedder.embed_query("Where is the reprocessing plant?")
    assert np.abs(one - embedder.embed_batch(["Where is the reprocessing plant?"])[0]).max() < 1e-5
    assert embedder.embed_queries(["a", "b"]).shape == (2, embedder.dimension)


def test_parallel_calls_run_side_by_side_and_never_more(
        embedder: SentenceTransformerEmbedder) -> None:
    texts = [f"question {n} about {word}" for n, word in
             enumerate(["fuel", "satellites", "Samsung", "Rokkasho", "alliances", "R&D"] * 5)]
    expected = embedder.embed_batch(texts)
    lock = threading.Lock()
    running = [0, 0]  # now, most at once

    def counted(batch: Sequence[str]) -> Vectors:
        with lock:
            running[0] += 1
            running[1] = max(running[1], running[0])
        try:
            return embedder.embed_batch(batch)
        finally:
            with lock:
                running[0] -= 1

    batcher = QueryBatcher(counted, parallel=2)
    _ask_together(batcher, texts, expected, rounds=3)
    assert running[1] == 2 and batcher.queries == 3 * len(texts)
    assert batcher.calls < batcher.queries


def _ask_together(batcher: QueryBatcher, texts: list[str], expected: Vectors,
                  rounds: int) -> None:
    """One thread per text, released at once, each embedding its text ``rounds`` times;
    every thread must end with its own text's vector."""
    results: dict[int, Vectors] = {}
    start = threading.Barrier(len(texts))

    def ask(n: int) -> None:
        start.wait()
        for _ in range(rounds):
            results[n] = batcher.embed(texts[n])

    threads = [threading.Thread(target=ask, args=(n,)) for n in range(len(texts))]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert sorted(results) == list(range(len(texts)))
    for n, vector in results.items():
        assert np.abs(vector - expected[n]).max() < 1e-5
