"""audit: checkpoints, the log's head signed and published (anchored audit)

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-07 20:00:00

`security.checkpoints`: each row pins an entry of the log (seq, hash), chained to the checkpoint
before it and signed with the platform's Ed25519 key. Beside the log: in its own file on SQLite.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from xinyong.storage.migrations.audit_database import apart

revision: str = "0010"
down_revision: str | None = "0009"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _table(metadata: sa.MetaData) -> sa.Table:
    return sa.Table(
        "audit_checkpoints",
        metadata,
        sa.Column("n", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("at", sa.DateTime(), nullable=False),
        sa.Column("seq", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("hash", sa.String(64), nullable=False),
        sa.Column("previous", sa.String(64), nullable=False),
        sa.Column("key", sa.String(16), nullable=False),
        sa.Column("signature", sa.String(88), nullable=False),
        sa.PrimaryKeyConstraint("n", name="pk_audit_checkpoints"),
    )


def upgrade() -> None:
    with apart() as engine:
        if engine is None:
            _table(sa.MetaData()).create(op.get_bind())
        else:
            with engine.begin() as audit:
                _table(sa.MetaData()).create(audit, checkfirst=True)


def downgrade() -> None:
    with apart() as engine:
        if engine is None:
            op.drop_table("audit_checkpoints")
        else:
            with engine.begin() as audit:
                _table(sa.MetaData()).drop(audit, checkfirst=True)
