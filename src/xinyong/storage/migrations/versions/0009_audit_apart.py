"""audit: writes' entries pending in the store until chained; on SQLite the log in a file of its own

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-07 19:00:00

A check appends its audit entry before it answers. On SQLite that append needed the store's one
write lock, which a bulk import holds for as long as it writes: checks stopped for a minute.
So on SQLite the log (audit_log, audit_head, audit_subjects) moves to a database file of its own
beside the store (`Backend.audit_url`), and a write's entry goes into `audit_pending` in the
write's own transaction, to be chained right after it commits (`security.audit.chain_pending`).
On PostgreSQL the log stays where it is; `audit_pending` and `origin` are added all the same, so
both backends run one code path.
"""

from collections.abc import Iterator, Sequence

import sqlalchemy as sa
from alembic import op

from xinyong.storage.migrations.audit_database import apart

revision: str = "0009"
down_revision: str | None = "0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

MOVED = ("audit_head", "audit_subjects", "audit_log")  # the order of creation is the reverse
CHUNK = 20_000


def _rows(conn: sa.Connection, table: str) -> Iterator[list[dict[str, object]]]:
    result = conn.execute(sa.text(f"SELECT * FROM {table}")).mappings()
    while batch := result.fetchmany(CHUNK):
        yield [dict(row) for row in batch]


def _untyped(table: sa.Table) -> sa.TableClause:
    """The table with its columns untyped: rows go across as the database keeps them (a
    timestamp as SQLite's text), without a round trip through Python types."""
    return sa.table(table.name, *(sa.column(c.name) for c in table.columns))


def upgrade() -> None:
    from xinyong.storage.tables import audit_metadata, audit_pending

    audit_pending.to_metadata(sa.MetaData()).create(op.get_bind())
    with apart() as engine:
        if engine is None:
            with op.batch_alter_table("audit_log") as batch:
                batch.add_column(
                    sa.Column("origin", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=True)
                )
                batch.create_index("ix_audit_log_origin", ["origin"])
            return
        main = op.get_bind()
        with engine.begin() as audit:
            # A second run (after one that failed before the store committed) starts over.
            moved = [audit_metadata.tables[name] for name in reversed(MOVED)]
            audit_metadata.drop_all(audit, tables=moved)
            audit_metadata.create_all(audit, tables=moved)
            for table in moved:
                target = _untyped(table)
                for rows in _rows(main, table.name):
                    audit.execute(target.insert(), rows)
    for name in MOVED:
        op.drop_table(name)


def downgrade() -> None:
    """The log comes back into the store (its entries, heads and runs; `origin` goes), after the
    pending entries were chained by the code of this revision; then `audit_pending` goes."""
    from xinyong.storage.tables import audit_metadata

    main = op.get_bind()
    waiting = main.execute(sa.text("SELECT count(*) FROM audit_pending")).scalar()
    if waiting:
        raise RuntimeError(f"{waiting} audit entries are still pending: chain them (any write does) first")
    with apart() as engine:
        if engine is None:
            with op.batch_alter_table("audit_log") as batch:
                batch.drop_index("ix_audit_log_origin")
                batch.drop_column("origin")
        else:
            for name in reversed(MOVED):
                table = audit_metadata.tables[name]
                columns = [
                    sa.Column(
                        c.name,
                        c.type,
                        primary_key=c.primary_key,
                        nullable=c.nullable,
                        autoincrement=c.autoincrement,
                        server_default=c.server_default,
                    )
                    for c in table.columns
                    if c.name != "origin"
                ]
                back = sa.Table(name, sa.MetaData(), *columns, sqlite_with_rowid=name != "audit_subjects")
                if name == "audit_log":
                    sa.Index("ix_audit_log_at", back.c.at)
                back.create(main)
                target = _untyped(back)
                with engine.connect() as audit:
                    for rows in _rows(audit, name):
                        main.execute(target.insert(), [{k: v for k, v in r.items() if k != "origin"} for r in rows])
            with engine.begin() as audit:
                audit_metadata.drop_all(audit, tables=[audit_metadata.tables[name] for name in MOVED])
    op.drop_table("audit_pending")
