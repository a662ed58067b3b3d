"""The `xinyong` command line: parse options, call the library, print a table or one JSON object.

Nothing here decides anything; every rule lives in the library so the API and the web pages obey
the same ones. Exit status: 0 done, 2 bad input (the message says what and where), 1 anything else.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.table import Table

from xinyong import i18n, settings
from xinyong.derived import derivation
from xinyong.derived.state import StateReader
from xinyong.due_process import notices, objections, outbox, repairs
from xinyong.errors import BadInput, XinyongError
from xinyong.ledger import records as ledger
from xinyong.ledger import registry
from xinyong.presentation import outputs, reports
from xinyong.rules.clock import Clock, FixedClock, local_day, parse_day, parse_instant
from xinyong.rules.schemes import load_scheme_file
from xinyong.security import tokens as tokens_module
from xinyong.security.access import Principal, Role, parse_role
from xinyong.service.core import Service
from xinyong.storage.store import Store

app = typer.Typer(
    help="xinyong: an accountable credit-information platform.",
    no_args_is_help=True,
    add_completion=False,
)
scheme_app = typer.Typer(help="Publish and read schemes.", no_args_is_help=True)
sources_app = typer.Typer(help="Source agencies and what they may submit.", no_args_is_help=True)
subjects_app = typer.Typer(help="Persons and organisations.", no_args_is_help=True)
records_app = typer.Typer(help="Records and their events.", no_args_is_help=True)
objections_app = typer.Typer(help="Objections: contest a record.", no_args_is_help=True)
consent_app = typer.Typer(help="Consent to scoring, per scheme.", no_args_is_help=True)
repairs_app = typer.Typer(help="Repair: end a record's effect early, with evidence.", no_args_is_help=True)
notices_app = typer.Typer(help="Notices: the subject's inbox and their delivery.", no_args_is_help=True)
for sub, name in (
    (scheme_app, "scheme"),
    (sources_app, "sources"),
    (subjects_app, "subjects"),
    (records_app, "records"),
    (objections_app, "objections"),
    (consent_app, "consent"),
    (repairs_app, "repairs"),
    (notices_app, "notices"),
):
    app.add_typer(sub, name=name)

console = Console()
errors = Console(stderr=True, soft_wrap=True)

JsonOpt = Annotated[bool, typer.Option("--json", help="Print one JSON object instead of a table.")]
AsOfOpt = Annotated[str | None, typer.Option("--as-of", help="The day asked about (YYYY-MM-DD); default today.")]
KnownAtOpt = Annotated[
    str | None,
    typer.Option("--known-at", help="Knowledge time: ignore every event recorded after it; default now."),
]


class Context:
    """What every command needs: the store, the clock and who is acting."""

    def __init__(self, db: str | None) -> None:
        self.db_url = db or settings.DB.value() or "sqlite:///xinyong.db"
        now = settings.NOW.value()
        self.clock: Clock = FixedClock(parse_instant(now, where="XINYONG_NOW")) if now else Clock()
        self.actor = settings.ACTOR.value() or "cli"
        self._store: Store | None = None

    @property
    def store(self) -> Store:
        if self._store is None:
            self._store = Store(self.db_url)
        return self._store

    def ready_store(self) -> Store:
        self.store.require_initialised()
        return self.store

    def now(self) -> dt.datetime:
        return self.clock.now()

    def as_of(self, text: str | None) -> dt.date:
        return parse_day(text, where="--as-of") if text else self.clock.today()

    def known_at(self, text: str | None) -> dt.datetime:
        return parse_instant(text, where="--known-at") if text else self.clock.now()

    @property
    def principal(self) -> Principal:
        """The command line acts as the credit office's administrator: whoever can run it can
        open the store anyway. Its acts are audited as "cli:<XINYONG_ACTOR>"."""
        return Principal(Role.ADMIN, self.actor, channel="cli")

    def service(self) -> Service:
        """The same door the API uses: authorise, act, audit — with the command line's clock."""
        return Service(self.ready_store(), self.clock)


def ctx_of(typer_ctx: typer.Context) -> Context:
    obj = typer_ctx.find_root().obj
    assert isinstance(obj, Context)
    return obj


@app.callback()
def _root(
    typer_ctx: typer.Context,
    db: Annotated[
        str | None,
        typer.Option("--db", help="Store URL; default $XINYONG_DB or sqlite:///xinyong.db."),
    ] = None,
) -> None:
    typer_ctx.obj = Context(db)


def emit(as_json: bool, data: dict[str, Any], human: Callable[[], None]) -> None:
    if as_json:
        sys.stdout.write(json.dumps(outputs.plain(data), ensure_ascii=False, indent=2) + "\n")
    else:
        human()


def read_file(path: Path) -> bytes:
    try:
        return path.read_bytes()
    except OSError as exc:
        raise BadInput(f"cannot read {path}: {exc.strerror}") from None


