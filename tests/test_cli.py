"""The `rag` console script, run as a real process."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

from eval.harness import RAG
from tests.seed_facts import SEED_A, SEED_B, SEED_QUESTIONS


def rag(*args: str, index: Path, env: dict[str, str] | None = None,
        cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    full_env = {**os.environ, "RAG_INDEX_DIR": str(index), **(env or {})}
    return subprocess.run([RAG, *args], capture_output=True, text=True, timeout=300,
                          env=full_env, cwd=cwd)


def _one_error_line(result: subprocess.CompletedProcess[str], *needles: str) -> None:
    assert result.returncode != 0
    lines = [ln for ln in result.stderr.splitlines() if ln.startswith("Error")]
    assert len(lines) == 1, result.stderr
    for needle in needles:
        assert needle in lines[0], lines[0]


def test_errors_before_an_index_exists(tmp_path: Path) -> None:
    index = tmp_path / "index"
    _one_error_line(rag("search", "anything", index=index), "no index at", "rag ingest PATH")
    _one_error_line(rag("docs", index=index), "rag ingest PATH")
    (tmp_path / "x.exe").write_bytes(b"MZ")
    _one_error_line(rag("ingest", str(tmp_path / "x.exe"), index=index), "x.exe", "unsupported")
    _one_error_line(rag("ingest", str(tmp_path / "nope"), index=index), "no such file")
    assert not index.exists() or not (index / "CURRENT").exists()


def test_ingest_search_ask_docs_show(tmp_path: Path, corpus: Path) -> None:
    index = tmp_path / "index"
    first = rag("ingest", str(corpus), "--json", index=index)
    assert first.returncode == 0, first.stderr
    # a fresh index: the models are exported to ONNX, whose libraries say nothing (issue 30)
    assert first.stderr == "", first.stderr
    report = json.loads(first.stdout)
    assert sorted(report["added"]) == [SEED_A, SEED_B] and report["chunks_embedded"] > 0

    again = rag("ingest", str(corpus), index=index)
    assert "skipped: 2" in again.stdout and "index unchanged" in again.stdout

    question, doc_id, fact = SEED_QUESTIONS[6]
    found = rag("search", question, "-k", "3", "--json", index=index)
    data = json.loads(found.stdout)
    assert data["query"] == question and len(data["hits"]) == 3
    hit = data["hits"][0]
    assert set(hit) >= {"rank", "score", "doc_id", "chunk_id", "title", "source", "text",
                        "char_start", "char_end"}
    assert hit["doc_id"] == doc_id and hit["rank"] == 1

    text_out = rag("search", question, "--retriever", "bm25", index=index).stdout
    assert text_out.startswith("1. [") and doc_id in text_out

    first_ask = rag("ask", question, "--json", index=index)  # exports the evidence model
    assert first_ask.stderr == "", first_ask.stderr
    asked = json.loads(first_ask.stdout)
    assert fact in asked["answer"] and asked["citations"][0]["verified"] is True

    docs = json.loads(rag("docs", "--json", index=index).stdout)["documents"]
    assert {d["doc_id"] for d in docs} == {SEED_A, SEED_B}
    assert {(d["source"], d["path"]) for d in docs} == {  # the path only here, on this machine
        (f"{d}.txt", str((corpus / f"{d}.txt").resolve())) for d in (SEED_A, SEED_B)}
    shown = json.loads(rag("show", doc_id, "--json", index=index).stdout)
    assert set(shown) == {"doc_id", "title", "source", "text", "metadata"}
    assert shown["metadata"]["format"] == "txt" and shown["metadata"]["folder"] == ""
    c = asked["citations"][0]
    assert shown["text"][c["char_start"]:c["char_end"]] == c["quote"]

    _one_error_line(rag("search", "  ", index=index), "empty query")
    _one_error_line(rag("show", "nope", index=index), "no document with doc_id 'nope'")
    _one_error_line(rag("docs", index=index, env={"RAG_MODEL_NAME": "other-model"}),
                    "built with model 'all-MiniLM-L6-v2'", "other-model")
    # --index wins over RAG_INDEX_DIR
    elsewhere = rag("--index", str(index), "docs", index=tmp_path / "empty")
    assert elsewhere.returncode == 0 and SEED_A in elsewhere.stdout


def test_a_folder_ingest_skips_bad_files_and_strict_refuses_them(tmp_path: Path,
                                                                 corpus: Path) -> None:
    (corpus / "photo.txt").write_bytes(b"GIF89a" + bytes(64))
    (corpus / "broken.pdf").write_bytes(b"%PDF-1.7\n" + b"\x00\xff" * 1000)
    index = tmp_path / "index"
    strict = rag("ingest", str(corpus), "--strict", index=index)
    _one_error_line(strict, "2 file(s) could not be indexed", "nothing was changed",
                    "photo.txt", "broken.pdf", "without --strict")
    assert not (index / "CURRENT").exists()

    result = rag("ingest", str(corpus), "--json", index=index)
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert sorted(report["added"]) == [SEED_A, SEED_B]
    failed = {Path(f["path"]).name: f["reason"] for f in report["failed"]}
    assert set(failed) == {"photo.txt", "broken.pdf"}
    assert "GIF image" in failed["photo.txt"] and "not a readable PDF" in failed["broken.pdf"]

    again = rag("ingest", str(corpus), index=index)
    assert again.returncode == 0 and "failed: 2" in again.stdout
    assert str(corpus.resolve() / "photo.txt") + ": the content is a GIF image" in again.stdout
    question, doc_id, _ = SEED_QUESTIONS[6]
    hits = json.loads(rag("search", question, "--json", index=index).stdout)["hits"]
    assert hits[0]["doc_id"] == doc_id
