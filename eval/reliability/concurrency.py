"""Queries while the index changes and its segments merge, and two writers at once,
against a real `rag serve`.

    python -m eval.reliability.concurrency [--collection NAME] [--json out.json]

Four threads send /v1/search and /v1/ask without pause the whole time. Meanwhile,
one after the other: a `rag ingest` of 30 files in another process (the server
must pick up its snapshot), 10 uploads, 10 deletes through the API, and `rag compact`
merging every segment into one from another process. The index runs with two segments a
tier (RAG_SEGMENTS_PER_TIER=2), so the server also merges in the background after the
uploads and deletes while the queries go on; a watcher records every snapshot CURRENT
names and whether a write or a merge made it. Each phase reports its query error count
and p99. Then two writers at once: while the index lock is held (as by a long ingest's
commit), `rag ingest` fails at once with a message saying why, and an upload waits for
the lock and succeeds when it is free. The server's log must hold no traceback and no
"database is locked".

With ``--collection NAME`` all of it happens in that collection (made through the API,
loaded by `rag ingest --collection`, queried at /v1/collections/NAME/...), beside the
collection "default" holding the seeds, which queries also read meanwhile and which must
come out unchanged, its snapshot the same.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from eval import SEEDS
from eval.harness import RAG, Server, serve_rag
from eval.reliability.crash import survey
from eval.reliability.loadmix import MixedLoad, note, summary
from rag.collections import DEFAULT, folder
from rag.index import current_snapshot, read_snapshot
from rag.writer import writer_lock

TIER = {"RAG_SEGMENTS_PER_TIER": "2"}  # merges after a few writes, while queries run


def _folder(path: Path, first: int, n: int) -> Path:
    path.mkdir(parents=True)
    for i in range(first, first + n):
        (path / f"survey_{i:03d}.txt").write_text(survey(i))
    return path


def _phase(load: MixedLoad, name: str, action: Callable[[], str]) -> dict[str, Any]:
    t0 = time.monotonic()
    detail = action()
    time.sleep(1.0)  # queries after the change, on the new snapshot
    out = {"phase": name, "seconds": round(time.monotonic() - t0, 1), **summary(
        load.window(t0)), "detail": detail}
    print(f"{name:28} {out['seconds']:6.1f} s  queries {out['requests']:5}  errors "
          f"{out['errors']}  p50 {out['query_p50_ms']} ms  p99 {out['query_p99_ms']} ms  "
          f"{detail}", flush=True)
    return out


def serve_seeded(work: Path, env: Mapping[str, str] | None = None,
                 collection: str = DEFAULT) -> tuple[Path, Server]:
    """`rag serve` over a fresh index of the seeds and 20 survey files in ``work``, with
    ``env`` added to its settings (and the ingest's); its output goes to work/server.log.
    With a ``collection`` other than "default", those are in that collection (made through
    the API) and "default" holds the seeds only; returns that collection's folder."""
    index = work / "index"
    env = {"RAG_INDEX_DIR": str(index), **(env or {})}
    surveys = str(_folder(work / "a", 0, 20))
    first = [str(SEEDS), surveys] if collection == DEFAULT else [str(SEEDS)]
    subprocess.run([RAG, "ingest", *first], env={**os.environ, **env}, check=True,
                   capture_output=True)
    server = serve_rag(env, log=work / "server.log", timeout=120)
    if collection != DEFAULT:
        made = server.http.post("/v1/collections", json={"name": collection})
        assert made.status_code == 201, made.text
        subprocess.run([RAG, "ingest", "--collection", collection, str(SEEDS), surveys],
                       env={**os.environ, **env}, check=True, capture_output=True)
    return folder(index, collection), server


class Watcher(threading.Thread):
    """Every snapshot CURRENT names while it runs: what made it, how many segments it has."""

    def __init__(self, index: Path) -> None:
        super().__init__(daemon=True)
        self.index = index
        self.seen: dict[str, tuple[str, int]] = {}
        self.done = threading.Event()

    def run(self) -> None:
        while not self.done.wait(0.02):
            try:
                snapshot = read_snapshot(self.index)
            except (OSError, ValueError):
                continue  # collected while being read
            if snapshot is not None and snapshot.name not in self.seen:
                self.seen[snapshot.name] = (str(snapshot.manifest.get("operation")),
                                            len(snapshot.segments))

    def merges(self) -> int:
        return sum(op == "merge" for op, _ in self.seen.values())


def run(collection: str = DEFAULT) -> dict[str, Any]:
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        index, server = serve_seeded(work, TIER, collection)
        http = server.http
        root = work / "index"
        env = {**os.environ, "RAG_INDEX_DIR": str(root), **TIER}
        api = "/v1" if collection == DEFAULT else f"/v1/collections/{collection}"
        option = [] if collection == DEFAULT else ["--collection", collection]
        neighbour = current_snapshot(root)  # "default", when the collection is another

        def served() -> str | None:
            """The snapshot the server answers the collection from."""
            if collection == DEFAULT:
                return str(http.get("/readyz").json()["snapshot"])
            return str(http.get(api).json()["snapshot"])

        watcher = Watcher(index)
        watcher.start()
        log = server.log
        load = MixedLoad(server.base_url, {"search": 0.7, "ask": 0.3}, workers=4,
                         api=api).start()
        beside = MixedLoad(server.base_url, {"search": 1.0}, workers=1).start() \
            if collection != DEFAULT else None
        phases = []
        try:
            def alone() -> str:
                time.sleep(4)
                return "-"
            phases.append(_phase(load, "queries alone", alone))

            def ingest() -> str:
                done = subprocess.run([RAG, "ingest", *option,
                                       str(_folder(work / "b", 100, 30))],
                                      env=env, capture_output=True, text=True)
                snapshot = current_snapshot(index)
                assert snapshot is not None
                deadline = time.monotonic() + 5
                while served() != snapshot.name:
                    if time.monotonic() > deadline:
                        return "server still on the old snapshot after 5 s"
                    time.sleep(0.05)
                return f"rag ingest exit {done.returncode}; server on the new snapshot"
            phases.append(_phase(load, "rag ingest (30 files)", ingest))

            def uploads() -> str:
                codes = [http.post(f"{api}/documents", files={"file": (f"n{i}.txt", note(i))})
                         .status_code for i in range(10)]
                return f"upload statuses {sorted(set(codes))}"
            phases.append(_phase(load, "10 uploads", uploads))

            def deletes() -> str:
                codes = [http.delete(f"{api}/documents/n{i}").status_code for i in range(10)]
                return f"delete statuses {sorted(set(codes))}"
            phases.append(_phase(load, "10 deletes", deletes))

            def compact() -> str:
                before = watcher.merges()
                done = subprocess.run([RAG, "compact", "--max-segments", "1", *option],
                                      env=env, capture_output=True, text=True)
                deadline = time.monotonic() + 5
                while served() != current_snapshot(index).name:  # type: ignore[union-attr]
                    if time.monotonic() > deadline:
                        return "server still on the old snapshot after 5 s"
                    time.sleep(0.05)
                return (f"rag compact exit {done.returncode}; {watcher.merges() - before} "
                        f"merge(s); server on the new snapshot")
            phases.append(_phase(load, "rag compact (to 1 segment)", compact))

            def two_writers() -> str:
                result: dict[str, Any] = {}
                folder = _folder(work / "c", 200, 2)

                def upload() -> None:
                    t = time.monotonic()
                    r = http.post(f"{api}/documents", files={"file": ("late.txt", note(99))})
                    result.update(status=r.status_code, upload_s=time.monotonic() - t)

                def cli_ingest(wait: str) -> subprocess.CompletedProcess[str]:
                    return subprocess.run([RAG, "ingest", *option, str(folder)], text=True,
                                          env={**env, "RAG_INGEST_LOCK_WAIT_S": wait},
                                          capture_output=True)
                with writer_lock(index):  # another writer's commit, held for 8 s
                    t0 = time.monotonic()
                    impatient = cli_ingest("0")
                    waiters = [threading.Thread(target=upload), threading.Thread(
                        target=lambda: result.update(cli=cli_ingest("600")))]
                    for w in waiters:
                        w.start()
                    time.sleep(max(0.0, 8 - (time.monotonic() - t0)))
                    held = time.monotonic() - t0
                for w in waiters:
                    w.join()
                told = impatient.stderr.strip().splitlines()[-1]
                return (f"lock held {held:.1f} s; ingest with no wait: exit "
                        f"{impatient.returncode}, {told!r}; upload: {result['status']} after "
                        f"{result['upload_s']:.1f} s; waiting ingest: exit "
                        f"{result['cli'].returncode}")
            phases.append(_phase(load, "second writer (lock held)", two_writers))
        finally:
            load.stop()
            if beside is not None:
                beside.stop()
            server.stop()
            watcher.done.set()
        text = log.read_text()
        total = summary(load.samples + (beside.samples if beside is not None else []))
        untouched = collection == DEFAULT or current_snapshot(root) == neighbour
    report = {"collection": collection, "phases": phases, "total": total,
              "default_unchanged": untouched, "snapshots": len(watcher.seen),
              "merges": watcher.merges(),
              "most_segments": max((n for _, n in watcher.seen.values()), default=0),
              "server_tracebacks": text.count("Traceback"),
              "database_locked": text.count("database is locked"),
              # /readyz answers 503 while the server loads, before the test starts
              "server_5xx": sum(int(code) >= 500 for path, code in
                                re.findall(r'"\w+ (\S+) HTTP/1\.1" (\d{3})', text)
                                if path != "/readyz")}
    report["ok"] = (total["errors"] == 0 and untouched and report["server_tracebacks"] == 0
                    and report["database_locked"] == 0 and report["server_5xx"] == 0
                    and all("still on the old" not in str(p["detail"]) for p in phases))
    return report


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--collection", default=DEFAULT,
                        help="run in this collection, beside 'default'")
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args()
    report = run(args.collection)
    print(json.dumps({k: report[k] for k in ("collection", "total", "default_unchanged",
                                             "snapshots", "merges", "most_segments",
                                             "server_tracebacks", "database_locked",
                                             "server_5xx", "ok")}))
    if args.json:
        args.json.write_text(json.dumps(report, indent=2))
    sys.exit(0 if report["ok"] else 1)


if __name__ == "__main__":
    main()
