"""audit log: subjects indexed in batches

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-22 15:30:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import xinyong.storage.tables

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "audit_subjects",
        sa.Column("subject_id", sa.String(length=32), nullable=False),
        sa.Column("seq", xinyong.storage.tables.Id, autoincrement=False, nullable=False),
        sa.PrimaryKeyConstraint("subject_id", "seq", name=op.f("pk_audit_subjects")),
        sqlite_with_rowid=False,
    )
    with op.batch_alter_table("audit_head", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("indexed", xinyong.storage.tables.Id, server_default="0", nullable=False),
        )
    # Everything already logged is indexed now, in one sorted pass.
    op.execute(
        "INSERT INTO audit_subjects (subject_id, seq) SELECT subject_id, seq FROM audit_log "
        "WHERE subject_id IS NOT NULL ORDER BY subject_id, seq"
    )
    op.execute("UPDATE audit_head SET indexed = seq")
    with op.batch_alter_table("audit_log", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_audit_log_subject_id"))


def downgrade() -> None:
    with op.batch_alter_table("audit_log", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_audit_log_subject_id"), ["subject_id"], unique=False)
    with op.batch_alter_table("audit_head", schema=None) as batch_op:
        batch_op.drop_column("indexed")
    op.drop_table("audit_subjects")
