"""notices: facts kept whole or as a shared template and the record's values

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-22 19:20:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import xinyong.storage.tables

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

CHECK = "(facts IS NULL) = (template_id IS NOT NULL)"


def upgrade() -> None:
    op.create_table(
        "notice_templates",
        sa.Column("id", xinyong.storage.tables.Id, autoincrement=True, nullable=False),
        sa.Column("parts", sa.Text(), nullable=False),
        sa.Column("fields", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_notice_templates")),
    )
    with op.batch_alter_table("notices") as batch:
        batch.add_column(sa.Column("template_id", xinyong.storage.tables.Id, nullable=True))
        batch.add_column(sa.Column("fill", sa.Text(), nullable=True))
        batch.alter_column("facts", existing_type=sa.Text(), nullable=True)
        batch.create_foreign_key(
            op.f("fk_notices_template_id_notice_templates"), "notice_templates", ["template_id"], ["id"]
        )
        batch.create_check_constraint("ck_notices_facts_or_template", CHECK)


def downgrade() -> None:
    """Every templated notice gets its facts text whole again (the text reading gives), then the
    columns and the templates go. Templates are read once; notices in slices of their ids, so a
    store of millions holds one slice of texts in memory at a time."""
    from xinyong.storage.tables import facts_text

    conn = op.get_bind()
    parts: dict[int, str] = {
        row.id: row.parts for row in conn.execute(sa.text("SELECT id, parts FROM notice_templates"))
    }
    with op.batch_alter_table("notices") as batch:
        batch.drop_constraint("ck_notices_facts_or_template", type_="check")
    after = 0
    while True:
        page = conn.execute(
            sa.text(
                "SELECT id, template_id, fill FROM notices WHERE id > :after AND template_id IS NOT NULL "
                "ORDER BY id LIMIT 5000"
            ),
            {"after": after},
        ).all()
        if not page:
            break
        conn.execute(
            sa.text("UPDATE notices SET facts = :facts, template_id = NULL, fill = NULL WHERE id = :id"),
            [{"id": row.id, "facts": facts_text(None, parts[row.template_id], row.fill)} for row in page],
        )
        after = page[-1].id
    with op.batch_alter_table("notices") as batch:
        batch.drop_constraint(op.f("fk_notices_template_id_notice_templates"), type_="foreignkey")
        batch.drop_column("fill")
        batch.drop_column("template_id")
        batch.alter_column("facts", existing_type=sa.Text(), nullable=False)
    op.drop_table("notice_templates")
