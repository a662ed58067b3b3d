"""`tokens create|revoke|list`: the bearer tokens that let the API (and `--token`) act under a role."""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Any, Protocol

import typer

from xinyong.errors import BadInput
from xinyong.interfaces.cli.context import JsonOpt, console, ctx_of, emit
from xinyong.rules.clock import parse_instant
from xinyong.security.access import Role, parse_role

tokens_app = typer.Typer(help="Bearer tokens for the HTTP API.", no_args_is_help=True)


class Token(Protocol):
    """What the command line shows of a token (the service's `TokenInfo`), never its secret."""

    @property
    def id(self) -> str: ...
    @property
    def role(self) -> Role: ...
    @property
    def agency(self) -> str | None: ...
    @property
    def subject(self) -> str | None: ...
    @property
    def label(self) -> str | None: ...
    @property
    def created_at(self) -> dt.datetime: ...
    @property
    def created_by(self) -> str: ...
    @property
    def expires_at(self) -> dt.datetime | None: ...
    @property
    def revoked_at(self) -> dt.datetime | None: ...
    def status(self, now: dt.datetime) -> str: ...


def token_row(info: Token, now: dt.datetime) -> dict[str, Any]:
    return {
        "id": info.id,
        "role": info.role.value,
        "agency": info.agency,
        "subject": info.subject,
        "label": info.label,
        "created_at": info.created_at,
        "created_by": info.created_by,
        "expires_at": info.expires_at,
        "revoked_at": info.revoked_at,
        "status": info.status(now),
    }


@tokens_app.command("create")
def tokens_create(
    typer_ctx: typer.Context,
    role: Annotated[str, typer.Option("--role", help="admin, officer, source, enforcer, subject or analyst.")],
    agency: Annotated[str | None, typer.Option("--agency", help="The agency of a source or enforcer.")] = None,
    subject: Annotated[str | None, typer.Option("--subject", help="The subject of a subject token.")] = None,
    label: Annotated[str | None, typer.Option("--label", help="Who holds it, for lists and logs.")] = None,
    expires: Annotated[str | None, typer.Option("--expires", help="An ISO date or timestamp.")] = None,
    as_json: JsonOpt = False,
) -> None:
    """Create a token and print it once (only its hash is stored). ROLE may be `source:AGENCY`."""
    ctx = ctx_of(typer_ctx)
    try:
        parsed, bound = parse_role(role)
    except ValueError as exc:
        raise BadInput(f"--role: {exc}") from None
    if bound is not None:
        if agency is not None and agency != bound:
            raise BadInput(f"--agency: {agency} contradicts --role {role}")
        agency = bound
    expires_at = parse_instant(expires, where="--expires") if expires else None
    bearer, info = ctx.service().credentials.create_token(
        ctx.principal, parsed, agency=agency, subject=subject, label=label, expires_at=expires_at
    )
    data = {**token_row(info, ctx.now()), "token": bearer}
    emit(
        as_json,
        data,
        lambda: console().print(
            f"token {info.id} ({info.role.value}{':' + (agency or subject or '') if agency or subject else ''}); "
            f"shown once, keep it safe:\n{bearer}",
            markup=False,
        ),
    )


@tokens_app.command("revoke")
def tokens_revoke(typer_ctx: typer.Context, token_id: str, as_json: JsonOpt = False) -> None:
    """Revoke a token by its id (server workers stop accepting it within XINYONG_TOKEN_CACHE_SECONDS)."""
    ctx = ctx_of(typer_ctx)
    info = ctx.service().credentials.revoke_token(ctx.principal, token_id)
    emit(as_json, token_row(info, ctx.now()), lambda: console().print(f"token {info.id} revoked"))


@tokens_app.command("list")
def tokens_list(typer_ctx: typer.Context, as_json: JsonOpt = False) -> None:
    """Every token with its role, binding and status (never the secret)."""
    ctx = ctx_of(typer_ctx)
    now = ctx.now()
    rows = [token_row(info, now) for info in ctx.service().credentials.tokens(ctx.principal)]

    def human() -> None:
        from rich.table import Table

        table = Table("id", "role", "bound to", "label", "created", "expires", "status")
        for r in rows:
            table.add_row(
                r["id"],
                r["role"],
                r["agency"] or r["subject"] or "",
                r["label"] or "",
                r["created_at"].isoformat()[:16],
                r["expires_at"].isoformat()[:16] if r["expires_at"] else "never",
                r["status"],
            )
        console().print(table)

    emit(as_json, {"tokens": rows}, human)
