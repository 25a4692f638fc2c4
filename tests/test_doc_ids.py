"""Document ids: the whole relative path or upload name, any script kept, a hash when
something was lost or the id is taken, bounded length."""

from __future__ import annotations

from pathlib import Path

import pytest

from rag.doc_ids import MAX_CHARS, for_file, for_upload, upload_source

pytestmark = pytest.mark.unit


def test_non_ascii_names_are_kept_and_never_collide() -> None:
    assert for_upload("отчёт.txt") == "отчёт" and for_upload("договор.txt") == "договор"
    assert for_upload("東京 報告.pdf").startswith("東京_報告-")
    assert for_upload("café.txt") == for_upload("cafe\u0301.txt") == "café"  # NFC either way


def test_an_upload_name_is_never_a_path_and_loses_nothing_silently() -> None:
    assert for_upload("../../x/y/report.final.pdf") == "report.final"
    assert for_upload("C:\\Users\\me\\a b.txt") == for_upload("a b.txt")
    names = ["a b.txt", "a_b.txt", "a__b.txt", "a?b.txt", "....txt", "-rf.txt", "\u202etxt.exe"]
    ids = [for_upload(n) for n in names]
    assert len(set(ids)) == len(names)  # each different name, a different id
    assert ids[1] == "a_b" and ids[0].startswith("a_b-") and not ids[5].startswith("-")
    assert upload_source("../secret/a b.txt") == "upload:a b.txt"


def test_ids_are_bounded_and_long_names_differing_at_the_end_stay_apart() -> None:
    long_a, long_b = "x" * 4000 + "a.txt", "x" * 4000 + "b.txt"
    assert len(for_upload(long_a)) == MAX_CHARS and for_upload(long_a) != for_upload(long_b)
    assert len(upload_source(long_a)) == len("upload:") + 255


def test_a_file_is_named_by_its_whole_relative_path_and_hashed_when_taken() -> None:
    root = Path("/docs")
    assert for_file(root / "guide" / "install.md", root) == "guide/install"
    assert for_file(root / "notes.txt", root) == "notes"
    taken = {"notes"}
    other = for_file(root / "notes.md", root, taken)
    assert other.startswith("notes-") and other != for_file(root / "notes.rst", root, taken)
    assert for_file(root / "a b" / "c.txt", root).startswith("a_b/c-")
