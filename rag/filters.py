"""The filter language: which documents a search or an answer may read.

A filter is a JSON object of one of these shapes (combined freely, at most ``MAX_DEPTH``
deep and ``MAX_NODES`` nodes):

    {"doc_id": "guide/install"}  or  {"doc_id": ["a", "b"]}     these documents
    {"path": "reports/2024/"}                                    sources starting so
    {"field": "team", "eq": "legal"}                             equal (type and value)
    {"field": "team", "in": ["legal", "hr"]}                     any of these
    {"field": "year", "gte": 2020, "lt": 2024}                   a range: numbers with
                                                                 numbers, text with text
    {"field": "reviewed", "exists": true}                        the key is set (or not)
    {"and": [F, ...]}   {"or": [F, ...]}   {"not": F}

``field`` names an automatic key (rag.metadata.AUTOMATIC: source, folder, format, title,
modified, size), ``doc_id``, or a user-given one. A document without the field matches no
comparison (and so matches ``not`` of one). A filter may also be written as terms, all of
which must hold (the CLI's --where, the web page's filter box, or a string where a filter
goes; rag.terms: one grammar for the parser and the JSON schema):

    team=legal  year>=2020  year<2024  format=pdf|docx  team!=hr  path=reports/  doc_id=a|b

Values in terms are read as rag.metadata.parse_value says; quote a value with spaces or
"|" in it (``title="Annual report"``). A filter that matches no document selects nothing: a
search finds nothing and an answer abstains.
"""

from __future__ import annotations

import json
import operator
from collections.abc import Mapping, Sequence
from typing import Annotated, Any

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Discriminator,
    Field,
    StrictBool,
    StrictFloat,
    StrictInt,
    StrictStr,
    Tag,
    TypeAdapter,
    ValidationError,
    model_validator,
)

from rag import metadata
from rag.errors import InputError
from rag.terms import MAX_TERMS_CHARS, RANGE, TERMS_PATTERN, terms

MAX_DEPTH = 8
MAX_NODES = 1024  # a string of terms (at most MAX_TERMS_CHARS) stays under it
MAX_LIST = 1000
Scalar = Annotated[StrictStr | StrictBool | StrictInt | StrictFloat,
                   Field(union_mode="left_to_right")]
FieldName = Annotated[str, Field(pattern=f"^{metadata.KEY.pattern}$", max_length=64)]
_BOUNDS = tuple(RANGE.values())
_TESTS = ("eq", "in", "exists", *_BOUNDS)

# What the JSON schema (OpenAPI, the MCP tools) says a filter is, as exactly as JSON schema
# can: the validators below are the rule, these describe it.
_FIELD_SCHEMA = {"type": "string", "maxLength": 64, "pattern": f"^{metadata.KEY.pattern}$",
                 "not": {"const": "path"}}
_SCALARS = [{"type": "string"}, {"type": "number"}, {"type": "boolean"}]


def _shape(test: dict[str, Any], required: list[str], **extra: Any) -> dict[str, Any]:
    return {"type": "object", "additionalProperties": False, "required": ["field", *required],
            "properties": {"field": _FIELD_SCHEMA, **test}, **extra}


def _range(kind: str) -> dict[str, Any]:
    return _shape({b: {"type": kind} for b in _BOUNDS}, [], minProperties=2)


COMPARE_SCHEMA = {"oneOf": [
    _shape({"eq": {"anyOf": _SCALARS}}, ["eq"]),
    _shape({"in": {"type": "array", "items": {"anyOf": _SCALARS}, "minItems": 1,
                   "maxItems": MAX_LIST}}, ["in"]),
    _shape({"exists": {"type": "boolean"}}, ["exists"]),
    _range("number"), _range("string")]}


class _Node(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)

    def matches(self, doc_id: str, meta: Mapping[str, Any]) -> bool:
        raise NotImplementedError


def _same_kind(a: object, b: object) -> bool:
    """Numbers compare with numbers, text with text, booleans with booleans."""
    def kind(x: object) -> str:
        return "bool" if isinstance(x, bool) else "number" if isinstance(x, int | float) \
            else "text" if isinstance(x, str) else "other"
    return kind(a) == kind(b) != "other"


