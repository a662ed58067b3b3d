"""`score` and `check`: the questions asked about one subject (the report is `reports`)."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Annotated, Any

import typer

from xinyong.errors import BadInput
from xinyong.interfaces.cli.context import AsOfOpt, Context, JsonOpt, KnownAtOpt, console, ctx_of, emit
from xinyong.rules.clock import parse_instant


def print_state(data: dict[str, Any]) -> None:
    """One scheme's state with its explanation, for people (also the demo's examples)."""
    from rich.table import Table

    out = console()
    if data.get("kind") == "list":
        on = ", ".join(data["lists"]) or "none"
        out.print(
            f"[bold]{data['scheme']}[/] {data['scheme_version']}: a list scheme; on {data['as_of']} on lists: {on}"
        )
        if data["measures"]:
            out.print(f"measures: {', '.join(data['measures'])}")
        return
    if data["score"] is None:
        out.print(f"[bold]{data['scheme']}[/]: no state — {data['no_state_reason']}")
        return
    out.print(
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
    out.print(table)
    if data["lists"] or data["measures"]:
        out.print(f"lists: {', '.join(data['lists']) or '—'}; measures: {', '.join(data['measures']) or '—'}")
    if data.get("next_grade"):
        nxt = data["next_grade"]
        when = (
            f"expiries alone reach it on {nxt['reachable_on']}"
            if nxt["reachable_on"]
            else "expiries alone never reach it"
        )
        out.print(f"next grade {nxt['grade']} needs {nxt['points_needed']} more points; {when}")


def score(
    typer_ctx: typer.Context,
    subject: str,
    scheme: Annotated[str | None, typer.Option("--scheme", help="One scheme; default every scheme.")] = None,
    as_of: AsOfOpt = None,
    known_at: KnownAtOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """A subject's score, grade, explanation, lists and measures."""
    from xinyong.presentation import outputs

    ctx = ctx_of(typer_ctx)
    day, known = ctx.as_of(as_of), ctx.known_at(known_at)
    found = ctx.service().questions.states(ctx.principal, subject, scheme=scheme, as_of=day, known_at=known)
    results = [outputs.state(s) for s in found]
    if scheme:
        emit(as_json, results[0], lambda: print_state(results[0]))
    else:

        def human() -> None:
            for result in results:
                print_state(result)

        emit(as_json, {"subject": subject, "as_of": day, "known_at": known, "states": results}, human)


BATCH_CHECK_MAX = 1000


def check(
    typer_ctx: typer.Context,
    subject: Annotated[str, typer.Argument(help="The subject's id; with --file, the measure.")],
    measure: Annotated[str | None, typer.Argument(help="SCHEME/MEASURE, e.g. court-defaulters/no-flights.")] = None,
    file: Annotated[
        Path | None,
        typer.Option("--file", help="Ask about every subject of a CSV file with a subject_id column (1,000 at most)."),
    ] = None,
    as_of: AsOfOpt = None,
    known_at: KnownAtOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Does measure SCHEME/MEASURE apply to the subject on the day? Yes or no, and why.

    With --file IDS.csv SCHEME/MEASURE, the same question about each subject in the file, answered
    in the file's order (a flight manifest)."""
    ctx = ctx_of(typer_ctx)
    known = parse_instant(known_at, where="--known-at") if known_at else None
    if file is not None:
        if measure is not None:
            raise BadInput("--file: give the measure alone after it (check --file IDS.csv SCHEME/MEASURE)")
        check_file(ctx, file, subject, ctx.as_of(as_of), known, as_json)
        return
    if measure is None:
        raise BadInput("give SUBJECT SCHEME/MEASURE, or --file IDS.csv SCHEME/MEASURE")
    data = ctx.service().questions.check(
        ctx.principal, subject, measure, as_of=ctx.as_of(as_of), known_at=known, purpose="command line"
    )

    def human() -> None:
        out = console()
        basis = data["basis"]
        verdict = "[bold red]applies[/]" if data["applies"] else "[bold green]does not apply[/]"
        out.print(f"{data['measure']} ({data['title']}) {verdict} to {data['subject']} on {data['as_of']}")
        if data["applies"]:
            out.print(
                f"since {data['since']}; lists: {', '.join(basis['lists']) or '—'}; grade: {basis['grade'] or '—'}; "
                f"records: {', '.join(map(str, basis['records'])) or '—'}"
            )
        out.print(f"legal basis: {data['legal_basis']}")
        out.print(data["contest"])

    emit(as_json, data, human)


def read_ids(path: Path) -> list[str]:
    """The subject_id column of a CSV file, in order: the whole file or a BadInput saying where."""
    import csv
    import io

    try:
        text = path.read_bytes().decode("utf-8-sig")
    except OSError as exc:
        raise BadInput(f"--file {path}: cannot be read ({exc.strerror})") from None
    except UnicodeDecodeError as exc:
        raise BadInput(f"--file {path}: not UTF-8 text (byte {exc.start + 1})") from None
    rows = csv.reader(io.StringIO(text, newline=""))
    header = next(rows, None)
    if header is None or "subject_id" not in [h.strip() for h in header]:
        raise BadInput(f"--file {path}, line 1: the header needs a subject_id column")
    column = [h.strip() for h in header].index("subject_id")
    ids = [row[column] if column < len(row) else "" for row in rows if any(cell.strip() for cell in row)]
    if not ids:
        raise BadInput(f"--file {path}: no subject below the header")
    if len(ids) > BATCH_CHECK_MAX:
        raise BadInput(f"--file {path}: {len(ids):,} subjects; ask about {BATCH_CHECK_MAX:,} at most at once")
    return ids


def check_file(ctx: Context, path: Path, measure: str, day: dt.date, known: dt.datetime | None, as_json: bool) -> None:
    """Every subject of the file asked together; the answers in its order."""
    from xinyong.presentation import outputs

    ids = read_ids(path)
    found = ctx.service().questions.check_many(
        ctx.principal, ids, measure, as_of=day, known_at=known, purpose="command line"
    )
    data = outputs.batch_answers(measure, day, ids, found)

    def human() -> None:
        from rich.table import Table

        table = Table("subject", "applies", "since", "")
        for answer in data["answers"]:
            if "error" in answer:
                table.add_row(answer["subject"], "—", "", answer["error"]["message"])
            else:
                table.add_row(answer["subject"], "yes" if answer["applies"] else "no", answer["since"] or "", "")
        console().print(f"{measure} on {data['as_of']}")
        console().print(table)

    emit(as_json, data, human)
