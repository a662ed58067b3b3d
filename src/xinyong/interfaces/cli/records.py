"""`records import|show|correct|revoke|end|decline`: a source's records and the events that change them."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from xinyong.interfaces.cli.context import (
    JsonOpt,
    KnownAtOpt,
    amount_option,
    console,
    ctx_of,
    day_option,
    emit,
    progress_bar,
    yield_to_checks,
)
from xinyong.rules import values

records_app = typer.Typer(help="Records and their events.", no_args_is_help=True)


@records_app.command("import")
def records_import(
    typer_ctx: typer.Context,
    file: Path,
    source: Annotated[str, typer.Option("--source", help="The submitting agency.")],
    as_json: JsonOpt = False,
    bulk: Annotated[
        bool | None,
        typer.Option(
            "--bulk/--no-bulk",
            help="The column-wise path (Arrow/DuckDB); default: on for .parquet and files of 64 MiB or more.",
        ),
    ] = None,
) -> None:
    """Import a source's records from CSV, JSON Lines or Parquet: the whole file or nothing."""
    ctx = ctx_of(typer_ctx)
    yield_to_checks()
    service = ctx.service()
    # The service chooses the path (bulk for Parquet and big files unless --bulk/--no-bulk says).
    with progress_bar(f"importing {file.name}", not as_json) as progress:
        result = service.records.import_path(ctx.principal, file, source, bulk=bulk, progress=progress)
    emit(
        as_json,
        {"imported": result.imported, "already_present": result.already_present},
        lambda: console().print(f"{result.imported} records imported, {result.already_present} already present"),
    )


@records_app.command("show")
def records_show(typer_ctx: typer.Context, record: str, known_at: KnownAtOpt = None, as_json: JsonOpt = False) -> None:
    """A record with every event that happened to it."""
    from xinyong.presentation import outputs

    ctx = ctx_of(typer_ctx)
    found = ctx.service().records.show(ctx.principal, record)
    data = outputs.history(found, ctx.known_at(known_at))

    def human() -> None:
        from rich.table import Table

        console().print(
            f"record {data['id']} ({data['ref']}): {data['behaviour']} of {data['subject']}, "
            f"occurred {data['occurred_on']}, status {data['status']}"
        )
        table = Table("event", "at", "by", "details")
        for e in data["events"]:
            details = ", ".join(f"{k}={v}" for k, v in e.items() if k not in {"kind", "at", "actor", "id"})
            table.add_row(e["kind"], e["at"], e["actor"], details)
        console().print(table)

    emit(as_json, data, human)


def _event_done(as_json: bool, record: str, event_id: int, kind: str) -> None:
    emit(
        as_json,
        {"record": record, "event": event_id, "kind": kind},
        lambda: console().print(f"{kind}: record {record} (event {event_id})"),
    )


@records_app.command("correct")
def records_correct(
    typer_ctx: typer.Context,
    record: str,
    reason: Annotated[str, typer.Option("--reason")],
    behaviour: Annotated[str | None, typer.Option("--behaviour")] = None,
    occurred_on: Annotated[str | None, typer.Option("--occurred-on")] = None,
    amount: Annotated[str | None, typer.Option("--amount")] = None,
    as_json: JsonOpt = False,
) -> None:
    """Correct a record's behaviour, date or amount (an appended event; nothing is overwritten)."""
    ctx = ctx_of(typer_ctx)
    day = day_option(occurred_on, "--occurred-on")
    event_id = ctx.service().records.correct(
        ctx.principal,
        record,
        reason=reason,
        behaviour=behaviour,
        occurred_on=day,
        amount=amount_option(amount),
    )
    _event_done(as_json, record, event_id, "corrected")


@records_app.command("revoke")
def records_revoke(
    typer_ctx: typer.Context,
    record: str,
    reason: Annotated[str, typer.Option("--reason")],
    as_json: JsonOpt = False,
) -> None:
    """Revoke a record: it never had any effect."""
    ctx = ctx_of(typer_ctx)
    event_id = ctx.service().records.revoke(ctx.principal, record, reason=reason)
    _event_done(as_json, record, event_id, "revoked")


@records_app.command("end")
def records_end(
    typer_ctx: typer.Context,
    record: str,
    on: Annotated[str, typer.Option("--on", help="The day the effect ends.")],
    reason: Annotated[str, typer.Option("--reason", help="fulfilled or repaired")],
    as_json: JsonOpt = False,
) -> None:
    """End a record's effect: the obligation was fulfilled or a repair approved."""
    ctx = ctx_of(typer_ctx)
    event_id = ctx.service().records.end(ctx.principal, record, on=values.day(on, where="--on"), reason=reason)
    _event_done(as_json, record, event_id, "ended")


@records_app.command("decline")
def records_decline(typer_ctx: typer.Context, record: str, as_json: JsonOpt = False) -> None:
    """The subject declines a positive record: it has no effect from now on."""
    ctx = ctx_of(typer_ctx)
    event_id = ctx.service().records.decline(ctx.principal, record)
    _event_done(as_json, record, event_id, "declined")
