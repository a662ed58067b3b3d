"""A throwaway PostgreSQL cluster for tests.

``ThrowawayCluster`` runs ``initdb`` into a fresh temporary directory, starts a server that
listens only on 127.0.0.1 (on a free port) and on a unix socket inside that directory, and on
exit stops it and deletes everything. Nothing is shared with any system cluster.

Usage::

    with ThrowawayCluster() as cluster:
        url = cluster.url                # database created at start-up
        other = cluster.new_database()   # a second, empty database on the same server

Binaries are looked up in ``$XINYONG_PG_BIN`` (a directory), then ``/usr/lib/postgresql/*/bin``
(newest major version first, Debian's layout), then ``PATH``.

PostgreSQL refuses to run as root. When the tests run as root (as on CI and the dev machines),
the temporary directory is handed to the ``postgres`` system user and the server binaries are
run as that user. (Like ``runuser -u postgres --``, but done by ``subprocess`` itself, so it does
not depend on /usr/sbin being on PATH.)
"""

from __future__ import annotations

import contextlib
import itertools
import os
import pwd
import re
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from types import TracebackType
from typing import Any

import psycopg
from psycopg import sql

__all__ = ["PostgresNotFoundError", "ThrowawayCluster", "find_pg_bin"]

PG_USER = "xinyong"
SYSTEM_USER = "postgres"

# Settings passed on the server command line. The cluster is thrown away after the test run, so
# durability buys nothing: with fsync, synchronous commit and full-page writes off, initdb,
# CREATE DATABASE and every commit skip their disk flushes, which makes start-up and the tests
# several times faster. Never use these settings for data you want to keep.
SERVER_SETTINGS: dict[str, str] = {
    "fsync": "off",
    "synchronous_commit": "off",
    "full_page_writes": "off",
    # Only loopback TCP; the socket directory is set per cluster (see _write_settings).
    "listen_addresses": "127.0.0.1",
    # Test runs open few connections; a smaller limit means less shared memory per cluster,
    # which matters when each pytest-xdist worker starts its own.
    "max_connections": "50",
    "shared_buffers": "32MB",
    # No replication, so WAL can be minimal (fewer WAL records for CREATE TABLE/COPY).
    "wal_level": "minimal",
    "max_wal_senders": "0",
}


class PostgresNotFoundError(RuntimeError):
    """No PostgreSQL server binaries (initdb, pg_ctl, postgres) could be found."""


def _version_key(path: Path) -> tuple[int, ...]:
    # /usr/lib/postgresql/15/bin -> (15,); non-numeric names sort last.
    nums = re.findall(r"\d+", path.parent.name)
    return tuple(int(n) for n in nums) if nums else (-1,)


def _candidate_dirs() -> list[Path]:
    dirs: list[Path] = []
    env = os.environ.get("XINYONG_PG_BIN")
    if env:
        dirs.append(Path(env))
    dirs.extend(sorted(Path("/usr/lib/postgresql").glob("*/bin"), key=_version_key, reverse=True))
    on_path = shutil.which("initdb")
    if on_path:
        # Debian puts symlinks on PATH (if at all); resolve so pg_ctl/postgres sit beside it.
        dirs.append(Path(on_path).resolve().parent)
    return dirs


def find_pg_bin() -> Path:
    """Return the directory holding initdb, pg_ctl and postgres, or raise with a clear hint."""
    needed = ("initdb", "pg_ctl", "postgres")
    tried = _candidate_dirs()
    for d in tried:
        if all(os.access(d / name, os.X_OK) for name in needed):
            return d
    looked = ", ".join(str(d) for d in tried) or "nowhere (no candidates)"
    raise PostgresNotFoundError(
        "PostgreSQL server binaries (initdb, pg_ctl, postgres) not found; looked in "
        f"$XINYONG_PG_BIN, /usr/lib/postgresql/*/bin and PATH ({looked}). "
        "Install them with `apt-get install -y postgresql` (Debian), or run `bash run.sh test`, "
        "which does so, or point XINYONG_PG_BIN at the directory holding them."
    )


