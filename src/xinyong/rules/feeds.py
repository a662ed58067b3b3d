"""Feeds, the pure part: how an identifier leaves the platform, and the bytes a version's signature covers.

An enforcer agency's feed tells it, version by version, which subjects its measures began or
stopped applying to (DESIGN.md, "Enforcers"). What leaves is never an identifier but its keyed hash
(`hashed`): HMAC-SHA-256 of the identifier's UTF-8 bytes, keyed with the ASCII bytes of the agency's
64-hexadecimal-character feed key, in lowercase hex; the agency hashes its own passenger's id with
the same key and looks it up. Without the key a hash names nobody, and a list of them read by anyone
else is a list of random numbers.

A version is a JSON object (`document`); its signature (Ed25519) covers `signed_bytes`: the object
without its `signature` member as canonical JSON — members sorted by name at every level, no
whitespace, UTF-8, non-ASCII characters as they are (RFC 8785's ordering; every value is a string,
an integer, a list or an object, so no number formatting is involved). The `add` and `del` lists
are sorted, so the same version always has the same bytes, and `previous` is the SHA-256 of the
version before it (`digest`), which chains the versions: a version left out or swapped breaks it.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import re
import secrets
from collections.abc import Iterable, Mapping, Set
from dataclasses import dataclass
from typing import Any

from xinyong.errors import BadInput

# A feed key: 32 random bytes as 64 lowercase hex digits, shown once when it is made.
KEY_PATTERN = re.compile(r"[0-9a-f]{64}")
# An agency that can have a feed: its name is part of the key's file name and of the API's paths.
AGENCY_PATTERN = re.compile(r"[A-Za-z0-9][A-Za-z0-9_-]{0,63}")
# The `previous` of a feed's first version.
GENESIS = "0" * 64
# The stored entries of the agency's whole set (a subject under at least one of its measures)
# beside those of each measure, named SCHEME/MEASURE.
WHOLE = ""


def new_key() -> str:
    """A new feed key: 32 bytes from the operating system's random source, as 64 hex digits."""
    return secrets.token_hex(32)


def hashed(subject_id: str, key: str) -> str:
    """The identifier as the feed carries it: lowercase hex HMAC-SHA-256 of its UTF-8 bytes,
    keyed with the ASCII bytes of the 64-character key."""
    return hmac.new(key.encode("ascii"), subject_id.encode("utf-8"), hashlib.sha256).hexdigest()


def agency_name(text: str, *, where: str = "AGENCY") -> str:
    """An agency named for a feed: letters, digits, `-` and `_`, at most 64 (it names files and paths)."""
    if not AGENCY_PATTERN.fullmatch(text):
        raise BadInput(f"{where}: {text[:80]!r} cannot have a feed: use letters, digits, - and _ (at most 64)")
    return text


def canonical(value: Any) -> bytes:
    """Canonical JSON: sorted members, no whitespace, UTF-8."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode("utf-8")


def signed_bytes(version: Mapping[str, Any]) -> bytes:
    """What a version's signature covers: the version without its `signature`, as canonical JSON."""
    return canonical({name: value for name, value in version.items() if name != "signature"})


def digest(version: Mapping[str, Any]) -> str:
    """The SHA-256 of a version's signed bytes: the next version's `previous`."""
    return hashlib.sha256(signed_bytes(version)).hexdigest()


@dataclass(frozen=True)
class Change:
    """What one version says about one set: the hashes that enter it and those that leave it."""

    add: tuple[str, ...] = ()
    remove: tuple[str, ...] = ()

    def __bool__(self) -> bool:
        return bool(self.add or self.remove)

    def as_dict(self) -> dict[str, list[str]]:
        return {"add": list(self.add), "del": list(self.remove)}


def change(add: Iterable[str], remove: Iterable[str]) -> Change:
    """A change with its lists sorted: the form every version is signed and shown in."""
    return Change(tuple(sorted(add)), tuple(sorted(remove)))


def document(
    *,
    agency: str,
    version: int,
    day: str,
    cut_at: str,
    feed_key: int,
    previous: str,
    whole: Change,
    measures: Mapping[str, Change],
    key: str,
    signature: str | None = None,
) -> dict[str, Any]:
    """A version as it is signed, shown and sent: `feed_key` counts the agency's keys (it changes
    when the key is rotated), `key` names the platform's signing key, `signature` is base64."""
    found: dict[str, Any] = {
        "agency": agency,
        "version": version,
        "day": day,
        "cut_at": cut_at,
        "feed_key": feed_key,
        "previous": previous,
        "add": list(whole.add),
        "del": list(whole.remove),
        "measures": {name: measures[name].as_dict() for name in sorted(measures)},
        "key": key,
    }
    if signature is not None:
        found["signature"] = signature
    return found


def replay(versions: Iterable[Mapping[str, Any]], start: Set[str] = frozenset()) -> set[str]:
    """The set a sequence of versions adds up to, from `start` (what an enforcer keeps)."""
    held = set(start)
    for version in versions:
        held.difference_update(version["del"])
        held.update(version["add"])
    return held
