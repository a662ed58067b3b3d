"""The throwaway PostgreSQL cluster starts, hands out separate databases, and cleans up."""

from __future__ import annotations

from pathlib import Path

import pytest
import sqlalchemy as sa

import pgcluster
from pg_fixtures import pg_cluster  # noqa: F401  (fixture, used by name)
from pgcluster import PostgresNotFoundError, ThrowawayCluster

pytestmark = pytest.mark.postgres


def test_two_databases_are_separate(pg_cluster: ThrowawayCluster) -> None:  # noqa: F811
    url_a = pg_cluster.new_database()
    url_b = pg_cluster.new_database()
    assert url_a != url_b
    assert url_a.startswith(f"postgresql+psycopg://xinyong@127.0.0.1:{pg_cluster.port}/")

    eng_a = sa.create_engine(url_a)
    eng_b = sa.create_engine(url_b)
    try:
        for eng in (eng_a, eng_b):
            with eng.connect() as conn:
                version = conn.execute(sa.text("select version()")).scalar_one()
                assert str(version).startswith("PostgreSQL ")

        with eng_a.begin() as conn:
            conn.execute(sa.text("create table only_in_a (x int)"))
            conn.execute(sa.text("insert into only_in_a values (1)"))

        with eng_a.connect() as conn:
            assert sa.inspect(conn).has_table("only_in_a")
        with eng_b.connect() as conn:
            assert not sa.inspect(conn).has_table("only_in_a")
    finally:
        eng_a.dispose()
        eng_b.dispose()


def test_initial_database_and_settings(pg_cluster: ThrowawayCluster) -> None:  # noqa: F811
    eng = sa.create_engine(pg_cluster.url)
    try:
        with eng.connect() as conn:
            assert conn.execute(sa.text("select current_database()")).scalar_one() == (pg_cluster.dbname)
            assert conn.execute(sa.text("show fsync")).scalar_one() == "off"
            assert conn.execute(sa.text("show listen_addresses")).scalar_one() == "127.0.0.1"
            assert conn.execute(sa.text("show server_encoding")).scalar_one() == "UTF8"
    finally:
        eng.dispose()


def test_stop_removes_everything() -> None:
    with ThrowawayCluster(dbname="short_lived") as cluster:
        base = cluster.base
        assert base is not None
        assert (base / "data" / "postmaster.pid").exists()
        port = cluster.port
    assert not Path(base).exists()
    with pytest.raises(sa.exc.OperationalError):
        sa.create_engine(
            f"postgresql+psycopg://xinyong@127.0.0.1:{port}/short_lived",
            connect_args={"connect_timeout": 2},
        ).connect()


def test_stops_on_failure() -> None:
    bases: list[Path] = []

    def fail_inside() -> None:
        with ThrowawayCluster() as cluster:
            assert cluster.base is not None
            bases.append(cluster.base)
            raise RuntimeError("boom")

    with pytest.raises(RuntimeError, match="boom"):
        fail_inside()
    assert bases
    assert not bases[0].exists()


def test_missing_binaries_give_a_clear_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(pgcluster, "_candidate_dirs", lambda: [Path("/nonexistent/bin")])
    with pytest.raises(PostgresNotFoundError, match=r"apt-get install -y postgresql"):
        ThrowawayCluster()
