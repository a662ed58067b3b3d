"""The `xinyong` command line: parse options, ask the service, print a table or one JSON object.

Nothing here decides anything, and nothing here touches the store but through the service (the
one door that authorises, acts and writes the audit entry), so a command reads and writes exactly
what the API would for the same principal: the operator (`XINYONG_ACTOR`, by default `cli:` and
the login name, as administrator), or the holder of the token given with `--token`. The commands
live in one module per area — `schemes`, `subjects`, `records`, `questions`, `due_process`,
`notices`, `feeds`, `lab`, `access`, `audit`, `operations`, `reports` — and share `context` (store,
clock, principal, output).

Exit status: 0 done, 2 bad input (the message says what and where), 1 anything else; never a stack
trace unless XINYONG_DEBUG=1 asks for one.
"""

from __future__ import annotations

import sys
from typing import Annotated, Any

import typer

from xinyong import settings
from xinyong.errors import XinyongError
from xinyong.interfaces.cli import (
    access,
    audit,
    due_process,
    failures,
    feeds,
    lab,
    notices,
    operations,
    questions,
    records,
    reports,
    schemes,
    subjects,
)
from xinyong.interfaces.cli.context import Context, note

__all__ = ["app", "main"]

# Plain help, not Rich's: typer's Rich formatter imports Rich's Markdown, Pretty, Syntax and
# Traceback, which took `xinyong --help` from 0.16 s to 0.44 s (median of 8 runs; 0.10 s to 0.25 s
# with compiled bytecode). The help says the same either way.
_SETTINGS: dict[str, Any] = {
    "help": "xinyong: an accountable credit-information platform.",
    "no_args_is_help": True,
    "add_completion": False,
    "rich_markup_mode": None,
}
app = typer.Typer(**_SETTINGS)

# Commands first, then the groups, in the order `xinyong --help` lists them.
for command in (
    operations.init,
    operations.rebuild,
    questions.score,
    questions.check,
    operations.state,
    lab.simulate,
    lab.compare,
    lab.fairness,
    operations.synth,
    operations.serve,
    operations.demo,
):
    app.command()(command)
for group, name in (
    (reports.report_app, "report"),
    (schemes.scheme_app, "scheme"),
    (schemes.sources_app, "sources"),
    (subjects.subjects_app, "subjects"),
    (subjects.search_app, "search"),
    (records.records_app, "records"),
    (due_process.objections_app, "objections"),
    (subjects.consent_app, "consent"),
    (due_process.repairs_app, "repairs"),
    (notices.notices_app, "notices"),
    (feeds.feeds_app, "feeds"),
    (access.tokens_app, "tokens"),
    (audit.audit_app, "audit"),
    (reports.keys_app, "keys"),
):
    app.add_typer(group, name=name)


def _whole_summaries(typer_app: typer.Typer) -> None:
    """Plain help cuts a command's summary to fit a line; ours are one line, written to be read whole."""
    for info in typer_app.registered_commands:
        doc = info.callback.__doc__ if info.callback is not None else None
        if info.short_help is None and doc:
            info.short_help = doc.strip().splitlines()[0]
    for group in typer_app.registered_groups:
        if group.typer_instance is not None:
            _whole_summaries(group.typer_instance)


_whole_summaries(app)


@app.callback()
def _root(
    typer_ctx: typer.Context,
    db: Annotated[
        str | None,
        typer.Option("--db", help=f"Store URL; default $XINYONG_DB or {settings.DB.default}."),
    ] = None,
    token: Annotated[
        str | None,
        typer.Option("--token", help="Act as this bearer token's holder, under its role; default the operator."),
    ] = None,
) -> None:
    # Read afresh for this run (`main` has checked them already; a test invokes the app directly)
    # and in use until the run ends.
    typer_ctx.with_resource(settings.using(settings.load()))
    ctx = Context(db, token)
    typer_ctx.obj = ctx
    typer_ctx.call_on_close(ctx.close)


# The root's options that take a value: what follows them is not the command's name.
_ROOT_VALUES = frozenset({"--db", "--token"})


def for_command(argv: list[str]) -> typer.Typer:
    """The app with only the command or group `argv` names, or the whole app when it names none
    (`xinyong`, `--help`, a mistyped name: their help and errors list every command).

    Typer builds every command's parameters when it starts (36 ms of a check's 0.6 s start-up,
    measured: benchmarks/startup.py), though one command runs; the narrowed app parses, helps and
    errs exactly as the whole one does for that command, its root options included."""
    words = iter(argv)
    for word in words:
        if word in _ROOT_VALUES:
            next(words, None)
        elif not word.startswith("-"):
            break
    else:
        return app
    commands = [c for c in app.registered_commands if c.callback and _command_name(c) == word]
    groups = [g for g in app.registered_groups if g.name == word]
    if not commands and not groups:
        return app
    narrowed = typer.Typer(**_SETTINGS)
    narrowed.registered_callback = app.registered_callback
    narrowed.registered_commands, narrowed.registered_groups = commands, groups
    return narrowed


def _command_name(info: typer.models.CommandInfo) -> str:
    from typer.main import get_command_name

    return info.name or get_command_name(info.callback.__name__ if info.callback else "")


def main() -> None:
    """Entry point: turn library errors into a message and an exit status, never a stack trace.

    The settings are read and checked first, so a bad value stops every command, `--help`
    included, before it does anything (exit 2, naming the variable)."""
    debug = False
    as_json = failures.wants_json(sys.argv[1:])
    try:
        with settings.using(settings.load()) as chosen:
            debug = chosen.debug
            # Outside standalone mode click returns a command's `typer.Exit` status instead of raising it.
            status = for_command(sys.argv[1:])(standalone_mode=False)
        if isinstance(status, int) and status:
            raise SystemExit(status)
    except XinyongError as exc:
        failures.report(exc, as_json=as_json)
        raise SystemExit(exc.exit_code) from None
    except typer.Exit as exc:
        raise SystemExit(exc.exit_code) from None
    except typer.Abort:
        note("aborted")
        raise SystemExit(1) from None
    except typer.TyperException as exc:
        # Usage errors (a missing argument, an unknown option) print typer's own message; status 2.
        if as_json:
            failures.print_json("usage", exc.format_message())
        elif callable(show := getattr(exc, "show", None)):
            show()
        else:
            note(exc.message)
        raise SystemExit(exc.exit_code) from None
    except Exception as exc:  # the promise is "no stack trace for the user"; XINYONG_DEBUG shows it
        if debug:
            raise
        message = f"{type(exc).__name__}: {exc}"
        if as_json:
            failures.print_json("failed", message)
        else:
            note(f"error: {message}")
        raise SystemExit(1) from None
    finally:
        sys.stdout.flush()
