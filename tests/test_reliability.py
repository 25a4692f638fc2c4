"""The quick parts of `make check-reliability`: a few crash points (a merge's and a sync's
among them), a short fuzz, and queries while the index changes and merges. All against real
processes on 127.0.0.1. The crash and concurrency runs happen in a collection of their own
("team"), beside the collection "default", which must come out of them unchanged: every
guarantee of an index holds per collection (the harnesses' default runs cover "default"
itself)."""

from __future__ import annotations

import pytest

from eval.reliability import concurrency, crash, fuzz

pytestmark = pytest.mark.slow

def test_sigkill_at_five_points_leaves_a_whole_snapshot() -> None:
    report = crash.run(quick=True, log=lambda _: None, collection="team")
    s = report["summary"]
    assert s["collection"] == "team"
    assert s["trials"] == s["killed"] == 5, report["trials"]
    assert s["failed"] == 0, report["trials"]
    assert set(s["phases"]) == {"writing", "swap", "commit", "merging"}


def test_short_schemathesis_run_finds_no_5xx_and_no_schema_violation() -> None:
    report = fuzz.run(max_examples=5)
    assert report["ok"], report["runs"]
    assert report["cases"] >= 100
    for run in report["runs"]:
        assert run["server_5xx"] == 0 and run["server_tracebacks"] == 0


def test_queries_never_fail_while_the_index_changes() -> None:
    report = concurrency.run("team")
    assert report["ok"], report
    assert report["default_unchanged"] and report["total"]["by_op"]["search"] > 0
    assert report["merges"] >= 2  # in the server's background, and by `rag compact`
    assert "rag compact exit 0" in report["phases"][4]["detail"]
    assert report["total"]["errors"] == 0 and report["database_locked"] == 0
    second = report["phases"][-1]["detail"]
    assert "exit 1, 'Error: index at" in second and "being written by another process" in second
    assert "upload: 201" in second and "waiting ingest: exit 0" in second
