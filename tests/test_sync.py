"""A watched folder stays equal to the index while a real server answers: files added,
edited, renamed, deleted, a burst of saves, a bad file; then the server is killed, the
folder changes, and the next start catches up."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest

from eval.harness import Server, serve_rag
from eval.scans import FONTS, PARAGRAPHS, render
from rag.config import Settings
from rag.embedding import SentenceTransformerEmbedder
from rag.index import read_snapshot
from rag.keys import KeyStore
from rag.pipeline import Pipeline
from rag.pipelines import Pipelines
from rag.sync import Syncer
from tests.standin import HashingEmbedder

WAIT_S = 180


def _until(check: Callable[[], Any], what: str, server: Server) -> Any:
    deadline = time.monotonic() + WAIT_S
    while time.monotonic() < deadline:
        found = check()
        if found:
            return found
        time.sleep(0.2)
    raise AssertionError(f"{what}: not within {WAIT_S} s\n{server.tail()}")


def _sync(server: Server) -> dict[str, Any]:
    response = server.http.get("/v1/sync")
    assert response.status_code == 200, response.text
    status: dict[str, Any] = response.json()
    return status


def _settled(server: Server, runs: int) -> dict[str, Any] | None:
    """The status once a run after the first ``runs`` finished and nothing is pending."""
    s = _sync(server)
    if s["runs"] > runs and not s["running"] and not s["pending_count"]:
        return s
    return None


def _docs(server: Server) -> dict[str, str]:
    listed = server.http.get("/v1/documents").json()["documents"]
    return {d["doc_id"]: d["sha256"] for d in listed}


def _found(server: Server, query: str) -> list[dict[str, Any]]:
    hits: list[dict[str, Any]] = server.http.post("/v1/search", json={"query": query,
                                                                       "k": 3}).json()["hits"]
    return hits


class Asker(threading.Thread):
    """Searches and asks in a loop while the folder changes; every answer must be a 200."""

    def __init__(self, base_url: str) -> None:
        super().__init__(daemon=True)
        self.client = httpx.Client(base_url=base_url, timeout=60)
        self.stop, self.answered, self.errors = threading.Event(), 0, list[str]()

    def run(self) -> None:
        deadline = time.monotonic() + 900
        while not self.stop.is_set() and time.monotonic() < deadline and self.answered < 5000:
            for path, body in (("/v1/search", {"query": "opening hours of the library"}),
                               ("/v1/ask", {"question": "When does the library open?"})):
                try:
                    r = self.client.post(path, json=body)
                    if r.status_code != 200:
                        self.errors.append(f"{path} {r.status_code} {r.text[:200]}")
                except httpx.HTTPError as exc:
                    self.errors.append(f"{path} {exc!r}")
                self.answered += 1
            time.sleep(0.05)
        self.client.close()


def _fresh(folder: Path, root: Path, embedder: SentenceTransformerEmbedder
           ) -> list[dict[str, Any]]:
    fresh = Pipeline(Settings(index_dir=root), embedder=embedder)
    fresh.ingest([folder])
    return fresh.documents()


def test_a_watched_folder_stays_equal_to_the_index(tmp_path: Path,
                                                   embedder: SentenceTransformerEmbedder
                                                   ) -> None:
    folder = tmp_path / "watched"
    folder.mkdir()
    (folder / "library.txt").write_text("The library opens at nine in the morning.\n")
    (folder / "garden.md").write_text("# Garden\n\nThe roses are pruned in February.\n")
    index = tmp_path / "index"
    env = {"RAG_INDEX_DIR": str(index), "RAG_SYNC_QUIET_MS": "300"}
    with serve_rag(env, "--watch", str(folder), wait=300) as server:
        first = _until(lambda: _settled(server, 0), "the first run", server)
        assert first["watching"] == ["watched"] and first["last_run"]["trigger"] == "start"
        assert set(_docs(server)) == {"library", "garden"}
        asker = Asker(server.base_url)
        asker.start()

        runs = _sync(server)["runs"]
        (folder / "pool.txt").write_text("The swimming pool is heated to 28 degrees.\n")
        _until(lambda: any(h["doc_id"] == "pool" for h in _found(server, "pool heated")),
               "an added file searchable", server)
        (folder / "library.txt").write_text("The library opens at ten in the morning.\n")
        _until(lambda: "ten in the morning" in _found(server, "library opens")[0]["text"],
               "an edited file searchable", server)
        (folder / "sub").mkdir()
        (folder / "garden.md").rename(folder / "sub" / "roses.md")
        _until(lambda: set(_docs(server)) == {"library", "pool", "sub/roses"},
               "a renamed file under its new id only", server)
        (folder / "pool.txt").unlink()
        _until(lambda: set(_docs(server)) == {"library", "sub/roses"}, "a deleted file pruned",
               server)

        runs = _until(lambda: _settled(server, 0), "quiet", server)["runs"]
        for n in range(6):  # a burst of saves: one run, one snapshot
            (folder / f"note{n}.txt").write_text(f"Note {n}: the bins go out on day {n}.\n")
        burst = _until(lambda: _settled(server, runs), "the burst's run", server)
        assert burst["runs"] == runs + 1 and burst["last_run"]["added"] == 6
        assert burst["last_run"]["changed_files"] == 6

        (folder / "broken.pdf").write_bytes(b"%PDF-1.4 not really")
        bad = _until(lambda: _sync(server)["failed"], "a bad file reported", server)
        assert bad[0]["path"] == "broken.pdf" and "not a readable PDF" in bad[0]["reason"]
        asker.stop.set()
        asker.join(60)
        assert asker.errors == [] and asker.answered > 10
        server.proc.kill()  # the watcher dies without a word
        server.proc.wait()

    (folder / "note0.txt").unlink()  # changes while nobody watches
    (folder / "late.txt").write_text("The late bus leaves at midnight.\n")
    (folder / "broken.pdf").unlink()
    with serve_rag(env, "--watch", str(folder), wait=300) as server:
        caught = _until(lambda: _settled(server, 0), "catching up at start", server)
        assert caught["last_run"]["added"] == 1 and caught["last_run"]["deleted"] == 1
        assert caught["failed"] == []
        served = server.http.get("/v1/documents").json()["documents"]
    assert served == _fresh(folder, tmp_path / "fresh", embedder)


def test_a_run_is_one_segment_append_with_tombstones_and_reads_only_changed_files(
        tmp_path: Path) -> None:
    """Issue 27's write path: a run adds one segment holding the added and edited files,
    records the edited and deleted ones as deleted from the older segment, and makes one
    snapshot on top of the last; an unchanged scan is not read with OCR again."""
    folder = tmp_path / "watched"
    folder.mkdir()
    for name in ("a", "b", "c"):
        (folder / f"{name}.txt").write_text(f"File {name} says the tide turns at {name}.\n")
    (folder / "scan.png").write_bytes(
        render(PARAGRAPHS[:1], FONTS[0], skew=0.5, size=(1500, 500), seed=5).png)
    settings = Settings(index_dir=tmp_path / "index", auto_merge=False)
    pipeline = Pipeline(settings, embedder=HashingEmbedder())
    syncer = Syncer([folder], lambda paths: pipeline.ingest(paths, prune=True),
                    ignore=settings.index_dir)
    first = syncer.run("start")
    assert (first.added, first.ocr_pages, first.error) == (4, 1, None)

    (folder / "a.txt").write_text("File a now says the tide turns at noon.\n")
    (folder / "b.txt").unlink()
    (folder / "d.txt").write_text("File d says the ferry is late.\n")
    second = syncer.run("changes", [str(folder / n) for n in ("a.txt", "b.txt", "d.txt")])
    assert (second.added, second.replaced, second.deleted, second.ocr_pages) == (1, 1, 1, 0)
    snapshot = read_snapshot(settings.index_dir)
    assert snapshot is not None and snapshot.name == second.snapshot
    assert snapshot.manifest["previous"] == first.snapshot
    old, new = snapshot.segments
    assert (old.documents, set(old.deleted)) == (4, {"a", "b"})
    assert (new.documents, new.deleted) == (2, {})
    assert {d["doc_id"] for d in pipeline.documents()} == {"a", "c", "d", "scan"}

    third = syncer.run("changes")  # nothing changed: nothing read, nothing written
    assert (third.snapshot, third.ocr_pages, third.added + third.replaced) == (None, 0, 0)
    assert read_snapshot(settings.index_dir) == snapshot


@pytest.mark.unit
def test_which_changes_start_a_run(tmp_path: Path) -> None:
    index = tmp_path / "docs" / "index"
    syncer = Syncer([tmp_path / "docs"], lambda paths: pytest.fail("no run"), ignore=index)
    root = str((tmp_path / "docs").resolve())
    assert syncer.wanted(f"{root}/a.pdf") and syncer.wanted(f"{root}/sub/scan.PNG")
    assert syncer.wanted(f"{root}/moved-folder")  # its files went with it
    assert not syncer.wanted(f"{root}/.git/index") and not syncer.wanted(f"{root}/a.txt~")
    assert not syncer.wanted(f"{root}/.a.txt.swp") and not syncer.wanted(f"{index}/CURRENT")
    assert not syncer.wanted(f"{index.resolve()}/snapshots/x")
    assert not syncer.wanted("/elsewhere/a.txt")


def test_rag_watch_says_what_each_run_did(tmp_path: Path) -> None:
    """A change made as the first run ends (the watcher already listens) makes the next."""
    import os
    import queue
    import signal
    import subprocess

    from eval.harness import RAG

    folder = tmp_path / "notes"
    folder.mkdir()
    (folder / "a.txt").write_text("The ferry leaves at noon.\n")
    env = {**os.environ, "RAG_INDEX_DIR": str(tmp_path / "index"), "RAG_SYNC_QUIET_MS": "200"}
    watcher = subprocess.Popen([RAG, "watch", str(folder)], env=env, text=True,
                               stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
    lines: queue.Queue[str] = queue.Queue()
    assert watcher.stdout is not None
    threading.Thread(target=lambda: [lines.put(x) for x in watcher.stdout or ()],
                     daemon=True).start()
    try:
        assert lines.get(timeout=WAIT_S).startswith(f"watching {folder.resolve()}")
        assert "start (0 change(s)): 1 added, 0 replaced, 0 deleted, 0 failed, snapshot" \
            in lines.get(timeout=WAIT_S)
        (folder / "b.txt").write_text("The last bus leaves at midnight.\n")
        assert "changes (1 change(s)): 1 added" in lines.get(timeout=WAIT_S)
    finally:
        # SIGTERM, a service manager's stop: a SIGINT would be ignored when the suite itself
        # was started in the background (`bash .ci/run &`), as its children inherit that.
        watcher.send_signal(signal.SIGTERM)
        watcher.wait(60)
    assert watcher.returncode == 0


def test_a_folder_syncs_into_the_collection_named_and_no_other(
        tmp_path: Path, embedder: SentenceTransformerEmbedder) -> None:
    """`rag serve --watch DIR --watch-collection team`: the folder's files are in "team" only;
    its sync status is that collection's (the default's says it watches nothing, and a key of
    another collection gets a 404 for it); `rag watch --collection` of a collection that does
    not exist stops at once, reading nothing."""
    import os
    import subprocess

    from eval.harness import RAG

    folder = tmp_path / "watched"
    folder.mkdir()
    (folder / "rota.txt").write_text("The night rota is kept by the harbour master.\n")
    index = tmp_path / "index"
    default = Pipeline(Settings(index_dir=index), embedder=embedder)
    default.ingest_documents([])  # an empty default collection
    Pipelines(default).create("team")
    Pipelines(default).create("other")
    env = {"RAG_INDEX_DIR": str(index), "RAG_SYNC_QUIET_MS": "300", "RAG_API_KEY": "admin"}
    other, _ = KeyStore(index).create(["other"], "read", time.time())
    with serve_rag(env, "--watch", str(folder), "--watch-collection", "team",
                   wait=300) as server:
        admin = {"Authorization": "Bearer admin"}
        team = "/v1/collections/team"

        def settled() -> dict[str, Any] | None:
            s: dict[str, Any] = server.http.get(f"{team}/sync", headers=admin).json()
            return s if s["runs"] and not s["running"] else None

        status = _until(settled, "the first run into team", server)
        assert status["watching"] == ["watched"] and status["last_run"]["added"] == 1
        listed = server.http.get(f"{team}/documents", headers=admin).json()["documents"]
        assert [d["doc_id"] for d in listed] == ["rota"]
        assert server.http.get("/v1/documents", headers=admin).json()["documents"] == []
        assert server.http.get("/v1/sync", headers=admin).json()["watching"] == []
        refused = server.http.get(f"{team}/sync", headers={"Authorization": f"Bearer {other}"})
        assert refused.status_code == 404, refused.text

    done = subprocess.run([RAG, "watch", "--collection", "nope", str(folder)],
                          env={**os.environ, "RAG_INDEX_DIR": str(index)}, capture_output=True,
                          text=True, timeout=WAIT_S)
    assert done.returncode == 1 and "no collection 'nope'" in done.stderr
