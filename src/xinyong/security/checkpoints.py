"""Audit checkpoints: the log's head, signed and published, so that a rewritten log is found.

The hash chain (`security.audit`) finds an entry edited, deleted or inserted by someone who does not
also recompute what follows. Whoever can write the store can: delete the last entries and rewrite
the head, or edit an entry and recompute every later hash and the head, and the chain verifies. A
checkpoint pins the head as it was: its number `n`, the time, the head's `seq` and `hash` — a
head that includes the checkpoint's own entry in the log — and `previous`, the digest of the
checkpoint before it (so checkpoints form a chain of their own), signed with the platform's key
(`security.keys`). It is kept in the store, appended to a copy beside the keys, and published (the
public page, `audit checkpoints --json`); `verify` checks the log against every checkpoint it is
given, from wherever it came, and names the first that no longer matches.

What it does not stop: entries appended since the last checkpoint can still be removed unseen
(the server makes one every hour), and whoever holds the signing key and the store can sign a new
history — which anyone who kept an earlier checkpoint still catches (docs/security.md).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import os
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import orjson
from sqlalchemy import Connection, select

from xinyong.errors import BadInput
from xinyong.rules.clock import from_storage, parse_instant, to_storage
from xinyong.security import audit, keys
from xinyong.storage import tables as t
from xinyong.storage.backend import backend_of

GENESIS = audit.GENESIS
COPY = "checkpoints.jsonl"  # the copy beside the keys: one checkpoint per line, appended


@dataclass(frozen=True)
class Checkpoint:
    n: int
    at: dt.datetime
    seq: int
    hash: str
    previous: str
    key: str
    signature: str

    def signed(self) -> bytes:
        """The bytes the signature covers: every field but the signature, as canonical JSON."""
        fields = {
            "at": self.at.astimezone(dt.UTC).isoformat(timespec="microseconds"),
            "hash": self.hash,
            "key": self.key,
            "n": self.n,
            "previous": self.previous,
            "seq": self.seq,
        }
        return orjson.dumps(fields, option=orjson.OPT_SORT_KEYS)

    def digest(self) -> str:
        """What the next checkpoint names as `previous`: SHA-256 of the signed bytes and the signature."""
        return hashlib.sha256(self.signed() + b"\n" + self.signature.encode()).hexdigest()

    def as_dict(self) -> dict[str, Any]:
        values = asdict(self)
        values["at"] = self.at.astimezone(dt.UTC).isoformat(timespec="microseconds")
        return values

    @classmethod
    def from_dict(cls, values: Mapping[str, Any], where: str) -> Checkpoint:
        """A published checkpoint read back; BadInput naming `where` and the field when it is not one."""
        try:
            found = cls(
                n=_whole(values["n"]),
                at=parse_instant(str(values["at"])),
                seq=_whole(values["seq"]),
                hash=_hex(values["hash"], 64),
                previous=_hex(values["previous"], 64),
                key=_hex(values["key"], 16),
                signature=str(values["signature"]),
            )
        except KeyError as exc:
            raise BadInput(f"{where}: a checkpoint without {exc.args[0]!r}") from None
        except (BadInput, ValueError, TypeError) as exc:
            raise BadInput(f"{where}: not a checkpoint: {exc}") from None
        return found


def _whole(value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"{value!r} is not a whole number from 1")
    return value


def _hex(value: Any, length: int) -> str:
    if not isinstance(value, str) or len(value) != length or any(c not in "0123456789abcdef" for c in value):
        raise ValueError(f"{value!r} is not {length} lower-case hex digits")
    return value


def _row(row: Any) -> Checkpoint:
    return Checkpoint(int(row.n), from_storage(row.at), int(row.seq), row.hash, row.previous, row.key, row.signature)


def stored(conn: Connection) -> list[Checkpoint]:
    """The checkpoints the store keeps, oldest first."""
    return [_row(r) for r in conn.execute(select(t.audit_checkpoints).order_by(t.audit_checkpoints.c.n))]


def make(
    conn: Connection, ring: keys.KeyRing, entry: audit.Entry, *, unless_within: dt.timedelta | None = None
) -> Checkpoint | None:
    """Append the checkpoint's own entry, then sign the head that includes it, in the caller's
    write transaction on the audit log. With `unless_within`, nothing when the newest checkpoint
    is that recent (several server workers, one checkpoint an hour)."""
    driver = conn.connection.driver_connection
    assert driver is not None
    cursor = driver.cursor()
    try:
        audit.lock_head(cursor, backend_of(conn))  # checkpointers take turns from here on
    finally:
        cursor.close()
    last = conn.execute(select(t.audit_checkpoints).order_by(t.audit_checkpoints.c.n.desc()).limit(1)).first()
    latest = _row(last) if last is not None else None
    if latest is not None and unless_within is not None and entry.at - latest.at < unless_within:
        return None
    n = latest.n + 1 if latest is not None else 1
    audit.append(conn, [entry._replace(detail={**(entry.detail or {}), "checkpoint": n})])
    head = conn.execute(select(t.audit_head.c.seq, t.audit_head.c.hash).where(t.audit_head.c.id == audit.HEAD_ID)).one()
    unsigned = Checkpoint(
        n, entry.at, int(head.seq), str(head.hash), latest.digest() if latest else GENESIS, ring.current_id(), ""
    )
    key, signature = ring.sign(unsigned.signed())
    made = Checkpoint(**{**asdict(unsigned), "key": key, "signature": signature})
    conn.execute(
        t.audit_checkpoints.insert().values(
            n=made.n,
            at=to_storage(made.at),
            seq=made.seq,
            hash=made.hash,
            previous=made.previous,
            key=made.key,
            signature=made.signature,
        )
    )
    return made


def publish(ring: keys.KeyRing, made: Checkpoint) -> None:
    """Append a committed checkpoint to the copy beside the keys, out of the store's reach."""
    path = ring.folder / COPY
    flags = os.O_WRONLY | os.O_APPEND | os.O_CREAT
    descriptor = os.open(path, flags, 0o600)
    with os.fdopen(descriptor, "ab") as out:
        out.write(orjson.dumps(made.as_dict()) + b"\n")
        out.flush()
        os.fsync(out.fileno())


