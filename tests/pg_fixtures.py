"""pytest fixtures for the throwaway PostgreSQL cluster (see tests/pgcluster.py).

tests/conftest.py imports these (``from pg_fixtures import pg_cluster, pg_url``) so every
test module can ask for them. ``pg_cluster`` is session-scoped: with pytest-xdist each worker
is its own session and starts its own cluster on its own port, which costs about a second
per worker and needs no coordination between workers.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from pgcluster import PostgresNotFoundError, ThrowawayCluster

__all__ = ["pg_cluster", "pg_url"]


@pytest.fixture(scope="session")
def pg_cluster() -> Iterator[ThrowawayCluster]:
    """A running PostgreSQL server for the whole session (per xdist worker)."""
    try:
        cluster = ThrowawayCluster()
    except PostgresNotFoundError as e:
        # Fail, not skip: a silently skipped PostgreSQL suite would hide a broken set-up.
        pytest.fail(str(e), pytrace=False)
    with cluster:
        yield cluster


@pytest.fixture
def pg_url(pg_cluster: ThrowawayCluster) -> str:
    """SQLAlchemy URL of a fresh, empty database, new for every test."""
    return pg_cluster.new_database()
