"""Seals on credit reports, without a store: each format (JSON, HTML, PDF) verifies as issued, and
one byte changed anywhere that matters fails, naming what no longer matches; a re-indented JSON
file still verifies (canonical form); a report signed by a key that is not published fails; the
digest is RFC 8785's, reproducible by anyone."""

from __future__ import annotations

import hashlib
import json
import re
from pathlib import Path
from typing import Any

import pytest
import rfc8785
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from xinyong.presentation import rendering, sealing
from xinyong.security import keys

REPORT_ID = "0123456789abcdef0123456789abcdef"


def content() -> dict[str, Any]:
    """A small synthetic report, as `reports.build_report` shapes one (plain values)."""
    return {
        "report_id": REPORT_ID,
        "issued_at": "2026-04-01T02:00:00+00:00",
        "verify_url": f"http://127.0.0.1:8000/verify/{REPORT_ID}",
        "audience": "subject",
        "subject": {
            "id": "110105199001010010",
            "kind": "person",
            "name": "张三 <b>&</b>",
            "legal_representative": None,
            "division": "371082",
        },
        "as_of": "2026-04-01",
        "known_at": "2026-04-01T02:00:00+00:00",
        "schemes": [],
        "records": [
            {
                "id": n,
                "ref": f"court:(2026)鲁1082执{n}号",
                "behaviour": "COURT.DEFAULT",
                "title": "Failure to perform an effective judgment",
                "title_zh": "拒不履行生效判决",
                "occurred_on": "2026-03-01",
                "legal_basis": "SPC provisions 2017 art. 1",
                "data_class": "public",
                "windows": {
                    "demo-city": {"points": -100, "start": "2026-03-12", "until": "2028-03-01", "active": True}
                },
                "status": "recorded",
                "expires_on": "2028-03-01",
            }
            for n in (1, 2, 3)
        ],
        "how_to_contest": "objections",
        "objection_deadline": 5,
        "objections": [],
        "repairs": [],
    }


@pytest.fixture(scope="module")
def ring(tmp_path_factory: pytest.TempPathFactory) -> keys.KeyRing:
    made = keys.KeyRing(tmp_path_factory.mktemp("seal") / "keys")
    made.ensure()
    return made


@pytest.fixture(scope="module")
def sealed(ring: keys.KeyRing) -> dict[str, Any]:
    return sealing.seal(content(), ring.sign)


@pytest.fixture(scope="module")
def files(ring: keys.KeyRing, sealed: dict[str, Any]) -> dict[str, bytes]:
    page = rendering.html(sealed, "en").encode()
    return {
        "json": (json.dumps(sealed, ensure_ascii=False, indent=2) + "\n").encode(),
        "html": sealing.seal_file(page, "html", sealed, ring.sign),
        "pdf": sealing.seal_file(rendering.pdf(sealed, "zh_Hans"), "pdf", sealed, ring.sign),
    }


def test_the_digest_is_sha256_of_rfc8785(sealed: dict[str, Any]) -> None:
    expected = hashlib.sha256(rfc8785.dumps(content())).hexdigest()
    assert sealed["digest"] == expected
    assert set(sealed) - set(content()) == {"digest", "parts", "key", "signature"}


@pytest.mark.parametrize("fmt", ["json", "html", "pdf"])
def test_each_format_verifies_as_issued(files: dict[str, bytes], ring: keys.KeyRing, fmt: str) -> None:
    verdict = sealing.verify(files[fmt], ring.public_keys())
    assert verdict.problems == []
    assert verdict.signature_valid
    assert (verdict.format, verdict.report_id) == (fmt, REPORT_ID)
    assert (verdict.as_of, verdict.known_at) == ("2026-04-01", "2026-04-01T02:00:00+00:00")


def test_the_html_page_shows_the_seal_and_a_qr_code_to_the_verification_page(files: dict[str, bytes]) -> None:
    page = files["html"].decode()
    assert REPORT_ID in page
    assert "<svg" in page
    assert 'class="segno"' in page
    assert f"http://127.0.0.1:8000/verify/{REPORT_ID}" in page
    # The name's markup is escaped in the JSON block, so it cannot close the script.
    block = re.search(r'<script type="application/json" id="xinyong-report">(.*?)</script>', page, re.S)
    assert block is not None
    assert "<b>" not in block.group(1)
    assert json.loads(block.group(1))["subject"]["name"] == "张三 <b>&</b>"