@contextmanager
def progress_bar(label: str, enabled: bool) -> Iterator[Callable[[int, int], None] | None]:
    """A Rich progress bar on the terminal; nothing when printing JSON or when output is piped."""
    if not enabled or not console.is_terminal:
        yield None
        return
    from rich.progress import Progress

    with Progress(console=console, transient=True) as bar:
        task = bar.add_task(label, total=None)

        def update(done: int, total: int) -> None:
            bar.update(task, completed=done, total=total)

        yield update


# --- set-up -------------------------------------------------------------------------------------


@app.command()
def init(typer_ctx: typer.Context) -> None:
    """Create (or upgrade) the store's tables."""
    ctx = ctx_of(typer_ctx)
    ctx.store.migrate()
    console.print(f"store ready: {ctx.store.url}")


@app.command()
def rebuild(typer_ctx: typer.Context, as_json: JsonOpt = False) -> None:
    """Derive every effect again from the ledger alone."""
    ctx = ctx_of(typer_ctx)
    with ctx.ready_store().write() as conn:
        written = derivation.rebuild(conn)
    emit(
        as_json,
        {"effects": written},
        lambda: console.print(f"rebuilt {written} effects rows from the ledger"),
    )


@scheme_app.command("load")
def scheme_load(typer_ctx: typer.Context, file: Path, as_json: JsonOpt = False) -> None:
    """Validate and publish a scheme version; its effects are derived at once."""
    ctx = ctx_of(typer_ctx)
    scheme = load_scheme_file(file)
    version, added = ctx.service().load_scheme(ctx.principal, file.read_text(encoding="utf-8"), scheme=scheme)
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
        lambda: console.print(
            f"{'published' if added else 'already published'}: {version.id} {version.version} "
            f"({len(scheme.behaviours)} behaviours, {len(scheme.lists)} lists, {len(scheme.measures)} measures)"
        ),
    )


@scheme_app.command("list")
def scheme_list(typer_ctx: typer.Context, as_json: JsonOpt = False) -> None:
    """Every published scheme version."""
    ctx = ctx_of(typer_ctx)
    with ctx.ready_store().read() as conn:
        versions = registry.scheme_versions(conn)
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
        table = Table("scheme", "version", "effective from", "title", "applies to")
        for r in rows:
            table.add_row(
                r["scheme"],
                r["version"],
                str(r["effective_from"] or "always"),
                r["title"],
                ", ".join(r["applies_to"]),
            )
        console.print(table)

    emit(as_json, {"schemes": rows}, human)


@scheme_app.command("show")
def scheme_show(
    typer_ctx: typer.Context,
    scheme: str,
    version: Annotated[str | None, typer.Option(help="A version; default the newest.")] = None,
) -> None:
    """Print a scheme version exactly as published (YAML)."""
    ctx = ctx_of(typer_ctx)
    with ctx.ready_store().read() as conn:
        versions = registry.scheme_versions(conn, scheme)
        if not versions:
            raise BadInput(f"scheme {scheme} is not loaded")
        chosen = version or versions[-1].version
        sys.stdout.write(registry.source_text(conn, scheme, chosen))


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
    added, have = ctx.service().add_source(ctx.principal, agency, behaviours.split(","), title)
    emit(
        as_json,
        {"source": agency, "added": added, "behaviours": have},
        lambda: console.print(f"{agency} may submit: {', '.join(have)}"),
    )


@sources_app.command("list")
def sources_list(typer_ctx: typer.Context, as_json: JsonOpt = False) -> None:
    """Every source and the behaviours it may submit."""
    ctx = ctx_of(typer_ctx)
    with ctx.ready_store().read() as conn:
        found = registry.list_sources(conn)
    data = {"sources": [{"source": k, "behaviours": sorted(v)} for k, v in sorted(found.items())]}

    def human() -> None:
        table = Table("source", "behaviours")
        for k, v in sorted(found.items()):
            table.add_row(k, ", ".join(sorted(v)))
        console.print(table)

    emit(as_json, data, human)


@subjects_app.command("import")
def subjects_import(typer_ctx: typer.Context, file: Path, as_json: JsonOpt = False) -> None:
    """Import persons and organisations from CSV or JSON Lines: the whole file or nothing."""
    ctx = ctx_of(typer_ctx)
    data = read_file(file)
    result = ctx.service().import_subjects(ctx.principal, file.name, data)
    emit(
        as_json,
        {"imported": result.imported, "already_present": result.already_present},
        lambda: console.print(f"{result.imported} subjects imported, {result.already_present} already present"),
    )


# --- records ------------------------------------------------------------------------------------


