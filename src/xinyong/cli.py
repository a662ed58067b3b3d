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

from xinyong import (
    checks,
    consent,
    derivation,
    imports,
    ledger,
    objections,
    outputs,
    registry,
    reports,
    settings,
)
from xinyong.clock import Clock, FixedClock, local_day, parse_day, parse_instant
from xinyong.errors import BadInput, XinyongError
from xinyong.schemes import load_scheme_file
from xinyong.state import StateReader
from xinyong.store import Store

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
for sub, name in (
    (scheme_app, "scheme"),
    (sources_app, "sources"),
    (subjects_app, "subjects"),
    (records_app, "records"),
    (objections_app, "objections"),
    (consent_app, "consent"),
):
    app.add_typer(sub, name=name)

console = Console()
errors = Console(stderr=True)

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
    with ctx.ready_store().write() as conn:
        version, added = ledger.load_scheme(conn, scheme, file.read_text(encoding="utf-8"), ctx.now())
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
    codes = [c.strip() for c in behaviours.split(",") if c.strip()]
    if not codes:
        raise BadInput("--behaviours: give at least one behaviour code")
    with ctx.ready_store().write() as conn:
        known = ledger.known_behaviours(conn)
        unknown = [c for c in codes if c not in known]
        if unknown:
            raise BadInput(
                f"--behaviours: {', '.join(unknown)} is in no loaded scheme's catalogue (load the scheme first)"
            )
        added = registry.add_source(conn, agency, codes, ctx.now(), title)
        have = sorted(registry.authorised_behaviours(conn, agency))
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
    with ctx.ready_store().write() as conn:
        result = imports.import_subjects(conn, file.name, data, now=ctx.now(), actor=ctx.actor)
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
) -> None:
    """Import a source's records from CSV or JSON Lines: the whole file or nothing."""
    ctx = ctx_of(typer_ctx)
    data = read_file(file)
    with (
        progress_bar(f"importing {file.name}", not as_json) as progress,
        ctx.ready_store().write() as conn,
    ):
        result = imports.import_records(
            conn, file.name, data, source=source, now=ctx.now(), actor=ctx.actor, progress=progress
        )
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
    with ctx.ready_store().write() as conn:
        event_id = ledger.correct(
            conn,
            record,
            now=ctx.now(),
            actor=ctx.actor,
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
    with ctx.ready_store().write() as conn:
        event_id = ledger.revoke(conn, record, now=ctx.now(), actor=ctx.actor, reason=reason)
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
    with ctx.ready_store().write() as conn:
        event_id = ledger.end(
            conn,
            record,
            on=parse_day(on, where="--on"),
            reason=reason,
            now=ctx.now(),
            actor=ctx.actor,
        )
    _event_done(as_json, record, event_id, "ended")


@records_app.command("decline")
def records_decline(typer_ctx: typer.Context, record: str, as_json: JsonOpt = False) -> None:
    """The subject declines a positive record: it has no effect from now on."""
    ctx = ctx_of(typer_ctx)
    with ctx.ready_store().write() as conn:
        event_id = ledger.decline(conn, record, now=ctx.now(), actor=ctx.actor)
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
    with ctx.ready_store().read() as conn:
        answer = checks.check(conn, subject, measure, ctx.as_of(as_of), ctx.known_at(known_at))
    data = outputs.check(answer)

    def human() -> None:
        verdict = "[bold red]applies[/]" if answer.applies else "[bold green]does not apply[/]"
        console.print(f"{answer.measure} ({answer.title}) {verdict} to {answer.subject} on {answer.as_of}")
        if answer.applies:
            console.print(
                f"since {answer.since}; lists: {', '.join(answer.lists) or '—'}; grade: {answer.grade or '—'}; "
                f"records: {', '.join(map(str, answer.records)) or '—'}"
            )
        console.print(f"legal basis: {answer.legal_basis}")
        console.print(answer.contest)

    emit(as_json, data, human)


@app.command()
def report(
    typer_ctx: typer.Context,
    subject: str,
    format: Annotated[str, typer.Option("--format", help="json (html and pdf: see the report issue)")] = "json",
    out: Annotated[Path | None, typer.Option("--out", help="Write to a file instead of standard output.")] = None,
    public: Annotated[bool, typer.Option("--public", help="The public report of an organisation.")] = False,
    as_of: AsOfOpt = None,
    known_at: KnownAtOpt = None,
) -> None:
    """A subject's full credit report."""
    ctx = ctx_of(typer_ctx)
    if format != "json":
        raise BadInput(f"--format: {format!r} is not supported yet; use json")
    with ctx.ready_store().read() as conn:
        data = reports.build_report(
            conn,
            subject,
            as_of=ctx.as_of(as_of),
            known_at=ctx.known_at(known_at),
            audience="public" if public else "subject",
        )
    text = json.dumps(outputs.plain(data), ensure_ascii=False, indent=2) + "\n"
    if out is not None:
        out.write_text(text, encoding="utf-8")
        errors.print(f"report written to {out}")
    else:
        sys.stdout.write(text)


# --- due process --------------------------------------------------------------------------------


@objections_app.command("file")
def objections_file(
    typer_ctx: typer.Context,
    record: str,
    reason: Annotated[str, typer.Option("--reason")],
    as_json: JsonOpt = False,
) -> None:
    """Object to a record: it shows as disputed at once; the decision is due in working days."""
    ctx = ctx_of(typer_ctx)
    with ctx.ready_store().write() as conn:
        status = objections.file(conn, record, reason=reason, now=ctx.now(), actor=ctx.actor)
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
    with ctx.ready_store().write() as conn:
        status = objections.decide(
            conn,
            objection,
            outcome=outcome,
            reason=reason,
            now=ctx.now(),
            actor=ctx.actor,
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
    with ctx.ready_store().write() as conn:
        changed = consent.record_consent(conn, subject, scheme, grant, ctx.now(), ctx.actor)
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


# --- the demo -----------------------------------------------------------------------------------


@app.command()
def demo(
    typer_ctx: typer.Context,
    persons: Annotated[int, typer.Option(help="Synthetic persons.")] = 20_000,
    organisations: Annotated[int, typer.Option(help="Synthetic organisations.")] = 2_000,
    seed: Annotated[int, typer.Option(help="Random seed; the same seed builds the same city.")] = 2014,
    as_json: JsonOpt = False,
) -> None:
    """Build a synthetic city on the embedded store and explain it."""
    from xinyong import demo as demo_module

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
    emit(as_json, summary, lambda: print_summary(summary))


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
        if os.environ.get("XINYONG_DEBUG"):
            raise
        errors.print(f"error: {type(exc).__name__}: {exc}", markup=False, highlight=False)
        raise SystemExit(1) from None


if __name__ == "__main__":
    main()
