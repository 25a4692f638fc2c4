"""API keys: stored only as salted scrypt hashes, verified once then remembered, revoked and
expired at once (seen through the file by another store, as another process would), scoped."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest

from rag.errors import InputError, SettingsError
from rag.keys import ADMIN, Grant, KeyNotFoundError, KeyStore, parse_expiry

pytestmark = pytest.mark.unit


def test_a_key_is_shown_once_and_only_its_salted_hash_is_stored(tmp_path: Path) -> None:
    store = KeyStore(tmp_path)
    key, record = store.create(["legal", "hr"], "read", time.time(), label="legal team")
    other, _ = store.create(["legal"], "read", time.time())
    text = (tmp_path / "keys.json").read_text()
    secret = key.split("_", 2)[2]
    assert key.startswith("rag_" + record.id + "_") and secret not in text and key not in text
    stored = {r["id"]: r for r in json.loads(text)["keys"]}
    assert set(stored[record.id]) >= {"salt", "hash"} and len(stored[record.id]["hash"]) == 64
    assert stored[record.id]["salt"] != stored[json.loads(text)["keys"][1]["id"]]["salt"]
    assert (tmp_path / "keys.json").stat().st_mode & 0o777 == 0o600
    listed = store.listed(time.time())
    assert [k["label"] for k in listed] == ["legal team", ""]
    assert all("hash" not in k and "salt" not in k for k in listed)
    assert other != key


def test_verification_grants_the_role_in_the_scope_and_refuses_the_rest(tmp_path: Path) -> None:
    store = KeyStore(tmp_path)
    key, record = store.create(["legal"], "write", time.time())
    now = time.time()
    assert store.remembered(key, now) is False  # not seen yet: verify pays its scrypt
    grant = store.verify(key, now)
    assert grant == Grant("write", frozenset({"legal"}), record.id)
    assert store.remembered(key, now) == grant  # then a hash and a lookup
    assert grant.may("read", "legal") and grant.may("write", "legal")
    assert not grant.may("admin", "legal") and not grant.sees("hr")
    wrong = key[:-3] + ("abc" if not key.endswith("abc") else "xyz")
    assert store.verify(wrong, now) is None and store.remembered(wrong, now) is None
    for junk in ("", "rag_", "rag_nope_x", "Bearer x", f"rag_{record.id}"):
        assert store.verify(junk, now) is None


def test_revocation_and_expiry_take_effect_at_once(tmp_path: Path) -> None:
    server, cli = KeyStore(tmp_path), KeyStore(tmp_path)  # two processes' views of one file
    key, record = cli.create(["*"], "admin", time.time())
    assert server.verify(key, time.time()) == Grant("admin", None, record.id)
    cli.revoke(record.id, time.time())
    assert server.remembered(key, time.time()) is None  # remembered, but revoked now
    assert server.verify(key, time.time()) is None
    soon, made = cli.create(["legal"], "read", time.time(),
                            expires=parse_expiry("2099-01-01", time.time()))
    assert server.verify(soon, time.time()) is not None
    assert server.verify(soon, time.time() + 200 * 365 * 86400) is None  # past its expiry
    assert [k["active"] for k in server.listed(time.time())] == [False, True]
    assert made.expires == "2099-01-01T00:00:00Z"


def test_admins_manage_only_the_keys_of_their_collections(tmp_path: Path) -> None:
    store = KeyStore(tmp_path)
    _, legal = store.create(["legal"], "read", time.time())
    _, both = store.create(["legal", "hr"], "read", time.time())
    _, every = store.create(["*"], "read", time.time())
    admin_of_legal = Grant("admin", frozenset({"legal"}))
    assert [k["id"] for k in store.listed(time.time(), admin_of_legal)] == [legal.id]
    assert len(store.listed(time.time(), ADMIN)) == 3
    for hidden in (both.id, every.id, "nope"):
        with pytest.raises(KeyNotFoundError):
            store.revoke(hidden, time.time(), admin_of_legal)
    assert store.revoke(legal.id, time.time(), admin_of_legal).revoked is not None


def test_bad_requests_for_keys_say_what_to_give(tmp_path: Path) -> None:
    store = KeyStore(tmp_path)
    for kwargs, message in (({"collections": [], "role": "read"}, "at least one collection"),
                            ({"collections": ["Legal!"], "role": "read"},
                             "not a collection name"),
                            ({"collections": ["a"], "role": "owner"}, "use one of read"),
                            ({"collections": ["a"], "role": "read", "expires": "2001-01-01"},
                             "not in the future"),
                            ({"collections": ["a"], "role": "read", "expires": "soon"},
                             "use a date")):
        with pytest.raises(InputError, match=message):
            store.create(now=time.time(), **kwargs)  # type: ignore[arg-type]
    assert not (tmp_path / "keys.json").exists()
    assert store.create(["a", "*"], "read", time.time())[1].collections == ("*",)


def test_a_damaged_key_file_is_one_clear_error(tmp_path: Path) -> None:
    (tmp_path / "keys.json").write_text('{"keys": [{"id": "x"}]}')
    with pytest.raises(SettingsError, match="is not a key file .*restore it"):
        KeyStore(tmp_path).verify("rag_x_y", time.time())
