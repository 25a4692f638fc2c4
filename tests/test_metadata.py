"""Documents' metadata: the value rule, what keys may be given, sidecars, merge patches,
and what tells a changed document from an unchanged one. Real files in tmp_path."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from rag import metadata
from rag.errors import InputError
from rag.ingest import Catalog, plan, read_paths
from rag.isolation import ParseLimits

pytestmark = pytest.mark.unit


@pytest.mark.parametrize(("text", "value"), [
    ("42", 42), ("-3", -3), ("0", 0), ("2.5", 2.5), ("1e3", 1000.0), ("true", True),
    ("false", False), ("007", "007"), ("legal", "legal"), ("2024-05-01", "2024-05-01"),
    ("", ""), ("True", "True"), ("1.", "1."),
])
def test_a_value_given_as_text_is_read_by_one_rule(text: str, value: object) -> None:
    parsed = metadata.parse_value(text)
    assert parsed == value and type(parsed) is type(value)


def test_keys_and_values_are_checked_and_automatic_keys_are_reserved() -> None:
    assert metadata.parse_pairs(["team=legal", "year=2021"]) == {"team": "legal", "year": 2021}
    for bad, message in (("title=x", "set automatically"), ("bad key=1", "not a metadata key"),
                         ("noequals", "expected KEY=VALUE"), ("doc_id=a", "set automatically")):
        with pytest.raises(InputError, match=message):
            metadata.parse_pairs([bad])
    with pytest.raises(InputError, match="list is not a metadata value"):
        metadata.check({"tags": ["a"]})
    with pytest.raises(InputError, match="over the limit"):
        metadata.check({"note": "x" * (metadata.MAX_VALUE_CHARS + 1)})
    with pytest.raises(InputError, match="keys, over the limit"):
        metadata.check({f"k{i}": i for i in range(metadata.MAX_KEYS + 1)})


def test_a_merge_patch_sets_replaces_and_removes() -> None:
    assert metadata.merge_patch({"team": "legal", "old": 1}, {"team": "hr", "old": None,
                                                              "new": True}) == \
        {"team": "hr", "new": True}
    with pytest.raises(InputError, match="set automatically"):
        metadata.merge_patch({}, {"size": 3})


def test_folder_and_full_metadata() -> None:
    assert metadata.folder_of("reports/2024/q1.pdf") == "reports/2024"
    assert metadata.folder_of("q1.pdf") == "" and metadata.folder_of("upload:a/b.txt") == ""
    full = metadata.full("Q1", "reports/q1.pdf", {"format": "pdf", "team": "legal"})
    assert full == {"source": "reports/q1.pdf", "folder": "reports", "title": "Q1",
                    "format": "pdf", "team": "legal"}


def test_a_fingerprint_changes_with_user_metadata_only() -> None:
    sha = "ab" * 32
    assert metadata.fingerprint(sha, {"format": "txt", "modified": "x"}) == sha
    assert metadata.fingerprint(sha, {"modified": "y", "team": "a"}) == \
        metadata.fingerprint(sha, {"modified": "z", "team": "a"})
    assert metadata.fingerprint(sha, {"team": "a"}) != metadata.fingerprint(sha, {"team": "b"})


def test_files_get_automatic_metadata_their_sidecar_and_the_given(tmp_path: Path) -> None:
    docs = tmp_path / "docs"
    (docs / "legal").mkdir(parents=True)
    (docs / "legal" / "nda.txt").write_text("The parties keep this secret.\n")
    (docs / "legal" / "nda.txt.meta.json").write_text(json.dumps({"team": "legal",
                                                                  "year": 2021}))
    (docs / "memo.md").write_text("# Memo\n\nLunch is at noon.\n")
    (docs / "bad.txt").write_text("Text with a broken sidecar.\n")
    (docs / "bad.txt.meta.json").write_text("{not json")
    failed: list[tuple[str, str]] = []
    found = read_paths([docs], Catalog(), ParseLimits(100_000, 30.0, 1024), failed,
                       given={"team": "all", "owner": "ann"})
    by_id = {d.doc_id: d for d in found}
    assert sorted(by_id) == ["legal/nda", "memo"]  # sidecars are not documents
    nda = by_id["legal/nda"].metadata
    assert nda["team"] == "legal" and nda["year"] == 2021 and nda["owner"] == "ann"
    assert nda["format"] == "txt" and nda["size"] == len("The parties keep this secret.\n")
    assert str(nda["modified"]).endswith("Z")
    assert by_id["memo"].metadata["team"] == "all" and by_id["memo"].metadata["format"] == "md"
    assert [Path(p).name for p, _ in failed] == ["bad.txt"] and "bad.txt.meta.json" in failed[0][1]
    # The same files again: unchanged; a changed sidecar: replaced (its text is the same).
    known = {d.doc_id: metadata.fingerprint(d.sha256, d.metadata) for d in found}
    assert plan(known.get, found)[1].skipped == ["legal/nda", "memo"]
    (docs / "legal" / "nda.txt.meta.json").write_text(json.dumps({"team": "hr"}))
    again = read_paths([docs], Catalog(), ParseLimits(100_000, 30.0, 1024), [],
                       given={"team": "all", "owner": "ann"})
    _, report = plan(known.get, again)
    assert report.replaced == ["legal/nda"] and report.skipped == ["memo"]
