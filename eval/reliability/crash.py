"""Crash safety: SIGKILL a real ingest, upload and delete, then check what is left.

    python -m eval.reliability.crash [--random 8] [--seed 7] [--quick] [--json out.json]

Every trial starts from a copy of the same index (the seeds, six survey files and
an upload, so two snapshots), runs one change in a separate process — `rag ingest --prune` that adds
14 files, edits one and drops one; an upload through a real `rag serve`; a
delete through it — and kills that process with SIGKILL, either inside a named
function (eval/reliability/killpoint.py) or from outside at a random moment. Then:

- the index loads, and its content is exactly the state before the change or
  exactly the state after it (documents, chunk texts and offsets, and every
  chunk's vector within 1e-4 of the uninterrupted run's), never a mix;
- store, FAISS and BM25 hold the same chunk ids, every sentence vector belongs to
  a stored chunk, no chunk lacks its document, the manifest counts match;
- it answers a search;
- the same change run again (in-process, no kill) ends in the after state and
  removes the dead writer's temporary folder.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import random
import shutil
import signal
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import numpy as np

from eval import SEEDS
from eval.harness import Server, serve_rag
from rag.config import Settings
from rag.embedding import SentenceTransformerEmbedder
from rag.index import STORE, Index, current_snapshot
from rag.pipeline import Pipeline

TOPICS = ["rivers", "glaciers", "volcanoes", "deserts", "forests", "reefs", "tundra"]
UPLOAD_NAME = "harbour_survey.txt"
DELETED = "000_4b5d5bcc7add4bfe"

INGEST_POINTS = [
    ("rag.isolation.parse", 3), ("rag.chunking.Chunker.chunk", 1),
    ("rag.chunking.Chunker.chunk", 12), ("rag.onnx_encoder.OnnxEncoder._run", 1),
    ("onnxruntime.InferenceSession.run", 3), ("rag.index.IndexWriter._open", 1),
    ("shutil.copy2", 1), ("rag.store.Store.delete_document", 1),
    ("rag.store.Store.add_document", 1), ("rag.store.Store.add_document", 10),
    ("rag.index.IndexWriter.commit", 1), ("rag.sentence_index.SentenceIndex.save", 1),
    ("rag.lexical.LexicalIndex.save", 1), ("rag.vector_index.VectorIndex.save", 1),
    ("rag.index._fsync_tree", 1), ("os.rename", 1), ("os.replace", 1),
    ("rag.index.IndexWriter._collect_garbage", 1), ("shutil.rmtree", 1),
]
UPLOAD_POINTS = [
    ("rag.pipeline.Pipeline.upload", 1), ("rag.isolation.parse", 1),
    ("rag.onnx_encoder.OnnxEncoder._run", 1), ("rag.store.Store.add_document", 1),
    ("rag.index.IndexWriter.commit", 1), ("os.rename", 1), ("os.replace", 1),
    ("rag.index.IndexWriter._collect_garbage", 1),
]
DELETE_POINTS = [
    ("rag.store.Store.delete_document", 1), ("rag.index.IndexWriter.commit", 1),
    ("os.replace", 1), ("rag.index.IndexWriter._collect_garbage", 1),
]


class Broken(Exception):
    """The index after a kill is not a complete snapshot of either side."""


@dataclass
class State:
    digest: str
    vectors: dict[str, np.ndarray[Any, Any]]
    documents: int
    chunks: int


def survey(i: int, edition: int = 1) -> str:
    t = TOPICS[i % len(TOPICS)]
    body = " ".join(f"Observation {j} of survey {i} (edition {edition}) describes {t} in "
                    f"region {j * i + edition}." for j in range(40))
    return f"Survey {i}\n\n{body}\n"


def inspect(root: Path) -> State:
    """Load the current snapshot and check that its parts agree; raise Broken if not."""
    index = Index(root)
    try:
        ids, _ = index.store.all_chunks()
        faiss_ids = sorted(index.vectors.ids().tolist())
        if sorted(ids) != faiss_ids:
            raise Broken(f"store has {len(ids)} chunks, FAISS {len(faiss_ids)}")
        if sorted(ids) != sorted(index.lexical.ids.tolist()):
            raise Broken("BM25 ids differ from the store's")
        if not index.sentences.chunk_ids() <= set(ids):
            raise Broken("sentence vectors of chunks that are not stored")
        docs, n_chunks = index.store.counts()
        if (index.manifest["documents"], index.manifest["chunks"]) != (docs, n_chunks):
            raise Broken("manifest counts differ from the store")
        with sqlite3.connect(f"file:{index.path / STORE}?mode=ro", uri=True) as db:
            orphans = db.execute("SELECT count(*) FROM chunks WHERE doc_id NOT IN "
                                 "(SELECT doc_id FROM documents)").fetchone()[0]
            empty = db.execute("SELECT count(*) FROM documents WHERE doc_id NOT IN "
                               "(SELECT doc_id FROM chunks)").fetchone()[0]
        if orphans or empty:
            raise Broken(f"{orphans} chunks without a document, {empty} documents without chunks")
        chunks = index.store.chunks_by_ids(ids)
        vectors = index.vectors.vectors(ids)
        rows = sorted((c.doc_id, c.chunk_id, c.char_start, c.char_end, c.text)
                      for c in chunks.values())
        sha = sorted((d["doc_id"], d["sha256"]) for d in index.store.documents())
        digest = hashlib.sha256(json.dumps([sha, rows, index.sentences.count()])
                                .encode()).hexdigest()[:16]
        by_chunk = {chunks[i].chunk_id: vectors[n] for n, i in enumerate(ids)}
        return State(digest, by_chunk, docs, n_chunks)
    finally:
        index.close()


def classify(state: State, before: State, after: State) -> str:
    for name, side in (("previous", before), ("new", after)):
        if state.digest == side.digest:
            worst = max((float(np.abs(v - side.vectors[k]).max())
                         for k, v in state.vectors.items()), default=0.0)
            if worst > 1e-4:
                raise Broken(f"content of the {name} snapshot, but vectors differ by {worst}")
            return name
    raise Broken(f"content is neither the previous snapshot ({before.documents} documents, "
                 f"{before.chunks} chunks) nor the new one ({after.documents}, {after.chunks}): "
                 f"{state.documents} documents, {state.chunks} chunks")


class Lab:
    """The corpus, the before and after states, and the model, shared by all trials."""

    def __init__(self, work: Path, embedder: SentenceTransformerEmbedder, onnx: Path) -> None:
        self.work = work
        self.embedder = embedder
        self.onnx = onnx
        self.corpus = work / "corpus"
        shutil.copytree(SEEDS, self.corpus)
        for i in range(6):
            (self.corpus / f"survey_{i:02d}.txt").write_text(survey(i))
        self.base = work / "base"
        self.pipeline(self.base).ingest([self.corpus])
        # A second snapshot, so that the next commit has an old one to collect.
        self.pipeline(self.base).upload("base_note.txt", survey(50).encode())
        self.before = inspect(self.base)
        # The ingest change: 14 new files, one edited, one gone.
        for i in range(6, 20):
            (self.corpus / f"survey_{i:02d}.txt").write_text(survey(i))
        (self.corpus / "survey_01.txt").write_text(survey(1, edition=2))
        (self.corpus / "survey_02.txt").unlink()
        self.upload_data = survey(99).encode()
        self.after: dict[str, State] = {}
        for kind in ("ingest", "upload", "delete"):
            root = self.fresh(f"expected-{kind}")
            self.redo(kind, root)
            self.after[kind] = inspect(root)

    def settings(self, root: Path) -> Settings:
        return Settings(index_dir=root, onnx_dir=self.onnx)

    def pipeline(self, root: Path) -> Pipeline:
        return Pipeline(self.settings(root), embedder=self.embedder)

    def fresh(self, name: str) -> Path:
        root = self.work / name
        shutil.rmtree(root, ignore_errors=True)
        shutil.copytree(self.base, root)
        return root

    def redo(self, kind: str, root: Path) -> bool:
        """The change, uninterrupted, in-process; True if it wrote a snapshot (an ingest
        already done, or a delete, writes nothing)."""
        p = self.pipeline(root)
        if kind == "ingest":
            return p.ingest([self.corpus], prune=True).snapshot is not None
        if kind == "upload":
            p.upload(UPLOAD_NAME, self.upload_data, replace=True)  # a retry replaces
            return True
        if any(d["doc_id"] == DELETED for d in p.documents()):
            p.delete(DELETED)
            return True
        return False

    def env(self, root: Path) -> dict[str, str]:
        return {**os.environ, "RAG_INDEX_DIR": str(root), "RAG_ONNX_DIR": str(self.onnx)}


def _child(at: str | None, nth: int, phases: Path, rag_args: list[str]) -> list[str]:
    cmd = [sys.executable, "-m", "eval.reliability.killpoint", "--phases", str(phases)]
    if at:
        cmd += ["--at", at, "--nth", str(nth)]
    return [*cmd, "--", *rag_args]


def _last_phase(phases: Path) -> str:
    lines = phases.read_text().split() if phases.exists() else []
    return lines[-1] if lines else "start-up"


def _spawn_ingest(lab: Lab, root: Path, at: str | None,
                  nth: int) -> tuple[subprocess.Popen[bytes], Path]:
    """The ingest change in a child process (under the kill point, if any), and its phase log."""
    phases = root.parent / f"{root.name}.phases"
    proc = subprocess.Popen(_child(at, nth, phases, ["ingest", str(lab.corpus), "--prune"]),
                            env=lab.env(root), stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL, cwd=lab.work)
    return proc, phases


def run_ingest(lab: Lab, root: Path, at: str | None, nth: int, delay: float | None) -> str:
    proc, phases = _spawn_ingest(lab, root, at, nth)
    if delay is not None:
        try:
            proc.wait(timeout=delay)
        except subprocess.TimeoutExpired:
            os.kill(proc.pid, signal.SIGKILL)
    proc.wait(timeout=600)
    return _last_phase(phases) if proc.returncode == -signal.SIGKILL else "finished"


def _start_server(lab: Lab, root: Path, at: str | None, nth: int, phases: Path) -> Server:
    return serve_rag(lab.env(root), via=_child(at, nth, phases, []), timeout=120)


def _send(lab: Lab, http: httpx.Client, kind: str) -> int | None:
    """The change through the API: its status, or None when the connection dropped."""
    try:
        if kind == "upload":
            return http.post("/v1/documents",
                             files={"file": (UPLOAD_NAME, lab.upload_data)}).status_code
        return http.delete(f"/v1/documents/{DELETED}").status_code
    except httpx.TransportError:
        return None


def run_api(lab: Lab, root: Path, kind: str, at: str | None, nth: int,
            delay: float | None) -> str:
    phases = root.parent / f"{root.name}.phases"
    server = _start_server(lab, root, at, nth, phases)
    proc = server.proc
    try:
        timer = None
        if delay is not None:
            timer = threading.Timer(delay, os.kill, (proc.pid, signal.SIGKILL))
            timer.start()
        status = _send(lab, server.http, kind)
        if timer is not None:
            timer.join()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            return f"finished ({status})"  # the kill point was never reached
    finally:
        if proc.poll() is None:
            proc.kill()
        server.stop()
    if status is not None:
        return f"after reply ({status})"
    return _last_phase(phases)


def trial(lab: Lab, kind: str, at: str | None, nth: int = 1,
          delay: float | None = None) -> dict[str, Any]:
    root = lab.fresh(f"trial-{kind}")
    before_snapshot = current_snapshot(root)
    if kind == "ingest":
        phase = run_ingest(lab, root, at, nth, delay)
    else:
        phase = run_api(lab, root, kind, at, nth, delay)
    point = f"{at} #{nth}" if at else f"random {delay:.2f}s"
    result: dict[str, Any] = {"kind": kind, "point": point, "phase": phase}
    try:
        state = inspect(root)
        result["outcome"] = classify(state, lab.before, lab.after[kind])
        if result["outcome"] == "previous" and current_snapshot(root) != before_snapshot:
            raise Broken("previous content under a new snapshot id")
        hits = lab.pipeline(root).search("survey of glaciers in region", 3)
        if not hits:
            raise Broken("the index loads but a search finds nothing")
        wrote = lab.redo(kind, root)
        if classify(inspect(root), lab.before, lab.after[kind]) != "new":
            raise Broken("re-running the change did not reach the new state")
        left = {p.name for p in (root / "snapshots").iterdir()}
        if wrote and len(left) > 2:
            raise Broken(f"the dead writer's folders survived the next write: {sorted(left)}")
        result["ok"] = True
    except Broken as exc:
        result.update(ok=False, error=str(exc))
    return result


def plan(quick: bool, n_random: int, rng: random.Random,
         durations: dict[str, tuple[float, float]]
         ) -> list[tuple[str, str | None, int, float | None]]:
    if quick:
        return [("ingest", "rag.store.Store.add_document", 10, None),
                ("ingest", "os.replace", 1, None),
                ("upload", "rag.index.IndexWriter.commit", 1, None)]
    todo: list[tuple[str, str | None, int, float | None]] = []
    todo += [("ingest", at, nth, None) for at, nth in INGEST_POINTS]
    todo += [("upload", at, nth, None) for at, nth in UPLOAD_POINTS]
    todo += [("delete", at, nth, None) for at, nth in DELETE_POINTS]
    for i in range(n_random):
        kind = "upload" if i % 3 == 2 else "ingest"
        startup, work = durations[kind]
        todo.append((kind, None, 1, round(startup + rng.uniform(0.0, 1.0) * work, 3)))
    return todo


def measure(lab: Lab, kind: str) -> tuple[float, float]:
    """(start-up, work): seconds before the change begins and seconds it then takes."""
    root = lab.fresh(f"timing-{kind}")
    if kind == "ingest":
        spawned = time.monotonic()
        proc, phases = _spawn_ingest(lab, root, None, 1)
        while proc.poll() is None and not (phases.exists() and phases.read_text()):
            time.sleep(0.005)
        t0 = time.monotonic()  # start-up (imports, model load) done: the ingest begins
        proc.wait()
        return t0 - spawned, time.monotonic() - t0
    server = _start_server(lab, root, None, 1, root.parent / "timing.phases")
    try:
        t0 = time.monotonic()
        _send(lab, server.http, kind)
        return 0.0, time.monotonic() - t0
    finally:
        server.proc.kill()
        server.stop()


def run(quick: bool = False, n_random: int = 8, seed: int = 7,
        log: Callable[[str], None] = print) -> dict[str, Any]:
    onnx = Path(".cache/onnx").resolve()  # the model's ONNX export, made once and reused
    embedder = SentenceTransformerEmbedder("all-MiniLM-L6-v2", backend="onnx", onnx_cache=onnx)
    with tempfile.TemporaryDirectory() as tmp:
        lab = Lab(Path(tmp), embedder, onnx)
        durations = {} if quick else {k: measure(lab, k) for k in ("ingest", "upload")}
        log(f"states: before {lab.before.documents} docs/{lab.before.chunks} chunks; after "
            + ", ".join(f"{k} {s.documents}/{s.chunks}" for k, s in lab.after.items())
            + (f"; uninterrupted ingest {durations['ingest'][0]:.1f} s start-up + "
               f"{durations['ingest'][1]:.1f} s, upload {durations['upload'][1]:.1f} s"
               if durations else ""))
        results = []
        for kind, at, nth, delay in plan(quick, n_random, random.Random(seed), durations):
            r = trial(lab, kind, at, nth, delay)
            results.append(r)
            log(f"{r['kind']:7} {r['point']:45} phase {r['phase']:9} -> "
                f"{r.get('outcome', '-'):8} {'ok' if r['ok'] else 'FAILED: ' + r['error']}")
    killed = [r for r in results if not r["phase"].startswith(("finished", "after reply"))]
    summary = {"trials": len(results), "killed": len(killed),
               "previous": sum(r.get("outcome") == "previous" for r in killed),
               "new": sum(r.get("outcome") == "new" for r in killed),
               "failed": sum(not r["ok"] for r in results),
               "phases": sorted({r["phase"] for r in killed})}
    log(json.dumps(summary))
    return {"summary": summary, "trials": results}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="three kill points (CI)")
    parser.add_argument("--random", type=int, default=8, help="kills at random moments")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args()
    report = run(args.quick, args.random, args.seed)
    if args.json:
        args.json.write_text(json.dumps(report, indent=2))
    sys.exit(1 if report["summary"]["failed"] else 0)


if __name__ == "__main__":
    main()
