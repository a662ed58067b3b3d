"""issued_reports: of each credit report issued, its id, its question and its digest

Revision ID: 0014
Revises: 0013
Create Date: 2026-12-08 01:00:00

What `xinyong report verify` and the public verification page ask about (`service.reports`): the
platform keeps no copy of a report's content, only what is needed to re-ask its question.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0014"
down_revision: str | None = "0013"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "issued_reports",
        sa.Column("report_id", sa.String(32), nullable=False),
        sa.Column("subject_id", sa.String(32), nullable=False),
        sa.Column("audience", sa.String(16), nullable=False),
        sa.Column("as_of", sa.Date(), nullable=False),
        sa.Column("known_at", sa.DateTime(), nullable=False),
        sa.Column("digest", sa.String(64), nullable=False),
        sa.Column("issued_at", sa.DateTime(), nullable=False),
        sa.PrimaryKeyConstraint("report_id", name="pk_issued_reports"),
    )


def downgrade() -> None:
    op.drop_table("issued_reports")
