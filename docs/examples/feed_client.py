"""An enforcer agency's feed client: fetch the new versions of its feed, verify each one's signature
and its place in the chain, apply it to the set kept on disk, look a passenger up, acknowledge.

It needs Python 3.11 and `cryptography` (for Ed25519), nothing of xinyong: this is what an airline or
a railway runs on its own machines (docs/enforcers.md explains every step).

    python feed_client.py --url https://credit.example.org --token "$TOKEN" --agency civil-aviation \\
        --key-file feed.key --state feed-state.json --check 110105199001010010

or, from a file an operator saved with `xinyong feeds show civil-aviation --json > feed.json`
(the public keys then come from `xinyong audit checkpoints --json`, saved as keys.json):

    python feed_client.py --from-file feed.json --keys-file keys.json --agency civil-aviation \\
        --key-file feed.key --state feed-state.json --check 110105199001010010
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import hmac
import json
import sys
import urllib.parse
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

GENESIS = "0" * 64


def hash_id(identifier: str, key: str) -> str:
    """A passenger's id as the feed carries it: HMAC-SHA-256 of the id's UTF-8 bytes, keyed with the
    ASCII bytes of the 64-character feed key, in lowercase hex. Write the id as the platform does:
    18 characters, digits and upper-case letters, no spaces (110105199001010010, 91371082MA3C4D5E6X)."""
    written = "".join(identifier.split()).upper()
    return hmac.new(key.encode("ascii"), written.encode("utf-8"), hashlib.sha256).hexdigest()


def signed_bytes(version: dict[str, Any]) -> bytes:
    """What the signature covers: the version without `signature`, as canonical JSON (members sorted,
    no spaces, UTF-8)."""
    rest = {name: value for name, value in version.items() if name != "signature"}
    return json.dumps(rest, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode("utf-8")


def verify(version: dict[str, Any], public_keys: dict[str, str]) -> bool:
    """Whether the platform's key named in the version signed it (Ed25519, base64)."""
    published = public_keys.get(version.get("key", ""))
    if published is None:
        return False
    try:
        public = Ed25519PublicKey.from_public_bytes(base64.b64decode(published))
        public.verify(base64.b64decode(version["signature"]), signed_bytes(version))
    except (InvalidSignature, ValueError, KeyError):
        return False
    return True


def verify_webhook(body: bytes, headers: dict[str, str], public_keys: dict[str, str]) -> dict[str, Any] | None:
    """A webhook call's announcement, if the platform signed its body; None otherwise."""
    published = public_keys.get(headers.get("X-Xinyong-Key", ""))
    if published is None:
        return None
    try:
        public = Ed25519PublicKey.from_public_bytes(base64.b64decode(published))
        public.verify(base64.b64decode(headers.get("X-Xinyong-Signature", "")), body)
    except (InvalidSignature, ValueError):
        return None
    announced: dict[str, Any] = json.loads(body)
    return announced


class Refused(Exception):
    """A version that must not be applied: a bad signature, or a gap or fork in the chain."""


@dataclass
class FeedState:
    """The set the versions applied so far add up to, and where the chain stands."""

    version: int = 0
    digest: str = GENESIS
    feed_key: int | None = None
    hashes: set[str] = field(default_factory=set)
    measures: dict[str, set[str]] = field(default_factory=dict)

    def apply(self, version: dict[str, Any], public_keys: dict[str, str]) -> None:
        if not verify(version, public_keys):
            raise Refused(f"version {version.get('version')}: the signature does not verify")
        if version["version"] != self.version + 1 or version["previous"] != self.digest:
            raise Refused(f"version {version['version']} does not follow version {self.version}")
        self.hashes.difference_update(version["del"])
        self.hashes.update(version["add"])
        for measure, change in version["measures"].items():
            held = self.measures.setdefault(measure, set())
            held.difference_update(change["del"])
            held.update(change["add"])
        self.version, self.digest = version["version"], hashlib.sha256(signed_bytes(version)).hexdigest()
        self.feed_key = version["feed_key"]

    def applies(self, identifier: str, key: str) -> bool:
        """Whether at least one of the agency's measures applies to this passenger."""
        return hash_id(identifier, key) in self.hashes

    def save(self, path: Path) -> None:
        data = {
            "version": self.version,
            "digest": self.digest,
            "feed_key": self.feed_key,
            "hashes": sorted(self.hashes),
            "measures": {m: sorted(h) for m, h in sorted(self.measures.items())},
        }
        path.write_text(json.dumps(data), encoding="utf-8")

    @classmethod
    def load(cls, path: Path) -> FeedState:
        if not path.exists():
            return cls()
        data = json.loads(path.read_text(encoding="utf-8"))
        return cls(
            data["version"],
            data["digest"],
            data["feed_key"],
            set(data["hashes"]),
            {m: set(h) for m, h in data["measures"].items()},
        )


