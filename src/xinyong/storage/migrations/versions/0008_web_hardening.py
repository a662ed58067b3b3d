"""web: log-in attempts and lock-outs kept in the store, server-side web sessions

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-07 18:00:00

Failed log-ins are counted in the store, not in a worker's memory, so that the limits (5 failures
for one log-in name, 20 from one address, in 15 minutes) hold however many server workers there
are (`security.lockouts`). A web session is a row from log-in to log-out, so that log-out ends it
on the server (`security.sessions`).
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0008"
down_revision: str | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# As `tables.Id`: INTEGER on SQLite (a rowid alias, numbered by the database), BIGINT elsewhere.
Id = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "login_attempts",
        sa.Column("id", Id, primary_key=True, autoincrement=True),
        sa.Column("at", sa.DateTime(), nullable=False),
        sa.Column("login", sa.String(64)),
        sa.Column("address", sa.String(64)),
        sa.PrimaryKeyConstraint("id", name="pk_login_attempts"),
    )
    op.create_index("ix_login_attempts_login_at", "login_attempts", ["login", "at"])
    op.create_index("ix_login_attempts_address_at", "login_attempts", ["address", "at"])
    op.create_index("ix_login_attempts_at", "login_attempts", ["at"])
    op.create_table(
        "login_locks",
        sa.Column("kind", sa.String(8), nullable=False),
        sa.Column("value", sa.String(64), nullable=False),
        sa.Column("locked_at", sa.DateTime()),
        sa.Column("locked_until", sa.DateTime()),
        sa.Column("lockouts", sa.Integer(), nullable=False, server_default="0"),
        sa.Column("counted_from", sa.DateTime()),
        sa.Column("touched_at", sa.DateTime(), nullable=False),
        sa.PrimaryKeyConstraint("kind", "value", name="pk_login_locks"),
    )
    op.create_index("ix_login_locks_touched_at", "login_locks", ["touched_at"])
    op.create_table(
        "web_sessions",
        sa.Column("secret_sha256", sa.String(64), nullable=False),
        sa.Column("credential", sa.String(32), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("expires_at", sa.DateTime(), nullable=False),
        sa.PrimaryKeyConstraint("secret_sha256", name="pk_web_sessions"),
    )
    op.create_index("ix_web_sessions_credential", "web_sessions", ["credential"])
    op.create_index("ix_web_sessions_expires_at", "web_sessions", ["expires_at"])


def downgrade() -> None:
    """The three tables go. What they held lives 15 minutes (attempts), a day (lock-outs) or 8 hours
    (sessions) and is no record: every web session ends (the code of before signs its cookies
    differently and logs everyone in again), and log-ins are counted from nothing."""
    op.drop_index("ix_web_sessions_expires_at", table_name="web_sessions")
    op.drop_index("ix_web_sessions_credential", table_name="web_sessions")
    op.drop_table("web_sessions")
    op.drop_index("ix_login_locks_touched_at", table_name="login_locks")
    op.drop_table("login_locks")
    op.drop_index("ix_login_attempts_at", table_name="login_attempts")
    op.drop_index("ix_login_attempts_address_at", table_name="login_attempts")
    op.drop_index("ix_login_attempts_login_at", table_name="login_attempts")
    op.drop_table("login_attempts")
