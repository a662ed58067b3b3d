"""`audit verify|checkpoint|checkpoints|compact|export|who-looked`: the hash-chained audit log."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from xinyong.errors import BadInput, XinyongError
from xinyong.interfaces.cli.context import JsonOpt, console, ctx_of, day_option, emit

audit_app = typer.Typer(help="The hash-chained audit log.", no_args_is_help=True)


@audit_app.command("verify")
def audit_verify(
    typer_ctx: typer.Context,
    given: Annotated[
        list[Path] | None,
        typer.Option(
            "--checkpoints",
            help="A file of checkpoints kept elsewhere (a saved `audit checkpoints --json`); repeat for more.",
        ),
    ] = None,
    as_json: JsonOpt = False,
) -> None:
    """Recompute the audit log's hash chain and check it against every checkpoint; exit 1 naming
    the first broken entry or checkpoint, 0 when intact."""
    from xinyong.presentation import outputs

    ctx = ctx_of(typer_ctx)
    result = ctx.service().audit.verify(ctx.principal, given or [])
    where = f"entry {result.broken_at}" if result.broken_at is not None else f"checkpoint {result.checkpoint}"
    emit(
        as_json,
        outputs.plain(result),
        lambda: console().print(
            f"audit log intact: {result.entries} entries, head {result.head_hash}; "
            f"{result.checkpoints} signed checkpoints match"
            if result.ok
            else f"audit log BROKEN at {where}: {result.reason}",
            markup=False,
        ),
    )
    if not result.ok:
        # Exit status 1 (not bad input: the log itself is damaged), what broke named on stderr too.
        raise XinyongError(f"audit log broken at {where}: {result.reason}")


@audit_app.command("checkpoint")
def audit_checkpoint(typer_ctx: typer.Context, as_json: JsonOpt = False) -> None:
    """Sign the audit log's head with the platform's key and publish it (a server does it hourly)."""
    ctx = ctx_of(typer_ctx)
    made = ctx.service().audit.checkpoint(ctx.principal)
    assert made is not None  # only a server's hourly checkpoint may be skipped
    emit(
        as_json,
        made.as_dict(),
        lambda: console().print(
            f"checkpoint {made.n}: entry {made.seq}, hash {made.hash}, signed by key {made.key}", markup=False
        ),
    )


@audit_app.command("checkpoints")
def audit_checkpoints(typer_ctx: typer.Context, as_json: JsonOpt = False) -> None:
    """Every checkpoint and the public keys that verify them (public: keep a copy to check against)."""
    ctx = ctx_of(typer_ctx)
    published = ctx.service().audit.checkpoints(ctx.public)

    def human() -> None:
        from rich.table import Table

        table = Table("n", "when", "entry", "hash", "key")
        for c in published["checkpoints"]:
            table.add_row(str(c["n"]), c["at"][:19], str(c["seq"]), c["hash"], c["key"])
        console().print(table)

    emit(as_json, published, human)


@audit_app.command("compact")
def audit_compact(typer_ctx: typer.Context, as_json: JsonOpt = False) -> None:
    """Merge the who-looked index's newest runs so lookups stay fast (a server does it every night)."""
    from xinyong.presentation import outputs

    ctx = ctx_of(typer_ctx)
    result = ctx.service().audit.compact(ctx.principal)
    emit(
        as_json,
        outputs.plain(result),
        lambda: console().print(
            f"who-looked index: {result.merged} runs merged ({result.moved} rows moved); "
            f"{result.runs_before} runs before, {result.runs_after} now"
            if result.merged
            else f"who-looked index: nothing to merge ({result.runs_after} runs)"
        ),
    )


@audit_app.command("export")
def audit_export(
    typer_ctx: typer.Context,
    out: Annotated[Path, typer.Option("--out", help="The CSV file to write.")],
    first: Annotated[str | None, typer.Option("--from", help="First day (inclusive), YYYY-MM-DD.")] = None,
    last: Annotated[str | None, typer.Option("--to", help="Last day (inclusive), YYYY-MM-DD.")] = None,
    as_json: JsonOpt = False,
) -> None:
    """Write the audit entries of a period (local days, inclusive) to CSV, with their hashes."""
    ctx = ctx_of(typer_ctx)
    first_day = day_option(first, "--from")
    last_day = day_option(last, "--to")
    if first_day and last_day and last_day < first_day:
        raise BadInput("--to: the last day is before the first")
    service = ctx.service()
    try:
        with out.open("w", encoding="utf-8", newline="") as handle:
            count = service.audit.export(ctx.principal, handle, first=first_day, last=last_day)
    except OSError as exc:
        raise BadInput(f"--out: cannot write {out}: {exc.strerror}") from None
    emit(
        as_json,
        {"entries": count, "out": str(out), "from": first_day, "to": last_day},
        lambda: console().print(f"{count} audit entries written to {out}"),
    )


@audit_app.command("who-looked")
def audit_who_looked(typer_ctx: typer.Context, subject: str, as_json: JsonOpt = False) -> None:
    """Who looked at a subject's data, every other logged act about it, and the feed versions that carried it."""
    ctx = ctx_of(typer_ctx)
    looked = ctx.service().audit.looked(ctx.principal, subject)
    entries, carried = looked["entries"], looked["feeds"]

    def human() -> None:
        from rich.table import Table

        table = Table("when", "who", "role", "what", "purpose", "outcome")
        for e in entries:
            table.add_row(e["at"][:19], e["actor"], e["role"], e["action"], e["purpose"] or "", e["outcome"])
        console().print(table)
        if carried:
            versions = Table("feed of", "version", "day", "change")
            for f in carried:
                versions.add_row(f["agency"], str(f["version"]), f["day"], f["change"])
            console().print(versions)

    emit(as_json, {"subject": subject, "entries": entries, "feeds": carried}, human)
