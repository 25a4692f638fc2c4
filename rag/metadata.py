"""What a document's metadata may hold, and where it comes from.

Every document has **automatic** metadata: ``source`` (its path relative to the ingested
folder, or "upload:NAME"), ``folder`` (that path's folder, "" at the top), ``format`` (the
file's extension), ``title``, ``modified`` (the file's modification time when its content was
indexed, ISO 8601 UTC) and ``size`` (bytes). **User-given** metadata is added at ingest
(`rag ingest --meta team=legal`, a sidecar file ``NAME.meta.json`` beside the file NAME, an
upload's form fields) or changed later (PATCH /v1/documents/{id}, merged as JSON Merge Patch).

Keys are short identifiers; values are strings, numbers or booleans (a filter compares
them: rag.filters). A value written as text (a CLI pair, a form field) is read by one rule,
``parse_value``: an integer or a decimal number, ``true``/``false``, else the text itself.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from pathlib import Path, PurePosixPath
from typing import Any

from rag.errors import InputError

Value = str | int | float | bool
AUTOMATIC = ("source", "folder", "format", "title", "modified", "size")
# Only these of the automatic ones are stored with a document's metadata: the others are
# the document's own columns (title, source) or derived from them (folder).
STORED_AUTOMATIC = ("format", "modified", "size")
RESERVED = frozenset({*AUTOMATIC, "doc_id", "path"})  # doc_id and path are filter terms
KEY = re.compile(r"[A-Za-z_][A-Za-z0-9_.-]{0,63}")
# A key users may give: KEY, not a reserved one (what request schemas declare).
GIVEN_KEY = f"^(?!(?:{'|'.join(sorted(RESERVED))})$){KEY.pattern}$"
MAX_KEYS = 64
MAX_VALUE_CHARS = 1000
SIDECAR = ".meta.json"  # report.pdf's is report.pdf.meta.json
_INTEGER = re.compile(r"-?(0|[1-9][0-9]{0,17})")
_DECIMAL = re.compile(r"-?(0|[1-9][0-9]*)?\.[0-9]+([eE][-+]?[0-9]+)?"
                      r"|-?(0|[1-9][0-9]*)[eE][-+]?[0-9]+")


def parse_value(text: str) -> Value:
    """A value given as text: ``42`` and ``-3`` are integers, ``2.5`` a number, ``true`` and
    ``false`` booleans; anything else (``007``, ``legal``, ``2024-05-01``) stays text."""
    if _INTEGER.fullmatch(text):
        return int(text)
    if _DECIMAL.fullmatch(text):
        return float(text)
    if text in ("true", "false"):
        return text == "true"
    return text


def check_key(key: object, where: str = "metadata") -> str:
    """``GIVEN_KEY``, with a message for each way to miss it."""
    if not isinstance(key, str) or not KEY.fullmatch(key):
        raise InputError(f"{where}: {str(key)[:80]!r} is not a metadata key: use letters, "
                         "digits, '_', '.', '-' (a letter or '_' first, at most 64)")
    if key in RESERVED:
        raise InputError(f"{where}: {key!r} is set automatically and cannot be given: "
                         f"choose another name (reserved: {', '.join(sorted(RESERVED))})")
    return key


def check_value(key: str, value: object, where: str = "metadata") -> Value:
    if isinstance(value, bool | int | str) or (isinstance(value, float) and value == value
                                                and abs(value) != float("inf")):
        if isinstance(value, str) and len(value) > MAX_VALUE_CHARS:
            raise InputError(f"{where}.{key}: {len(value)} characters, over the limit of "
                             f"{MAX_VALUE_CHARS}")
        return value
    raise InputError(f"{where}.{key}: {type(value).__name__} is not a metadata value: use a "
                     "string, a number or true/false")


def check(user: Mapping[str, object], where: str = "metadata") -> dict[str, Value]:
    """User-given metadata, validated: keys (not reserved), values, how many."""
    if not isinstance(user, Mapping):
        raise InputError(f"{where}: expected an object of keys and values")
    if len(user) > MAX_KEYS:
        raise InputError(f"{where}: {len(user)} keys, over the limit of {MAX_KEYS}")
    return {check_key(k, where): check_value(k, v, where) for k, v in user.items()}


def parse_pairs(pairs: Sequence[str], where: str = "--meta") -> dict[str, Value]:
    """``KEY=VALUE`` pairs (values read by ``parse_value``)."""
    out: dict[str, object] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep:
            raise InputError(f"{where} {pair!r}: expected KEY=VALUE, like team=legal")
        out[key.strip()] = parse_value(value)
    return check(out, where)


def sidecar(file: Path) -> dict[str, Value]:
    """The metadata in ``file``'s sidecar (``NAME.meta.json`` beside it), or none."""
    path = file.with_name(file.name + SIDECAR)
    if not path.is_file():
        return {}
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError) as exc:
        raise InputError(f"{path.name}: not a JSON object of metadata ({exc})") from None
    return check(data, path.name)


def merge_patch(user: Mapping[str, Value], patch: Mapping[str, object]) -> dict[str, Value]:
    """``user`` changed by ``patch`` (JSON Merge Patch, RFC 7396: a null removes a key)."""
    out: dict[str, object] = dict(user)
    for key, value in patch.items():
        check_key(key, "metadata")
        if value is None:
            out.pop(key, None)
        else:
            out[key] = value
    return check(out)


def patched(stored: Mapping[str, Value], patch: Mapping[str, object]) -> dict[str, Value]:
    """A document's stored metadata with its user-given part changed by ``patch``."""
    automatic = {k: v for k, v in stored.items() if k in RESERVED}
    return {**automatic, **merge_patch(user_part(stored), patch)}


def of_file(file: Path, data_size: int) -> dict[str, Value]:
    """The stored automatic metadata of a file read from disk."""
    stat = file.stat()
    return {"format": file.suffix.lower().lstrip("."), "size": data_size,
            "modified": iso(stat.st_mtime)}


def of_upload(filename: str, data_size: int, now: float) -> dict[str, Value]:
    """The stored automatic metadata of an upload (modified: when it arrived)."""
    suffix = PurePosixPath(filename.replace("\\", "/")).suffix
    return {"format": suffix.lower().lstrip("."), "size": data_size, "modified": iso(now)}


def iso(timestamp: float) -> str:
    return datetime.fromtimestamp(timestamp, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def folder_of(source: str) -> str:
    """The folder part of a relative source ("reports/2024/q1.pdf" -> "reports/2024")."""
    if source.startswith("upload:") or "/" not in source:
        return ""
    return source.rsplit("/", 1)[0]


def user_part(metadata: Mapping[str, Any]) -> dict[str, Any]:
    """The user-given part of a document's stored metadata."""
    return {k: v for k, v in metadata.items() if k not in RESERVED}


def full(title: str, source: str, stored: Mapping[str, Any]) -> dict[str, Any]:
    """Every key a filter or a client sees: the automatic ones and the user-given ones."""
    return {"source": source, "folder": folder_of(source), "title": title, **stored}


def dumps(stored: Mapping[str, Any]) -> str | None:
    """The stored form: canonical JSON (sorted keys), None for nothing."""
    return json.dumps(dict(stored), sort_keys=True, ensure_ascii=False,
                      separators=(",", ":")) if stored else None


def fingerprint(sha256: str, stored: Mapping[str, Any]) -> str:
    """What tells an unchanged document from a changed one at ingest: its content, and its
    user-given metadata (a file touched but not changed is not written again)."""
    user = dumps(user_part(stored))
    return f"{sha256}+{user}" if user else sha256
