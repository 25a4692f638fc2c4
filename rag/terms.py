"""Filter terms: a filter written as words, for the CLI (--where), the web page's filter box
and anywhere a filter is given as a string (rag.filters).

    team=legal  year>=2020  year<2024  format=pdf|docx  team!=hr  path=reports/  doc_id=a|b

A term is KEY, an operator and a value; terms together must all hold. One regular
expression (``TERMS_PATTERN``) is the grammar, for the parser here and for the JSON schema
that publishes it, so that whatever the schema allows is read and nothing else is.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

from rag import metadata
from rag.errors import InputError

# Terms: KEY, an operator, a value of plain characters and quoted runs ("..." or '...', to hold
# spaces and "|"); one rule, for the parser and for the JSON schema of a filter given as terms.
_CHUNK = r"""(?:"[^"]*"|'[^']*'|[^\s"'])"""
_TERM_TEXT = rf"({metadata.KEY.pattern})(!=|>=|<=|=|>|<)({_CHUNK}*)"
TERMS_PATTERN = rf"^\s*{_TERM_TEXT}(?:\s+{_TERM_TEXT})*\s*$"
MAX_TERMS_CHARS = 1000
_TERM = re.compile(_TERM_TEXT)
_TERMS = re.compile(TERMS_PATTERN)
_CHUNKS = re.compile(_CHUNK)
RANGE = {">": "gt", ">=": "gte", "<": "lt", "<=": "lte"}


def terms(text: str | Sequence[str]) -> dict[str, Any]:
    """The JSON form of terms (a string of them, or each one): all must hold.

    ``KEY=VALUE`` is equal, ``KEY=A|B`` any of them, ``KEY!=...`` not so; ``KEY>=VALUE`` (and
    >, <=, <) a bound; ``doc_id=ID|ID`` and ``path=PREFIX`` (with ``!=`` too) their shapes.
    A bound is a number or text (``true`` is text there: booleans have no order), and a range
    on ``path`` compares the source.
    """
    parts = [text] if isinstance(text, str) else list(text)
    if not any(p.strip() for p in parts):
        raise InputError("an empty filter: give terms like team=legal")
    found = []
    for part in parts:
        if len(part) > MAX_TERMS_CHARS:
            raise InputError(f"filter terms: {len(part)} characters, over the limit of "
                             f"{MAX_TERMS_CHARS}")
        if not _TERMS.fullmatch(part):
            bad = next((t for t in part.split() if not _TERM.fullmatch(t)), part.strip())
            raise InputError(f"filter term {bad[:80]!r}: expected KEY=VALUE (or !=, >=, <=, >, "
                             "<), like team=legal or year>=2020; quote a value with spaces")
        found += [_term(*m.groups()) for m in _TERM.finditer(part)]
    return found[0] if len(found) == 1 else {"and": found}


def _values(text: str) -> list[str]:
    """A term's value, unquoted, split at the "|" outside quotes."""
    values, current = [], ""
    for chunk in _CHUNKS.findall(text):
        if chunk == "|":
            values.append(current)
            current = ""
        else:
            current += chunk[1:-1] if chunk[0] in "\"'" else chunk
    return [*values, current]


def _term(key: str, op: str, text: str) -> dict[str, Any]:
    values = _values(text)
    if op in RANGE:
        value = "".join(c[1:-1] if c[0] in "\"'" else c for c in _CHUNKS.findall(text))
        bound = metadata.parse_value(value)
        field = "source" if key == "path" else key
        return {"field": field, RANGE[op]: value if isinstance(bound, bool) else bound}
    if key == "doc_id":
        test: dict[str, Any] = {"doc_id": values}
    elif key == "path":
        test = {"path": values[0]} if len(values) == 1 else \
            {"or": [{"path": v} for v in values]}
    else:
        parsed = [metadata.parse_value(v) for v in values]
        test = {"field": key, "eq": parsed[0]} if len(parsed) == 1 else \
            {"field": key, "in": parsed}
    return {"not": test} if op == "!=" else test
