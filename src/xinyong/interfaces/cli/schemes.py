"""`scheme load|list|show` and `sources add|list`: publishing schemes and authorising source agencies."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated, Any

import typer

from xinyong.interfaces.cli.context import JsonOpt, console, ctx_of, emit

scheme_app = typer.Typer(help="Publish and read schemes.", no_args_is_help=True)
sources_app = typer.Typer(help="Source agencies and what they may submit.", no_args_is_help=True)


@scheme_app.command("load")
def scheme_load(typer_ctx: typer.Context, file: Path, as_json: JsonOpt = False) -> None:
    """Validate and publish a scheme version; its effects are derived at once."""
    from xinyong.rules.schemes import load_scheme_file

    ctx = ctx_of(typer_ctx)
    # Parsed here, from the file, so that every mistake is named with the file's lines.
    scheme = load_scheme_file(file)
    version, added = ctx.service().schemes.load(ctx.principal, file.read_text(encoding="utf-8"), scheme=scheme)
    data = {
        "scheme": version.id,
        "version": version.version,
        "loaded": added,
        "digest": version.digest,
        "behaviours": len(scheme.behaviours),
        "lists": len(scheme.lists),
        "measures": len(scheme.measures),
    }
    emit(
        as_json,
        data,
        lambda: console().print(
            f"{'published' if added else 'already published'}: {version.id} {version.version} "
            f"({len(scheme.behaviours)} behaviours, {len(scheme.lists)} lists, {len(scheme.measures)} measures)"
        ),
    )


@scheme_app.command("list")
def scheme_list(typer_ctx: typer.Context, as_json: JsonOpt = False) -> None:
    """Every published scheme version."""
    ctx = ctx_of(typer_ctx)
    versions = ctx.service().schemes.versions(ctx.principal)
    rows: list[dict[str, Any]] = [
        {
            "scheme": v.id,
            "version": v.version,
            "title": v.scheme.title,
            "effective_from": v.scheme.effective_from,
            "loaded_at": v.loaded_at,
            "applies_to": v.scheme.applies_to,
            "digest": v.digest,
        }
        for v in versions
    ]

    def human() -> None:
        from rich.table import Table

        table = Table("scheme", "version", "effective from", "title", "applies to")
        for r in rows:
            table.add_row(
                r["scheme"],
                r["version"],
                str(r["effective_from"] or "always"),
                r["title"],
                ", ".join(r["applies_to"]),
            )
        console().print(table)

    emit(as_json, {"schemes": rows}, human)


@scheme_app.command("show")
def scheme_show(
    typer_ctx: typer.Context,
    scheme: str,
    version: Annotated[str | None, typer.Option(help="A version; default the newest.")] = None,
) -> None:
    """Print a scheme version exactly as published (YAML)."""
    ctx = ctx_of(typer_ctx)
    sys.stdout.write(ctx.service().schemes.source_text(ctx.principal, scheme, version))


@sources_app.command("add")
def sources_add(
    typer_ctx: typer.Context,
    agency: str,
    behaviours: Annotated[str, typer.Option("--behaviours", help="Comma-separated behaviour codes.")],
    title: Annotated[str | None, typer.Option(help="The agency's name.")] = None,
    as_json: JsonOpt = False,
) -> None:
    """Register a source agency and authorise it for behaviour codes."""
    ctx = ctx_of(typer_ctx)
    added, have = ctx.service().schemes.add_source(ctx.principal, agency, behaviours.split(","), title)
    emit(
        as_json,
        {"source": agency, "added": added, "behaviours": have},
        lambda: console().print(f"{agency} may submit: {', '.join(have)}"),
    )


@sources_app.command("list")
def sources_list(typer_ctx: typer.Context, as_json: JsonOpt = False) -> None:
    """Every source and the behaviours it may submit."""
    ctx = ctx_of(typer_ctx)
    found = ctx.service().schemes.sources(ctx.principal)
    data = {"sources": [{"source": k, "behaviours": sorted(v)} for k, v in sorted(found.items())]}

    def human() -> None:
        from rich.table import Table

        table = Table("source", "behaviours")
        for k, v in sorted(found.items()):
            table.add_row(k, ", ".join(sorted(v)))
        console().print(table)

    emit(as_json, data, human)
