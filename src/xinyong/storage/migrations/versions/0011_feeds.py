"""feeds: versioned, signed deltas of keyed hashes per enforcer agency; webhook deliveries in the outbox

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-08 10:00:00

`derived.feeds`: an agency's feed (its current key's generation and its webhook), its versions,
what each version adds and removes, and the set they add up to. The outbox (`due_process.outbox`)
also carries webhook calls: a row either names a notice (an e-mail, rendered when sent) or holds a
body signed when it was written; on SQLite the table is rebuilt for the notice to become optional.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0011"
down_revision: str | None = "0010"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# As `tables.Id`: INTEGER on SQLite (a rowid alias), BIGINT elsewhere.
Id = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "feed_agencies",
        sa.Column("agency", sa.String(64), nullable=False),
        sa.Column("key_generation", sa.Integer(), nullable=False),
        sa.Column("key_made_at", sa.DateTime(), nullable=False),
        sa.Column("webhook_url", sa.String(254)),
        sa.Column("webhook_set_at", sa.DateTime()),
        sa.PrimaryKeyConstraint("agency", name="pk_feed_agencies"),
    )
    op.create_table(
        "feed_versions",
        sa.Column("agency", sa.String(64), nullable=False),
        sa.Column("version", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("day", sa.Date(), nullable=False),
        sa.Column("cut_at", sa.DateTime(), nullable=False),
        sa.Column("feed_key", sa.Integer(), nullable=False),
        sa.Column("previous", sa.String(64), nullable=False),
        sa.Column("digest", sa.String(64), nullable=False),
        sa.Column("key", sa.String(16), nullable=False),
        sa.Column("signature", sa.String(88), nullable=False),
        sa.Column("added", sa.Integer(), nullable=False),
        sa.Column("removed", sa.Integer(), nullable=False),
        sa.Column("acknowledged_at", sa.DateTime()),
        sa.Column("acknowledged_by", sa.String(128)),
        sa.ForeignKeyConstraint(["agency"], ["feed_agencies.agency"], name="fk_feed_versions_agency_feed_agencies"),
        sa.PrimaryKeyConstraint("agency", "version", name="pk_feed_versions"),
    )
    op.create_table(
        "feed_entries",
        sa.Column("agency", sa.String(64), nullable=False),
        sa.Column("version", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("measure", sa.String(130), nullable=False),
        sa.Column("hash", sa.String(64), nullable=False),
        sa.Column("op", sa.String(3), nullable=False),
        sa.Column("subject_id", sa.String(32), nullable=False),
        sa.Column("rekeyed", sa.Boolean(), nullable=False),
        sa.Column("ended_at", sa.DateTime()),
        sa.PrimaryKeyConstraint("agency", "version", "measure", "hash", name="pk_feed_entries"),
    )
    op.create_index("ix_feed_entries_subject_id", "feed_entries", ["subject_id"])
    op.create_table(
        "feed_members",
        sa.Column("agency", sa.String(64), nullable=False),
        sa.Column("measure", sa.String(130), nullable=False),
        sa.Column("subject_id", sa.String(32), nullable=False),
        sa.Column("hash", sa.String(64), nullable=False),
        sa.PrimaryKeyConstraint("agency", "measure", "subject_id", name="pk_feed_members"),
    )
    with op.batch_alter_table("outbox") as batch:
        batch.alter_column("notice_id", existing_type=Id, nullable=True)
        batch.add_column(sa.Column("body", sa.Text()))
        batch.add_column(sa.Column("signed_by", sa.String(16)))
        batch.add_column(sa.Column("signature", sa.String(88)))
        batch.create_check_constraint("ck_outbox_notice_or_body", "(notice_id IS NULL) = (body IS NOT NULL)")


def downgrade() -> None:
    """The feeds go, and with them the webhook calls still owed (the code of before has no
    webhooks to send them with); every notice and its e-mail stays."""
    op.execute(sa.text("DELETE FROM outbox WHERE notice_id IS NULL"))
    with op.batch_alter_table("outbox") as batch:
        batch.drop_constraint("ck_outbox_notice_or_body", type_="check")
        batch.drop_column("signature")
        batch.drop_column("signed_by")
        batch.drop_column("body")
        batch.alter_column("notice_id", existing_type=Id, nullable=False)
    op.drop_table("feed_members")
    op.drop_index("ix_feed_entries_subject_id", table_name="feed_entries")
    op.drop_table("feed_entries")
    op.drop_table("feed_versions")
    op.drop_table("feed_agencies")
