"""`subjects import` and `consent grant|withdraw`: who the platform knows, and their consent to scoring."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from xinyong.errors import BadInput
from xinyong.interfaces.cli.context import JsonOpt, console, ctx_of, emit, yield_to_checks

subjects_app = typer.Typer(help="Persons and organisations.", no_args_is_help=True)
consent_app = typer.Typer(help="Consent to scoring, per scheme.", no_args_is_help=True)


def read_file(path: Path) -> bytes:
    try:
        return path.read_bytes()
    except OSError as exc:
        raise BadInput(f"cannot read {path}: {exc.strerror}") from None


@subjects_app.command("import")
def subjects_import(typer_ctx: typer.Context, file: Path, as_json: JsonOpt = False) -> None:
    """Import persons and organisations from CSV or JSON Lines: the whole file or nothing."""
    yield_to_checks()
    ctx = ctx_of(typer_ctx)
    data = read_file(file)
    result = ctx.service().subjects.import_file(ctx.principal, file.name, data)
    emit(
        as_json,
        {"imported": result.imported, "already_present": result.already_present},
        lambda: console().print(f"{result.imported} subjects imported, {result.already_present} already present"),
    )


def _consent(typer_ctx: typer.Context, subject: str, scheme: str, grant: bool, as_json: bool) -> None:
    ctx = ctx_of(typer_ctx)
    changed = ctx.service().subjects.change_consent(ctx.principal, subject, scheme, grant)
    state = "granted" if grant else "withdrawn"
    emit(
        as_json,
        {"subject": subject, "scheme": scheme, "consent": state, "changed": changed},
        lambda: console().print(f"consent {state} for {scheme}" + ("" if changed else " (no change)")),
    )


@consent_app.command("grant")
def consent_grant(
    typer_ctx: typer.Context,
    subject: str,
    scheme: Annotated[str, typer.Option("--scheme")],
    as_json: JsonOpt = False,
) -> None:
    """A person consents to being scored by a scheme."""
    _consent(typer_ctx, subject, scheme, True, as_json)


@consent_app.command("withdraw")
def consent_withdraw(
    typer_ctx: typer.Context,
    subject: str,
    scheme: Annotated[str, typer.Option("--scheme")],
    as_json: JsonOpt = False,
) -> None:
    """A person withdraws consent: the scheme stops scoring them."""
    _consent(typer_ctx, subject, scheme, False, as_json)
