"""The rerank stage, with a tiny cross-encoder built here (none ships in a package)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import numpy.typing as npt
import pytest
import torch
from transformers import AutoTokenizer, BertConfig, BertForSequenceClassification

from rag.config import Settings
from rag.embedding import SentenceTransformerEmbedder, packaged_model_path
from rag.pipeline import Pipeline
from rag.rerank import CrossEncoderReranker, Reranker


@pytest.fixture(scope="module")
def tiny_cross_encoder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("tiny-ce")
    tokenizer = AutoTokenizer.from_pretrained(str(packaged_model_path()))
    torch.manual_seed(0)
    config = BertConfig(vocab_size=tokenizer.vocab_size, hidden_size=32, num_hidden_layers=2,
                        num_attention_heads=2, intermediate_size=64, num_labels=1)
    BertForSequenceClassification(config).save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return folder


class KeywordReranker(Reranker):
    """A transparent reranker: passages holding the keyword first."""

    name = "keyword"

    def __init__(self, keyword: str) -> None:
        self.keyword = keyword

    def score(self, query: str, passages: Sequence[str]) -> npt.NDArray[np.float32]:
        return np.array([float(p.count(self.keyword)) for p in passages], dtype=np.float32)


def test_cross_encoder_scores_every_hit_and_reorders(tiny_cross_encoder: Path,
                                                    seed_pipeline: Pipeline) -> None:
    reranker = CrossEncoderReranker(tiny_cross_encoder)
    hits = seed_pipeline.search("Open RAN 5G", 10, "hybrid")
    reranked = reranker.rerank("Open RAN 5G", hits, 4)
    expected = reranker.score("Open RAN 5G", [h.chunk.text for h in hits])
    assert [h.rank for h in reranked] == [1, 2, 3, 4]
    assert [h.score for h in reranked] == pytest.approx(sorted(expected, reverse=True)[:4])
    assert all(h.stage_scores["rerank"] == h.score and "fused" in h.stage_scores
               for h in reranked)


def test_pipeline_reranks_search_and_ask_when_configured(
        tiny_cross_encoder: Path, seed_index: Path,
        embedder: SentenceTransformerEmbedder) -> None:
    settings = Settings(index_dir=seed_index, reranker_model=tiny_cross_encoder,
                        rerank_candidates=8)
    pipeline = Pipeline(settings, embedder=embedder)
    hits = pipeline.search("Japan", 3)
    assert len(hits) == 3 and all("rerank" in h.stage_scores for h in hits)
    answer = pipeline.ask("Which countries has Japan negotiated defense agreements with?")
    assert answer.provenance.reranker == str(tiny_cross_encoder)


def test_a_reranker_decides_the_order(seed_index: Path,
                                      embedder: SentenceTransformerEmbedder) -> None:
    pipeline = Pipeline(Settings(index_dir=seed_index, rerank_candidates=15),
                        embedder=embedder, reranker=KeywordReranker("Rokkasho"))
    hits = pipeline.search("Japan and the United States", 2, "dense")
    assert "Rokkasho" in hits[0].chunk.text and hits[0].score >= 1.0
