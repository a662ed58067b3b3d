"""`subjects import|search`, `search rebuild` and `consent grant|withdraw`: who the platform knows,
finding them, and their consent to scoring."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from xinyong.errors import BadInput
from xinyong.interfaces.cli.context import JsonOpt, console, ctx_of, emit, yield_to_checks
from xinyong.security.access import PUBLIC

subjects_app = typer.Typer(help="Persons and organisations.", no_args_is_help=True)
consent_app = typer.Typer(help="Consent to scoring, per scheme.", no_args_is_help=True)
search_app = typer.Typer(help="The public look-up's index.", no_args_is_help=True)


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


@subjects_app.command("search")
def subjects_search(
    typer_ctx: typer.Context,
    query: str,
    limit: Annotated[int, typer.Option("--limit", min=1, max=200, help="At most this many subjects.")] = 50,
    as_office: Annotated[
        bool, typer.Option("--as-office", help="The office's full view (persons too), which is audited.")
    ] = False,
    as_json: JsonOpt = False,
) -> None:
    """Find subjects by name (characters, pinyin or initials), code or legal representative, as the public would."""
    ctx = ctx_of(typer_ctx)
    principal = ctx.principal if as_office else PUBLIC
    found = ctx.service().subjects.search(principal, query, limit=limit)

    def human() -> None:
        for f in found:
            console().print(f"{f['id']}  {f['name']}", markup=False)

    emit(as_json, {"query": query, "results": found}, human)


@search_app.command("rebuild")
def search_rebuild(typer_ctx: typer.Context, as_json: JsonOpt = False) -> None:
    """Derive the look-up's index again from the subjects table."""
    ctx = ctx_of(typer_ctx)
    subjects, seconds = ctx.service().subjects.rebuild_search(ctx.principal)
    emit(
        as_json,
        {"subjects": subjects, "seconds": round(seconds, 2)},
        lambda: console().print(f"{subjects} subjects indexed in {seconds:.1f} s"),
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
