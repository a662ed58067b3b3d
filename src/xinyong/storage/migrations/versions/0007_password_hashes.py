"""tokens: an argon2id hash for web passwords, which does not fit secret_sha256's 64 characters

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-23 10:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # Nullable, and nothing is rewritten: a password row of before keeps its scrypt hex in
    # secret_sha256 and gets its argon2id hash at its next successful log-in (passwords.py).
    with op.batch_alter_table("tokens") as batch:
        batch.add_column(sa.Column("password_hash", sa.Text(), nullable=True))


def downgrade() -> None:
    """The column goes. A password hashed with argon2id cannot be turned back into the old scrypt
    hash without the password, so such a row stays (listed, revocable) with its non-hex marker in
    secret_sha256, which matches neither a bearer token nor any password: it fails closed until an
    administrator sets the password again. Rows still under scrypt keep working."""
    with op.batch_alter_table("tokens") as batch:
        batch.drop_column("password_hash")
