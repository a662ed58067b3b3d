"""`init`, `rebuild`, `state`, `synth`, `serve` and `demo`: operating the store as a whole."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from xinyong import settings
from xinyong.errors import BadInput
from xinyong.interfaces.cli.context import AsOfOpt, JsonOpt, KnownAtOpt, console, ctx_of, emit, note


def init(typer_ctx: typer.Context) -> None:
    """Create (or upgrade) the store's tables, the platform's signing key if there is none, and the
    public look-up's index where subjects are missing from it (after an upgrade)."""
    ctx = ctx_of(typer_ctx)
    ctx.store.migrate()
    key = ctx.service().keys.ensure()
    indexed = ctx.service().subjects.catch_up_search(ctx.principal)
    console().print(f"store ready: {ctx.store.url}; signing key {key} in {ctx.service().keys.folder}", markup=False)
    if indexed is not None:
        console().print(f"the public look-up was behind the subjects: {indexed} subjects indexed again", markup=False)


def rebuild(typer_ctx: typer.Context, as_json: JsonOpt = False) -> None:
    """Derive every effect again from the ledger alone."""
    ctx = ctx_of(typer_ctx)
    written = ctx.service().operations.rebuild(ctx.principal)
    emit(
        as_json,
        {"effects": written},
        lambda: console().print(f"rebuilt {written} effects rows from the ledger"),
    )


def state(
    typer_ctx: typer.Context,
    out: Annotated[Path, typer.Option("--out", help="The Parquet file (DuckDB) or folder (Spark) to write.")],
    as_of: AsOfOpt = None,
    known_at: KnownAtOpt = None,
    scheme: Annotated[
        list[str] | None, typer.Option("--scheme", help="A scheme; repeat for more; default all.")
    ] = None,
    engine: Annotated[str, typer.Option("--engine", help="duckdb (default) or spark.")] = "duckdb",
    spark_master: Annotated[
        str | None, typer.Option("--spark-master", help="Spark master URL; default local[2].")
    ] = None,
    serve: Annotated[
        bool, typer.Option("--serve/--no-serve", help="Refresh the serving state from the result (default on).")
    ] = True,
    as_json: JsonOpt = False,
) -> None:
    """Score, grade, lists and measures of every subject under every scheme, in one batch."""
    ctx = ctx_of(typer_ctx)
    if engine not in {"duckdb", "spark"}:
        raise BadInput(f"--engine: {engine!r} is not an engine; use duckdb or spark")
    result = ctx.service().operations.batch_state(
        ctx.principal,
        out=out,
        engine=engine,
        spark_master=spark_master,
        as_of=ctx.as_of(as_of),
        known_at=ctx.known_at(known_at),
        schemes=scheme or None,
        refresh_serving=serve,
    )
    data = {
        "out": str(result.out),
        "engine": result.engine,
        "as_of": result.as_of,
        "known_at": result.known_at,
        "versions": result.versions,
        "rows": result.rows,
        "served": result.served,
    }
    versions = ", ".join(f"{k} {v}" for k, v in result.versions.items()) or "no scheme in force"
    emit(
        as_json,
        data,
        lambda: console().print(
            f"{result.rows:,} states ({versions}) on {result.as_of} written to {result.out} by {result.engine}; "
            f"serving state: {result.served:,} rows"
        ),
    )


def synth(
    typer_ctx: typer.Context,
    out: Annotated[Path, typer.Option("--out", help="The folder to write the Parquet files to.")],
    persons: Annotated[int, typer.Option(help="Synthetic persons.")] = 1_000_000,
    organisations: Annotated[int, typer.Option(help="Synthetic organisations.")] = 100_000,
    records: Annotated[int, typer.Option(help="Synthetic records, spread over the sources.")] = 5_000_000,
    years: Annotated[int, typer.Option(help="Records occurred in this many years before today.")] = 3,
    seed: Annotated[int, typer.Option(help="Random seed; the same seed writes the same files.")] = 2014,
    as_json: JsonOpt = False,
) -> None:
    """Write a synthetic population as Parquet: subjects.parquet and records-SOURCE.parquet."""
    import time

    from xinyong.demo import synth as synth_module

    ctx = ctx_of(typer_ctx)
    if min(persons, organisations, records) < 0 or years < 1:
        raise BadInput("--persons, --organisations and --records must not be negative; --years at least 1")
    started = time.perf_counter()
    paths = synth_module.write_parquet(
        out,
        persons=persons,
        organisations=organisations,
        records=records,
        today=ctx.clock.today(),
        seed=seed,
        years=years,
    )
    data = {
        "out": str(out),
        "persons": persons,
        "organisations": organisations,
        "records": records,
        "files": sorted(paths),
        "seconds": round(time.perf_counter() - started, 1),
    }
    emit(
        as_json,
        data,
        lambda: console().print(
            f"{persons:,} persons, {organisations:,} organisations and {records:,} records "
            f"written to {out} in {data['seconds']} s"
        ),
    )


