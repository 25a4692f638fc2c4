"""Crash safety: SIGKILL a real ingest, upload, delete, merge and folder sync, then check what
is left.

    python -m eval.reliability.crash [--random 8] [--seed 7] [--quick] [--collection NAME]
        [--json out.json]

Every trial starts from a copy of the same index (the seeds, six survey files and an
upload: two segments, two snapshots), runs one change in a separate process — `rag ingest
--prune` that adds 14 files, edits one and drops one (a new segment, two documents deleted
from the first); an upload through a real `rag serve`; a delete through it; `rag compact
--max-segments 1`, which merges the two segments; `rag watch`, whose catch-up run at start
makes the ingest's change as one segment append with tombstones (rag/sync.py) — and kills
that process with SIGKILL,
either inside a named function (eval/reliability/killpoint.py) or from outside at a
random moment. Then (eval/reliability/states.py):

- the index loads, and its content is exactly the state before the change or
  exactly the state after it (documents, chunk texts and offsets, and every
  chunk's vector within 1e-4 of the uninterrupted run's), never a mix; a merge changes
  no content, so there CURRENT tells which side it is on;
- store, FAISS and BM25 hold the same chunk ids, every sentence vector belongs to
  a stored chunk, no chunk lacks its document in any segment, the manifest counts match;
- it answers a search;
- the same change run again (in-process, no kill) ends in the after state and leaves no
  folder that no kept snapshot needs (the dead process's temporary or orphaned segment);
  for a sync, that run is a new watcher's catch-up run (rag.sync.Syncer).

With ``--collection NAME`` every trial runs on that collection of the index root (the
changes through `rag ... --collection NAME` and /v1/collections/NAME/...), beside the
collection "default" holding the seeds, which must come out of every trial unchanged.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx

from eval import SEEDS
from eval.harness import Server, serve_rag
from eval.reliability.states import Broken, State, inspect, leftovers, side
from rag.collections import DEFAULT, folder
from rag.config import Settings
from rag.embedding import SentenceTransformerEmbedder
from rag.index import current_snapshot
from rag.pipeline import Pipeline
from rag.pipelines import Pipelines
from rag.sync import Syncer

TOPICS = ["rivers", "glaciers", "volcanoes", "deserts", "forests", "reefs", "tundra"]
UPLOAD_NAME = "harbour_survey.txt"
DELETED = "000_4b5d5bcc7add4bfe"

# Each step of a write: reading, chunking, embedding; the new segment (its store, its
# parts, fsync, its rename into place); the deletions recorded against older segments; the
# manifest (fsync, rename), the CURRENT swap, and the collection of what is no longer needed.
INGEST_POINTS = [
    ("rag.isolation.parse", 3), ("rag.chunking.Chunker.chunk", 1),
    ("rag.chunking.Chunker.chunk", 12), ("rag.onnx_encoder.OnnxEncoder._run", 1),
    ("onnxruntime.InferenceSession.run", 3), ("rag.writer.IndexWriter._open", 1),
    ("rag.store.Store.start_rows_at", 1), ("rag.writer.IndexWriter.delete", 1),
    ("rag.store.Store.rows_of", 1),
    ("rag.store.Store.add_document", 1), ("rag.store.Store.add_document", 10),
    ("rag.writer.IndexWriter.commit", 1), ("rag.writer.IndexWriter._tombstoned", 1),
    ("rag.segment.SegmentBuilder.finish", 1), ("rag.sentence_index.SentenceIndex.save", 1),
    ("rag.lexical.Postings.build", 1), ("rag.lexical.Postings.save", 1),
    ("rag.vector_index.VectorIndex.save", 1), ("rag.writer.fsync_tree", 1),
    ("os.rename", 1), ("rag.writer.publish", 1), ("rag.writer.fsync_tree", 2),
    ("os.rename", 2), ("os.replace", 1), ("rag.writer.collect_garbage", 1),
    ("shutil.rmtree", 1),
]
UPLOAD_POINTS = [
    ("rag.pipeline.Pipeline.upload", 1), ("rag.isolation.parse", 1),
    ("rag.onnx_encoder.OnnxEncoder._run", 1), ("rag.store.Store.add_document", 1),
    ("rag.writer.IndexWriter.commit", 1), ("rag.segment.SegmentBuilder.finish", 1),
    ("os.rename", 1), ("os.rename", 2), ("os.replace", 1),
    ("rag.writer.collect_garbage", 1),
]
DELETE_POINTS = [
    ("rag.writer.IndexWriter.delete", 1), ("rag.writer.IndexWriter.commit", 1),
    ("rag.writer.IndexWriter._tombstoned", 1), ("os.rename", 1), ("os.replace", 1),
    ("rag.writer.collect_garbage", 1),
]
# A merge: the merge lock, the sources read into a new segment (store rows, postings,
# vectors), its parts written; then under the writer lock the swap: the segment renamed
# into place, the manifest, CURRENT, and the collection of the merged-away segments.
MERGE_POINTS = [
    ("rag.merge.merge", 1), ("rag.segment.SegmentBuilder.merged", 1),
    ("rag.store.Store.copy_from", 2), ("rag.lexical.Postings.merge", 1),
    ("rag.segment.SegmentBuilder.finish", 1), ("rag.vector_index.VectorIndex.save", 1),
    ("rag.merge._swap", 1), ("rag.writer.fsync_tree", 1), ("os.rename", 1),
    ("rag.writer.publish", 1), ("os.rename", 2), ("os.replace", 1),
    ("rag.writer.collect_garbage", 1), ("shutil.rmtree", 1),
]

# A watcher's run: the folder read, the new segment, the deletions, the swap.
SYNC_POINTS = [
    ("rag.sync.Syncer.run", 1), ("rag.isolation.parse", 3),
    ("rag.writer.IndexWriter._open", 1), ("rag.store.Store.add_document", 10),
    ("rag.writer.IndexWriter._tombstoned", 1), ("rag.segment.SegmentBuilder.finish", 1),
    ("os.rename", 2), ("os.replace", 1), ("rag.writer.collect_garbage", 1),
]
# Kinds whose change runs as a `rag` command (the rest go through a served API).
CLI_KINDS = ("ingest", "merge", "sync")


def survey(i: int, edition: int = 1) -> str:
    t = TOPICS[i % len(TOPICS)]
    body = " ".join(f"Observation {j} of survey {i} (edition {edition}) describes {t} in "
                    f"region {j * i + edition}." for j in range(40))
    return f"Survey {i}\n\n{body}\n"


class Lab:
    """The corpus, the before and after states, and the model, shared by all trials."""

    def __init__(self, work: Path, embedder: SentenceTransformerEmbedder, onnx: Path,
                 collection: str = DEFAULT) -> None:
        self.work = work
        self.embedder = embedder
        self.onnx = onnx
        self.collection = collection
        self.corpus = work / "corpus"
        shutil.copytree(SEEDS, self.corpus)
        for i in range(6):
            (self.corpus / f"survey_{i:02d}.txt").write_text(survey(i))
        self.base = work / "base"
        if collection != DEFAULT:  # the seeds in "default", which no trial may change
            default = Pipeline(self.settings(self.base), embedder=self.embedder)
            default.ingest([SEEDS])
            Pipelines(default).create(collection)
            self.neighbour = inspect(self.base)
        self.pipeline(self.base).ingest([self.corpus])
        # A second snapshot, so that the next commit has an old one to collect.
        self.pipeline(self.base).upload("base_note.txt", survey(50).encode())
        self.before = inspect(self.index(self.base))
        # The ingest change: 14 new files, one edited, one gone.
        for i in range(6, 20):
            (self.corpus / f"survey_{i:02d}.txt").write_text(survey(i))
        (self.corpus / "survey_01.txt").write_text(survey(1, edition=2))
        (self.corpus / "survey_02.txt").unlink()
        self.upload_data = survey(99).encode()
        self.api = "/v1" if collection == DEFAULT else f"/v1/collections/{collection}"
        self.after: dict[str, State] = {}
        for kind in ("ingest", "upload", "delete", "merge", "sync"):
            root = self.fresh(f"expected-{kind}")
            self.redo(kind, root)
            self.after[kind] = inspect(self.index(root))

    def settings(self, root: Path) -> Settings:
        # No background merges in this process: it copies and deletes these folders.
        return Settings(index_dir=root, onnx_dir=self.onnx, auto_merge=False)

    def pipeline(self, root: Path) -> Pipeline:
        return Pipeline(self.settings(root), embedder=self.embedder, collection=self.collection)

    def index(self, root: Path) -> Path:
        """The folder of the collection the trials change."""
        return folder(root, self.collection)

    def rag(self, *args: str) -> list[str]:
        """A `rag` command on the trials' collection."""
        return [*args, "--collection", self.collection]

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
        if kind == "merge":
            return bool(p.compact(max_segments=1))
        if kind == "sync":  # a watcher started again: its first run catches up
            run = Syncer([self.corpus], lambda paths: p.ingest(paths, prune=True),
                         ignore=root).run("start")
            if run.error is not None:
                raise Broken(f"the sync run failed: {run.error}")
            return run.snapshot is not None
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


