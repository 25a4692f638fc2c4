"""The Settings reference: every field of ``rag.config.Settings`` as the environment variable
that sets it, with its type, default, bounds and the comment written above it in the class.

The comment is the description: house style puts one above every setting, so a setting added
with its comment appears here with no other change (a ``Field(description=...)`` wins when a
field has one)."""

from __future__ import annotations

import ast
import inspect
import re
import textwrap
import types
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, Union, get_args, get_origin

import annotated_types
from pydantic import SecretStr
from pydantic.fields import FieldInfo
from pydantic_core import PydanticUndefined
from pydantic_settings import BaseSettings, NoDecode

from eval.docsite.markdown import code, table

MIB = 1024 * 1024


@dataclass(frozen=True)
class Entry:
    """One setting as the page shows it."""

    name: str  # the field
    variable: str  # RAG_...
    type: str
    default: str
    bounds: str
    description: str


def comments(cls: type) -> dict[str, str]:
    """The comment lines right above each annotated field of ``cls``, joined."""
    lines, _ = inspect.getsourcelines(cls)
    body = ast.parse(textwrap.dedent("".join(lines))).body[0]
    assert isinstance(body, ast.ClassDef)
    found = {}
    for node in body.body:
        if isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name):
            above: list[str] = []
            i = node.lineno - 2
            while i >= 0 and lines[i].strip().startswith("#"):
                above.insert(0, lines[i].strip().removeprefix("#").strip())
                i -= 1
            found[node.target.id] = " ".join(above)
    return found


def type_name(annotation: Any, metadata: Sequence[Any] = ()) -> str:
    """What a user writes in the variable, in words."""
    origin, args = get_origin(annotation), get_args(annotation)
    if origin is Literal:
        return "one of " + ", ".join(code(a) for a in args)
    if origin in (Union, types.UnionType):
        kinds = [type_name(a) for a in args if a is not type(None)]
        return " or ".join(kinds)
    if origin is list:
        comma = any(isinstance(m, NoDecode) or m is NoDecode for m in metadata)
        item = type_name(args[0]) if args else "text"
        return f"comma-separated {item}s" if comma else f"JSON list of {item}s"
    names = {bool: "boolean", int: "integer", float: "number", str: "text", Path: "path",
             SecretStr: "secret text"}
    return names.get(annotation, getattr(annotation, "__name__", str(annotation)))


def default_text(name: str, field: FieldInfo) -> str:
    if field.default is PydanticUndefined:
        if field.default_factory is None:
            return "required"
        value: Any = field.default_factory()  # type: ignore[call-arg]
    else:
        value = field.default
    if value is None:
        return "unset"
    if isinstance(value, bool):
        return code(str(value).lower())
    if isinstance(value, list):
        return code(",".join(map(str, value))) if value else "none"
    if name.endswith("_bytes") and isinstance(value, int) and value % MIB == 0:
        return f"{code(value)} ({value // MIB} MiB)"
    return code(value)


def bounds_text(field: FieldInfo) -> str:
    signs = {"ge": "≥", "gt": ">", "le": "≤", "lt": "<", "min_length": "length ≥",
             "max_length": "length ≤"}
    parts = []
    for meta in field.metadata:
        if isinstance(meta, annotated_types.BaseMetadata):
            for key, sign in signs.items():
                value = getattr(meta, key, None)
                if value is not None:
                    parts.append(f"{sign} {value:,}" if isinstance(value, int)
                                 else f"{sign} {value}")
    return ", ".join(parts)


def for_users(comment: str, variables: dict[str, str]) -> str:
    """A code comment as a user reads it: ``None`` is an unset variable, a field named is its
    variable, and a page of these docs (docs/x.md) a link to it."""
    parts = comment.split("`")
    for i in range(0, len(parts), 2):  # outside inline code
        text = parts[i].replace("<", "&lt;").replace(">", "&gt;")
        text = re.sub(r"(^|\. )None\b", r"\1Unset", text)
        text = re.sub(r"\bNone\b", "unset", text)
        text = re.sub(r"\b[a-z]+(?:_[a-z0-9]+)+\b",
                      lambda m: code(variables[m[0]]) if m[0] in variables else m[0], text)
        parts[i] = re.sub(r"\bdocs/([\w/-]+\.md)\b", r"[\1](\1)", text)
    return "`".join(parts)


def entries(cls: type[BaseSettings]) -> list[Entry]:
    """Every field of ``cls`` in the order it declares them."""
    prefix = str(cls.model_config.get("env_prefix", ""))
    variables = {name: f"{prefix}{name}".upper() for name in cls.model_fields}
    said = comments(cls)
    return [Entry(name, variables[name], type_name(f.annotation, f.metadata),
                  default_text(name, f), bounds_text(f),
                  f.description or for_users(said.get(name, ""), variables))
            for name, f in cls.model_fields.items()]


def anchor(variable: str) -> str:
    return variable.lower()


def render(cls: type[BaseSettings]) -> str:
    rows = [(f'<a id="{anchor(e.variable)}"></a>{code(e.variable)}', e.type, e.default,
             e.bounds, e.description) for e in entries(cls)]
    return table(["Variable", "Type", "Default", "Bounds", "What it does"], rows)
