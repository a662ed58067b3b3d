"""`simulate`, `compare` and `fairness`: the policy lab (docs/lab.md)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from xinyong.errors import BadInput
from xinyong.interfaces.cli.context import AsOfOpt, JsonOpt, KnownAtOpt, console, ctx_of, emit

EngineOpt = Annotated[str, typer.Option("--engine", help="duckdb (default) or spark.")]
SparkMasterOpt = Annotated[str | None, typer.Option("--spark-master", help="Spark master URL; default local[2].")]


def _read(file: Path) -> str:
    try:
        return file.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise BadInput(f"{file}: cannot be read as UTF-8 text ({exc.__class__.__name__})") from None


def _table(title: str, rows: list[tuple[Any, ...]], headers: tuple[str, ...]) -> None:
    from rich.table import Table

    table = Table(title=title)
    for header in headers:
        table.add_column(header)
    for row in rows:
        table.add_row(*("—" if v is None else str(v) for v in row))
    console().print(table)


def simulate(
    typer_ctx: typer.Context,
    draft: Annotated[Path, typer.Argument(help="The draft: a new version of a loaded scheme (YAML).")],
    as_of: AsOfOpt = None,
    known_at: KnownAtOpt = None,
    by: Annotated[
        list[str] | None, typer.Option("--by", help="Group by division, kind, sex or age_band; repeat to cross.")
    ] = None,
    engine: EngineOpt = "duckdb",
    spark_master: SparkMasterOpt = None,
    out: Annotated[
        Path | None, typer.Option("--out", help="A folder for per-subject before/after Parquet and an HTML report.")
    ] = None,
    as_json: JsonOpt = False,
) -> None:
    """What a draft scheme would change over the whole population, before it is loaded."""
    ctx = ctx_of(typer_ctx)
    report = ctx.service().lab.simulate(
        ctx.principal,
        _read(draft),
        where=str(draft),
        as_of=ctx.as_of(as_of),
        known_at=ctx.known_at(known_at),
        by=by or [],
        engine=engine,
        spark_master=spark_master,
        out=out,
    )

    def human() -> None:
        console().print(
            f"{report['scheme']} {report['baseline_version']} → {report['draft_version']} on {report['as_of']}: "
            f"{report['changed']} of {report['subjects']} subjects change; mean score "
            f"{report['score']['mean_before']} → {report['score']['mean_after']}",
            markup=False,
        )
        _table("grades", list(report["grades"].items()), ("before→after", "subjects"))
        moves = [(i, *c.values()) for kind in ("lists", "measures") for i, c in report[kind].items()]
        _table("lists and measures", moves, ("id", "before", "after", "enter", "leave"))
        if "out" in report:
            console().print(f"written: {report['out']['subjects']}, {report['out']['report']}", markup=False)

    emit(as_json, report, human)


def fairness(
    typer_ctx: typer.Context,
    scheme: Annotated[str, typer.Option("--scheme", help="The scheme to audit.")],
    by: Annotated[str, typer.Option("--by", help="division, kind, sex or age_band.")],
    as_of: AsOfOpt = None,
    engine: EngineOpt = "duckdb",
    spark_master: SparkMasterOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Rates of each list and measure per group, against the most favoured group (four-fifths rule)."""
    ctx = ctx_of(typer_ctx)
    report = ctx.service().lab.fairness(
        ctx.principal, scheme, by=by, as_of=ctx.as_of(as_of), engine=engine, spark_master=spark_master
    )

    def human() -> None:
        rows = [
            (group, g["n"], "too few" if g["too_few"] else "", kind, item, e["rate"], e["ratio"], e["ci"], e["flag"])
            for group, g in report["groups"].items()
            for kind in ("lists", "measures")
            for item, e in g[kind].items()
        ]
        _table(
            f"{report['scheme']} {report['version']} on {report['as_of']} by {report['by']}",
            rows,
            ("group", "n", "", "kind", "id", "rate", "ratio", "95% interval", "flag"),
        )

    emit(as_json, report, human)


def compare(
    typer_ctx: typer.Context,
    scheme_a: Annotated[str, typer.Argument(help="One scheme.")],
    scheme_b: Annotated[str, typer.Argument(help="The scheme to put beside it.")],
    as_of: AsOfOpt = None,
    engine: EngineOpt = "duckdb",
    spark_master: SparkMasterOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Two schemes side by side: conduct by conduct, and the same subjects under both."""
    ctx = ctx_of(typer_ctx)
    report = ctx.service().lab.compare(
        ctx.principal, scheme_a, scheme_b, as_of=ctx.as_of(as_of), engine=engine, spark_master=spark_master
    )

    def human() -> None:
        a, b = report["a"]["scheme"], report["b"]["scheme"]
        rows = [
            (
                code,
                *(r[side][k] if r[side] else "—" for side in ("a", "b") for k in ("points", "validity")),
                ", ".join(r["differs"]) or (f"only in {r['only_in']}" if r["only_in"] else ""),
            )
            for code, r in report["rules"].items()
        ]
        _table(
            f"{a} beside {b}",
            rows,
            ("behaviour", f"{a} points", f"{a} validity", f"{b} points", f"{b} validity", "differs"),
        )
        _table(
            f"{report['subjects']} subjects under both on {report['as_of']}",
            list(report["grades"].items()),
            (f"{a}→{b}", "subjects"),
        )

    emit(as_json, report, human)
