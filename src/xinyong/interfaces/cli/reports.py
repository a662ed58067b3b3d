"""`report` (issue a sealed credit report; `report verify FILE`) and `keys` (the signing keys)."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated, Any

import typer
from typer.core import TyperGroup

from xinyong.errors import BadInput, XinyongError
from xinyong.interfaces.cli.context import AsOfOpt, JsonOpt, KnownAtOpt, console, ctx_of, emit, note

FORMATS = ("json", "html", "pdf")


class _IssueUnlessNamed(TyperGroup):
    """`xinyong report SUBJECT …` is `xinyong report issue SUBJECT …`: the command DESIGN.md names
    keeps working beside `report verify`. A subject's id is never a command's name."""

    def parse_args(self, ctx: Any, args: list[str]) -> list[str]:
        if args and args[0] not in self.commands and args[0] not in ("--help", "-h"):
            args = ["issue", *args]
        return super().parse_args(ctx, args)


report_app = typer.Typer(
    cls=_IssueUnlessNamed,
    help="A subject's credit report, sealed (`report SUBJECT`), and checking one (`report verify FILE`).",
    no_args_is_help=True,
)
keys_app = typer.Typer(help="The platform's signing keys: reports, feeds and audit checkpoints.", no_args_is_help=True)


@report_app.command("issue")
def issue(
    typer_ctx: typer.Context,
    subject: str,
    format: Annotated[str, typer.Option("--format", help="json, html or pdf.")] = "json",
    out: Annotated[Path | None, typer.Option("--out", help="Write to a file instead of standard output.")] = None,
    public: Annotated[bool, typer.Option("--public", help="The public report of an organisation.")] = False,
    lang: Annotated[
        str | None, typer.Option("--language", help="zh_Hans or en (html and pdf); default $XINYONG_LANGUAGE.")
    ] = None,
    as_of: AsOfOpt = None,
    known_at: KnownAtOpt = None,
) -> None:
    """A subject's full credit report, as JSON, HTML or PDF, with its number, digest and signature."""
    from xinyong import i18n

    ctx = ctx_of(typer_ctx)
    if format not in FORMATS:
        raise BadInput(f"--format: {format!r} is not one of json, html, pdf")
    if format == "pdf" and out is None:
        raise BadInput("--format pdf: give --out FILE (a PDF is not for the terminal)")
    chosen = i18n.language(lang)
    # --public asks as the public does: organisations only, public records only.
    svc = ctx.service()
    sealed = svc.reports.issue(
        ctx.public if public else ctx.principal,
        subject,
        as_of=ctx.as_of(as_of),
        known_at=ctx.known_at(known_at),
    )
    data = svc.reports.document(sealed, format, chosen)  # type: ignore[arg-type]
    if out is None:
        sys.stdout.write(data.decode())  # JSON or HTML: text
        return
    out.write_bytes(data)
    note(f"report {sealed['report_id']} written to {out}")


@report_app.command("verify")
def verify(
    typer_ctx: typer.Context,
    file: Annotated[Path, typer.Argument(help="A report as JSON, HTML or PDF.")],
    offline: Annotated[
        bool, typer.Option("--offline", help="Check only the signature and the digest, not today's knowledge.")
    ] = False,
    as_json: JsonOpt = False,
) -> None:
    """Check a credit report file: its signature, its digest and (unless --offline) whether it still holds."""
    ctx = ctx_of(typer_ctx)
    try:
        data = file.read_bytes()
    except OSError as exc:
        raise BadInput(f"{file}: cannot be read: {exc.strerror}") from None
    found = ctx.service().reports.verify_file(ctx.principal, data, offline=offline)
    shown = {k: found[k] for k in ("report_id", "signature_valid", "status", "changes", "problems")}
    shown.update({k: found[k] for k in ("format", "as_of", "known_at", "digest", "offline")})

    def human() -> None:
        out = console()
        out.print(f"report {found['report_id'] or '—'} ({found['format'] or 'unknown format'}): {found['status']}")
        for change in found["changes"]:
            out.print(f"  record {change['record']}: {change['kind']} since the report", markup=False)
        for problem in found["problems"]:
            out.print(f"  {problem}", markup=False)

    emit(as_json, shown, human)
    if found["status"] == "invalid":
        # Exit status 1: the file is not what was issued (not bad input). Under --json the answer
        # above already says what failed, and stays the one object printed; a person reads it on
        # stderr too.
        if as_json:
            raise typer.Exit(1)
        raise XinyongError(f"{file}: not a valid report: {'; '.join(found['problems'])}")


@keys_app.command("rotate")
def rotate(typer_ctx: typer.Context, as_json: JsonOpt = False) -> None:
    """Make a new signing key, current from now on; what the old ones signed still verifies."""
    ctx = ctx_of(typer_ctx)
    made = ctx.service().reports.rotate_key(ctx.principal)
    emit(as_json, {"key": made}, lambda: console().print(f"signing key {made} is current"))


@keys_app.command("show")
def show(typer_ctx: typer.Context, as_json: JsonOpt = False) -> None:
    """The published public keys (id → Ed25519 public key, base64) and which one signs now."""
    ctx = ctx_of(typer_ctx)
    published = ctx.service().reports.published()

    def human() -> None:
        for key, public in published["keys"].items():
            mark = " (current)" if key == published["current"] else ""
            console().print(f"{key}  {public}{mark}", markup=False)

    emit(as_json, published, human)
