"""Serving the site: granian or uvicorn, one or more worker processes, each building the
application from the settings (`interfaces.site.app_from_environment`).

The server is given the application as an import path, so the command line that calls `serve`
imports neither the API nor the web pages.

How the workers learn the store and the session key. Every worker builds its own application (its
own connection pool, token cache and answer cache) by calling the factory, and all of them must
serve the store that `serve --db URL` (or the demo) named and sign web sessions with one key — a
key made here when XINYONG_WEB_SECRET is unset, for the server's lifetime, and never stored. The
servers offer different ways in. Granian could hand the factory arguments
(`Server.serve(target_loader=…)`), but uvicorn cannot: with more than one worker it accepts only an
import string and starts its workers with `spawn`, so what they know comes from the environment
they inherit. The one way both share is the environment, then; and rather than writing it into
this process (which is what this module used to do: every later reader in the process, a test
among them, then depended on who had written what, and when), `serve` checks everything, then
replaces itself (`os.execve`) with `python -m xinyong.interfaces.hosting`, handing the new program
an explicit environment: this one's, with the settings resolved — the store, the key, the host,
port, workers and server chosen by options — as XINYONG_* values (`Settings.environment`). That
program reads them like any other (`settings.load`, checked again), and its workers, forked or
spawned, inherit them whichever server runs.

Why exec rather than a child process: the server keeps the command's process id, so Ctrl-C, `kill`
and a supervisor's stop signal reach it directly, with no parent to forward them and none left
behind when it dies. What it costs: the interpreter starts a second time (a fraction of a second,
once), and the key can be read from /proc/PID/environ by the same user and by root — as can an
XINYONG_WEB_SECRET the operator sets — but it is never written to the database or to a file.
"""

from __future__ import annotations

import os
import secrets
import sys
from typing import NoReturn

from xinyong import settings
from xinyong.errors import BadInput, XinyongError
from xinyong.storage.store import Store

TARGET = "xinyong.interfaces.site:app_from_environment"
PROGRAM = "xinyong.interfaces.hosting"


def serve(
    db_url: str,
    *,
    host: str | None = None,
    port: int | None = None,
    workers: int | None = None,
    server: str | None = None,
) -> NoReturn:
    """Serve the site for a store until interrupted (what `xinyong serve` and the demo do).

    Options override their settings, checked by the same rule under the option's name. Everything is
    checked, and the store must be initialised, before the server program replaces this one.
    """
    chosen = settings.current()
    changes = {settings.DB.name: db_url}
    options = (
        ("--host", settings.HOST, host),
        ("--port", settings.PORT, port),
        ("--workers", settings.WORKERS, workers),
        ("--server", settings.SERVER, server),
    )
    for option, setting, value in options:
        if value is not None:
            setting.parse(str(value), option)
            changes[setting.name] = str(value)
    if chosen.web_secret is None:
        # One signing key for the web sessions of every worker (web/session.py), for this run.
        changes[settings.WEB_SECRET.name] = secrets.token_urlsafe(32)
    environment = chosen.environment(changes)
    settings.load(environment)  # what the server program will read, refused here if it is wrong
    store = Store(db_url)
    try:
        store.require_initialised()
    finally:
        store.dispose()
    sys.stdout.flush()
    sys.stderr.flush()
    os.execve(sys.executable, [sys.executable, "-m", PROGRAM], environment)


def run(chosen: settings.Settings) -> None:
    """Run the chosen server in this process until interrupted: the program `serve` becomes."""
    host, port, workers, server = chosen.host, chosen.port, chosen.workers, chosen.server
    target = TARGET
    if server == "granian":
        from granian.constants import Interfaces, Loops
        from granian.server import Server

        Server(
            target,
            address=host,
            port=port,
            interface=Interfaces.ASGI,
            workers=workers,
            loop=Loops.uvloop,
            factory=True,
        ).serve()
    elif server == "uvicorn":
        try:
            import uvicorn
        except ImportError as exc:  # an optional part: `pip install 'xinyong[uvicorn]'`
            raise BadInput("--server uvicorn needs the uvicorn extra: pip install 'xinyong[uvicorn]'") from exc

        uvicorn.run(
            target,
            host=host,
            port=port,
            workers=workers,
            factory=True,
            loop="uvloop",
            http="httptools",
            access_log=False,
            log_level="warning",
        )
    else:
        raise BadInput(f"--server: {server!r} is not one of granian, uvicorn")


def main() -> None:
    """`python -m xinyong.interfaces.hosting`: the settings of this environment, checked, served."""
    try:
        run(settings.use(settings.load()))
    except XinyongError as exc:
        print(exc.render(), file=sys.stderr)
        raise SystemExit(exc.exit_code) from None


if __name__ == "__main__":  # not in uvicorn's spawned workers, which import this as __mp_main__
    main()