def _spawn(lab: Lab, root: Path, kind: str, at: str | None,
           nth: int) -> tuple[subprocess.Popen[bytes], Path]:
    """The ingest, merge or sync change in a child process (under the kill point, if any), and
    its phase log."""
    phases = root.parent / f"{root.name}.phases"
    args = lab.rag(*{"ingest": ["ingest", str(lab.corpus), "--prune"],
                     "sync": ["watch", str(lab.corpus)],
                     "merge": ["compact", "--max-segments", "1"]}[kind])
    proc = subprocess.Popen(_child(at, nth, phases, args), env=lab.env(root),
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, cwd=lab.work)
    return proc, phases


def run_cli(lab: Lab, root: Path, kind: str, at: str | None, nth: int,
            delay: float | None) -> str:
    proc, phases = _spawn(lab, root, kind, at, nth)
    if delay is not None:
        try:
            proc.wait(timeout=delay)
        except subprocess.TimeoutExpired:
            os.kill(proc.pid, signal.SIGKILL)
    try:
        proc.wait(timeout=600)
    except subprocess.TimeoutExpired:  # a watcher whose kill point never came: it watches on
        proc.kill()
        proc.wait()
        return "finished (still watching)"
    return _last_phase(phases) if proc.returncode == -signal.SIGKILL else "finished"


