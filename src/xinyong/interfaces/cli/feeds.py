"""`feeds key|webhook|publish|show|ack|delays`: feeds for enforcer agencies (docs/enforcers.md)."""

from __future__ import annotations

from typing import Annotated

import typer

from xinyong.interfaces.cli.context import JsonOpt, console, ctx_of, day_option, emit

feeds_app = typer.Typer(
    help="Feeds for enforcer agencies: keyed hashes of who enters and leaves their measures, version by version.",
    no_args_is_help=True,
)


@feeds_app.command("key")
def feeds_key(typer_ctx: typer.Context, agency: str, as_json: JsonOpt = False) -> None:
    """Make or rotate an agency's feed key (64 hex characters), printed this once and never again."""
    ctx = ctx_of(typer_ctx)
    made = ctx.service().feeds.make_key(ctx.principal, agency)
    emit(
        as_json,
        made,
        lambda: console().print(
            f"feed key {made['generation']} of {made['agency']} (shown this once; give it to the agency):\n"
            + made["key"],
            markup=False,
        ),
    )


@feeds_app.command("webhook")
def feeds_webhook(typer_ctx: typer.Context, agency: str, url: str, as_json: JsonOpt = False) -> None:
    """Register the URL an agency's new feed versions are announced at (signed POSTs, retried until a 2xx)."""
    ctx = ctx_of(typer_ctx)
    made = ctx.service().feeds.set_webhook(ctx.principal, agency, url)
    emit(as_json, made, lambda: console().print(f"{made['agency']}: new versions announced at {made['url']}"))


@feeds_app.command("publish")
def feeds_publish(
    typer_ctx: typer.Context,
    day: Annotated[
        str | None, typer.Option("--day", help="The day (YYYY-MM-DD) the versions are for; default today.")
    ] = None,
    as_json: JsonOpt = False,
) -> None:
    """Cut the day's version of every agency's feed: who entered and left its measures (a server does it nightly)."""
    ctx = ctx_of(typer_ctx)
    found = ctx.service().feeds.publish(ctx.principal, day=day_option(day, "--day"))

    def human() -> None:
        from rich.table import Table

        table = Table("agency", "version", "day", "new", "add", "del")
        for v in found["versions"]:
            table.add_row(
                v["agency"], str(v["version"]), v["day"], "yes" if v["created"] else "no", str(v["add"]), str(v["del"])
            )
        console().print(table)

    emit(as_json, found, human)


@feeds_app.command("show")
def feeds_show(
    typer_ctx: typer.Context,
    agency: str,
    since: Annotated[
        int, typer.Option("--since", min=0, help="Only the versions after this one; default 0, every one.")
    ] = 0,
    as_json: JsonOpt = False,
) -> None:
    """An agency's feed versions after --since, each as signed: ADD and DEL keyed hashes, per measure too."""
    ctx = ctx_of(typer_ctx)
    found = ctx.service().feeds.show(ctx.principal, agency, since=since)

    def human() -> None:
        from rich.table import Table

        table = Table("version", "day", "cut at", "key", "add", "del", "measures")
        for v in found["versions"]:
            table.add_row(
                str(v["version"]),
                v["day"],
                v["cut_at"][:19],
                str(v["feed_key"]),
                str(len(v["add"])),
                str(len(v["del"])),
                ", ".join(v["measures"]),
            )
        console().print(table)

    emit(as_json, found, human)


@feeds_app.command("ack")
def feeds_ack(typer_ctx: typer.Context, agency: str, version: int, as_json: JsonOpt = False) -> None:
    """Acknowledge that an agency has applied a version of its feed (and every version before it)."""
    ctx = ctx_of(typer_ctx)
    made = ctx.service().feeds.acknowledge(ctx.principal, agency, version)
    emit(
        as_json,
        made,
        lambda: console().print(
            f"{made['agency']}: version {made['version']} acknowledged at {made['acknowledged_at']}"
        ),
    )


@feeds_app.command("delays")
def feeds_delays(typer_ctx: typer.Context, as_json: JsonOpt = False) -> None:
    """Each agency's delisting delay: from a measure ending to its acknowledgement of the version removing it."""
    ctx = ctx_of(typer_ctx)
    found = ctx.service().feeds.delays(ctx.public)

    def hours(seconds: float | None) -> str:
        return "—" if seconds is None else f"{seconds / 3600:.1f} h"

    def human() -> None:
        from rich.table import Table

        table = Table("agency", "removals", "p50", "p90", "max", "unacknowledged", "late")
        for a in found["agencies"]:
            table.add_row(
                a["agency"],
                str(a["removals"]),
                hours(a["p50_seconds"]),
                hours(a["p90_seconds"]),
                hours(a["max_seconds"]),
                str(a["unacknowledged"]),
                str(a["late"]),
            )
        console().print(table)

    emit(as_json, found, human)
