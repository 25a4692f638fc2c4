"""Document ids: the name a file is known by in the index, in URLs and in citations.

An id is the file's path relative to the folder it was ingested from, without its extension
("guide/install"), or an upload's name ("отчёт"): letters and digits of every script are kept
as they are (NFC), so are ".", "_" and "-"; any other character becomes "_". When that loses
something (a space, a symbol, a name too long: at most MAX_CHARS characters), or the id is
taken by another file, a short hash of the whole name follows ("a_b-3f2c9e1d"), so two
different names never share an id. Ids already in an index are kept (rag.ingest): only new
documents get this rule.
"""

from __future__ import annotations

import hashlib
import re
import unicodedata
from collections.abc import Container
from pathlib import Path, PurePosixPath

MAX_CHARS = 120
HASH_CHARS = 8
_SAFE_PUNCTUATION = frozenset("._-")
_RUNS = re.compile(r"_{2,}")


def _kept(ch: str) -> bool:
    return ch in _SAFE_PUNCTUATION or unicodedata.category(ch)[0] in "LNM"


def _slug(part: str) -> str:
    """One path part: kept characters, the rest as "_" (runs of it as one), no "._-" at
    either end (no hidden names, nothing a command line reads as an option)."""
    text = "".join(ch if _kept(ch) else "_" for ch in unicodedata.normalize("NFC", part))
    return _RUNS.sub("_", text).strip("._-")


def _hashed(base: str, key: str) -> str:
    digest = hashlib.sha256(key.encode("utf-8", "surrogatepass")).hexdigest()[:HASH_CHARS]
    room = MAX_CHARS - HASH_CHARS - 1
    return f"{base[:room].rstrip('/._-')}-{digest}" if base else digest


def _from_parts(parts: tuple[str, ...], key: str, taken: Container[str]) -> str:
    slugs = [_slug(p) for p in parts]
    base = "/".join(s for s in slugs if s)
    exact = slugs == [unicodedata.normalize("NFC", p) for p in parts] and all(parts) \
        and len(base) <= MAX_CHARS
    if exact and base not in taken:
        return base
    candidate = _hashed(base, key)
    n = 1
    while candidate in taken:  # another name with the same hash prefix: astronomically rare
        n += 1
        candidate = _hashed(base, f"{key}\x00{n}")
    return candidate


def for_file(file: Path, root: Path, taken: Container[str] = ()) -> str:
    """The id of ``file``, ingested from the folder ``root``: its relative path without the
    extension, hashed when not exact or when ``taken`` holds it."""
    relative = PurePosixPath(file.relative_to(root).as_posix())
    return _from_parts(relative.with_suffix("").parts, str(relative), taken)


def for_upload(filename: str) -> str:
    """The id of an uploaded file: its name (never a path) without the extension."""
    name = _base_name(filename)
    stem = name.rsplit(".", 1)[0] if "." in name.strip(".") else name
    return _from_parts((stem,), name, ())


def upload_source(filename: str) -> str:
    """What an upload's ``source`` says: "upload:" and its name, at most 255 characters."""
    return "upload:" + _base_name(filename)[:255]


def _base_name(filename: str) -> str:
    """The last part of what a client called the file (browsers send only that; others may
    send a path, with either slash)."""
    return filename.replace("\\", "/").rsplit("/", 1)[-1]
