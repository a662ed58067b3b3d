"""Verifying reports through the interfaces: the portal's PDF and the API's JSON verify; the public
page /verify/{id} says valid, then superseded naming the record once it is revoked, in Chinese and
in English, with no command or API path and nothing of the report's content; the API route answers
the same; the public keys are at the well-known path; `xinyong report verify` prints the object
DESIGN.md names and fails naming what changed."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path

import pytest

from helpers import World, at, run_cli
from test_web import P1, Site, make_site, visible
from xinyong.security.access import Principal, Role
from xinyong.service import Service

PUBLIC = Principal(Role.PUBLIC, "anonymous", channel="test")


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Site]:
    yield from make_site(tmp_path_factory, "verify")


def service_of(site: Site) -> Service:
    svc: Service = site.client.app.state.service  # type: ignore[attr-defined]
    return svc


def page(site: Site, report_id: str, lang: str) -> tuple[int, str]:
    """The page's status and the visible text of its main part (the site's header and footer aside)."""
    site.client.get(f"/lang/{lang}")
    answer = site.client.get(f"/verify/{report_id}")
    main = re.search(r'<main id="main">(.*)</main>', answer.text, re.S)
    assert main is not None
    return answer.status_code, " ".join(visible(main.group(1)))


def test_the_portal_pdf_verifies_and_its_page_says_valid(site: Site) -> None:
    site.log_in(P1)
    answer = site.client.get("/me/report.pdf")
    assert answer.status_code == 200
    found = service_of(site).reports.verify_file(PUBLIC, answer.content)
    assert (found["format"], found["signature_valid"], found["status"], found["problems"]) == ("pdf", True, "valid", [])
    site.log_out()
    code, en = page(site, found["report_id"], "en")
    assert code == 200
    assert "Valid" in en
    assert "Superseded" not in en
    code, zh = page(site, found["report_id"], "zh_Hans")
    assert code == 200
    assert "有效" in zh
    assert "已被取代" not in zh
    for text in (en, zh):
        assert "张三" not in text
        assert P1 not in text
        assert "xinyong " not in text
        assert "/v1/" not in text


def test_after_a_revocation_the_page_and_the_api_say_superseded_naming_the_record(site: Site) -> None:
    officer = {"Authorization": f"Bearer {site.officer_token}"}
    issued = site.client.get(f"/v1/reports/{P1}", params={"known_at": "2026-02-01T00:00:00Z"}, headers=officer)
    assert issued.status_code == 200
    report = issued.json()
    assert {"report_id", "as_of", "known_at", "digest", "signature", "key"} <= report.keys()
    checked = site.client.get(f"/v1/verify/{report['report_id']}", params={"digest": report["digest"]})
    assert checked.json() == {"report_id": report["report_id"], "status": "valid", "changes": []}
    World(site.store).revoke(site.records["court"], at("2026-02-10"))
    court_ref = next(r["ref"] for r in report["records"] if r["id"] == site.records["court"])
    checked = site.client.get(f"/v1/verify/{report['report_id']}")
    assert checked.json() == {
        "report_id": report["report_id"],
        "status": "superseded",
        "changes": [{"record": court_ref, "kind": "revoked"}],
    }
    code, en = page(site, report["report_id"], "en")
    assert code == 200
    assert "Superseded" in en
    assert court_ref in en
    assert "revoked" in en
    code, zh = page(site, report["report_id"], "zh_Hans")
    assert "已被取代" in zh
    assert court_ref in zh
    assert "已撤销" in zh
    for text in (en, zh):
        assert "张三" not in text
        assert P1 not in text
        assert "xinyong " not in text
        assert "/v1/" not in text
    wrong = site.client.get(f"/v1/verify/{report['report_id']}", params={"digest": "0" * 64})
    assert wrong.json()["status"] == "invalid"


def test_an_unknown_or_malformed_number_is_not_found(site: Site) -> None:
    for number in ("f" * 32, "not-a-report"):
        code, en = page(site, number, "en")
        assert code == 404
        assert "No credit report with this number was issued here" in en
        code, zh = page(site, number, "zh_Hans")
        assert code == 404
        assert "本平台未出具过此编号的信用报告" in zh
    assert site.client.get(f"/v1/verify/{'f' * 32}").status_code == 404
    assert site.client.get("/v1/verify/not-a-report").status_code == 422


def test_the_public_keys_are_at_the_well_known_path(site: Site) -> None:
    published = site.client.get("/.well-known/xinyong-keys.json").json()
    assert published == site.client.get("/v1/keys").json() == service_of(site).reports.published()
    assert published["algorithm"] == "Ed25519"
    assert published["current"] in published["keys"]


def test_the_command_line_verifies_each_format_and_names_a_change(world: World, tmp_path: Path) -> None:
    _person, org = world.standard()
    world.record(org, "COURT.DEFAULT", "2026-03-01", at("2026-03-02"), source="court")
    folder = tmp_path / "files"
    folder.mkdir()
    db = world.store.url
    keys = {"XINYONG_KEYS": str(tmp_path / "keys"), "XINYONG_NOW": "2026-04-01T10:00:00+08:00"}
    for fmt in ("json", "html", "pdf"):
        target = folder / f"report.{fmt}"
        code, _, err = run_cli(db, "report", org, "--format", fmt, "--out", str(target), env=keys)
        assert code == 0, err
        code, out, _ = run_cli(db, "report", "verify", str(target), "--json", env=keys)
        found = json.loads(out)
        assert code == 0
        assert (found["signature_valid"], found["status"], found["changes"], found["format"]) == (
            True,
            "valid",
            [],
            fmt,
        )
        assert len(found["report_id"]) == 32
    data = json.loads((folder / "report.json").read_text(encoding="utf-8"))
    data["records"][0]["occurred_on"] = "2026-03-02"
    (folder / "changed.json").write_text(json.dumps(data, ensure_ascii=False), encoding="utf-8")
    code, out, _ = run_cli(db, "report", "verify", str(folder / "changed.json"), "--offline", "--json", env=keys)
    found = json.loads(out)
    assert code == 1
    assert (found["signature_valid"], found["status"]) == (False, "invalid")
    assert found["problems"] == ["the content does not match its digest: changed: records[0]"]
    code, _, err = run_cli(db, "report", "verify", str(folder / "missing.json"), env=keys)
    assert code == 2
    assert "missing.json: cannot be read" in err
