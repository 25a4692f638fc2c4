"""Scale-out on a real two-node Ray cluster on 127.0.0.1 (ray.cluster_utils.Cluster)."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, TypeVar

import numpy as np
import pytest

from eval.bench.ray_ingest import corpus as reports
from eval.harness import RAG, serve_rag
from eval.reliability.crash import inspect
from rag.config import Settings
from rag.embedding import SentenceTransformerEmbedder
from rag.pipeline import Pipeline
from tests.seed_facts import SEED_QUESTIONS, SEEDS

ray = pytest.importorskip("ray", reason="the [ray] extra is part of the test install")
ONNX = Path(".cache/onnx").resolve()  # one export of the model for the driver and the workers
T = TypeVar("T")
QUERIES = [q for q, _, _ in SEED_QUESTIONS] + [
    "glacier retreat measured at station 17", "volcano ash over the delta",
    "coral reef bleaching in the warm season", "river flooding after the thaw"]


def _within(seconds: int, what: str, start: Callable[[], T]) -> T:
    """Fail (not hang) when a cluster operation takes too long."""
    def expire(*_: Any) -> None:
        raise TimeoutError(f"{what} took over {seconds} s")
    old = signal.signal(signal.SIGALRM, expire)
    signal.alarm(seconds)
    try:
        return start()
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, old)


pytestmark = pytest.mark.slow  # a two-node Ray cluster on 127.0.0.1


@pytest.fixture(scope="module")
def cluster() -> Iterator[str]:
    os.environ["RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER"] = "0"
    os.environ["RAY_AUTH_MODE"] = "disabled"
    from ray.cluster_utils import Cluster

    def start() -> Any:
        c = Cluster(initialize_head=True, head_node_args={"num_cpus": 1})
        c.add_node(num_cpus=1)
        c.wait_for_nodes()
        return c
    c = _within(120, "starting the two-node cluster", start)
    try:
        yield str(c.address)
    finally:
        ray.shutdown()
        c.shutdown()


def test_ingest_on_ray_writes_the_single_machine_index(
        cluster: str, tmp_path: Path, embedder: SentenceTransformerEmbedder) -> None:
    corpus = tmp_path / "docs"
    corpus.mkdir()
    for f in SEEDS.iterdir():
        (corpus / f.name).write_bytes(f.read_bytes())
    for d in reports(30):
        (corpus / f"{d.doc_id}.txt").write_text(d.text)
    Pipeline(Settings(index_dir=tmp_path / "one"), embedder=embedder).ingest([corpus])
    distributed = Pipeline(Settings(index_dir=tmp_path / "ray", ray_address=cluster,
                                    onnx_dir=ONNX))
    _within(300, "the distributed ingest", lambda: distributed.ingest([corpus]))
    # the chunks and the sentences went through the cluster
    assert distributed.embedder.remote_texts >= 190  # type: ignore[attr-defined]
    one, other = inspect(tmp_path / "one"), inspect(tmp_path / "ray")
    assert one.digest == other.digest  # same documents, chunk ids, texts, offsets, sentences
    assert one.vectors.keys() == other.vectors.keys()
    worst = max(float(np.abs(one.vectors[k] - other.vectors[k]).max()) for k in one.vectors)
    assert worst < 1e-4


@pytest.fixture(scope="module")
def generated(tmp_path_factory: pytest.TempPathFactory,
              embedder: SentenceTransformerEmbedder) -> Path:
    root = tmp_path_factory.mktemp("generated") / "index"
    Pipeline(Settings(index_dir=root), embedder=embedder).ingest_documents(reports(2500))
    return root


@pytest.mark.parametrize("which", ["seeds", "generated"])
def test_sharded_search_equals_the_single_index(
        which: str, cluster: str, seed_index: Path, generated: Path,
        embedder: SentenceTransformerEmbedder) -> None:
    root = seed_index if which == "seeds" else generated
    single = Pipeline(Settings(index_dir=root), embedder=embedder)
    sharded = Pipeline(Settings(index_dir=root, ray_address=cluster, ray_shards=3),
                       embedder=embedder)
    index = _within(120, "sharding the index", lambda: sharded.index)
    assert index.vectors.describe() == "3 Ray shards of IDMap2,Flat"
    for retriever in ("dense", "hybrid"):
        for q in QUERIES:
            want = [h.chunk.chunk_id for h in single.search(q, 10, retriever)]
            got = [h.chunk.chunk_id for h in sharded.search(q, 10, retriever)]
            assert got == want, (retriever, q)
    for q in QUERIES[:4]:
        assert sharded.ask(q).text == single.ask(q).text


def test_rag_serve_answers_from_shards(cluster: str, seed_index: Path, tmp_path: Path) -> None:
    shutil.copytree(seed_index, tmp_path / "index")
    env = {"RAG_INDEX_DIR": str(tmp_path / "index"), "RAG_ONNX_DIR": str(ONNX)}
    with serve_rag(env, "--ray", cluster, "--shards", "2", timeout=60, wait=180) as served:
        http = served.http
        question, doc_id, fact = SEED_QUESTIONS[4]
        hits = http.post("/v1/search", json={"query": question, "k": 3}).json()["hits"]
        assert hits[0]["doc_id"] == doc_id
        answer = http.post("/v1/ask", json={"question": question}).json()
        assert fact in answer["answer"] and answer["citations"][0]["verified"]
        body = b"Sourdough bread is baked at 250 degrees Celsius for forty minutes."
        up = http.post("/v1/documents", files={"file": ("sourdough.txt", body)})
        assert up.status_code == 201  # written, then the new snapshot re-sharded
        assert http.get("/readyz").json()["snapshot"] == up.json()["snapshot"]
        hits = http.post("/v1/search", json={"query": "baking sourdough bread"}).json()
        assert hits["hits"][0]["doc_id"] == "sourdough"


def test_an_unreachable_cluster_fails_fast_and_changes_nothing(tmp_path: Path) -> None:
    done = subprocess.run([RAG, "--index", str(tmp_path / "index"), "ingest", str(SEEDS),
                           "--ray", "127.0.0.1:1"], capture_output=True, text=True, timeout=60)
    assert done.returncode == 1
    assert done.stderr.strip().splitlines()[-1].startswith(
        "Error: cannot reach the Ray cluster at 127.0.0.1:1")
    assert not (tmp_path / "index" / "CURRENT").exists()
