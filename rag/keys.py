"""API keys scoped to collections and a role, kept hashed in ``<index root>/keys.json``.

A key reads ``rag_<id>_<secret>``: the id (12 hex digits) names it in listings and
revocations; the secret (32 random bytes) is shown once, when the key is made, and never
stored: the file keeps a salted scrypt hash of it (``hashlib.scrypt``, n=2^14, r=8, p=1: about
16 MB and tens of milliseconds a try, so a stolen file does not give keys back), compared in
constant time (``hmac.compare_digest``).

That cost is paid once per key a process sees: a verified key is remembered by the SHA-256
of what the client sent (in memory only), so later requests cost a hash and a lookup. A
wrong secret for a known id is remembered the same way, so repeating it costs nothing more;
an unknown id fails before any scrypt. Revocation and expiry are checked on every request
against the file as it is now: it is read again whenever it changes (inode, size, mtime: one
stat a request), so `rag keys revoke` in another process takes effect at once. Writes lock
the file, write a new one and rename it over the old (atomic; mode 0600).

Roles: ``read`` (search, ask, read documents), ``write`` (also upload, change, delete
documents), ``admin`` (also manage collections and keys). A key sees only its collections
("*": all, those made later too); an admin key manages keys of its collections only, and
makes collections only when it has "*".
"""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import secrets
import threading
from collections import OrderedDict
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal, get_args

from rag.collections import check_name
from rag.errors import InputError, RagError, SettingsError
from rag.writer import flock, fsync_dir

Role = Literal["read", "write", "admin"]
ROLES: tuple[Role, ...] = get_args(Role)
ALL = "*"
FILE = "keys.json"
PREFIX = "rag_"
SCRYPT = {"n": 2 ** 14, "r": 8, "p": 1}
REMEMBERED = 4096  # presented keys whose verification is kept in memory
MAX_LABEL = 200


class KeyNotFoundError(RagError):
    status = 404

    def __init__(self, key_id: str) -> None:
        super().__init__(f"no key with id {key_id[:40]!r}: list them with `rag keys list`")


@dataclass(frozen=True)
class Grant:
    """What a request may do: its role, in which collections (None: every one)."""

    role: Role
    collections: frozenset[str] | None
    key_id: str | None = None  # None: RAG_API_KEY, or a server without keys

    def sees(self, collection: str) -> bool:
        return self.collections is None or collection in self.collections

    def may(self, role: Role, collection: str) -> bool:
        return ROLES.index(self.role) >= ROLES.index(role) and self.sees(collection)

    def covers(self, collections: frozenset[str] | None) -> bool:
        """Whether every collection of ``collections`` (None: all) is among its own."""
        return self.collections is None or (collections is not None
                                            and collections <= self.collections)


ADMIN = Grant("admin", None)


@dataclass(frozen=True)
class KeyRecord:
    id: str
    role: Role
    collections: tuple[str, ...]  # ("*",) for all
    label: str
    created: str
    expires: str | None
    revoked: str | None
    salt: str
    hash: str

    @property
    def scope(self) -> frozenset[str] | None:
        return None if ALL in self.collections else frozenset(self.collections)

    def grant(self) -> Grant:
        return Grant(self.role, self.scope, self.id)

    def active(self, now: float) -> bool:
        return self.revoked is None and (self.expires is None or _epoch(self.expires) > now)

    def public(self, now: float) -> dict[str, Any]:
        """What listings show: never the salt or the hash."""
        out = {k: v for k, v in asdict(self).items() if k not in ("salt", "hash")}
        out["collections"] = list(self.collections)
        out["active"] = self.active(now)
        return out