def test_a_re_indented_json_report_still_verifies(sealed: dict[str, Any], ring: keys.KeyRing) -> None:
    compact = json.dumps(dict(reversed(list(sealed.items()))), separators=(",", ":")).encode()
    assert sealing.verify(compact, ring.public_keys()).signature_valid


def test_a_changed_value_is_named(sealed: dict[str, Any], ring: keys.KeyRing) -> None:
    changed = json.loads(json.dumps(sealed))
    changed["records"][1]["status"] = "revoked"
    verdict = sealing.verify(json.dumps(changed).encode(), ring.public_keys())
    assert not verdict.signature_valid
    assert verdict.problems == ["the content does not match its digest: changed: records[1]"]
    dropped = json.loads(json.dumps(sealed))
    del dropped["records"][2]
    [problem] = sealing.verify(json.dumps(dropped).encode(), ring.public_keys()).problems
    assert "records[2]" in problem
    assert "records (how many)" in problem


def test_a_report_signed_by_an_unpublished_key_fails(tmp_path: Path, ring: keys.KeyRing) -> None:
    other = keys.KeyRing(tmp_path / "other")
    other.ensure()
    forged = sealing.seal(content(), other.sign)
    verdict = sealing.verify(json.dumps(forged).encode(), ring.public_keys())
    assert verdict.problems == [f"signed with key {forged['key']!r}, which is not one of the platform's published keys"]


def test_a_visible_change_to_a_page_is_caught_even_where_its_data_is_intact(
    files: dict[str, bytes], ring: keys.KeyRing
) -> None:
    page = files["html"].replace(b"Failure to perform", b"Failure to pay", 1)  # the first: visible text
    assert page != files["html"]
    verdict = sealing.verify(page, ring.public_keys())
    assert verdict.problems == ["the HTML file was changed after it was signed: its bytes differ from the seal's"]


def test_a_cut_file_has_no_seal(files: dict[str, bytes], ring: keys.KeyRing) -> None:
    for fmt in ("html", "pdf"):
        cut = files[fmt][: files[fmt].rfind(sealing.SEAL_MARK) - 8]
        [problem] = sealing.verify(cut, ring.public_keys()).problems
        assert "has no seal" in problem
    assert sealing.verify(b"hello", ring.public_keys()).problems == [
        "not a credit report: the file is none of JSON, HTML or PDF"
    ]


def _flipped(data: bytes, at: int, bit: int) -> bytes:
    return data[:at] + bytes([data[at] ^ (1 << bit)]) + data[at + 1 :]


@pytest.mark.parametrize("fmt", ["html", "pdf"])
@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(where=st.floats(min_value=0, max_value=1, exclude_max=True), bit=st.integers(0, 7))
def test_one_flipped_bit_anywhere_in_a_page_or_pdf_fails(
    files: dict[str, bytes], ring: keys.KeyRing, fmt: str, where: float, bit: int
) -> None:
    data = files[fmt]
    verdict = sealing.verify(_flipped(data, int(where * len(data)), bit), ring.public_keys())
    assert not verdict.signature_valid
    assert verdict.problems


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(where=st.floats(min_value=0, max_value=1, exclude_max=True), bit=st.integers(0, 7))
def test_one_flipped_bit_in_a_json_report_fails_unless_it_changed_only_spacing(
    files: dict[str, bytes], ring: keys.KeyRing, where: float, bit: int
) -> None:
    """JSON's spacing means nothing: a flip that leaves the same value (a space turned into a
    tab, say) still verifies; every other flip fails."""
    data = files["json"]
    changed = _flipped(data, int(where * len(data)), bit)
    verdict = sealing.verify(changed, ring.public_keys())
    try:
        same = json.loads(changed) == json.loads(data)
    except (json.JSONDecodeError, UnicodeDecodeError):
        same = False
    assert verdict.signature_valid is same