@records_app.command("import")
def records_import(
    typer_ctx: typer.Context,
    file: Path,
    source: Annotated[str, typer.Option("--source", help="The submitting agency.")],
    as_json: JsonOpt = False,
    bulk: Annotated[
        bool | None,
        typer.Option(
            "--bulk/--no-bulk",
            help="The column-wise path (Arrow/DuckDB); default: on for .parquet and files of 64 MiB or more.",
        ),
    ] = None,
) -> None:
    """Import a source's records from CSV, JSON Lines or Parquet: the whole file or nothing."""
    ctx = ctx_of(typer_ctx)
    from xinyong.ledger import bulk as bulk_module

    if bulk or (bulk is None and bulk_module.wants_bulk(file)):
        if not file.is_file():
            raise BadInput(f"cannot read {file}: no such file")
        result = bulk_module.import_records(ctx.ready_store(), file, source=source, now=ctx.now(), actor=ctx.actor)
        emit(
            as_json,
            {"imported": result.imported, "already_present": result.already_present},
            lambda: console.print(f"{result.imported} records imported, {result.already_present} already present"),
        )
        return
    data = read_file(file)
    service = ctx.service()
    with progress_bar(f"importing {file.name}", not as_json) as progress:
        result = service.import_records(ctx.principal, file.name, data, source, progress=progress)
    emit(
        as_json,
        {"imported": result.imported, "already_present": result.already_present},
        lambda: console.print(f"{result.imported} records imported, {result.already_present} already present"),
    )


@records_app.command("show")
def records_show(typer_ctx: typer.Context, record: str, known_at: KnownAtOpt = None, as_json: JsonOpt = False) -> None:
    """A record with every event that happened to it."""
    ctx = ctx_of(typer_ctx)
    with ctx.ready_store().read() as conn:
        found = ledger.history(conn, record)
    data = outputs.history(found, ctx.known_at(known_at))

    def human() -> None:
        console.print(
            f"record {data['id']} ({data['ref']}): {data['behaviour']} of {data['subject']}, "
            f"occurred {data['occurred_on']}, status {data['status']}"
        )
        table = Table("event", "at", "by", "details")
        for e in data["events"]:
            details = ", ".join(f"{k}={v}" for k, v in e.items() if k not in {"kind", "at", "actor", "id"})
            table.add_row(e["kind"], e["at"], e["actor"], details)
        console.print(table)

    emit(as_json, data, human)


def _amount(text: str | None) -> Decimal | None:
    if text is None:
        return None
    try:
        return Decimal(text).quantize(Decimal("0.01"))
    except InvalidOperation:
        raise BadInput(f"--amount: {text!r} is not a number") from None


def _event_done(as_json: bool, record: str, event_id: int, kind: str) -> None:
    emit(
        as_json,
        {"record": record, "event": event_id, "kind": kind},
        lambda: console.print(f"{kind}: record {record} (event {event_id})"),
    )


@records_app.command("correct")
def records_correct(
    typer_ctx: typer.Context,
    record: str,
    reason: Annotated[str, typer.Option("--reason")],
    behaviour: Annotated[str | None, typer.Option("--behaviour")] = None,
    occurred_on: Annotated[str | None, typer.Option("--occurred-on")] = None,
    amount: Annotated[str | None, typer.Option("--amount")] = None,
    as_json: JsonOpt = False,
) -> None:
    """Correct a record's behaviour, date or amount (an appended event; nothing is overwritten)."""
    ctx = ctx_of(typer_ctx)
    day = parse_day(occurred_on, where="--occurred-on") if occurred_on else None
    event_id = ctx.service().correct(
        ctx.principal,
        record,
        reason=reason,
        behaviour=behaviour,
        occurred_on=day,
        amount=_amount(amount),
    )
    _event_done(as_json, record, event_id, "corrected")


@records_app.command("revoke")
def records_revoke(
    typer_ctx: typer.Context,
    record: str,
    reason: Annotated[str, typer.Option("--reason")],
    as_json: JsonOpt = False,
) -> None:
    """Revoke a record: it never had any effect."""
    ctx = ctx_of(typer_ctx)
    event_id = ctx.service().revoke(ctx.principal, record, reason=reason)
    _event_done(as_json, record, event_id, "revoked")


@records_app.command("end")
def records_end(
    typer_ctx: typer.Context,
    record: str,
    on: Annotated[str, typer.Option("--on", help="The day the effect ends.")],
    reason: Annotated[str, typer.Option("--reason", help="fulfilled or repaired")],
    as_json: JsonOpt = False,
) -> None:
    """End a record's effect: the obligation was fulfilled or a repair approved."""
    ctx = ctx_of(typer_ctx)
    event_id = ctx.service().end(ctx.principal, record, on=parse_day(on, where="--on"), reason=reason)
    _event_done(as_json, record, event_id, "ended")


@records_app.command("decline")
def records_decline(typer_ctx: typer.Context, record: str, as_json: JsonOpt = False) -> None:
    """The subject declines a positive record: it has no effect from now on."""
    ctx = ctx_of(typer_ctx)
    event_id = ctx.service().decline(ctx.principal, record)
    _event_done(as_json, record, event_id, "declined")


# --- questions ----------------------------------------------------------------------------------


