"""The platform's signing keys: Ed25519 key pairs in a folder of their own, never in the database.

What they sign must be checkable by someone who does not trust the store's administrator with the
database: so the private keys live outside it (`XINYONG_KEYS`; by default a folder beside an
SQLite store file, `xinyong-keys` beside `xinyong.db`), readable by their owner only, and the
public keys are published. A key is named by the first 16 hex digits of the SHA-256 of its public
key; `current` names the one that signs. Rotating makes a new current key and keeps the old ones,
so that what they signed still verifies.

Ed25519 (RFC 8032) through `cryptography`: deterministic signatures, 32-byte keys, no parameters
to get wrong.
"""

from __future__ import annotations

import base64
import hashlib
import os
from dataclasses import dataclass
from pathlib import Path

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from xinyong.errors import XinyongError

CURRENT = "current"


class NoKeys(XinyongError):
    """No signing key where the settings say: none made yet (`xinyong init` makes the first), or
    no place for them. The platform's state, not a caller's input: the API says 503."""


def key_id(public: Ed25519PublicKey) -> str:
    raw = public.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return hashlib.sha256(raw).hexdigest()[:16]


def public_text(public: Ed25519PublicKey) -> str:
    """A public key as it is published: its 32 raw bytes in base64."""
    raw = public.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return base64.b64encode(raw).decode()


def verify(public_keys: dict[str, str], key: str, message: bytes, signature: str) -> bool:
    """Whether `signature` (base64) is key `key`'s over `message`, by published keys only: anyone
    holding them can check, without the folder."""
    published = public_keys.get(key)
    if published is None:
        return False
    try:
        public = Ed25519PublicKey.from_public_bytes(base64.b64decode(published, validate=True))
        public.verify(base64.b64decode(signature, validate=True), message)
    except (InvalidSignature, ValueError):
        return False
    return True


def _write_private(path: Path, data: bytes) -> None:
    """A file only its owner may read, created so (never readable by others, not even briefly)."""
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(descriptor, "wb") as out:
        out.write(data)
        out.flush()
        os.fsync(out.fileno())


@dataclass(frozen=True)
class KeyRing:
    """The signing keys in `folder`."""

    folder: Path

    def exists(self) -> bool:
        return (self.folder / CURRENT).is_file()

    def ensure(self) -> str:
        """The current key's id, the first key made if there is none (`xinyong init`)."""
        return self.current_id() if self.exists() else self.rotate()

    def rotate(self) -> str:
        """Make a new key and make it current; the old ones stay to verify what they signed."""
        self.folder.mkdir(mode=0o700, parents=True, exist_ok=True)
        private = Ed25519PrivateKey.generate()
        name = key_id(private.public_key())
        pem = private.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
        _write_private(self.folder / f"{name}.key", pem)
        # Made beside and renamed over: a reader sees the old current key or the new, never half.
        staged = self.folder / f".{CURRENT}-{name}"
        _write_private(staged, name.encode())
        staged.replace(self.folder / CURRENT)
        return name

    def current_id(self) -> str:
        try:
            return (self.folder / CURRENT).read_text(encoding="ascii").strip()
        except FileNotFoundError:
            raise NoKeys(f"no signing key in {self.folder}: `xinyong init` makes one") from None

    def _private(self, name: str) -> Ed25519PrivateKey:
        try:
            loaded = serialization.load_pem_private_key((self.folder / f"{name}.key").read_bytes(), password=None)
        except FileNotFoundError:
            raise NoKeys(f"the signing key {name} is not in {self.folder}") from None
        if not isinstance(loaded, Ed25519PrivateKey):
            raise NoKeys(f"{self.folder / f'{name}.key'}: not an Ed25519 key")
        return loaded

    def sign(self, message: bytes) -> tuple[str, str]:
        """The current key's id and its signature (base64) over `message`."""
        name = self.current_id()
        return name, base64.b64encode(self._private(name).sign(message)).decode()

    def feeds(self) -> FeedKeys:
        """The feed keys of enforcer agencies, in a folder inside this one."""
        return FeedKeys(self.folder / "feeds")

    def public_keys(self) -> dict[str, str]:
        """Every key's public half (id → base64), the retired ones too: what is published."""
        found = {}
        for path in sorted(self.folder.glob("*.key")):
            public = self._private(path.stem).public_key()
            found[key_id(public)] = public_text(public)
        return found


@dataclass(frozen=True)
class FeedKeys:
    """The feed keys of enforcer agencies (`rules.feeds.hashed`), beside the signing keys.

    The platform must keep a feed key to hash the next version's identifiers with it, and whoever
    holds it can tell whether a given person is in the feed: so, like the signing keys, it lives in
    the keys folder (a `feeds` folder in XINYONG_KEYS), never in the database, in a file only its
    owner may read: `AGENCY.N.key` for the agency's N-th key, 64 hex digits. The database says which
    N is current (`feed_agencies.key_generation`); a new key is written under the next N before the
    database says so, and the old file goes once it does, so a crash in between leaves the current
    key in place and at worst an unused file that the next rotation replaces.
    """

    folder: Path

    def path(self, agency: str, generation: int) -> Path:
        return self.folder / f"{agency}.{generation}.key"

    def write(self, agency: str, generation: int, key: str) -> None:
        self.folder.mkdir(mode=0o700, parents=True, exist_ok=True)
        staged = self.folder / f".{agency}.{generation}.{os.getpid()}"
        staged.unlink(missing_ok=True)
        _write_private(staged, key.encode("ascii"))
        staged.replace(self.path(agency, generation))

    def read(self, agency: str, generation: int) -> str:
        try:
            return self.path(agency, generation).read_text(encoding="ascii").strip()
        except FileNotFoundError:
            raise NoKeys(
                f"the feed key {generation} of {agency} is not in {self.folder}: make a new one (`xinyong feeds key`)"
            ) from None

    def forget(self, agency: str, generation: int) -> None:
        """A retired key: nothing it hashed is computed again (the feed keeps its hashes)."""
        self.path(agency, generation).unlink(missing_ok=True)


def folder_for(configured: str | None, store_files: list[Path]) -> Path:
    """Where the keys are: XINYONG_KEYS, or else beside the store's file (`xinyong.db` →
    `xinyong-keys`); a store without a file of its own (PostgreSQL, memory) needs XINYONG_KEYS.
    Never the current folder itself, where a store's files and a shell's work end up together."""
    if configured:
        folder = Path(configured).expanduser()
    elif store_files:
        main = store_files[0]
        folder = main.with_name(f"{main.stem}-keys")
    else:
        raise NoKeys("XINYONG_KEYS: required for a store without a file of its own (PostgreSQL)")
    if folder.resolve() == Path.cwd().resolve():
        raise NoKeys(f"XINYONG_KEYS: {folder} is the current folder; keys need a folder of their own")
    return folder
