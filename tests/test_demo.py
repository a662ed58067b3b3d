"""The demo builds a small city through the real doors and explains it."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from xinyong.demo import city as demo
from xinyong.errors import Refused
from xinyong.rules.clock import DEFAULT_TIMEZONE, FixedClock
from xinyong.storage.store import Store

ZONE = ZoneInfo(DEFAULT_TIMEZONE)


def test_a_small_city_is_built_and_explained(tmp_path: Path) -> None:
    db = f"sqlite:///{tmp_path / 'xinyong-demo.db'}"
    clock = FixedClock(dt.datetime(2026, 11, 1, 4, tzinfo=dt.UTC))
    said: list[str] = []
    summary = demo.run(db, clock, persons=400, organisations=60, seed=7, console=None, say=said.append)
    assert said == [f"building the demo city in a new store, {db}"]
    assert summary["replaced"] is False
    assert set(summary["grades"]) == {"city-points", "court-defaulters", "tax-credit"}
    assert sum(summary["grades"]["city-points"].values()) == 460
    assert summary["grades"]["tax-credit"]["(no state)"] == 400  # persons are not rated for tax
    assert summary["records_in_ledger"] > 400
    assert summary["events"]["records"] == summary["records_in_ledger"]
    assert len(summary["examples"]) == 2
    for example in summary["examples"]:
        assert sum(c["points"] for c in example["contributions"]) == example["score"] - example["initial"]
    # Civil aviation receives a feed: a version a day for the last five days, all acknowledged,
    # and a judgment fulfilled meanwhile reaches it as a removal whose delay is published.
    from xinyong.security.access import Principal, Role
    from xinyong.service import Service

    service = Service(Store(db), clock)
    [aviation] = service.feeds.delays(Principal(Role.PUBLIC, "test"))["agencies"]
    assert (aviation["agency"], aviation["versions"], aviation["newest_acknowledged"]) == ("civil-aviation", 5, 5)
    assert aviation["removals"] >= 1
    assert aviation["max_seconds"] > 24 * 3600  # the version left unacknowledged that morning
    # Objections as an office that keeps its deadlines leaves them: most decided on time, the
    # newest open (not yet due), one or two overdue.
    officer = Principal(Role.OFFICER, "test")
    listed = service.objections.listing(officer)
    today = clock.today()
    overdue = [o for o in listed if o.overdue(today)]
    still_open = [o for o in listed if o.decided_at is None and not o.overdue(today)]
    decided = [o for o in listed if o.decided_at is not None]
    assert 1 <= len(overdue) <= 2
    assert len(still_open) >= 3
    on_time = [o for o in decided if o.decided_at is not None and o.decided_at.astimezone(ZONE).date() <= o.due_on]
    assert len(on_time) >= 0.9 * len(decided) > 0
    service.store.dispose()
    # Building it again replaces the demo's own store rather than adding to it, and says so first.
    said.clear()
    again = demo.run(db, clock, persons=400, organisations=60, seed=7, console=None, say=said.append)
    assert again["records_in_ledger"] == summary["records_in_ledger"]
    assert again["replaced"] is True
    deleted = "xinyong-demo.db, xinyong-demo-audit.db"
    assert said == [f"{db} holds an earlier demo city: replacing it (deleting {deleted}; the keys stay)"]


def test_without_serving_no_address_is_printed(capsys: pytest.CaptureFixture[str]) -> None:
    from xinyong.interfaces.cli import operations

    logins = {"officer": {"login": "officer", "password": "pw", "token": "xy_t"}}
    summary = {"persons": 1, "organisations": 0, "records_in_ledger": 0, "seconds": 0.1, "db": "sqlite:///d.db"}
    summary |= {"events": {}, "grades": {}, "lists": {}, "measures": {}, "examples": [], "logins": logins}
    operations.print_summary(summary)
    printed = capsys.readouterr().out
    assert "http://" not in printed
    assert "Not served" in printed
    operations.print_summary(summary | {"url": "http://127.0.0.1:8000/"})
    assert "Site: http://127.0.0.1:8000/" in capsys.readouterr().out


def test_the_demo_refuses_to_overwrite_a_real_store(tmp_path: Path) -> None:
    db = f"sqlite:///{tmp_path / 'city.db'}"
    clock = FixedClock(dt.datetime(2026, 11, 1, 4, tzinfo=dt.UTC))
    demo.run(db, clock, persons=50, organisations=10, seed=1, console=None)
    with pytest.raises(Refused, match="already holds records"):
        demo.run(db, clock, persons=50, organisations=10, seed=1, console=None)
    Store(db).dispose()
