"""subject_changes: when each subject's story last changed, for the serving state's freshness guard

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-07 22:00:00

Filled from the ledger as it stands: per subject, the newest time a record, an event of one of its
records or a consent of it was recorded.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0012"
down_revision: str | None = "0011"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "subject_changes",
        sa.Column("subject_id", sa.String(length=32), nullable=False),
        sa.Column("changed_at", sa.DateTime(), nullable=False),
    )
    op.create_index(
        op.f("ix_subject_changes_subject_id_changed_at"), "subject_changes", ["subject_id", "changed_at"], unique=False
    )
    op.execute(
        "INSERT INTO subject_changes (subject_id, changed_at) "
        "SELECT subject_id, max(recorded_at) FROM ("
        " SELECT subject_id, recorded_at FROM records"
        " UNION ALL SELECT r.subject_id, e.recorded_at FROM record_events e JOIN records r ON r.id = e.record_id"
        " UNION ALL SELECT subject_id, recorded_at FROM subject_events"
        ") AS changes GROUP BY subject_id"
    )


def downgrade() -> None:
    op.drop_index(op.f("ix_subject_changes_subject_id_changed_at"), table_name="subject_changes")
    op.drop_table("subject_changes")
