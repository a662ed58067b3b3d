"""`notices list|show|read|contact|deliver|outbox`: the subject's inbox, how to reach it, and delivery."""

from __future__ import annotations

from typing import Annotated

import typer

from xinyong.interfaces.cli.context import JsonOpt, LanguageOpt, console, ctx_of, emit

notices_app = typer.Typer(help="Notices: the subject's inbox and their delivery.", no_args_is_help=True)


@notices_app.command("list")
def notices_list(
    typer_ctx: typer.Context,
    subject: str,
    unread: Annotated[bool, typer.Option("--unread", help="Only notices not yet read.")] = False,
    lang: LanguageOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """A subject's inbox, newest first."""
    ctx = ctx_of(typer_ctx)
    data = ctx.service().notices.inbox(ctx.principal, subject, lang=lang, unread_only=unread)

    def human() -> None:
        from rich.table import Table

        table = Table("notice", "created", "kind", "record", "takes effect", "object by", "title")
        for n in data["notices"]:
            table.add_row(
                str(n["id"]),
                n["created_at"][:10],
                n["kind"],
                str(n["record"]),
                n["takes_effect_on"] or "",
                n["object_by"] or "",
                n["title"],
            )
        console().print(table)

    emit(as_json, data, human)


@notices_app.command("show")
def notices_show(
    typer_ctx: typer.Context,
    notice: int,
    lang: LanguageOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """One notice in full, with its deliveries."""
    ctx = ctx_of(typer_ctx)
    data = ctx.service().notices.show(ctx.principal, notice, lang=lang)
    emit(as_json, data, lambda: console().print(data["text"], markup=False, highlight=False))


@notices_app.command("read")
def notices_read(typer_ctx: typer.Context, notice: int, as_json: JsonOpt = False) -> None:
    """Mark a notice as read (as the portal does when the subject opens it)."""
    ctx = ctx_of(typer_ctx)
    found = ctx.service().notices.mark_read(ctx.principal, notice)
    data = {"id": found.id, "read_at": found.read_at}
    emit(as_json, data, lambda: console().print(f"notice {found.id} read at {found.read_at}"))


@notices_app.command("contact")
def notices_contact(
    typer_ctx: typer.Context,
    subject: str,
    email: Annotated[str | None, typer.Option("--email", help="The address notices are e-mailed to.")] = None,
    lang: Annotated[str | None, typer.Option("--language", help="zh_Hans or en.")] = None,
    as_json: JsonOpt = False,
) -> None:
    """How to reach a subject: e-mail address and language of its notices."""
    ctx = ctx_of(typer_ctx)
    found = ctx.service().notices.set_contact(ctx.principal, subject, email=email, lang=lang)
    data = {"subject": found.subject_id, "email": found.email, "language": found.language}
    emit(
        as_json,
        data,
        lambda: console().print(f"{found.subject_id}: {found.email or 'portal only'}, {found.language}"),
    )


@notices_app.command("deliver")
def notices_deliver(
    typer_ctx: typer.Context,
    limit: Annotated[int, typer.Option("--limit", help="At most this many deliveries in this run.")] = 500,
    as_json: JsonOpt = False,
) -> None:
    """Deliver what is due in the outbox: notice e-mails (through XINYONG_SMTP_HOST) and feed webhooks."""
    ctx = ctx_of(typer_ctx)
    run = ctx.service().notices.deliver(ctx.principal, limit=limit)

    def human() -> None:
        out = console()
        waiting = ", ".join(f"{k} {v}" for k, v in run.waiting.items())
        out.print(
            f"delivered {run.delivered}, failed {run.failed} (retried later)"
            + (f"; waiting for an adapter: {waiting}" if waiting else "")
        )
        for error in run.errors:
            out.print(
                f"  {_named(error)} {error['channel']}: {error['error']} (next {error['next_attempt_at']})",
                markup=False,
            )

    emit(as_json, run.as_dict(), human)


@notices_app.command("outbox")
def notices_outbox(typer_ctx: typer.Context, as_json: JsonOpt = False) -> None:
    """Deliveries not yet made, with their attempts and last error."""
    ctx = ctx_of(typer_ctx)
    data = ctx.service().notices.pending(ctx.principal)

    def human() -> None:
        from rich.table import Table

        table = Table("delivery", "channel", "address", "attempts", "next attempt", "last error")
        for d in data:
            table.add_row(
                _named(d),
                d["channel"],
                d["address"] or "",
                str(d["attempts"]),
                d["next_attempt_at"][:19],
                d["last_error"] or "",
            )
        console().print(table)

    emit(as_json, {"pending": data}, human)


def _named(delivery: dict[str, object]) -> str:
    """A delivery as people name it: its notice, or (a webhook call) its own id."""
    return f"notice {delivery['notice']}" if delivery.get("notice") is not None else str(delivery.get("delivery"))
