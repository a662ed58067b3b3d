"""Operations on the whole store: readiness, rebuilding derived rows, and batch state."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sqlalchemy import func, select

from xinyong.derived import derivation, serving
from xinyong.security.access import Action, Principal, decide
from xinyong.service.door import Area
from xinyong.storage import tables as t

if TYPE_CHECKING:
    from xinyong.derived.batch import BatchResult


class Operations(Area):
    def ready(self) -> dict[str, Any]:
        """Readiness: the store answers and is migrated to the newest revision."""
        current, heads = self.store.revisions()
        with self.store.read() as conn:
            subjects = conn.execute(select(func.count()).select_from(t.subjects)).scalar_one()
            records = conn.execute(select(func.count()).select_from(t.records)).scalar_one()
        return {
            "migrated": current == heads,
            "revision": sorted(current),
            "expected": sorted(heads),
            "subjects": subjects,
            "records": records,
        }

    def rebuild(self, principal: Principal) -> int:
        """Derive every effect again from the ledger alone; returns the rows written."""
        with self.door.writing(principal, Action.EFFECTS_REBUILD) as (conn, act):
            decide(principal, Action.EFFECTS_REBUILD)
            written = derivation.rebuild(conn)
            act.detail.update(effects=written)
            return written

    def batch_state(
        self,
        principal: Principal,
        *,
        out: Path,
        engine: str = "duckdb",
        spark_master: str | None = None,
        as_of: dt.date | None = None,
        known_at: dt.datetime | None = None,
        schemes: Sequence[str] | None = None,
        refresh_serving: bool = True,
    ) -> BatchResult:
        """Every subject's state under every scheme in one batch, written to `out` (one row per
        subject and scheme: personal data, so the administrator's, audited), and the serving state
        refreshed from it."""
        from xinyong.derived import batch

        decide(principal, Action.STATE_BATCH)
        chosen = batch.engine_named(engine, spark_master)
        day, known = self.door.day(as_of), self.door.known(known_at)
        result = batch.run(
            self.store, chosen, as_of=day, known_at=known, out=out, schemes=schemes, refresh_serving=False
        )
        # The serving rows and the audit entry in one transaction.
        with self.door.writing(principal, Action.STATE_BATCH, "batch state") as (conn, act):
            served = (
                serving.replace_from_batch(conn, result.state, day, known, self.clock.now()) if refresh_serving else 0
            )
            act.detail.update(
                out=str(result.out), engine=result.engine, as_of=day.isoformat(), rows=result.rows, served=served
            )
        return replace(result, served=served)