def read_copy(path: Path) -> tuple[list[Checkpoint], dict[str, str]]:
    """Checkpoints from a file, and the public keys it carries: the copy beside the keys (one
    checkpoint per line, no keys) or a saved `audit checkpoints --json` (`{"checkpoints": [...],
    "keys": {...}}`); nothing from a file that is not there; BadInput naming the file and line."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return [], {}
    except (OSError, UnicodeDecodeError) as exc:
        raise BadInput(f"cannot read {path}: {exc}") from None
    stripped = text.lstrip()
    if stripped.startswith("{") and '"checkpoints"' in stripped[:200]:
        try:
            saved = orjson.loads(text)
            listed, published = saved["checkpoints"], saved.get("keys") or {}
            published = {str(k): str(v) for k, v in published.items()}
        except (orjson.JSONDecodeError, KeyError, TypeError, AttributeError) as exc:
            raise BadInput(f"{path}: not a list of checkpoints: {exc}") from None
        return [Checkpoint.from_dict(c, f"{path}, checkpoint {i}") for i, c in enumerate(listed, 1)], published
    found = []
    for number, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        try:
            values = orjson.loads(line)
        except orjson.JSONDecodeError as exc:
            raise BadInput(f"{path}, line {number}: not JSON: {exc}") from None
        found.append(Checkpoint.from_dict(values, f"{path}, line {number}"))
    return found, {}


@dataclass(frozen=True)
class Finding:
    """The first checkpoint the log no longer matches, and why; or (checkpoint None) all held."""

    checked: int
    checkpoint: int | None = None
    reason: str | None = None


def check(conn: Connection, given: Iterable[tuple[str, list[Checkpoint]]], public_keys: Mapping[str, str]) -> Finding:
    """Check the log (on `conn`, the audit log's database) against every checkpoint `given` (where
    each list came from, and its checkpoints), oldest first: signed by a published key, chained to
    the one before, and the log still holding the entry each names, with the hash it had then."""
    merged: dict[int, tuple[str, Checkpoint]] = {}
    for source, listed in given:
        for checkpoint in listed:
            earlier = merged.get(checkpoint.n)
            if earlier is not None and earlier[1] != checkpoint:
                return Finding(
                    len(merged),
                    checkpoint.n,
                    f"checkpoint {checkpoint.n} in {source} differs from the one in {earlier[0]}: one was rewritten",
                )
            merged.setdefault(checkpoint.n, (source, checkpoint))
    previous: Checkpoint | None = None
    log = t.audit_log
    end = conn.execute(select(t.audit_head.c.seq).where(t.audit_head.c.id == audit.HEAD_ID)).scalar() or 0
    for checked, n in enumerate(sorted(merged)):
        source, checkpoint = merged[n]
        if not keys.verify(dict(public_keys), checkpoint.key, checkpoint.signed(), checkpoint.signature):
            why = "its signature does not verify with the published key " + checkpoint.key
            return Finding(checked, n, why)
        expected = previous.digest() if previous is not None and previous.n == n - 1 else None
        if n > 1 and expected is None:
            return Finding(checked, n, f"checkpoint {n - 1}, which it follows, is missing")
        if checkpoint.previous != (expected or GENESIS):
            return Finding(checked, n, f"it does not follow checkpoint {n - 1}: the checkpoints were rewritten")
        if checkpoint.seq > end:
            why = (
                f"it covers entry {checkpoint.seq}, but the log ends at entry {end}: entries were removed "
                "from the end and the head rewritten"
            )
            return Finding(checked, n, why)
        hashed = conn.execute(select(log.c.hash).where(log.c.seq == checkpoint.seq)).scalar()
        if hashed != checkpoint.hash:
            why = (
                f"entry {checkpoint.seq} no longer has the hash the checkpoint signed: the log up to it was "
                "rewritten and its hashes recomputed"
            )
            return Finding(checked, n, why)
        previous = checkpoint
    return Finding(len(merged))
