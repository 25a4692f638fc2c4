"""Shared fixtures: the real MiniLM model (loaded once) and small real corpora on disk."""

from __future__ import annotations

import shutil
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

import rag  # noqa: F401  (pins Hugging Face libraries offline before they load)
from rag.config import Settings
from rag.embedding import SentenceTransformerEmbedder
from rag.pipeline import Pipeline

ROOT = Path(__file__).resolve().parents[1]
SEEDS = ROOT / "seeds"
SEED_A = "000_4b5d5bcc7add4bfe"  # Japan–South Korea security cooperation (NPEC study)
SEED_B = "004_235fcfc7bfbef7ab"  # U.S.–Japan defense technology sharing
RAG = str(Path(sys.executable).with_name("rag"))

# Questions about the seeds: (question, doc that answers it, a fact the answer must hold).
SEED_QUESTIONS = [
    ("What share of the world's high-technology research and development do the US, Japan, "
     "South Korea and three other allies bankroll?", SEED_A, "50%"),
    ("Which organization published the study New Frontiers for Security Cooperation with "
     "Seoul and Tokyo?", SEED_A, "Nonproliferation Policy Education Center"),
    ("Which Korean company is the only large 5G firm in a major democracy in the Open RAN "
     "Policy Coalition?", SEED_A, "Samsung"),
    ("Which forum could Washington use to coordinate the provision of satellite services?",
     SEED_A, "Asia Pacific Regional Space Agency Forum"),
    ("Where is the large spent-fuel reprocessing plant in Japan?", SEED_A, "Rokkasho"),
    ("Who was the former deputy undersecretary of defense for industrial affairs?", SEED_B,
     "Jeffrey Bialos"),
    ("Which countries has Japan negotiated defense equipment cooperation agreements with?",
     SEED_B, "Australia, France, India and the United Kingdom"),
    ("What did Chuck Hagel introduce at the Reagan National Defense Forum?", SEED_B,
     "Defense Innovation Initiative"),
    ("What is the goal of the Defense Innovation Initiative program?", SEED_B,
     "cutting-edge technologies"),
    ("Which organization is James Schoff a senior associate for?", SEED_B,
     "Carnegie Endowment for International Peace"),
]
OFF_TOPIC = [
    "How long should I bake a sourdough loaf and at what temperature?",
    "Who won the football World Cup final in 2018?",
    "What is a good recipe for chocolate chip cookies?",
]


@pytest.fixture(scope="session")
def embedder(tmp_path_factory: pytest.TempPathFactory) -> SentenceTransformerEmbedder:
    """The product's default: the ONNX export of MiniLM (same vectors as torch)."""
    return SentenceTransformerEmbedder("all-MiniLM-L6-v2", backend="onnx",
                                       onnx_cache=tmp_path_factory.mktemp("onnx"))


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
def pipeline(settings: Settings, embedder: SentenceTransformerEmbedder) -> Pipeline:
    return Pipeline(settings, embedder=embedder)


@pytest.fixture(scope="session")
def seed_index(tmp_path_factory: pytest.TempPathFactory,
               embedder: SentenceTransformerEmbedder) -> Iterator[Path]:
    """The seeds indexed once per session, for tests that only read."""
    root = tmp_path_factory.mktemp("seed-index") / "index"
    Pipeline(Settings(index_dir=root), embedder=embedder).ingest([SEEDS])
    yield root


@pytest.fixture
def seed_pipeline(seed_index: Path, embedder: SentenceTransformerEmbedder) -> Pipeline:
    return Pipeline(Settings(index_dir=seed_index), embedder=embedder)
