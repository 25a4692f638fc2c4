from __future__ import annotations

import pytest

from rag.chunking import Chunker, cl100k
from rag.documents import load_file
from rag.embedding import SentenceTransformerEmbedder
from rag.types import Document
from tests.seed_facts import SEED_A, SEED_B, SEEDS


@pytest.fixture
def chunker(embedder: SentenceTransformerEmbedder) -> Chunker:
    return Chunker(200, 30, count_wordpieces=embedder.count_tokens,
                   max_wordpieces=embedder.max_tokens)


@pytest.mark.parametrize("doc_id", [SEED_A, SEED_B])
def test_offsets_point_into_the_stored_text(chunker: Chunker, doc_id: str,
                                            embedder: SentenceTransformerEmbedder) -> None:
    doc = load_file(SEEDS / f"{doc_id}.txt", doc_id)
    chunks = chunker.chunk(doc)
    assert len(chunks) >= 3
    for n, c in enumerate(chunks):
        assert doc.text[c.char_start:c.char_end] == c.text
        assert c.ordinal == n and c.chunk_id == f"{doc_id}#{n}"
        assert c.n_tokens == len(cl100k().encode_ordinary(c.text)) <= 200
        assert embedder.count_tokens(c.text) <= 256
        assert c.text == c.text.strip()
    # Every sentence of the document is in some chunk: nothing is dropped.
    covered = set()
    for c in chunks:
        covered.update(range(c.char_start, c.char_end))
    assert all(i in covered for i, ch in enumerate(doc.text) if not ch.isspace())


def test_chunks_end_at_sentence_boundaries_and_overlap(chunker: Chunker) -> None:
    doc = load_file(SEEDS / f"{SEED_B}.txt", SEED_B)
    chunks = chunker.chunk(doc)
    for c in chunks[:-1]:
        assert c.text[-1] in ".?!”\"" or doc.text[c.char_end] == "\n"
    assert any(b.char_start < a.char_end for a, b in zip(chunks, chunks[1:], strict=False))


def test_chunk_ids_are_stable_across_runs(chunker: Chunker) -> None:
    doc = load_file(SEEDS / f"{SEED_A}.txt", SEED_A)
    assert chunker.chunk(doc) == chunker.chunk(doc)


def test_overlong_text_without_sentence_breaks_is_split_under_both_limits(
        chunker: Chunker, embedder: SentenceTransformerEmbedder) -> None:
    # Word pieces outnumber tiktoken tokens here, so the model limit is what binds.
    text = " ".join(f"zq{i}xv-{i * 7}ky" for i in range(900))
    doc = Document("long", "long", "long", text, "0")
    chunks = chunker.chunk(doc)
    assert len(chunks) > 5
    for c in chunks:
        assert text[c.char_start:c.char_end] == c.text
        assert c.n_tokens <= 200
        assert embedder.count_tokens(c.text) <= 256
    assert "".join(c.text for c in chunks).replace(" ", "") == text.replace(" ", "")


@pytest.mark.unit
def test_tiktoken_encoding_is_the_real_cl100k() -> None:
    enc = cl100k()
    assert enc.encode("hello world") == [15339, 1917]
    assert enc.n_vocab == 100277


@pytest.mark.unit
def test_overlap_must_be_smaller_than_the_chunk() -> None:
    with pytest.raises(ValueError, match="overlap"):
        Chunker(50, 50)
