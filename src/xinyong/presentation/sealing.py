"""Seals on credit reports: a digest of the canonical content and an Ed25519 signature, per format.

A report leaves the platform as a file, and whoever is shown it must be able to tell, without
trusting the holder, that the platform issued exactly this. So every file carries its own proof:

- **JSON**: the report's content with four top-level keys added: `digest` (SHA-256 of the content's
  canonical form, RFC 8785, every key but these four), `parts` (a short digest of each part, so that
  a change is named: `records[2]`, `subject`), `key` (the signing key's id) and `signature` (Ed25519
  over the statement `{digest, report_id}`). Canonical JSON makes the digest independent of spacing
  and key order, so a re-indented file still verifies and any changed value does not.
- **HTML**: the page shows the id, the dates, the digest and a QR code; it carries the sealed JSON
  in a `<script type="application/json">` block (so the content's digest is checked as for JSON)
  and ends with one comment line, the *file seal*: the SHA-256 of every byte before it, signed. A
  change to the visible text (a grade rewritten) breaks the file seal even where the JSON inside
  still verifies.
- **PDF**: the sealed JSON travels as an attachment (a reader can open it), and the file ends with
  the same file seal as a PDF comment after `%%EOF`, where readers ignore it (it is well within the
  1,024 bytes in which they look for `%%EOF`).

`verify` reads any of the three and says what no longer matches; it needs the published public keys
only (`security.keys.verify`), never the private ones or the store.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

import orjson
import rfc8785

from xinyong.security import keys

Format = Literal["json", "html", "pdf"]
Signer = Callable[[bytes], tuple[str, str]]  # message → (key id, base64 signature): KeyRing.sign

SEAL_KEYS = ("digest", "parts", "key", "signature")
REPORT_STATEMENT = b"xinyong report\n"  # what a report's signature covers, before its statement
FILE_STATEMENT = b"xinyong report file\n"  # what a file seal's signature covers, before its statement
SEAL_MARK = b"xinyong-seal "
FILE_FIELDS = ("report_id", "as_of", "known_at", "digest")  # what a file seal names besides the file's digest
EMBEDDED_ID = "xinyong-report"
_EMBEDDED = re.compile(rb'<script type="application/json" id="' + EMBEDDED_ID.encode() + rb'">(.*?)</script>', re.S)
_REPORT_ID = re.compile(r"[0-9a-f]{32}")


def canonical(value: Any) -> bytes:
    """RFC 8785 (JSON Canonicalization Scheme): sorted keys, no spaces, one spelling of each number,
    so that anyone can recompute the digest in any language."""
    return rfc8785.dumps(value)


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def content_of(sealed: Mapping[str, Any]) -> dict[str, Any]:
    """A sealed report without its seal: what the digest covers."""
    return {k: v for k, v in sealed.items() if k not in SEAL_KEYS}


def parts_of(content: Mapping[str, Any]) -> dict[str, str]:
    """A short digest of each part: every top-level value, and each element of a list, so that a
    change can be named down to the record."""
    found = {}
    for name, value in content.items():
        if isinstance(value, list):
            for i, item in enumerate(value):
                found[f"{name}[{i}]"] = _sha256(canonical(item))[:16]
            found[f"{name}[]"] = str(len(value))
        else:
            found[name] = _sha256(canonical(value))[:16]
    return found


def _statement(prefix: bytes, values: Mapping[str, str]) -> bytes:
    return prefix + canonical(dict(values))


def seal(content: Mapping[str, Any], sign: Signer) -> dict[str, Any]:
    """The report with its seal: `content` must hold `report_id`."""
    digest = _sha256(canonical(dict(content)))
    key, signature = sign(_statement(REPORT_STATEMENT, {"digest": digest, "report_id": content["report_id"]}))
    return {**content, "digest": digest, "parts": parts_of(content), "key": key, "signature": signature}


def file_seal_line(body: bytes, fmt: Format, sealed: Mapping[str, Any], sign: Signer) -> bytes:
    """The last line of an HTML or PDF report: the digest of every byte before it, signed."""
    statement = {k: sealed[k] for k in FILE_FIELDS} | {"file": _sha256(body)}
    key, signature = sign(_statement(FILE_STATEMENT, statement))
    text = SEAL_MARK + canonical({**statement, "key": key, "signature": signature})
    if fmt == "html":
        return b"<!-- " + text + b" -->\n"
    return b"%" + text + b"\n"


def seal_file(body: bytes, fmt: Format, sealed: Mapping[str, Any], sign: Signer) -> bytes:
    """An HTML page or a PDF with its file seal appended."""
    if not body.endswith(b"\n"):
        body += b"\n"
    return body + file_seal_line(body, fmt, sealed, sign)


def embedded(sealed: Mapping[str, Any]) -> str:
    """The sealed JSON as it sits inside the HTML page: `<`, `>` and `&` escaped as JSON escapes, so
    that no text of the report can close the script block, and the parsed value is unchanged."""
    text = orjson.dumps(dict(sealed)).decode()
    return text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")


# --- verifying --------------------------------------------------------------------------------------


@dataclass
class Verdict:
    """What a file says of itself and whether it holds: `problems` names each thing that does not."""

    format: Format | None
    report_id: str | None = None
    digest: str | None = None
    as_of: str | None = None
    known_at: str | None = None
    key: str | None = None
    problems: list[str] = field(default_factory=list)

    @property
    def signature_valid(self) -> bool:
        return self.format is not None and self.report_id is not None and not self.problems


def sniff(data: bytes) -> Format | None:
    """Which of the three formats a file is, by its first bytes."""
    head = data[:64].lstrip(b"\xef\xbb\xbf \t\r\n").lower()
    if head.startswith(b"%pdf-"):
        return "pdf"
    if head.startswith(b"{"):
        return "json"
    if head.startswith((b"<!doctype html", b"<html")):
        return "html"
    return None


def verify(data: bytes, public_keys: Mapping[str, str]) -> Verdict:
    """Check a report file of any format against the published keys."""
    fmt = sniff(data)
    if fmt is None:
        return Verdict(None, problems=["not a credit report: the file is none of JSON, HTML or PDF"])
    if fmt == "json":
        verdict = Verdict(fmt)
        _check_json(data, public_keys, verdict)
        return verdict
    return _check_file(data, fmt, public_keys)


def _check_json(data: bytes, public_keys: Mapping[str, str], verdict: Verdict, where: str = "") -> None:
    try:
        sealed = orjson.loads(data)
    except orjson.JSONDecodeError as exc:
        verdict.problems.append(f"{where}not valid JSON (changed or cut): {exc}")
        return
    if not isinstance(sealed, dict):
        verdict.problems.append(f"{where}not a credit report: the JSON is not an object")
        return
    report_id = sealed.get("report_id")
    if not isinstance(report_id, str) or not _REPORT_ID.fullmatch(report_id):
        verdict.problems.append(f"{where}report_id: missing or not 32 lower-case hex digits")
        return
    verdict.report_id = report_id
    verdict.as_of, verdict.known_at = _text(sealed.get("as_of")), _text(sealed.get("known_at"))
    missing = [k for k in ("digest", "key", "signature") if not isinstance(sealed.get(k), str)]
    if missing:
        verdict.problems.append(f"{where}not sealed: no {', '.join(missing)}")
        return
    verdict.digest, verdict.key = sealed["digest"], sealed["key"]
    content = content_of(sealed)
    try:
        digest = _sha256(canonical(content))
    except (rfc8785.CanonicalizationError, TypeError, ValueError) as exc:
        verdict.problems.append(f"{where}a value cannot be canonicalised: {exc}")
        return
    if digest != sealed["digest"]:
        verdict.problems.append(
            f"{where}the content does not match its digest: {_changed(content, sealed.get('parts'))}"
        )
    elif sealed.get("parts") != parts_of(content):
        verdict.problems.append(f"{where}parts: the digests of the parts were changed (the content is intact)")
    statement = _statement(REPORT_STATEMENT, {"digest": sealed["digest"], "report_id": report_id})
    if not keys.verify(dict(public_keys), sealed["key"], statement, sealed["signature"]):
        verdict.problems.append(f"{where}{_bad_signature(sealed['key'], public_keys)}")


def _changed(content: Mapping[str, Any], parts: Any) -> str:
    """Which parts differ from the digests the report was sealed with."""
    if not isinstance(parts, dict):
        return "the list of its parts is missing, so the change cannot be placed"
    now = parts_of(content)
    named = sorted(
        {n for n in now.keys() | parts.keys() if now.get(n) != parts.get(n)},
        key=lambda n: (n.split("[")[0], len(n), n),
    )
    if not named:
        return "the digest itself was changed"
    return "changed: " + ", ".join(n.replace("[]", " (how many)") for n in named)


def _bad_signature(key: str, public_keys: Mapping[str, str]) -> str:
    if key not in public_keys:
        return f"signed with key {key!r}, which is not one of the platform's published keys"
    return f"the signature does not verify with the published key {key}"


def _text(value: Any) -> str | None:
    return value if isinstance(value, str) else None


def _check_file(data: bytes, fmt: Format, public_keys: Mapping[str, str]) -> Verdict:
    verdict = Verdict(fmt)
    mark = data.rfind(SEAL_MARK)
    start = data.rfind(b"\n", 0, mark) + 1 if mark >= 0 else -1
    prefix = b"<!-- " if fmt == "html" else b"%"
    if mark < 0 or data[start:mark] != prefix:
        verdict.problems.append(f"the {fmt.upper()} file has no seal: it was cut, or it is not a report from xinyong")
        return verdict
    body, line = data[:start], data[mark + len(SEAL_MARK) :].rstrip(b"\n")
    if fmt == "html":
        line = line.removesuffix(b" -->")
    try:
        found = orjson.loads(line)
        statement = {k: found[k] for k in (*FILE_FIELDS, "file")}
        key, signature = found["key"], found["signature"]
        if not all(isinstance(v, str) for v in (*statement.values(), key, signature)):
            raise TypeError("a value of the seal is not text")
    except (orjson.JSONDecodeError, KeyError, TypeError) as exc:
        verdict.problems.append(f"the seal at the end of the file was changed: {exc}")
        return verdict
    verdict.report_id, verdict.digest, verdict.key = statement["report_id"], statement["digest"], key
    verdict.as_of, verdict.known_at = statement["as_of"], statement["known_at"]
    if not _REPORT_ID.fullmatch(statement["report_id"]):
        verdict.problems.append("the seal's report id was changed: not 32 lower-case hex digits")
    if _sha256(body) != statement["file"]:
        verdict.problems.append(
            f"the {fmt.upper()} file was changed after it was signed: its bytes differ from the seal's"
        )
    if not keys.verify(dict(public_keys), key, _statement(FILE_STATEMENT, statement), signature):
        verdict.problems.append(f"the seal: {_bad_signature(key, public_keys)}")
    if fmt == "html":
        _check_embedded(body, public_keys, verdict, statement)
    return verdict


def _check_embedded(
    body: bytes, public_keys: Mapping[str, str], verdict: Verdict, statement: Mapping[str, str]
) -> None:
    """The report data inside the page, checked as a JSON report and against the page's seal."""
    match = _EMBEDDED.search(body)
    if match is None:
        verdict.problems.append("the page's report data (its JSON block) is missing")
        return
    inner = Verdict("json")
    _check_json(match.group(1), public_keys, inner, "the page's report data: ")
    verdict.problems.extend(inner.problems)
    named = (inner.report_id, inner.as_of, inner.known_at, inner.digest)
    if inner.report_id is not None and named != tuple(statement[k] for k in FILE_FIELDS):
        verdict.problems.append("the page's report data is another report's than its seal names")