class Platform:
    """The platform's HTTP API, as the agency's token may use it."""

    def __init__(self, url: str, token: str) -> None:
        self.url, self.token = url.rstrip("/"), token

    def _call(self, method: str, path: str) -> Any:
        request = urllib.request.Request(
            self.url + path, method=method, headers={"Authorization": f"Bearer {self.token}"}
        )
        with urllib.request.urlopen(request, timeout=60) as answer:
            return json.load(answer)

    def public_keys(self) -> dict[str, str]:
        """The platform's published signing keys (id → Ed25519 public key, base64). Keep a copy:
        a key that later appears from nowhere should make you ask why."""
        keys: dict[str, str] = self._call("GET", "/v1/audit/checkpoints")["keys"]
        return keys

    def versions(self, agency: str, since: int) -> list[dict[str, Any]]:
        found: list[dict[str, Any]] = self._call("GET", f"/v1/feeds/{urllib.parse.quote(agency)}?since={since}")[
            "versions"
        ]
        return found

    def acknowledge(self, agency: str, version: int) -> dict[str, Any]:
        answer: dict[str, Any] = self._call(
            "POST", f"/v1/feeds/{urllib.parse.quote(agency)}/versions/{version}/acknowledgement"
        )
        return answer


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Bring an agency's copy of its xinyong feed up to date.")
    parser.add_argument("--agency", required=True)
    parser.add_argument("--key-file", type=Path, required=True, help="The agency's feed key (64 hex characters).")
    parser.add_argument("--state", type=Path, required=True, help="Where the set is kept between runs (JSON).")
    parser.add_argument("--url", help="The platform, e.g. https://credit.example.org")
    parser.add_argument("--token", help="The agency's enforcer token.")
    parser.add_argument("--from-file", type=Path, help="A saved `xinyong feeds show AGENCY --json` instead of --url.")
    parser.add_argument("--keys-file", type=Path, help="With --from-file: a saved `xinyong audit checkpoints --json`.")
    parser.add_argument("--check", action="append", default=[], help="A passenger's id to look up; repeat for more.")
    args = parser.parse_args(argv)

    key = args.key_file.read_text(encoding="ascii").strip()
    state = FeedState.load(args.state)
    platform = None
    if args.from_file:
        if not args.keys_file:
            parser.error("--from-file needs --keys-file")
        public_keys = json.loads(args.keys_file.read_text(encoding="utf-8"))["keys"]
        versions = [
            v
            for v in json.loads(args.from_file.read_text(encoding="utf-8"))["versions"]
            if v["version"] > state.version
        ]
    else:
        if not (args.url and args.token):
            parser.error("give --url and --token, or --from-file")
        platform = Platform(args.url, args.token)
        public_keys = platform.public_keys()
        versions = platform.versions(args.agency, state.version)
    for version in versions:
        if state.feed_key is not None and version["feed_key"] != state.feed_key:
            print(f"version {version['version']}: the platform rotated the feed key; hash with the new one from now on")
        state.apply(version, public_keys)
    state.save(args.state)
    if platform is not None and versions:
        platform.acknowledge(args.agency, state.version)  # after the new set is kept: applied, then acknowledged
    print(
        json.dumps(
            {"agency": args.agency, "version": state.version, "applied": len(versions), "members": len(state.hashes)}
        )
    )
    for identifier in args.check:
        print(json.dumps({"id": identifier, "applies": state.applies(identifier, key)}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