def _print_state(data: dict[str, Any]) -> None:
    if data["score"] is None:
        console.print(f"[bold]{data['scheme']}[/]: no state — {data['no_state_reason']}")
        return
    console.print(
        f"[bold]{data['scheme']}[/] {data['scheme_version']}: score [bold]{data['score']}[/]"
        f" grade [bold]{data['grade'] or '—'}[/] on {data['as_of']}"
    )
    table = Table("record", "behaviour", "points", "from", "until")
    table.add_row("", "initial", str(data["initial"]), "", "")
    for line in data["contributions"]:
        label = line["behaviour"] or "" if line["kind"] == "record" else f"{line['kind']} {line['behaviour'] or ''}"
        table.add_row(
            str(line["record"] or ""),
            label,
            f"{line['points']:+d}",
            line["start"] or "",
            line["until"] or "",
        )
    console.print(table)
    if data["lists"] or data["measures"]:
        console.print(f"lists: {', '.join(data['lists']) or '—'}; measures: {', '.join(data['measures']) or '—'}")
    if data.get("next_grade"):
        nxt = data["next_grade"]
        when = (
            f"expiries alone reach it on {nxt['reachable_on']}"
            if nxt["reachable_on"]
            else "expiries alone never reach it"
        )
        console.print(f"next grade {nxt['grade']} needs {nxt['points_needed']} more points; {when}")


def _print_states(results: list[dict[str, Any]]) -> None:
    for result in results:
        _print_state(result)