class DocIds(_Node):
    doc_id: str | Annotated[list[str], Field(min_length=1, max_length=MAX_LIST)]

    @property
    def ids(self) -> frozenset[str]:
        return frozenset([self.doc_id] if isinstance(self.doc_id, str) else self.doc_id)

    def matches(self, doc_id: str, meta: Mapping[str, Any]) -> bool:
        return doc_id in self.ids


class PathPrefix(_Node):
    path: str = Field(max_length=1000)  # "": every document

    def matches(self, doc_id: str, meta: Mapping[str, Any]) -> bool:
        return str(meta.get("source", "")).startswith(self.path)


class Compare(_Node):
    """One test of one field: eq, in, exists, or a range of bounds of one kind."""

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True,
                              json_schema_extra=lambda schema: _exactly(schema))

    field: FieldName
    eq: Scalar | None = None
    in_: Annotated[list[Scalar], Field(min_length=1, max_length=MAX_LIST)] | None = \
        Field(default=None, alias="in")
    gt: Scalar | None = None
    gte: Scalar | None = None
    lt: Scalar | None = None
    lte: Scalar | None = None
    exists: bool | None = None

    @model_validator(mode="before")
    @classmethod
    def _no_nulls(cls, data: Any) -> Any:
        """A test given as null is a mistake, not an absent test."""
        if isinstance(data, Mapping):
            for key in _TESTS:
                if key in data and data[key] is None:
                    raise ValueError(f"{key} is null: give a value, or leave {key} out")
        return data

    @model_validator(mode="after")
    def _one_test(self) -> Compare:
        if self.field == "path":
            raise ValueError('path is not a metadata field: use {"path": PREFIX}, or the '
                             'field "source"')
        bounds = [b for b in (self.gt, self.gte, self.lt, self.lte) if b is not None]
        kinds = sum(x is not None for x in (self.eq, self.in_, self.exists)) + bool(bounds)
        if kinds != 1:
            raise ValueError("give exactly one of eq, in, exists, or a range (gt, gte, lt, "
                             "lte)")
        if any(isinstance(b, bool) for b in bounds) or \
                any(not _same_kind(b, bounds[0]) for b in bounds):
            raise ValueError("range bounds are all numbers or all text (ISO dates compare "
                             "as text)")
        return self

    def matches(self, doc_id: str, meta: Mapping[str, Any]) -> bool:
        if self.field == "doc_id":  # every document has one; it is not in its metadata
            meta = {**meta, "doc_id": doc_id}
        if self.exists is not None:
            return (self.field in meta) == self.exists
        if self.field not in meta:
            return False
        value = meta[self.field]
        if self.eq is not None:
            return _same_kind(value, self.eq) and value == self.eq
        if self.in_ is not None:
            return any(_same_kind(value, v) and value == v for v in self.in_)
        for bound, op in ((self.gt, operator.gt), (self.gte, operator.ge),
                          (self.lt, operator.lt), (self.lte, operator.le)):
            if bound is not None and not (_same_kind(value, bound) and op(value, bound)):
                return False
        return True


class And(_Node):
    and_: Annotated[list[Filter], Field(min_length=1, max_length=MAX_NODES)] = \
        Field(alias="and")

    def matches(self, doc_id: str, meta: Mapping[str, Any]) -> bool:
        return all(f.matches(doc_id, meta) for f in self.and_)


class Or(_Node):
    or_: Annotated[list[Filter], Field(min_length=1, max_length=MAX_NODES)] = \
        Field(alias="or")

    def matches(self, doc_id: str, meta: Mapping[str, Any]) -> bool:
        return any(f.matches(doc_id, meta) for f in self.or_)


class Not(_Node):
    not_: Filter = Field(alias="not")

    def matches(self, doc_id: str, meta: Mapping[str, Any]) -> bool:
        return not self.not_.matches(doc_id, meta)


def _exactly(schema: dict[str, Any]) -> None:
    """Compare's JSON schema: its shapes one by one (the model's own would allow any mix)."""
    schema.clear()
    schema.update(title="Compare", **COMPARE_SCHEMA)


_TAGS = ("and", "or", "not", "doc_id", "path", "field")


def _tag(value: object) -> str | None:
    """Which shape a filter object has: the first of its keys that names one."""
    if isinstance(value, Mapping):
        return next((t for t in _TAGS if t in value), None)
    if isinstance(value, _Node):
        return {And: "and", Or: "or", Not: "not", DocIds: "doc_id", PathPrefix: "path",
                Compare: "field"}[type(value)]
    return None