def serve(
    typer_ctx: typer.Context,
    host: Annotated[
        str | None, typer.Option("--host", help=f"Default $XINYONG_HOST or {settings.HOST.default}.")
    ] = None,
    port: Annotated[
        int | None, typer.Option("--port", help=f"Default $XINYONG_PORT or {settings.PORT.default}.")
    ] = None,
    workers: Annotated[
        int | None, typer.Option("--workers", help=f"Default $XINYONG_WORKERS or {settings.WORKERS.default}.")
    ] = None,
    server: Annotated[
        str | None,
        typer.Option("--server", help=f"granian or uvicorn; default $XINYONG_SERVER or {settings.SERVER.default}."),
    ] = None,
) -> None:
    """Serve the HTTP API (/v1, /openapi.json, /docs) for the store until interrupted."""
    from xinyong.interfaces import hosting

    ctx = ctx_of(typer_ctx)
    # hosting refuses an uninitialised store before any worker starts.
    hosting.serve(ctx.db_url, host=host, port=port, workers=workers, server=server)


def demo(
    typer_ctx: typer.Context,
    persons: Annotated[int, typer.Option(help="Synthetic persons.")] = 20_000,
    organisations: Annotated[int, typer.Option(help="Synthetic organisations.")] = 2_000,
    seed: Annotated[int, typer.Option(help="Random seed; the same seed builds the same city.")] = 2014,
    serve_site: Annotated[
        bool, typer.Option("--serve/--no-serve", help="End by serving the site and API on 127.0.0.1:8000.")
    ] = True,
    port: Annotated[int, typer.Option("--port", help="The port to serve on.")] = 8000,
    as_json: JsonOpt = False,
) -> None:
    """Build a synthetic city on the embedded store, explain it, then serve the web pages and the API."""
    from xinyong.demo import city as demo_city
    from xinyong.demo import logins as demo_logins
    from xinyong.storage.store import Store

    ctx = ctx_of(typer_ctx)
    # The demo has a store of its own unless one is named (never the default xinyong.db).
    chosen = settings.current()
    named = typer_ctx.find_root().params.get("db") or (chosen.db if chosen.is_given(settings.DB) else None)
    db = named or "sqlite:///xinyong-demo.db"
    summary = demo_city.run(
        db,
        ctx.clock,
        persons=persons,
        organisations=organisations,
        seed=seed,
        console=None if as_json else console(),
        say=note,
    )
    demo_store = Store(db)
    if serve_site:
        summary["url"] = f"http://127.0.0.1:{port}/"
    summary["logins"] = demo_logins.create(demo_store, ctx.clock)
    demo_store.dispose()
    emit(as_json, summary, lambda: print_summary(summary))
    if serve_site:
        from xinyong.interfaces import hosting

        if not as_json:
            console().print(f"[bold]Serving the site and the API on {summary['url']}[/] (Ctrl-C stops it)")
        hosting.serve(db, host="127.0.0.1", port=port, workers=1)


def print_summary(summary: dict[str, Any]) -> None:
    from rich.table import Table

    from xinyong.interfaces.cli.questions import print_state

    out = console()
    out.print(
        f"[bold]Synthetic city[/]: {summary['persons']:,} persons, {summary['organisations']:,} organisations, "
        f"{summary['records_in_ledger']:,} records; built in {summary['seconds']} s → {summary['db']}"
    )
    out.print("events replayed: " + ", ".join(f"{k} {v:,}" for k, v in summary["events"].items()))
    for scheme, counts in summary["grades"].items():
        table = Table(title=f"{scheme}: subjects per grade on {summary['as_of']}")
        for grade in counts:
            table.add_column(grade, justify="right")
        table.add_row(*(f"{n:,}" for n in counts.values()))
        out.print(table)
    table = Table("list", "subjects", title="List sizes")
    for name, n in summary["lists"].items():
        table.add_row(name, f"{n:,}")
    out.print(table)
    table = Table("measure", "subjects", title="Measures in force")
    for name, n in summary["measures"].items():
        table.add_row(name, f"{n:,}")
    out.print(table)
    for example in summary["examples"]:
        out.rule(f"{example['name']} ({example['kind']}) — why this grade?")
        print_state(example)
    logins = summary.get("logins") or {}
    if logins:
        out.rule("Demo log-ins (shown once)")
        # Plain lines, not a table: a token must be copied whole, never cut to fit the terminal.
        for who in ("subject", "officer", "enforcer"):
            if who in logins:
                found = logins[who]
                parts = [f"{who:9}"]
                if "login" in found:
                    parts.append(f"log-in {found['login']}  password {found['password']}")
                if "agency" in found:
                    parts.append(f"agency {found['agency']}")
                parts.append(f"token {found['token']}")
                out.print("  ".join(parts), markup=False, highlight=False, soft_wrap=True)
        if summary.get("url"):
            out.print(
                f"Site: {summary['url']} · subject portal /me · staff console /staff · API /v1 (docs /docs); "
                "the enforcer asks GET /v1/checks/… with its token."
            )
        else:
            out.print(f"Not served (--no-serve): `xinyong --db {summary['db']} serve` serves it for these log-ins.")