def _free_port() -> int:
    # The port is free now; another process may take it before the server binds, which is why
    # _start retries with a new port when start-up fails.
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def _traversable_by_others(path: Path) -> bool:
    """True if every ancestor of ``path`` can be entered by an unprivileged user."""
    for p in [path, *path.parents]:
        try:
            if not p.stat().st_mode & 0o001:
                return False
        except OSError:
            return False
    return True


def _system_user() -> pwd.struct_passwd:
    try:
        return pwd.getpwnam(SYSTEM_USER)
    except KeyError:
        raise PostgresNotFoundError(
            f"running as root, but there is no '{SYSTEM_USER}' system user to run PostgreSQL "
            "as (PostgreSQL refuses to run as root); install the `postgresql` package, which "
            "creates it"
        ) from None


class ThrowawayCluster:
    """A private PostgreSQL server in a temporary directory; a context manager.

    ``url`` is a SQLAlchemy URL (``postgresql+psycopg://xinyong@127.0.0.1:PORT/DB``) of a
    database created at start-up; ``new_database()`` creates another empty one.
    """

    def __init__(self, *, dbname: str = "xinyong_test", start_attempts: int = 5) -> None:
        self.bin_dir = find_pg_bin()
        self.dbname = dbname
        self.start_attempts = start_attempts
        # When root, who to run the server as; None: run it as ourselves.
        self.run_as = _system_user() if os.geteuid() == 0 else None
        self.port = 0
        self.base: Path | None = None
        self._running = False
        self._counter = itertools.count(1)

    # --- paths -----------------------------------------------------------------------------

    def _path(self, *parts: str) -> Path:
        if self.base is None:
            raise RuntimeError("cluster is not started")
        return self.base.joinpath(*parts)

    @property
    def data_dir(self) -> Path:
        return self._path("data")

    @property
    def socket_dir(self) -> Path:
        return self._path("sock")

    @property
    def log_file(self) -> Path:
        return self._path("server.log")

    @property
    def url(self) -> str:
        return self.url_for(self.dbname)

    def url_for(self, dbname: str) -> str:
        return f"postgresql+psycopg://{PG_USER}@127.0.0.1:{self.port}/{dbname}"

    # --- running binaries ------------------------------------------------------------------

    def _run(self, args: Sequence[str]) -> subprocess.CompletedProcess[str]:
        cmd = [str(self.bin_dir / args[0]), *args[1:]]
        ids: dict[str, Any] = {}
        if self.run_as is not None:
            # Drop to the postgres user in the child, with no supplementary groups.
            ids = {"user": self.run_as.pw_uid, "group": self.run_as.pw_gid, "extra_groups": []}
        # cwd: the postgres user may not be allowed into the caller's directory (e.g. /root).
        return subprocess.run(
            cmd,
            cwd=self.base,
            **ids,
            capture_output=True,
            text=True,
            stdin=subprocess.DEVNULL,
            check=False,
            # Keep the caller's PG* variables (PGHOST, PGPORT, ...) from steering the tools.
            env={k: v for k, v in os.environ.items() if not k.startswith("PG")} | {"LC_ALL": "C"},
        )

    def _check(self, args: Sequence[str], what: str) -> None:
        res = self._run(args)
        if res.returncode != 0:
            raise RuntimeError(f"{what} failed (exit {res.returncode}):\n{res.stdout}{res.stderr}" + self._log_tail())

    def _log_tail(self, lines: int = 30) -> str:
        try:
            text = self.log_file.read_text(errors="replace")
        except (OSError, RuntimeError):
            return ""
        tail = "\n".join(text.splitlines()[-lines:])
        return f"\n--- server log ({self.log_file}) ---\n{tail}"

    # --- lifecycle -------------------------------------------------------------------------

    def _make_base(self) -> Path:
        parent: str | None = None
        if self.run_as is not None and not _traversable_by_others(Path(tempfile.gettempdir())):
            # $TMPDIR is somewhere the postgres user cannot reach (e.g. under /root).
            parent = "/tmp"
        # Short prefix: the unix socket path must stay under ~107 bytes.
        base = Path(tempfile.mkdtemp(prefix="xy-pg-", dir=parent))
        self._chown(base)
        return base

    def _chown(self, path: Path) -> None:
        if self.run_as is not None:
            os.chown(path, self.run_as.pw_uid, self.run_as.pw_gid)

    def start(self) -> ThrowawayCluster:
        if self._running:
            return self
        self.base = self._make_base()
        try:
            self._check(
                [
                    "initdb",
                    "-D",
                    str(self.data_dir),
                    "--auth=trust",
                    "-U",
                    PG_USER,
                    "-E",
                    "UTF8",
                    "--no-locale",
                    "--no-sync",  # same reasoning as fsync=off
                    "--no-instructions",
                ],
                "initdb",
            )
            self._mkdir_owned(self.socket_dir)
            self._write_settings()
            self._start()
            self.create_database(self.dbname)
        except BaseException:
            self.stop()
            raise
        return self

    def _mkdir_owned(self, path: Path) -> None:
        path.mkdir(mode=0o700)
        self._chown(path)

    def _write_settings(self) -> None:
        # Appended to postgresql.conf (later lines win); quoted, so paths with spaces are safe.
        # The port is not written here: it is chosen per start attempt (see _start).
        settings = SERVER_SETTINGS | {"unix_socket_directories": str(self.socket_dir)}
        lines = "".join("{} = '{}'\n".format(k, v.replace("'", "''")) for k, v in settings.items())
        with (self.data_dir / "postgresql.conf").open("a") as f:
            f.write("\n# --- tests/pgcluster.py ---\n" + lines)

    def _start(self) -> None:
        last_error: Exception | None = None
        for _ in range(self.start_attempts):
            self.port = _free_port()
            res = self._run(
                [
                    "pg_ctl",
                    "start",
                    "-w",
                    "-t",
                    "60",
                    "-D",
                    str(self.data_dir),
                    "-l",
                    str(self.log_file),
                    "-o",
                    f"-p {self.port}",
                ]
            )
            if res.returncode == 0:
                self._running = True
                return
            last_error = RuntimeError(
                f"pg_ctl start failed (exit {res.returncode}):\n{res.stdout}{res.stderr}" + self._log_tail()
            )
            # Most likely lost the race for the port (another xdist worker); try another.
            time.sleep(0.2)
        assert last_error is not None
        raise last_error

    def stop(self) -> None:
        """Stop the server (if running) and delete the temporary directory. Idempotent."""
        if self.base is None:
            return
        if self._running or (self.data_dir / "postmaster.pid").exists():
            # Immediate mode: no checkpoint, no waiting for clients; the data is discarded.
            res = self._run(["pg_ctl", "stop", "-w", "-m", "immediate", "-D", str(self.data_dir)])
            if res.returncode != 0:
                self._kill_postmaster()
        self._running = False
        shutil.rmtree(self.base, ignore_errors=True)
        self.base = None

    def _kill_postmaster(self) -> None:
        with contextlib.suppress(OSError, ValueError, IndexError):
            pid = int((self.data_dir / "postmaster.pid").read_text().splitlines()[0])
            os.kill(pid, 9)

    def __enter__(self) -> ThrowawayCluster:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    # --- databases -------------------------------------------------------------------------

    def connect_admin(self) -> psycopg.Connection[tuple[object, ...]]:
        """An autocommit psycopg connection to the ``postgres`` maintenance database."""
        return psycopg.connect(
            host="127.0.0.1",
            port=self.port,
            user=PG_USER,
            dbname="postgres",
            autocommit=True,
        )

    def create_database(self, name: str) -> str:
        """Create database ``name`` and return its SQLAlchemy URL."""
        with self.connect_admin() as conn:
            conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
        return self.url_for(name)

    def new_database(self, prefix: str = "t") -> str:
        """Create a fresh, empty database with a unique name and return its SQLAlchemy URL."""
        return self.create_database(f"{prefix}_{os.getpid()}_{next(self._counter)}")
