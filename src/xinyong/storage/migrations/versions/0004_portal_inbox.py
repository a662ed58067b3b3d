"""outbox: no delivery rows for the portal, whose inbox is the notices table itself

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-22 19:00:00
"""

from collections.abc import Sequence

from alembic import op

from xinyong.storage.backend import backend_of

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # A portal row only ever recorded when a delivery run got round to a notice that was already
    # in the subject's inbox; the notice's own created_at is when the portal had it.
    op.execute("DELETE FROM outbox WHERE channel = 'portal'")


def downgrade() -> None:
    """Every notice gets its portal row back, delivered when the notice was written."""
    random = backend_of(op.get_bind()).random_hex_sql(16)
    op.execute(
        "INSERT INTO outbox (notice_id, channel, address, message_id, state, attempts, next_attempt_at, delivered_at) "
        f"SELECT id, 'portal', NULL, '<notice-' || CAST(id AS VARCHAR(20)) || '.portal.' || {random} "
        "|| '@xinyong.invalid>', 'delivered', 0, created_at, created_at FROM notices ORDER BY id"
    )
