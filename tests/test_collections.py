"""Collections on disk: names, creation and deletion whole, what a crash leaves, and that no
writer or merger ever writes into a collection once it is deleted. Real folders, a
3-dimensional stand-in index (tests/test_writer.py's documents)."""

from __future__ import annotations

from pathlib import Path

import pytest

from rag.collections import DEFAULT, Collections, check_name, folder
from rag.errors import CollectionExistsError, CollectionNotFoundError, InputError, NoIndexError
from rag.index import Index
from rag.merge import TieredPolicy, merge
from rag.writer import IndexWriter, writer_lock
from tests.test_writer import add

pytestmark = pytest.mark.unit


def empty(path: Path) -> None:
    with IndexWriter(path, "m", 3, {}) as w:
        w.commit()


def test_names_are_checked_and_default_is_the_index_root(tmp_path: Path) -> None:
    for good in ("legal", "hr-2024", "a", "team_x", "0"):
        assert check_name(good) == good
    for bad in ("", "Legal", "a b", "../x", ".tmp-x", "-x", "a" * 64, "é"):
        with pytest.raises(InputError, match="not a collection name"):
            check_name(bad)
    assert folder(tmp_path, DEFAULT) == tmp_path
    assert folder(tmp_path, "legal") == tmp_path / "collections" / "legal"


def test_a_collection_is_created_empty_and_whole(tmp_path: Path) -> None:
    shelf = Collections(tmp_path)
    assert shelf.names() == [DEFAULT]
    shelf.create("legal", empty)
    assert shelf.names() == [DEFAULT, "legal"] and shelf.exists("legal")
    assert shelf.counts("legal")["documents"] == 0
    index = Index(folder(tmp_path, "legal"))
    assert index.vectors.count() == 0 and index.store.documents() == []
    with pytest.raises(CollectionExistsError):
        shelf.create("legal", empty)
    with pytest.raises(CollectionExistsError):
        shelf.create(DEFAULT, empty)

    def crash(path: Path) -> None:
        empty(path)
        raise RuntimeError("killed while creating")

    with pytest.raises(RuntimeError):
        shelf.create("hr", crash)
    assert shelf.names() == [DEFAULT, "legal"]  # nothing half made is listed or left
    assert sorted(p.name for p in (tmp_path / "collections").iterdir()) == [".lock", "legal"]


def test_what_a_killed_process_left_is_swept_and_never_listed(tmp_path: Path) -> None:
    shelf = Collections(tmp_path)
    shelf.create("legal", empty)
    home = tmp_path / "collections"
    (home / ".tmp-hr-12345678").mkdir()  # killed while creating
    (home / ".trash-old-12345678").mkdir()  # killed while deleting
    (home / "stray").mkdir()  # no CURRENT: not a collection
    assert shelf.names() == [DEFAULT, "legal"] and not shelf.exists("stray")
    shelf.create("hr", empty)
    assert sorted(p.name for p in home.iterdir()) == [".lock", "hr", "legal", "stray"]


def test_a_deleted_collection_is_gone_whole_and_no_write_lands_in_it(tmp_path: Path) -> None:
    shelf = Collections(tmp_path)
    shelf.create("legal", empty)
    path = folder(tmp_path, "legal")
    with IndexWriter(path, "m", 3, {}, create=False) as w:
        add(w, "a")
        add(w, "b")
        w.commit()
    writer = IndexWriter(path, "m", 3, {}, create=False)  # a writer that has not locked yet
    shelf.delete("legal", 1.0)
    assert shelf.names() == [DEFAULT] and not path.exists()
    with pytest.raises(NoIndexError):
        writer.__enter__()
    assert merge(path, TieredPolicy(), 1000, 0.0, max_segments=1) is None
    assert not path.exists()  # neither the writer nor the merger made it again
    with pytest.raises(CollectionNotFoundError):
        shelf.delete("legal", 1.0)
    with pytest.raises(InputError, match="cannot be deleted"):
        shelf.delete(DEFAULT, 1.0)


def test_deletion_waits_for_the_writer_and_a_late_writer_finds_nothing(tmp_path: Path) -> None:
    shelf = Collections(tmp_path)
    shelf.create("legal", empty)
    path = folder(tmp_path, "legal")
    with writer_lock(path, create=False), pytest.raises(Exception, match="being written"):
        shelf.delete("legal", 0.2)  # a commit in progress: the deletion waits, then gives up
    assert shelf.exists("legal")
    shelf.delete("legal", 1.0)
    with pytest.raises(NoIndexError), writer_lock(path, create=False):
        pass
    assert not path.exists()
