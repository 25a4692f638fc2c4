"""The filter language: its shapes, terms, what each matches, and errors that name the bad
part. Pure logic over metadata dictionaries."""

from __future__ import annotations

from typing import Any

import pytest

from rag import filters
from rag.errors import InputError
from rag.terms import terms

pytestmark = pytest.mark.unit

DOCS: dict[str, dict[str, Any]] = {
    "reports/q1": {"source": "reports/2024/q1.pdf", "folder": "reports/2024", "format": "pdf",
                   "team": "legal", "year": 2024, "modified": "2024-04-02T10:00:00Z"},
    "reports/q2": {"source": "reports/2024/q2.docx", "folder": "reports/2024",
                   "format": "docx", "team": "hr", "year": 2024, "reviewed": True},
    "notes/old": {"source": "notes/old.txt", "folder": "notes", "format": "txt",
                  "team": "legal", "year": 2019, "modified": "2019-12-31T23:59:59Z"},
    "upload": {"source": "upload:memo.md", "folder": "", "format": "md", "year": "2024"},
}


def chosen(f: object) -> list[str]:
    parsed = filters.parse(f)
    return sorted(d for d, meta in DOCS.items() if parsed.matches(d, meta))


@pytest.mark.parametrize(("given", "expected"), [
    ({"field": "team", "eq": "legal"}, ["notes/old", "reports/q1"]),
    ({"path": "reports/"}, ["reports/q1", "reports/q2"]),
    ({"path": "upload:"}, ["upload"]),
    ({"doc_id": "notes/old"}, ["notes/old"]),
    ({"doc_id": ["notes/old", "upload", "nope"]}, ["notes/old", "upload"]),
    ({"field": "format", "in": ["pdf", "docx"]}, ["reports/q1", "reports/q2"]),
    ({"field": "year", "gte": 2020}, ["reports/q1", "reports/q2"]),  # "2024" is text
    ({"field": "year", "gt": 2019, "lt": 2024}, []),
    ({"field": "year", "lte": 2019}, ["notes/old"]),
    ({"field": "modified", "gte": "2024-01-01"}, ["reports/q1"]),  # ISO dates as text
    ({"field": "reviewed", "exists": True}, ["reports/q2"]),
    ({"field": "reviewed", "eq": True}, ["reports/q2"]),
    ({"field": "year", "eq": "2024"}, ["upload"]),  # types differ: 2024 is not "2024"
    ({"and": [{"field": "team", "eq": "legal"}, {"path": "reports/"}]}, ["reports/q1"]),
    ({"or": [{"field": "team", "eq": "hr"}, {"doc_id": "upload"}]}, ["reports/q2", "upload"]),
    ({"not": {"field": "team", "eq": "legal"}}, ["reports/q2", "upload"]),  # no team: not legal
    ({"and": [{"not": {"path": "reports/"}}, {"or": [{"field": "year", "eq": 2019},
                                                     {"field": "format", "eq": "md"}]}]},
     ["notes/old", "upload"]),
    ({"field": "team", "eq": "nobody"}, []),
])
def test_each_shape_selects_what_it_says(given: object, expected: list[str]) -> None:
    assert chosen(given) == expected


@pytest.mark.parametrize(("text", "expected"), [
    ("team=legal", ["notes/old", "reports/q1"]),
    ("team=legal path=reports/", ["reports/q1"]),
    ("format=pdf|docx", ["reports/q1", "reports/q2"]),
    ("team!=legal", ["reports/q2", "upload"]),
    ("year>=2020 year<2025", ["reports/q1", "reports/q2"]),
    ("doc_id=notes/old|upload", ["notes/old", "upload"]),
    ('modified>"2019-12-31T23:59:58Z"', ["notes/old", "reports/q1"]),
    ("reviewed=true", ["reports/q2"]),
    ("path!=reports/ doc_id!=upload", ["notes/old"]),
    ("path=reports/|upload:", ["reports/q1", "reports/q2", "upload"]),
    ("doc_id>=reports/", ["reports/q1", "reports/q2", "upload"]),  # doc_ids compare as text
    ('title="a b|c"', []),  # quotes keep spaces and "|"
    ("path=", sorted(DOCS)),
])
def test_terms_mean_the_same_as_objects(text: str, expected: list[str]) -> None:
    assert chosen(text) == expected
    if '"' not in text:
        assert chosen(terms(text.split(" "))) == expected  # given one by one


@pytest.mark.parametrize(("given", "message"), [
    ({"and": [{"field": "year", "gte": "2020", "lt": 2024}]},
     "filter.and.0: range bounds are all numbers or all text"),
    ({"or": [{"path": "a"}, {"field": "team", "eq": "a", "in": ["b"]}]},
     "filter.or.1: give exactly one of eq, in, exists, or a range"),
    ({"not": {"field": "team", "eq": ["legal"]}}, "filter.not.eq: expected a string, a number"),
    ({"field": "team", "in": []}, "filter.in: List should have at least 1 item"),
    ({"field": "bad key", "eq": 1}, "filter.field: String should match pattern"),
    ({"team": "legal"}, "filter: a filter is an object with one of the keys and, or, not"),
    ({"and": [{"doc_id": "a", "zz": 1}]}, "filter.and.0: unknown key 'zz'"),
    ({"doc_id": []}, "filter.doc_id: expected a doc_id or a non-empty list of them"),
    ({"field": "path", "eq": "a"}, 'path is not a metadata field: use {"path": PREFIX}'),
    ({"field": "team", "eq": None}, "filter: eq is null: give a value"),
    ("team=", None),  # an empty value is the empty text, not an error
    ("team", "filter term 'team': expected KEY=VALUE"),
    ('team="legal', "filter term 'team=\"legal': expected KEY=VALUE"),
    ("team=a b", "filter term 'b'"),
    ("x" * 1001 + "=1", "over the limit of 1000"),
    (5, "a filter is an object"),
])
def test_a_bad_filter_is_one_error_naming_its_bad_part(given: object,
                                                       message: str | None) -> None:
    if message is None:
        filters.parse(given)
        return
    with pytest.raises(InputError) as caught:
        filters.parse(given)
    assert message in str(caught.value), str(caught.value)


def test_filters_are_bounded_in_depth_and_size() -> None:
    deep: dict[str, Any] = {"path": "a"}
    for _ in range(filters.MAX_DEPTH):
        deep = {"not": deep}
    with pytest.raises(InputError, match="nested more than 8 deep"):
        filters.parse(deep)
    wide = {"or": [{"path": str(i)} for i in range(filters.MAX_NODES)]}
    with pytest.raises(InputError, match="more than 1024 conditions"):
        filters.parse(wide)


def test_combined_filters_all_hold_and_have_one_canonical_key() -> None:
    a, b = filters.parse("team=legal"), filters.parse({"path": "reports/"})
    both = filters.combine(a, None, b)
    assert both is not None and sorted(d for d, m in DOCS.items() if both.matches(d, m)) == \
        ["reports/q1"]
    assert filters.combine(None, a) is a and filters.combine() is None
    assert filters.key(filters.parse("year>=2020 team=hr")) == \
        filters.key(filters.parse({"and": [{"field": "year", "gte": 2020},
                                           {"eq": "hr", "field": "team"}]}))