@app.command()
def score(
    typer_ctx: typer.Context,
    subject: str,
    scheme: Annotated[str | None, typer.Option("--scheme", help="One scheme; default every scheme.")] = None,
    as_of: AsOfOpt = None,
    known_at: KnownAtOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """A subject's score, grade, explanation, lists and measures."""
    ctx = ctx_of(typer_ctx)
    day, known = ctx.as_of(as_of), ctx.known_at(known_at)
    with ctx.ready_store().read() as conn:
        reader = StateReader.open(conn, subject, known)
        wanted = [scheme] if scheme else registry.scheme_ids(conn)
        results = [outputs.state(reader.state(s, day)) for s in wanted]
    if scheme:
        emit(as_json, results[0], lambda: _print_state(results[0]))
    else:
        emit(
            as_json,
            {"subject": subject, "as_of": day, "known_at": known, "states": results},
            lambda: _print_states(results),
        )


@app.command()
def check(
    typer_ctx: typer.Context,
    subject: str,
    measure: str,
    as_of: AsOfOpt = None,
    known_at: KnownAtOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Does measure SCHEME/MEASURE apply to the subject on the day? Yes or no, and why."""
    ctx = ctx_of(typer_ctx)
    data = ctx.service().check(
        ctx.principal,
        subject,
        measure,
        as_of=ctx.as_of(as_of),
        known_at=parse_instant(known_at, where="--known-at") if known_at else None,
        purpose="command line",
    )

    def human() -> None:
        basis = data["basis"]
        verdict = "[bold red]applies[/]" if data["applies"] else "[bold green]does not apply[/]"
        console.print(f"{data['measure']} ({data['title']}) {verdict} to {data['subject']} on {data['as_of']}")
        if data["applies"]:
            console.print(
                f"since {data['since']}; lists: {', '.join(basis['lists']) or '—'}; grade: {basis['grade'] or '—'}; "
                f"records: {', '.join(map(str, basis['records'])) or '—'}"
            )
        console.print(f"legal basis: {data['legal_basis']}")
        console.print(data["contest"])

    emit(as_json, data, human)


@app.command()
def report(
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
    """A subject's full credit report, as JSON, HTML or PDF."""
    from xinyong.presentation import rendering

    ctx = ctx_of(typer_ctx)
    if format not in ("json", "html", "pdf"):
        raise BadInput(f"--format: {format!r} is not one of json, html, pdf")
    if format == "pdf" and out is None:
        raise BadInput("--format pdf: give --out FILE (a PDF is not for the terminal)")
    chosen = i18n.language(lang)
    with ctx.ready_store().read() as conn:
        data = reports.build_report(
            conn,
            subject,
            as_of=ctx.as_of(as_of),
            known_at=ctx.known_at(known_at),
            audience="public" if public else "subject",
        )
    plain = outputs.plain(data)
    if format == "pdf":
        assert out is not None
        out.write_bytes(rendering.pdf(plain, chosen))
        errors.print(f"report written to {out}")
        return
    text = rendering.html(plain, chosen) if format == "html" else json.dumps(plain, ensure_ascii=False, indent=2) + "\n"
    if out is not None:
        out.write_text(text, encoding="utf-8")
        errors.print(f"report written to {out}")
    else:
        sys.stdout.write(text)


# --- scale: batch state and synthetic populations (docs/scale.md) -------------------------------


@app.command()
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
    from xinyong.derived import batch

    ctx = ctx_of(typer_ctx)
    if engine not in {"duckdb", "spark"}:
        raise BadInput(f"--engine: {engine!r} is not an engine; use duckdb or spark")
    result = batch.run(
        ctx.ready_store(),
        batch.engine_named(engine, spark_master),
        as_of=ctx.as_of(as_of),
        known_at=ctx.known_at(known_at),
        out=out,
        schemes=scheme or None,
        refresh_serving=serve,
        now=ctx.now(),
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
        lambda: console.print(
            f"{result.rows:,} states ({versions}) on {result.as_of} written to {result.out} by {result.engine}; "
            f"serving state: {result.served:,} rows"
        ),
    )


@app.command()
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
        lambda: console.print(
            f"{persons:,} persons, {organisations:,} organisations and {records:,} records "
            f"written to {out} in {data['seconds']} s"
        ),
    )


# --- due process --------------------------------------------------------------------------------


@objections_app.command("file")
def objections_file(
    typer_ctx: typer.Context,
    record: str,
    reason: Annotated[str, typer.Option("--reason")],
    on_behalf: Annotated[
        bool, typer.Option("--on-behalf", help="An officer files for the subject (XINYONG_ACTOR names the officer).")
    ] = False,
    as_json: JsonOpt = False,
) -> None:
    """Object to a record: it shows as disputed at once; the decision is due in working days."""
    ctx = ctx_of(typer_ctx)
    status = ctx.service().file_objection(
        ctx.principal, record, reason=reason, filed_as="officer" if on_behalf else "subject"
    )
    data = outputs.objection(status, local_day(ctx.now()))
    emit(
        as_json,
        data,
        lambda: console.print(f"objection {status.id} filed; decision due by {status.due_on}"),
    )


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
    ctx = ctx_of(typer_ctx)
    day = parse_day(occurred_on, where="--occurred-on") if occurred_on else None
    status = ctx.service().decide_objection(
        ctx.principal,
        objection,
        outcome=outcome,
        reason=reason,
        behaviour=behaviour,
        occurred_on=day,
        amount=_amount(amount),
    )
    data = outputs.objection(status, local_day(ctx.now()))
    emit(as_json, data, lambda: console.print(f"objection {status.id}: {status.outcome}"))


def _objection_table(data: list[dict[str, Any]]) -> None:
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
    console.print(table)


@objections_app.command("overdue")
def objections_overdue(typer_ctx: typer.Context, as_json: JsonOpt = False) -> None:
    """Undecided objections past their deadline (escalated)."""
    ctx = ctx_of(typer_ctx)
    today = ctx.clock.today()
    with ctx.ready_store().read() as conn:
        data = [outputs.objection(o, today) for o in objections.overdue(conn, today)]
    emit(as_json, {"as_of": today, "overdue": data}, lambda: _objection_table(data))


@objections_app.command("list")
def objections_list(
    typer_ctx: typer.Context,
    subject: Annotated[str | None, typer.Option("--subject")] = None,
    undecided: Annotated[bool, typer.Option("--undecided", help="Only undecided objections.")] = False,
    as_json: JsonOpt = False,
) -> None:
    """Objections, newest first."""
    ctx = ctx_of(typer_ctx)
    today = ctx.clock.today()
    with ctx.ready_store().read() as conn:
        data = [
            outputs.objection(o, today) for o in objections.listing(conn, subject_id=subject, undecided_only=undecided)
        ]
    emit(as_json, {"objections": data}, lambda: _objection_table(data))


def _consent(typer_ctx: typer.Context, subject: str, scheme: str, grant: bool, as_json: bool) -> None:
    ctx = ctx_of(typer_ctx)
    changed = ctx.service().change_consent(ctx.principal, subject, scheme, grant)
    state = "granted" if grant else "withdrawn"
    emit(
        as_json,
        {"subject": subject, "scheme": scheme, "consent": state, "changed": changed},
        lambda: console.print(f"consent {state} for {scheme}" + ("" if changed else " (no change)")),
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


# --- repairs ------------------------------------------------------------------------------------


def _repair_table(data: list[dict[str, Any]]) -> None:
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
    console.print(table)


@repairs_app.command("apply")
def repairs_apply(
    typer_ctx: typer.Context,
    record: str,
    evidence: Annotated[str, typer.Option("--evidence", help="What was done: obligation performed, a commitment.")],
    on_behalf: Annotated[
        bool, typer.Option("--on-behalf", help="An officer applies for the subject (XINYONG_ACTOR names the officer).")
    ] = False,
    as_json: JsonOpt = False,
) -> None:
    """Apply to end a record's effect early; refused before its repair_after, with the day it is possible."""
    ctx = ctx_of(typer_ctx)
    with ctx.ready_store().write() as conn:
        status = repairs.apply(
            conn,
            record,
            evidence=evidence,
            now=ctx.now(),
            actor=ctx.actor,
            filed_as="officer" if on_behalf else "subject",
        )
    data = status.as_dict(local_day(ctx.now()))
    emit(as_json, data, lambda: console.print(f"repair application {status.id} filed; decision due by {status.due_on}"))


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
    with ctx.ready_store().write() as conn:
        status = repairs.decide(conn, repair, outcome=outcome, reason=reason, now=ctx.now(), actor=ctx.actor)
    data = status.as_dict(local_day(ctx.now()))
    ended = f"; the record's effect ends on {status.ended_on}" if status.ended_on else ""
    emit(as_json, data, lambda: console.print(f"repair {status.id}: {status.outcome}{ended}"))


@repairs_app.command("list")
def repairs_list(
    typer_ctx: typer.Context,
    subject: Annotated[str | None, typer.Option("--subject")] = None,
    undecided: Annotated[bool, typer.Option("--undecided", help="Only undecided applications.")] = False,
    as_json: JsonOpt = False,
) -> None:
    """Repair applications, newest first."""
    ctx = ctx_of(typer_ctx)
    today = ctx.clock.today()
    with ctx.ready_store().read() as conn:
        data = [r.as_dict(today) for r in repairs.listing(conn, subject_id=subject, undecided_only=undecided)]
    emit(as_json, {"repairs": data}, lambda: _repair_table(data))


@repairs_app.command("overdue")
def repairs_overdue(typer_ctx: typer.Context, as_json: JsonOpt = False) -> None:
    """Undecided repair applications past their deadline."""
    ctx = ctx_of(typer_ctx)
    today = ctx.clock.today()
    with ctx.ready_store().read() as conn:
        data = [r.as_dict(today) for r in repairs.overdue(conn, today)]
    emit(as_json, {"as_of": today, "overdue": data}, lambda: _repair_table(data))


# --- notices ------------------------------------------------------------------------------------

LanguageOpt = Annotated[
    str | None, typer.Option("--language", help="zh_Hans or en; default the subject's, else $XINYONG_LANGUAGE.")
]


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
    with ctx.ready_store().read() as conn:
        chosen = i18n.language(lang) if lang else notices.contact_of(conn, subject).language
        found = notices.inbox(conn, subject, unread_only=unread)
        data = [notices.to_dict(n, chosen) for n in found]

    def human() -> None:
        table = Table("notice", "created", "kind", "record", "takes effect", "object by", "title")
        for n in data:
            table.add_row(
                str(n["id"]),
                n["created_at"][:10],
                n["kind"],
                str(n["record"]),
                n["takes_effect_on"] or "",
                n["object_by"] or "",
                n["title"],
            )
        console.print(table)

    emit(as_json, {"subject": subject, "language": chosen, "notices": data}, human)


@notices_app.command("show")
def notices_show(
    typer_ctx: typer.Context,
    notice: int,
    lang: LanguageOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """One notice in full, with its deliveries."""
    ctx = ctx_of(typer_ctx)
    with ctx.ready_store().read() as conn:
        found = notices.get(conn, notice)
        chosen = i18n.language(lang) if lang else notices.contact_of(conn, found.subject_id).language
        data = notices.to_dict(found, chosen, notices.deliveries(conn, found))
    emit(as_json, data, lambda: console.print(data["text"], markup=False, highlight=False))


@notices_app.command("read")
def notices_read(typer_ctx: typer.Context, notice: int, as_json: JsonOpt = False) -> None:
    """Mark a notice as read (as the portal does when the subject opens it)."""
    ctx = ctx_of(typer_ctx)
    with ctx.ready_store().write() as conn:
        found = notices.mark_read(conn, notice, ctx.now())
    data = {"id": found.id, "read_at": found.read_at}
    emit(as_json, data, lambda: console.print(f"notice {found.id} read at {found.read_at}"))


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
    with ctx.ready_store().write() as conn:
        found = notices.set_contact(conn, subject, email=email, lang=lang, now=ctx.now())
    data = {"subject": found.subject_id, "email": found.email, "language": found.language}
    emit(as_json, data, lambda: console.print(f"{found.subject_id}: {found.email or 'portal only'}, {found.language}"))


@notices_app.command("deliver")
def notices_deliver(
    typer_ctx: typer.Context,
    limit: Annotated[int, typer.Option("--limit", help="At most this many deliveries in this run.")] = 500,
    as_json: JsonOpt = False,
) -> None:
    """Deliver the e-mail notices that are due (through XINYONG_SMTP_HOST); the portal needs no delivery."""
    ctx = ctx_of(typer_ctx)
    run = outbox.deliver_due(ctx.ready_store(), ctx.now(), limit=limit)
    data = run.as_dict()

    def human() -> None:
        waiting = ", ".join(f"{k} {v}" for k, v in run.waiting.items())
        console.print(
            f"delivered {run.delivered}, failed {run.failed} (retried later)"
            + (f"; waiting for an adapter: {waiting}" if waiting else "")
        )
        for error in run.errors:
            console.print(
                f"  notice {error['notice']} {error['channel']}: {error['error']} (next {error['next_attempt_at']})",
                markup=False,
            )

    emit(as_json, data, human)


@notices_app.command("outbox")
def notices_outbox(typer_ctx: typer.Context, as_json: JsonOpt = False) -> None:
    """Deliveries not yet made, with their attempts and last error."""
    ctx = ctx_of(typer_ctx)
    with ctx.ready_store().read() as conn:
        data = outbox.pending(conn)

    def human() -> None:
        table = Table("notice", "channel", "address", "attempts", "next attempt", "last error")
        for d in data:
            table.add_row(
                str(d["notice"]),
                d["channel"],
                d["address"] or "",
                str(d["attempts"]),
                d["next_attempt_at"][:19],
                d["last_error"] or "",
            )
        console.print(table)

    emit(as_json, {"pending": data}, human)


# --- the HTTP API, tokens and the audit log -----------------------------------------------------

tokens_app = typer.Typer(help="Bearer tokens for the HTTP API.", no_args_is_help=True)
audit_app = typer.Typer(help="The hash-chained audit log.", no_args_is_help=True)
app.add_typer(tokens_app, name="tokens")
app.add_typer(audit_app, name="audit")


@app.command()
def serve(
    typer_ctx: typer.Context,
    host: Annotated[str | None, typer.Option("--host", help="Default $XINYONG_HOST or 127.0.0.1.")] = None,
    port: Annotated[int | None, typer.Option("--port", help="Default $XINYONG_PORT or 8000.")] = None,
    workers: Annotated[int | None, typer.Option("--workers", help="Default $XINYONG_WORKERS or 1.")] = None,
    server: Annotated[str | None, typer.Option("--server", help="granian or uvicorn; default $XINYONG_SERVER.")] = None,
) -> None:
    """Serve the HTTP API (/v1, /openapi.json, /docs) for the store until interrupted."""
    from xinyong.interfaces.api import serve as serve_api

    ctx = ctx_of(typer_ctx)
    ctx.ready_store()
    serve_api(ctx.db_url, host=host, port=port, workers=workers, server=server)


def _token_row(info: tokens_module.TokenInfo, now: dt.datetime) -> dict[str, Any]:
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
    bearer, info = ctx.service().create_token(
        ctx.principal, parsed, agency=agency, subject=subject, label=label, expires_at=expires_at
    )
    data = {**_token_row(info, ctx.now()), "token": bearer}
    emit(
        as_json,
        data,
        lambda: console.print(
            f"token {info.id} ({info.role.value}{':' + (agency or subject or '') if agency or subject else ''}); "
            f"shown once, keep it safe:\n{bearer}",
            markup=False,
        ),
    )


@tokens_app.command("revoke")
def tokens_revoke(typer_ctx: typer.Context, token_id: str, as_json: JsonOpt = False) -> None:
    """Revoke a token by its id (server workers stop accepting it within XINYONG_TOKEN_CACHE_SECONDS)."""
    ctx = ctx_of(typer_ctx)
    info = ctx.service().revoke_token(ctx.principal, token_id)
    emit(as_json, _token_row(info, ctx.now()), lambda: console.print(f"token {info.id} revoked"))


@tokens_app.command("list")
def tokens_list(typer_ctx: typer.Context, as_json: JsonOpt = False) -> None:
    """Every token with its role, binding and status (never the secret)."""
    ctx = ctx_of(typer_ctx)
    now = ctx.now()
    rows = [_token_row(info, now) for info in ctx.service().tokens(ctx.principal)]

    def human() -> None:
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
        console.print(table)

    emit(as_json, {"tokens": rows}, human)


@audit_app.command("verify")
def audit_verify(typer_ctx: typer.Context, as_json: JsonOpt = False) -> None:
    """Recompute the audit log's hash chain; exit 1 naming the first broken entry, 0 when intact."""
    ctx = ctx_of(typer_ctx)
    result = ctx.service().verify_audit(ctx.principal)
    emit(
        as_json,
        outputs.plain(result),
        lambda: console.print(
            f"audit log intact: {result.entries} entries, head {result.head_hash}"
            if result.ok
            else f"audit log BROKEN at entry {result.broken_at}: {result.reason}",
            markup=False,
        ),
    )
    if not result.ok:
        # Exit status 1 (not bad input: the log itself is damaged), the entry named on stderr too.
        raise XinyongError(f"audit log broken at entry {result.broken_at}: {result.reason}")


@audit_app.command("compact")
def audit_compact(typer_ctx: typer.Context, as_json: JsonOpt = False) -> None:
    """Merge the who-looked index's newest runs so lookups stay fast (a server does it every night)."""
    ctx = ctx_of(typer_ctx)
    result = ctx.service().compact_audit(ctx.principal)
    emit(
        as_json,
        outputs.plain(result),
        lambda: console.print(
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
    first_day = parse_day(first, where="--from") if first else None
    last_day = parse_day(last, where="--to") if last else None
    if first_day and last_day and last_day < first_day:
        raise BadInput("--to: the last day is before the first")
    service = ctx.service()
    try:
        with out.open("w", encoding="utf-8", newline="") as handle:
            count = service.export_audit(ctx.principal, handle, first=first_day, last=last_day)
    except OSError as exc:
        raise BadInput(f"--out: cannot write {out}: {exc.strerror}") from None
    emit(
        as_json,
        {"entries": count, "out": str(out), "from": first_day, "to": last_day},
        lambda: console.print(f"{count} audit entries written to {out}"),
    )


@audit_app.command("who-looked")
def audit_who_looked(typer_ctx: typer.Context, subject: str, as_json: JsonOpt = False) -> None:
    """Who looked at a subject's data, and every other logged act about it, newest first."""
    ctx = ctx_of(typer_ctx)
    entries = ctx.service().who_looked(ctx.principal, subject)

    def human() -> None:
        table = Table("when", "who", "role", "what", "purpose", "outcome")
        for e in entries:
            table.add_row(e["at"][:19], e["actor"], e["role"], e["action"], e["purpose"] or "", e["outcome"])
        console.print(table)

    emit(as_json, {"subject": subject, "entries": entries}, human)


# --- the demo -----------------------------------------------------------------------------------


@app.command()
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
    from xinyong.demo import city as demo_module
    from xinyong.demo import logins as demo_logins
    from xinyong.storage.store import Store as DemoStore

    ctx = ctx_of(typer_ctx)
    db = typer_ctx.find_root().params.get("db") or os.environ.get("XINYONG_DB") or "sqlite:///xinyong-demo.db"
    summary = demo_module.run(
        db,
        ctx.clock,
        persons=persons,
        organisations=organisations,
        seed=seed,
        console=None if as_json else console,
    )
    demo_store = DemoStore(db)
    summary["url"] = f"http://127.0.0.1:{port}/"
    summary["logins"] = demo_logins.create(demo_store, ctx.clock)
    demo_store.dispose()
    emit(as_json, summary, lambda: print_summary(summary))
    if serve_site:
        from xinyong.interfaces.api import serve as serve_api

        if not as_json:
            console.print(f"[bold]Serving the site and the API on {summary['url']}[/] (Ctrl-C stops it)")
        serve_api(db, host="127.0.0.1", port=port, workers=1)


def print_summary(summary: dict[str, Any]) -> None:
    console.print(
        f"[bold]Synthetic city[/]: {summary['persons']:,} persons, {summary['organisations']:,} organisations, "
        f"{summary['records_in_ledger']:,} records; built in {summary['seconds']} s → {summary['db']}"
    )
    console.print("events replayed: " + ", ".join(f"{k} {v:,}" for k, v in summary["events"].items()))
    for scheme, counts in summary["grades"].items():
        table = Table(title=f"{scheme}: subjects per grade on {summary['as_of']}")
        for grade in counts:
            table.add_column(grade, justify="right")
        table.add_row(*(f"{n:,}" for n in counts.values()))
        console.print(table)
    table = Table("list", "subjects", title="List sizes")
    for name, n in summary["lists"].items():
        table.add_row(name, f"{n:,}")
    console.print(table)
    table = Table("measure", "subjects", title="Measures in force")
    for name, n in summary["measures"].items():
        table.add_row(name, f"{n:,}")
    console.print(table)
    for example in summary["examples"]:
        console.rule(f"{example['name']} ({example['kind']}) — why this grade?")
        _print_state(example)
    logins = summary.get("logins") or {}
    if logins:
        console.rule("Demo log-ins (shown once)")
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
                console.print("  ".join(parts), markup=False, highlight=False, soft_wrap=True)
        console.print(
            f"Site: {summary.get('url')} · subject portal /me · staff console /staff · API /v1 (docs /docs); "
            "the enforcer asks GET /v1/checks/… with its token."
        )


def main() -> None:
    """Entry point: turn library errors into a message and an exit status, never a stack trace."""
    try:
        app(standalone_mode=False)
    except XinyongError as exc:
        errors.print(exc.render(), markup=False, highlight=False)
        raise SystemExit(exc.exit_code) from None
    except typer.Exit as exc:
        raise SystemExit(exc.exit_code) from None
    except typer.Abort:
        errors.print("aborted")
        raise SystemExit(1) from None
    except typer.TyperException as exc:
        # Usage errors (a missing argument, an unknown option) print typer's own message; status 2.
        show = getattr(exc, "show", None)
        if callable(show):
            show()
        else:
            errors.print(exc.message, markup=False, highlight=False)
        raise SystemExit(exc.exit_code) from None
    except Exception as exc:  # the promise is "no stack trace for the user"; XINYONG_DEBUG shows it
        if settings.DEBUG.value():
            raise
        errors.print(f"error: {type(exc).__name__}: {exc}", markup=False, highlight=False)
        raise SystemExit(1) from None


if __name__ == "__main__":
    main()