Filter = Annotated[
    Annotated[And, Tag("and")] | Annotated[Or, Tag("or")] | Annotated[Not, Tag("not")]
    | Annotated[DocIds, Tag("doc_id")] | Annotated[PathPrefix, Tag("path")]
    | Annotated[Compare, Tag("field")],
    Discriminator(_tag, custom_error_type="filter",
                  custom_error_message="a filter is an object with one of the keys and, or, "
                                       "not, doc_id, path, field")]
for _model in (And, Or, Not):
    _model.model_rebuild()


def _size(node: object, depth: int = 1) -> int:
    if depth > MAX_DEPTH:
        raise ValueError(f"nested more than {MAX_DEPTH} deep")
    children: list[object] = []
    if isinstance(node, Mapping):
        for key in ("and", "or"):
            if isinstance(node.get(key), list):
                children += node[key]
        if isinstance(node.get("not"), Mapping):
            children.append(node["not"])
    return 1 + sum(_size(c, depth + 1) for c in children)


def _accept(value: object) -> object:
    """Terms as a string, or the JSON object; bounded before it is validated."""
    if isinstance(value, str):
        try:
            value = terms(value)
        except InputError as exc:
            raise ValueError(str(exc)) from None
    if _size(value) > MAX_NODES:
        raise ValueError(f"more than {MAX_NODES} conditions")
    return value


# What request bodies declare: a filter object, or terms in a string.
TermsText = Annotated[str, Field(max_length=MAX_TERMS_CHARS, pattern=TERMS_PATTERN)]
FilterIn = Annotated[Filter, BeforeValidator(_accept, json_schema_input_type=Filter | TermsText)]
_ADAPTER: TypeAdapter[Filter] = TypeAdapter(FilterIn)


def parse(value: object, where: str = "filter") -> Filter:
    """A filter from its JSON form (or terms), or InputError naming the bad part."""
    try:
        return _ADAPTER.validate_python(value)
    except ValidationError as exc:
        raise InputError(explain(exc, where)) from None


_FIELDS = frozenset({*_TAGS, "eq", "in", "gt", "gte", "lt", "lte", "exists"})
_UNION_MESSAGES = {"doc_id": "expected a doc_id or a non-empty list of them"}


def _where(loc: Sequence[int | str]) -> tuple[str, ...]:
    """A pydantic location without the union tags and member names it passes through:
    ("and", "and", 0, "field", "gte") -> ("and", "0", "gte")."""
    out: list[str] = []
    at_union = True  # the root, a list item and a "not" are filters of any shape
    for part in loc:
        if at_union and part in _TAGS:
            at_union = False
            continue
        if isinstance(part, int) or part == "not":
            at_union = True
        elif part not in _FIELDS:
            break  # a union member's name ("str", "list[str]"): where it went wrong ends here
        out.append(str(part))
    return tuple(out)


def explain(exc: ValidationError, where: str = "filter") -> str:
    """One message per bad part, naming it ("filter.and.1.gte: ...")."""
    found: dict[tuple[str, ...], list[str]] = {}
    for err in exc.errors():
        message = err["msg"].removeprefix("Value error, ")
        if err["type"] == "extra_forbidden":
            message = f"unknown key {str(err['loc'][-1])[:40]!r}"
        found.setdefault(_where(err["loc"]), []).append(message)
    parts = []
    for loc, messages in list(found.items())[:5]:
        message = messages[0]
        if len(messages) > 1:  # every member of a union failed
            message = _UNION_MESSAGES.get(loc[-1] if loc else "",
                                          "expected a string, a number or true/false")
        parts.append(f"{'.'.join([where, *loc])}: {message}")
    return "; ".join(parts)


def combine(*filters: Filter | None) -> Filter | None:
    """All of these (None: no filter)."""
    given = [f for f in filters if f is not None]
    if len(given) <= 1:
        return given[0] if given else None
    return And.model_validate({"and": given})


def key(f: Filter) -> str:
    """A canonical text of the filter (what selections are cached by)."""
    return json.dumps(f.model_dump(by_alias=True, exclude_none=True), sort_keys=True)


