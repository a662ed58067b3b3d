"""audit log: the subject index kept in sorted runs

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-22 17:30:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import xinyong.storage.tables

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _rebuild(with_run: bool) -> None:
    """Recreate audit_subjects with (upgrade) or without (downgrade) its runs, keeping its rows;
    what was indexed becomes one run, written in one sorted pass."""
    key = ["run", "subject_id", "seq"] if with_run else ["subject_id", "seq"]
    op.execute("CREATE TABLE audit_subjects_old AS SELECT subject_id, seq FROM audit_subjects")
    op.drop_table("audit_subjects")
    op.create_table(
        "audit_subjects",
        *([sa.Column("run", xinyong.storage.tables.Id, autoincrement=False, nullable=False)] if with_run else []),
        sa.Column("subject_id", sa.String(length=32), nullable=False),
        sa.Column("seq", xinyong.storage.tables.Id, autoincrement=False, nullable=False),
        sa.PrimaryKeyConstraint(*key, name=op.f("pk_audit_subjects")),
        sqlite_with_rowid=False,
    )
    run = "1, " if with_run else ""
    op.execute(
        f"INSERT INTO audit_subjects ({', '.join(key)}) SELECT {run}subject_id, seq FROM audit_subjects_old "
        "ORDER BY subject_id, seq"
    )
    op.drop_table("audit_subjects_old")


def upgrade() -> None:
    _rebuild(with_run=True)


def downgrade() -> None:
    _rebuild(with_run=False)
