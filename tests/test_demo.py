"""The demo builds a small city through the real doors and explains it."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest

from xinyong.demo import city as demo
from xinyong.errors import Refused
from xinyong.rules.clock import FixedClock
from xinyong.storage.store import Store


def test_a_small_city_is_built_and_explained(tmp_path: Path) -> None:
    db = f"sqlite:///{tmp_path / 'xinyong-demo.db'}"
    clock = FixedClock(dt.datetime(2026, 11, 1, 4, tzinfo=dt.UTC))
    summary = demo.run(db, clock, persons=400, organisations=60, seed=7, console=None)
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
    service.store.dispose()
    # Building it again replaces the demo's own store rather than adding to it.
    again = demo.run(db, clock, persons=400, organisations=60, seed=7, console=None)
    assert again["records_in_ledger"] == summary["records_in_ledger"]


def test_the_demo_refuses_to_overwrite_a_real_store(tmp_path: Path) -> None:
    db = f"sqlite:///{tmp_path / 'city.db'}"
    clock = FixedClock(dt.datetime(2026, 11, 1, 4, tzinfo=dt.UTC))
    demo.run(db, clock, persons=50, organisations=10, seed=1, console=None)
    with pytest.raises(Refused, match="already holds records"):
        demo.run(db, clock, persons=50, organisations=10, seed=1, console=None)
    Store(db).dispose()
