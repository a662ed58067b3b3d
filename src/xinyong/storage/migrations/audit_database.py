"""The audit log's database, as a migration reaches it: the store's own connection, or (SQLite,
`Backend.audit_url`) an engine on the log's file of its own, which the migration disposes of."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import sqlalchemy as sa
from alembic import op

from xinyong.storage.backend import backend_for, backend_of


@contextmanager
def apart() -> Iterator[sa.Engine | None]:
    """An engine on the audit log's database when it is apart from the store's, else None."""
    url = backend_of(op.get_bind()).audit_url()
    if url is None:
        yield None
        return
    engine = backend_for(url).create_engine()
    try:
        yield engine
    finally:
        engine.dispose()
