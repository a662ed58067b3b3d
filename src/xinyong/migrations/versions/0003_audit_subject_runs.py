"""audit log: the subject index kept in sorted runs

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-22 17:30:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import xinyong.store

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _create(with_run: bool) -> None:
    key = ["run", "subject_id", "seq"] if with_run else ["subject_id", "seq"]
    columns = [sa.Column("run", xinyong.store.Id, autoincrement=False, nullable=False)] if with_run else []
    op.create_table(
        "audit_subjects",
        *columns,
        sa.Column("subject_id", sa.String(length=32), nullable=False),
        sa.Column("seq", xinyong.store.Id, autoincrement=False, nullable=False),
        sa.PrimaryKeyConstraint(*key, name=op.f("pk_audit_subjects")),
        sqlite_with_rowid=False,
    )


def upgrade() -> None:
    # What was indexed becomes one run, written in one sorted pass.
    op.execute("CREATE TABLE audit_subjects_0002 AS SELECT subject_id, seq FROM audit_subjects")
    op.drop_table("audit_subjects")
    _create(with_run=True)
    op.execute(
        "INSERT INTO audit_subjects (run, subject_id, seq) SELECT 1, subject_id, seq FROM audit_subjects_0002 "
        "ORDER BY subject_id, seq"
    )
    op.drop_table("audit_subjects_0002")


def downgrade() -> None:
    op.execute("CREATE TABLE audit_subjects_0003 AS SELECT subject_id, seq FROM audit_subjects")
    op.drop_table("audit_subjects")
    _create(with_run=False)
    op.execute(
        "INSERT INTO audit_subjects (subject_id, seq) SELECT subject_id, seq FROM audit_subjects_0003 "
        "ORDER BY subject_id, seq"
    )
    op.drop_table("audit_subjects_0003")
