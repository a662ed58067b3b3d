"""search_entries and its text index: the public look-up on disk

Revision ID: 0013
Revises: 0012
Create Date: 2026-12-08 01:00:00

SQLite: a contentless FTS5 table `search_text` whose rowid is the entry's position. PostgreSQL: a
GIN index on each column's ``to_tsvector('simple', …)``. The index starts empty; a store that
already has subjects has it filled by `xinyong init`, which rebuilds an index that is behind the
subjects, or by `xinyong search rebuild` (reading pinyin needs the application, which a
migration does not import).
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0013"
down_revision: str | None = "0012"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

COLUMNS = ("chars", "syllables", "initials", "rep")


def upgrade() -> None:
    big = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
    op.create_table(
        "search_entries",
        sa.Column("position", big, primary_key=True, autoincrement=False),
        sa.Column("subject_id", sa.String(length=32), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("pinyin", sa.Text(), nullable=False),
        *(sa.Column(column, sa.Text()) for column in COLUMNS),
        sa.UniqueConstraint("subject_id"),
    )
    if op.get_bind().dialect.name == "sqlite":
        op.execute(
            "CREATE VIRTUAL TABLE search_text USING fts5("
            f"{', '.join(COLUMNS)}, content='', columnsize=0, tokenize='ascii')"
        )
    else:
        for column in COLUMNS:
            op.execute(
                f"CREATE INDEX ix_search_entries_{column} ON search_entries USING gin (to_tsvector('simple', {column}))"
            )


def downgrade() -> None:
    if op.get_bind().dialect.name == "sqlite":
        op.execute("DROP TABLE search_text")
    op.drop_table("search_entries")
