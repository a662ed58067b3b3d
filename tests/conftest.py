"""Shared fixtures: every storage test runs on SQLite and on a throwaway PostgreSQL cluster."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from helpers import World
from pg_fixtures import pg_cluster, pg_url  # noqa: F401
from xinyong.storage.store import Store


@pytest.fixture(params=["sqlite", "postgresql"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Store]:
    """A migrated, empty store on each backend."""
    url = f"sqlite:///{tmp_path / 'test.db'}" if request.param == "sqlite" else request.getfixturevalue("pg_url")
    result = Store(url)
    result.migrate()
    yield result
    result.dispose()


@pytest.fixture
def sqlite_store(tmp_path: Path) -> Iterator[Store]:
    """A migrated SQLite store, for tests about logic that does not depend on the backend."""
    result = Store(f"sqlite:///{tmp_path / 'test.db'}")
    result.migrate()
    yield result
    result.dispose()


@pytest.fixture
def world(store: Store) -> World:
    return World(store)


@pytest.fixture(autouse=True, scope="session")
def _imports_keep_the_test_process_priority() -> Iterator[None]:
    """An import run in this process (`xinyong records import` through `cli.main`) lowers the
    process's priority for good (`interfaces.cli.context.yield_to_checks`): every later test, and
    every process it starts, would run at nice 19. So the call is not made here; the test of it
    also runs one in a process of its own."""
    import os

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(os, "nice", lambda step: step)
        yield
