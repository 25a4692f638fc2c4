"""Read a dataset in BEIR layout, checking it so a bad folder fails with a clear message.

    corpus.jsonl     {"_id", "title", "text"} per line
    queries.jsonl    {"_id", "text"} per line
    qrels/<split>.tsv  header "query-id corpus-id score"; CRLF tolerated; graded scores
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rag.errors import InputError


class DatasetError(InputError):
    """The dataset folder is not a usable BEIR dataset."""


@dataclass(frozen=True)
class Dataset:
    name: str
    path: Path
    corpus: dict[str, tuple[str, str]]  # _id -> (title, text)
    queries: dict[str, str]  # only the queries judged in the split
    qrels: dict[str, dict[str, int]]  # query id -> corpus id -> grade
    fingerprint: str  # sha256 of corpus.jsonl: indexes are cached per corpus


def json_lines(path: Path) -> Iterator[tuple[int, Any]]:
    """(line number, parsed value) for each non-blank line of a JSON Lines file."""
    with path.open(encoding="utf-8") as f:
        for n, line in enumerate(f, start=1):
            if not line.strip():
                continue
            try:
                yield n, json.loads(line)
            except json.JSONDecodeError as exc:
                raise DatasetError(f"{path}:{n}: not JSON ({exc.msg})") from None


def _jsonl(path: Path, fields: tuple[str, ...]) -> list[dict[str, str]]:
    if not path.is_file():
        raise DatasetError(f"{path} is missing: a BEIR dataset needs corpus.jsonl, "
                           "queries.jsonl and qrels/<split>.tsv")
    rows = []
    for n, row in json_lines(path):
        missing = [k for k in fields if k not in row]
        if missing:
            raise DatasetError(f"{path}:{n}: missing field(s) {', '.join(missing)}")
        rows.append(row)
    if not rows:
        raise DatasetError(f"{path} is empty")
    return rows


def _qrels(path: Path) -> dict[str, dict[str, int]]:
    if not path.is_file():
        raise DatasetError(f"{path} is missing: name an existing split with --split")
    qrels: dict[str, dict[str, int]] = {}
    lines = path.read_text(encoding="utf-8").splitlines()
    for n, line in enumerate(lines, start=1):
        parts = line.rstrip("\r").split("\t")
        if n == 1 and parts[0] == "query-id":
            continue
        if not line.strip():
            continue
        if len(parts) != 3:
            raise DatasetError(f"{path}:{n}: expected 'query-id<TAB>corpus-id<TAB>score'")
        try:
            grade = int(parts[2])
        except ValueError:
            raise DatasetError(f"{path}:{n}: score {parts[2]!r} is not an integer") from None
        qrels.setdefault(parts[0], {})[parts[1]] = grade
    if not qrels:
        raise DatasetError(f"{path} holds no judgments")
    return qrels


def load(path: Path, split: str = "test") -> Dataset:
    path = Path(path)
    if not path.is_dir():
        raise DatasetError(f"{path} is not a folder: pass a BEIR dataset folder to --dataset")
    corpus = {r["_id"]: (r.get("title") or "", r["text"])
              for r in _jsonl(path / "corpus.jsonl", ("_id", "text"))}
    all_queries = {r["_id"]: r["text"] for r in _jsonl(path / "queries.jsonl", ("_id", "text"))}
    qrels = _qrels(path / "qrels" / f"{split}.tsv")
    unknown_q = sorted(set(qrels) - set(all_queries))
    if unknown_q:
        raise DatasetError(f"qrels/{split}.tsv names {len(unknown_q)} query id(s) not in "
                           f"queries.jsonl, e.g. {unknown_q[:3]}")
    unknown_d = sorted({d for judged in qrels.values() for d in judged} - set(corpus))
    if unknown_d:
        raise DatasetError(f"qrels/{split}.tsv names {len(unknown_d)} corpus id(s) not in "
                           f"corpus.jsonl, e.g. {unknown_d[:3]}")
    empty = sorted(q for q in qrels if not all_queries[q].strip())
    if empty:
        raise DatasetError(f"queries.jsonl has empty text for judged query id(s) {empty[:3]}")
    sha = hashlib.sha256((path / "corpus.jsonl").read_bytes()).hexdigest()
    return Dataset(name=path.name, path=path, corpus=corpus,
                   queries={q: all_queries[q] for q in qrels}, qrels=qrels, fingerprint=sha)


def any_split(path: Path) -> str:
    """A split the folder has (test first): for reading its corpus when no split is named."""
    splits = sorted(p.stem for p in (Path(path) / "qrels").glob("*.tsv"))
    if not splits:
        raise DatasetError(f"{path}/qrels holds no <split>.tsv: is {path} a BEIR dataset?")
    return "test" if "test" in splits else splits[0]