def iso(t: float) -> str:
    return datetime.fromtimestamp(t, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _epoch(text: str) -> float:
    return datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()


def parse_expiry(text: str, now: float) -> str:
    """``2025-12-31`` (the key stops working at 00:00 UTC that day) or an ISO 8601 time
    (UTC unless it names a zone), in the future; returned as ISO 8601 UTC."""
    try:
        when = datetime.fromisoformat(text.strip().replace("Z", "+00:00"))
    except ValueError:
        raise InputError(f"expires {text[:40]!r}: use a date (2025-12-31) or an ISO 8601 "
                         "time (2025-12-31T18:00:00Z)") from None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    if when.timestamp() <= now:
        raise InputError(f"expires {text[:40]!r} is not in the future")
    return when.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def check_scope(collections: Iterable[str]) -> tuple[str, ...]:
    names = tuple(dict.fromkeys(c.strip() for c in collections if c.strip()))
    if not names:
        raise InputError("a key needs at least one collection (or '*' for all)")
    if ALL in names:
        return (ALL,)
    return tuple(check_name(n) for n in names)


def _hash(secret: str, salt: bytes) -> bytes:
    return hashlib.scrypt(secret.encode(), salt=salt, dklen=32, **SCRYPT)


class KeyStore:
    """The key file of one index root."""

    def __init__(self, root: Path, lock_wait_s: float = 30.0) -> None:
        self.path = Path(root) / FILE
        self.lock_wait_s = lock_wait_s
        self._records: dict[str, KeyRecord] = {}
        self._seen: tuple[int, int, int] | None = None
        self._remembered: OrderedDict[bytes, tuple[str, str] | None] = OrderedDict()
        self._lock = threading.Lock()

    # Reading

    def records(self) -> dict[str, KeyRecord]:
        """Every key (revoked and expired ones too), as the file holds them now."""
        try:
            st = os.stat(self.path)
            seen: tuple[int, int, int] | None = (st.st_ino, st.st_size, st.st_mtime_ns)
        except FileNotFoundError:
            seen = None
        if seen != self._seen:
            records = self._read()
            with self._lock:
                self._records, self._seen = records, seen
        return self._records

    def _read(self) -> dict[str, KeyRecord]:
        try:
            data = json.loads(self.path.read_text())
            return {r["id"]: KeyRecord(**{**r, "collections": tuple(r["collections"])})
                    for r in data["keys"]}
        except FileNotFoundError:
            return {}
        except (ValueError, KeyError, TypeError) as exc:
            raise SettingsError(f"{self.path} is not a key file ({type(exc).__name__}): "
                                "restore it from a backup, or delete it (every key made "
                                "is then gone)") from None

    def any(self) -> bool:
        """Whether any key was ever made here (then requests need one)."""
        return bool(self.records())

    def listed(self, now: float, within: Grant = ADMIN) -> list[dict[str, Any]]:
        """The keys an admin ``within`` manages (those of its collections), no secrets."""
        return [r.public(now) for r in sorted(self.records().values(), key=lambda r: r.created)
                if within.covers(r.scope)]

    # Verifying

    def remembered(self, token: str, now: float) -> Grant | None | bool:
        """The grant of a key verified before (None: refused), or False when this key was
        not seen yet and ``verify`` must pay its scrypt."""
        digest = hashlib.sha256(token.encode()).digest()
        with self._lock:
            if digest not in self._remembered:
                return False
            known = self._remembered[digest]
        if known is None:
            return None
        record = self.records().get(known[0])
        if record is None or record.hash != known[1] or not record.active(now):
            return None
        return record.grant()

    def verify(self, token: str, now: float) -> Grant | None:
        """The grant of ``token``, or None (unknown, wrong, revoked or expired)."""
        found = self.remembered(token, now)
        if found is not False:
            return found  # type: ignore[return-value]
        key_id, _, secret = token.removeprefix(PREFIX).partition("_")
        record = self.records().get(key_id) if token.startswith(PREFIX) else None
        if record is None:
            return None  # no scrypt for an id that does not exist
        ok = hmac.compare_digest(_hash(secret, bytes.fromhex(record.salt)).hex(), record.hash)
        self._remember(token, (record.id, record.hash) if ok else None)
        return record.grant() if ok and record.active(now) else None

    def _remember(self, token: str, known: tuple[str, str] | None) -> None:
        with self._lock:
            self._remembered[hashlib.sha256(token.encode()).digest()] = known
            while len(self._remembered) > REMEMBERED:
                self._remembered.popitem(last=False)

    # Writing

    def create(self, collections: Sequence[str], role: str, now: float,
               expires: str | None = None, label: str = "") -> tuple[str, KeyRecord]:
        """A new key: (the key itself, shown this once; its record)."""
        if role not in ROLES:
            raise InputError(f"role {role!r}: use one of {', '.join(ROLES)}")
        if len(label) > MAX_LABEL:
            raise InputError(f"label: {len(label)} characters, over the limit of {MAX_LABEL}")
        key_id, secret, salt = secrets.token_hex(6), secrets.token_urlsafe(32), \
            secrets.token_bytes(16)
        record = KeyRecord(key_id, role, check_scope(collections), label, iso(now),
                           parse_expiry(expires, now) if expires else None, None, salt.hex(),
                           _hash(secret, salt).hex())
        self._change(lambda records: {**records, key_id: record})
        return f"{PREFIX}{key_id}_{secret}", record

    def revoke(self, key_id: str, now: float, within: Grant = ADMIN) -> KeyRecord:
        """Revoke a key at once (an admin ``within`` revokes only keys of its collections)."""
        revoked: list[KeyRecord] = []

        def change(records: dict[str, KeyRecord]) -> dict[str, KeyRecord]:
            record = records.get(key_id)
            if record is None or not within.covers(record.scope):
                raise KeyNotFoundError(key_id)
            if record.revoked is None:
                record = KeyRecord(**{**asdict(record), "revoked": iso(now)})
            revoked.append(record)
            return {**records, key_id: record}

        self._change(change)
        return revoked[0]

    def _change(self, change: Any) -> None:
        """Read, change and write the file under its lock; the new file replaces the old in
        one rename."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with flock(self.path.with_name(".keys.lock"), self.lock_wait_s,
                   "the key file is being changed by another process: retry"):
            records = change(self._read())
            tmp = self.path.with_name(f".{FILE}.tmp")
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            with os.fdopen(fd, "w") as f:
                json.dump({"format": 1, "keys": [asdict(r) | {"collections": list(
                    r.collections)} for r in records.values()]}, f, indent=2)
                f.flush()
                os.fsync(f.fileno())
            os.replace(tmp, self.path)
            fsync_dir(self.path.parent)
        self._seen = None  # read again on next use
