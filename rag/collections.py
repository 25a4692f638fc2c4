"""Collections: named indexes under one index root, each a folder of atomic snapshots.

    index/                    the collection "default" (an index from before collections
      CURRENT, snapshots/,    is this one: nothing moves, nothing to migrate)
      segments/ ...
      keys.json               API keys (rag.keys)
      collections/
        .lock                 held while a collection is created or deleted
        legal/                the collection "legal": CURRENT, snapshots/, segments/, ...
        hr/

Each collection is a whole index (rag/index.py), so every guarantee of one — atomic
commits, a crash leaving the previous snapshot, one writer and one merger at a time — holds
per collection. A collection is created whole (an empty snapshot written in a temporary
folder, then renamed into place) and deleted whole (renamed to a trash name under its writer
lock, so that no write lands in it, then removed): a crash at any point leaves it there or
gone, never half. Names are lowercase letters, digits, "-" and "_" (``NAME``).
"""

from __future__ import annotations

import json
import os
import re
import shutil
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

from rag.errors import CollectionExistsError, CollectionNotFoundError, InputError
from rag.index import read_snapshot
from rag.writer import flock, fsync_dir, fsync_tree, writer_lock

DEFAULT = "default"
FOLDER = "collections"
NAME = re.compile(r"[a-z0-9][a-z0-9_-]{0,62}")
_LOCK = ".lock"
_TRASH = ".trash-"
_TMP = ".tmp-"


def check_name(name: str) -> str:
    """A valid collection name, or InputError (422) saying what one is."""
    if not isinstance(name, str) or not NAME.fullmatch(name):
        raise InputError(f"{str(name)[:80]!r} is not a collection name: use 1 to 63 lowercase "
                         "letters, digits, '-' and '_', starting with a letter or digit")
    return name


def folder(root: Path, name: str) -> Path:
    """Where the collection ``name`` of the index root ``root`` lives."""
    return Path(root) if name == DEFAULT else Path(root) / FOLDER / check_name(name)


class Collections:
    """The collections of one index root, on disk."""

    def __init__(self, root: Path, lock_wait_s: float = 30.0) -> None:
        self.root = Path(root)
        self.home = self.root / FOLDER
        self.lock_wait_s = lock_wait_s

    def names(self) -> list[str]:
        """Every collection, "default" first."""
        found = sorted(p.name for p in self.home.iterdir()
                       if NAME.fullmatch(p.name) and (p / "CURRENT").is_file()) \
            if self.home.is_dir() else []
        return [DEFAULT, *[n for n in found if n != DEFAULT]]

    def exists(self, name: str) -> bool:
        return name == DEFAULT or (NAME.fullmatch(name) is not None
                                   and (self.home / name / "CURRENT").is_file())

    def counts(self, name: str) -> dict[str, object]:
        """Its documents, chunks and snapshot, from the manifest (nothing is loaded)."""
        snapshot = read_snapshot(folder(self.root, name))
        if snapshot is None:
            return {"documents": 0, "chunks": 0, "snapshot": None}
        m = snapshot.manifest
        return {"documents": int(m["documents"]), "chunks": int(m["chunks"]),
                "snapshot": snapshot.name}

    def create(self, name: str, initialize: Callable[[Path], None]) -> Path:
        """A new, empty collection: ``initialize`` writes its first (empty) snapshot into a
        temporary folder, which is then renamed into place."""
        check_name(name)
        if name == DEFAULT:
            raise CollectionExistsError(name)
        self.home.mkdir(parents=True, exist_ok=True)
        with self._locked():
            final = self.home / name
            if final.exists():
                raise CollectionExistsError(name)
            tmp = self.home / f"{_TMP}{name}-{uuid.uuid4().hex[:8]}"
            try:
                tmp.mkdir()
                (tmp / "collection.json").write_text(json.dumps({"name": name}))
                initialize(tmp)
                fsync_tree(tmp)
                os.rename(tmp, final)
                fsync_dir(self.home)
            finally:
                shutil.rmtree(tmp, ignore_errors=True)
        return final

    def delete(self, name: str, wait_s: float, before: Callable[[], None] = lambda: None
               ) -> None:
        """Delete a collection whole. ``before`` runs first (a server closes what it holds
        open); the folder is renamed to a trash name while its writer lock is held, so no
        write is half in it, then removed."""
        check_name(name)
        if name == DEFAULT:
            raise InputError("the collection 'default' cannot be deleted: delete its "
                             "documents instead")
        with self._locked():
            path = self.home / name
            if not self.exists(name):
                raise CollectionNotFoundError(name)
            before()
            trash = self.home / f"{_TRASH}{name}-{uuid.uuid4().hex[:8]}"
            with writer_lock(path, wait_s, create=False):
                os.rename(path, trash)
                fsync_dir(self.home)
            shutil.rmtree(trash, ignore_errors=True)

    @contextmanager
    def _locked(self) -> Iterator[None]:
        """The collections lock; what a crash left (temporary and trash folders) is removed
        once it is held."""
        with flock(self.home / _LOCK, self.lock_wait_s, "collections are being created or "
                   "deleted by another process: retry in a moment"):
            for leftover in self.home.iterdir():
                if leftover.name.startswith((_TMP, _TRASH)):
                    shutil.rmtree(leftover, ignore_errors=True)
            yield
