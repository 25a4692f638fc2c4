"""The model sees each text once: reuse on edits, duplicates, and in-context sentence vectors."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np

from rag.config import Settings
from rag.embedding import SentenceTransformerEmbedder
from rag.pipeline import Pipeline
from tests.seed_facts import OFF_TOPIC, SEED_A, SEED_QUESTIONS, SEEDS


def _vectors_by_text(pipeline: Pipeline) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray]]:
    index = pipeline.index
    ids, texts = index.store.all_chunks()
    chunks = dict(zip(texts, index.vectors.vectors(ids), strict=True))
    sentences = {}
    for row in ids:
        chunk = index.store.chunks_by_ids([row])[row]
        doc = index.store.document(chunk.doc_id)
        assert doc is not None
        for a, b, v in zip(*index.sentences.of_chunk(row), strict=True):
            sentences[doc.text[a:b]] = v
    return chunks, sentences


def test_an_edit_reembeds_only_the_changed_chunks(pipeline: Pipeline, corpus: Path,
                                                  embedder: SentenceTransformerEmbedder) -> None:
    first = pipeline.ingest([corpus])
    assert first.reused == 0 and first.as_dict()["chunks_embedded"] == first.chunks
    target = next(corpus.glob(f"{SEED_A[:3]}*"))
    added = "\n\nA closing paragraph, added later, says the study ends here."
    target.write_text(target.read_text(encoding="utf-8") + added, encoding="utf-8")
    second = pipeline.ingest([corpus])
    assert second.replaced == [SEED_A]
    doc_chunks = len(pipeline.index.store.chunk_rows(SEED_A))
    assert second.chunks == doc_chunks and 0 < second.reused < doc_chunks
    # Every stored vector, reused or new, is what the model gives for that text now.
    chunks, sentences = _vectors_by_text(pipeline)
    texts = list(chunks)
    assert np.abs(embedder.embed(texts) - np.stack([chunks[t] for t in texts])).max() < 1e-5
    texts = list(sentences)
    assert np.abs(embedder.embed(texts) - np.stack([sentences[t] for t in texts])).max() < 1e-5


def test_duplicate_documents_are_embedded_once(pipeline: Pipeline, tmp_path: Path) -> None:
    for name in ("a", "b"):
        (tmp_path / name).mkdir()
        shutil.copy(next(SEEDS.glob(f"{SEED_A[:3]}*")), tmp_path / name)
    report = pipeline.ingest([tmp_path / "a", tmp_path / "b"])
    assert len(report.added) == 2 and report.chunks % 2 == 0
    assert report.reused == report.chunks // 2


def test_sentence_vectors_in_context_come_from_the_chunk_pass(
        tmp_path: Path, seed_pipeline: Pipeline, embedder: SentenceTransformerEmbedder) -> None:
    settings = Settings(index_dir=tmp_path / "index", sentence_vectors="context")
    pipeline = Pipeline(settings, embedder=embedder)
    pipeline.ingest([SEEDS])
    plain, context = seed_pipeline.index, pipeline.index
    assert context.sentences.count() == plain.sentences.count()
    assert np.array_equal(context.sentences.start, plain.sentences.start)
    ids = sorted(plain.vectors.ids().tolist())
    assert np.abs(context.vectors.vectors(ids) - plain.vectors.vectors(ids)).max() < 1e-5
    cosine = np.sum(context.sentences.vectors * plain.sentences.vectors, axis=1)
    assert np.allclose(np.linalg.norm(context.sentences.vectors, axis=1), 1.0, atol=1e-5)
    assert cosine.max() < 0.999 and np.median(cosine) > 0.6  # related, not the same vectors
    for question, doc_id, _ in SEED_QUESTIONS:
        assert pipeline.search(question, 3)[0].chunk.doc_id == doc_id
    # The shipped evidence scorer, fit on standalone vectors, still answers and abstains.
    for question, _, fact in SEED_QUESTIONS:
        answer = pipeline.ask(question)
        assert not answer.abstained and answer.citations and fact in answer.text
    for question in OFF_TOPIC:
        assert pipeline.ask(question).abstained
