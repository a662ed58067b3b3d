"""effects and notices found through the subject's records; message ids unindexed

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-22 21:00:00
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # A subject's effects and notices are found through its records (tables.of_subject); each index
    # dropped here was a random insert into a B-tree in subject order for every row a bulk import
    # wrote. Notices keep their key unique as (record_id, key), which also finds a record's notices.
    op.drop_index(op.f("ix_effects_subject_id_scheme_version"), table_name="effects")
    with op.batch_alter_table("notices") as batch:
        batch.drop_index(op.f("ix_notices_subject_id_id"))
        batch.drop_constraint(op.f("uq_notices_key"), type_="unique")
        batch.create_unique_constraint(op.f("uq_notices_record_id_key"), ["record_id", "key"])
    with op.batch_alter_table("outbox") as batch:
        batch.drop_constraint(op.f("uq_outbox_message_id"), type_="unique")


def downgrade() -> None:
    with op.batch_alter_table("outbox") as batch:
        batch.create_unique_constraint(op.f("uq_outbox_message_id"), ["message_id"])
    with op.batch_alter_table("notices") as batch:
        batch.drop_constraint(op.f("uq_notices_record_id_key"), type_="unique")
        batch.create_unique_constraint(op.f("uq_notices_key"), ["key"])
        batch.create_index(op.f("ix_notices_subject_id_id"), ["subject_id", "id"], unique=False)
    op.create_index(
        op.f("ix_effects_subject_id_scheme_version"), "effects", ["subject_id", "scheme", "version"], unique=False
    )