def _start_server(lab: Lab, root: Path, at: str | None, nth: int, phases: Path) -> Server:
    return serve_rag(lab.env(root), via=_child(at, nth, phases, []), timeout=120)


def _send(lab: Lab, http: httpx.Client, kind: str) -> int | None:
    """The change through the API: its status, or None when the connection dropped."""
    try:
        if kind == "upload":
            return http.post(f"{lab.api}/documents",
                             files={"file": (UPLOAD_NAME, lab.upload_data)}).status_code
        return http.delete(f"{lab.api}/documents/{DELETED}").status_code
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
    top = lab.fresh(f"trial-{kind}")
    root = lab.index(top)
    before_snapshot = current_snapshot(root)
    if kind in CLI_KINDS:
        phase = run_cli(lab, top, kind, at, nth, delay)
    else:
        phase = run_api(lab, top, kind, at, nth, delay)
    point = f"{at} #{nth}" if at else f"random {delay:.2f}s"
    result: dict[str, Any] = {"kind": kind, "point": point, "phase": phase}
    after = lab.after[kind]
    try:
        state = inspect(root)
        result["outcome"] = side(kind, state, lab.before, after,
                                 current_snapshot(root) == before_snapshot)
        if result["outcome"] == "previous" and current_snapshot(root) != before_snapshot:
            raise Broken("previous content under a new snapshot id")
        hits = lab.pipeline(top).search("survey of glaciers in region", 3)
        if not hits:
            raise Broken("the index loads but a search finds nothing")
        if lab.collection != DEFAULT and inspect(top).digest != lab.neighbour.digest:
            raise Broken("the collection 'default' changed")
        wrote = lab.redo(kind, top)
        if side(kind, inspect(root), lab.before, after, False) != "new":
            raise Broken("re-running the change did not reach the new state")
        if wrote and leftovers(root):
            raise Broken(f"the dead process's folders survived the next write: "
                         f"{leftovers(root)}")
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
                ("upload", "rag.writer.IndexWriter.commit", 1, None),
                ("merge", "rag.segment.SegmentBuilder.finish", 1, None),
                ("sync", "rag.writer.IndexWriter._tombstoned", 1, None)]
    todo: list[tuple[str, str | None, int, float | None]] = []
    todo += [("ingest", at, nth, None) for at, nth in INGEST_POINTS]
    todo += [("upload", at, nth, None) for at, nth in UPLOAD_POINTS]
    todo += [("delete", at, nth, None) for at, nth in DELETE_POINTS]
    todo += [("merge", at, nth, None) for at, nth in MERGE_POINTS]
    todo += [("sync", at, nth, None) for at, nth in SYNC_POINTS]
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
        proc, phases = _spawn(lab, root, "ingest", None, 1)
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
        log: Callable[[str], None] = print, collection: str = DEFAULT) -> dict[str, Any]:
    onnx = Path(".cache/onnx").resolve()  # the model's ONNX export, made once and reused
    embedder = SentenceTransformerEmbedder("all-MiniLM-L6-v2", backend="onnx", onnx_cache=onnx)
    with tempfile.TemporaryDirectory() as tmp:
        lab = Lab(Path(tmp), embedder, onnx, collection)
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
    summary = {"collection": collection, "trials": len(results), "killed": len(killed),
               "previous": sum(r.get("outcome") == "previous" for r in killed),
               "new": sum(r.get("outcome") == "new" for r in killed),
               "failed": sum(not r["ok"] for r in results),
               "phases": sorted({r["phase"] for r in killed})}
    log(json.dumps(summary))
    return {"summary": summary, "trials": results}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="five kill points (CI)")
    parser.add_argument("--random", type=int, default=8, help="kills at random moments")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--collection", default=DEFAULT,
                        help="the collection the trials change (beside 'default')")
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args()
    report = run(args.quick, args.random, args.seed, collection=args.collection)
    if args.json:
        args.json.write_text(json.dumps(report, indent=2))
    sys.exit(1 if report["summary"]["failed"] else 0)


if __name__ == "__main__":
    main()
