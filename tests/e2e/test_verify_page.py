"""The public verification page in a real headless Chromium, at a phone's width (390 px, where a
scanned QR code opens it) and a desktop's (1280 px), in Chinese and in English: a valid report and
a superseded one, the page never wider than the screen, nothing of the report's content shown.

Served by uvicorn on 127.0.0.1 in a thread; Debian's chromium driven by Playwright, as in
test_browser.py. Screenshots go to test-artifacts/verify-*.png.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from browsing import ARTIFACTS, chromium, needs_chromium, served_in_thread

from helpers import World, at
from xinyong.rules.clock import Clock
from xinyong.security import keys
from xinyong.security.access import Principal, Role
from xinyong.service import Service
from xinyong.storage.store import Store

OFFICE = Principal(Role.ADMIN, "e2e", channel="test")

pytestmark = needs_chromium


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, dict[str, str]]]:
    """The site, a report that still holds and one superseded by a revocation since."""
    from xinyong.interfaces.site import create_app

    folder = tmp_path_factory.mktemp("verify-e2e")
    store = Store(f"sqlite:///{folder / 'city.db'}")
    store.migrate()
    world = World(store)
    person, _org = world.standard()
    court = world.record(person, "COURT.DEFAULT", "2026-03-01", at("2026-03-02"), source="court")
    ring = keys.KeyRing(folder / "keys")
    service = Service(store, Clock(), keys=ring)
    superseded = service.reports.issue(OFFICE, person, known_at=at("2026-03-03"))
    world.revoke(court, at("2026-03-04"))
    valid = service.reports.issue(OFFICE, person)
    with served_in_thread(create_app(store, keys=ring)) as base:
        yield base, {"valid": valid["report_id"], "superseded": superseded["report_id"]}
    store.dispose()


@pytest.fixture(scope="module")
def browser(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    with chromium(tmp_path_factory.mktemp("chromium-verify")) as context:
        yield context


@pytest.mark.parametrize("width", [390, 1280])
def test_the_verification_page_at_a_phones_width_and_a_desktops(
    served: tuple[str, dict[str, str]], browser: Any, width: int
) -> None:
    base, reports = served
    page = browser.new_page()
    page.set_viewport_size({"width": width, "height": 844 if width == 390 else 900})
    expected = {
        ("valid", "en"): "Valid",
        ("superseded", "en"): "Superseded",
        ("valid", "zh_Hans"): "有效",
        ("superseded", "zh_Hans"): "已被取代",
    }
    for (state, lang), heading in expected.items():
        page.goto(f"{base}/lang/{lang}?next=/verify/{reports[state]}")
        main = page.locator("main")
        assert main.locator(".verdict h2").inner_text() == heading
        text = main.inner_text()
        assert "张三" not in text
        assert "xinyong " not in text
        assert "/v1/" not in text
        if state == "superseded":
            assert "court:" in text
        # Nothing wider than the screen: no sideways scrolling on a phone.
        assert page.evaluate("document.documentElement.scrollWidth") <= width
        ARTIFACTS.mkdir(exist_ok=True)
        page.screenshot(path=str(ARTIFACTS / f"verify-{state}-{lang}-{width}.png"), full_page=True)
    page.close()
