"""`objections file|decide|list|overdue` and `repairs apply|decide|list|overdue`: contesting a
record, and ending its effect early."""

from __future__ import annotations

from typing import Annotated, Any

import typer

from xinyong.interfaces.cli.context import JsonOpt, amount_option, console, ctx_of, day_option, emit
from xinyong.rules.clock import local_day

objections_app = typer.Typer(help="Objections: contest a record.", no_args_is_help=True)
repairs_app = typer.Typer(help="Repair: end a record's effect early, with evidence.", no_args_is_help=True)

ON_BEHALF_HELP = "An officer {} for the subject (XINYONG_ACTOR names the officer)."


# --- objections -----------------------------------------------------------------------------------


@objections_app.command("file")
def objections_file(
    typer_ctx: typer.Context,
    record: str,
    reason: Annotated[str, typer.Option("--reason")],
    on_behalf: Annotated[bool, typer.Option("--on-behalf", help=ON_BEHALF_HELP.format("files"))] = False,
    as_json: JsonOpt = False,
) -> None:
    """Object to a record: it shows as disputed at once; the decision is due in working days."""
    from xinyong.presentation import outputs

    ctx = ctx_of(typer_ctx)
    status = ctx.service().objections.file(
        ctx.principal, record, reason=reason, filed_as="officer" if on_behalf else "subject"
    )
    data = outputs.objection(status, local_day(ctx.now()))
    emit(as_json, data, lambda: console().print(f"objection {status.id} filed; decision due by {status.due_on}"))


@objections_app.command("decide")
def objections_decide(
    typer_ctx: typer.Context,
    objection: int,
    outcome: Annotated[str, typer.Option("--outcome", help="upheld, corrected or revoked")],
    reason: Annotated[str, typer.Option("--reason")],
    behaviour: Annotated[str | None, typer.Option("--behaviour")] = None,
    occurred_on: Annotated[str | None, typer.Option("--occurred-on")] = None,
    amount: Annotated[str | None, typer.Option("--amount")] = None,
    as_json: JsonOpt = False,
) -> None:
    """Decide an objection with written reasons."""
    from xinyong.presentation import outputs

    ctx = ctx_of(typer_ctx)
    day = day_option(occurred_on, "--occurred-on")
    status = ctx.service().objections.decide(
        ctx.principal,
        objection,
        outcome=outcome,
        reason=reason,
        behaviour=behaviour,
        occurred_on=day,
        amount=amount_option(amount),
    )
    data = outputs.objection(status, local_day(ctx.now()))
    emit(as_json, data, lambda: console().print(f"objection {status.id}: {status.outcome}"))


def _objection_table(data: list[dict[str, Any]]) -> None:
    from rich.table import Table

    table = Table("objection", "record", "subject", "filed", "deadline", "outcome", "overdue")
    for o in data:
        table.add_row(
            str(o["id"]),
            str(o["record"]),
            o["subject"],
            o["filed_at"][:10],
            o["deadline"],
            o["outcome"] or "undecided",
            "OVERDUE" if o["overdue"] else "",
        )
    console().print(table)


@objections_app.command("overdue")
def objections_overdue(typer_ctx: typer.Context, as_json: JsonOpt = False) -> None:
    """Undecided objections past their deadline (escalated)."""
    from xinyong.presentation import outputs

    ctx = ctx_of(typer_ctx)
    today = ctx.today()
    data = [outputs.objection(o, today) for o in ctx.service().objections.overdue(ctx.principal)]
    emit(as_json, {"as_of": today, "overdue": data}, lambda: _objection_table(data))


@objections_app.command("list")
def objections_list(
    typer_ctx: typer.Context,
    subject: Annotated[str | None, typer.Option("--subject")] = None,
    undecided: Annotated[bool, typer.Option("--undecided", help="Only undecided objections.")] = False,
    as_json: JsonOpt = False,
) -> None:
    """Objections, newest first."""
    from xinyong.presentation import outputs

    ctx = ctx_of(typer_ctx)
    today = ctx.today()
    found = ctx.service().objections.listing(ctx.principal, subject_id=subject, undecided=undecided)
    data = [outputs.objection(o, today) for o in found]
    emit(as_json, {"objections": data}, lambda: _objection_table(data))


# --- repairs --------------------------------------------------------------------------------------


def _repair_table(data: list[dict[str, Any]]) -> None:
    from rich.table import Table

    table = Table("repair", "record", "subject", "applied", "deadline", "outcome", "ended on", "overdue")
    for r in data:
        table.add_row(
            str(r["id"]),
            str(r["record"]),
            r["subject"],
            r["applied_at"][:10],
            r["deadline"] or "",
            r["outcome"] or "undecided",
            r["ended_on"] or "",
            "OVERDUE" if r["overdue"] else "",
        )
    console().print(table)


@repairs_app.command("apply")
def repairs_apply(
    typer_ctx: typer.Context,
    record: str,
    evidence: Annotated[str, typer.Option("--evidence", help="What was done: obligation performed, a commitment.")],
    on_behalf: Annotated[bool, typer.Option("--on-behalf", help=ON_BEHALF_HELP.format("applies"))] = False,
    as_json: JsonOpt = False,
) -> None:
    """Apply to end a record's effect early; refused before its repair_after, with the day it is possible."""
    ctx = ctx_of(typer_ctx)
    status = ctx.service().repairs.apply(
        ctx.principal, record, evidence=evidence, filed_as="officer" if on_behalf else "subject"
    )
    data = status.as_dict(local_day(ctx.now()))
    emit(
        as_json,
        data,
        lambda: console().print(f"repair application {status.id} filed; decision due by {status.due_on}"),
    )


@repairs_app.command("decide")
def repairs_decide(
    typer_ctx: typer.Context,
    repair: int,
    outcome: Annotated[str, typer.Option("--outcome", help="approved or refused")],
    reason: Annotated[str, typer.Option("--reason")],
    as_json: JsonOpt = False,
) -> None:
    """Approve (the record's effect ends today) or refuse a repair, with written reasons."""
    ctx = ctx_of(typer_ctx)
    status = ctx.service().repairs.decide(ctx.principal, repair, outcome=outcome, reason=reason)
    data = status.as_dict(local_day(ctx.now()))
    ended = f"; the record's effect ends on {status.ended_on}" if status.ended_on else ""
    emit(as_json, data, lambda: console().print(f"repair {status.id}: {status.outcome}{ended}"))


@repairs_app.command("list")
def repairs_list(
    typer_ctx: typer.Context,
    subject: Annotated[str | None, typer.Option("--subject")] = None,
    undecided: Annotated[bool, typer.Option("--undecided", help="Only undecided applications.")] = False,
    as_json: JsonOpt = False,
) -> None:
    """Repair applications, newest first."""
    ctx = ctx_of(typer_ctx)
    today = ctx.today()
    found = ctx.service().repairs.listing(ctx.principal, subject_id=subject, undecided=undecided)
    data = [r.as_dict(today) for r in found]
    emit(as_json, {"repairs": data}, lambda: _repair_table(data))


@repairs_app.command("overdue")
def repairs_overdue(typer_ctx: typer.Context, as_json: JsonOpt = False) -> None:
    """Undecided repair applications past their deadline."""
    ctx = ctx_of(typer_ctx)
    today = ctx.today()
    data = [r.as_dict(today) for r in ctx.service().repairs.overdue(ctx.principal)]
    emit(as_json, {"as_of": today, "overdue": data}, lambda: _repair_table(data))
