"""`DriverQuery`: a prebuilt SELECT run on the driver's own cursor, for the hot point lookups."""

from __future__ import annotations

from collections import namedtuple
from typing import Any

from sqlalchemy import Connection
from sqlalchemy.engine import Dialect


class DriverQuery:
    """A SELECT built once and run on the driver's cursor of a SQLAlchemy connection, inside its
    transaction, with the columns' own type conversions (a SQLite date's text read as a date).

    For the point lookups on the path of every check the answer cache cannot answer. SQLAlchemy's
    execution machinery (events, an execution context, result metadata) cost a prebuilt lookup of
    a subject about 45 µs of its ~60; the driver takes 7. The statement is compiled once per
    dialect; parameters go by name, as they would to `Connection.execute`. A list parameter
    (`bindparam(..., expanding=True)`, an IN list) is compiled once per dialect and length: the
    questions asked of many subjects at once (a batch of checks) send their ids as one list.
    """

    def __init__(self, statement: Any) -> None:
        self.statement = statement
        # Rows read as SQLAlchemy's are, by attribute (row.kind) or as a mapping (row._mapping).
        plain: Any = namedtuple("Row", [column.key for column in statement.selected_columns])  # type: ignore[misc]
        self.row: Any = type("Row", (plain,), {"__slots__": (), "_mapping": property(plain._asdict)})
        self._compiled: dict[tuple[str, int], tuple[str, list[tuple[str, Any]], dict[str, Any], list[Any]]] = {}
        self._expanding = [name for name, bind in statement.compile().binds.items() if bind.expanding]

    def _for(self, dialect: Dialect, length: int) -> tuple[str, list[tuple[str, Any]], dict[str, Any], list[Any]]:
        ready = self._compiled.get((dialect.name, length))
        if ready is None:
            compiled = self.statement.compile(dialect=dialect)
            sql = str(compiled)
            names = list(compiled.positiontup if compiled.positional else compiled.binds)
            origin = {name: name for name in names}
            if self._expanding:
                # The statement as it reads for lists of this length: `ids` becomes ids_1 … ids_N.
                placeholders = {name: [None] * length if name in self._expanding else None for name in compiled.binds}
                state = compiled.construct_expanded_state(placeholders)
                sql = state.statement
                names = list(state.positiontup if compiled.positional else state.parameters)
                for base, expanded in state.parameter_expansion.items():
                    origin.update((name, base) for name in expanded)
            binds = [
                (name, compiled.binds[origin[name]].type.dialect_impl(dialect).bind_processor(dialect))
                for name in names
            ]
            columns = self.statement.selected_columns
            results = [column.type.dialect_impl(dialect).result_processor(dialect, None) for column in columns]
            ready = self._compiled[(dialect.name, length)] = (sql, binds, dict(compiled.params), results)
        return ready

    def _rows(self, conn: Connection, params: dict[str, Any], many: bool) -> list[Any]:
        length = len(params[self._expanding[0]]) if self._expanding else 0
        sql, binds, defaults, results = self._for(conn.dialect, length)
        given = {**defaults, **params}  # literals in the statement keep their compiled values
        for name in self._expanding:
            given.update((f"{name}_{n}", value) for n, value in enumerate(given[name], 1))
        values = [given[name] if bind is None else bind(given[name]) for name, bind in binds]
        cursor = conn.connection.dbapi_connection.cursor()  # type: ignore[union-attr]
        try:
            cursor.execute(
                sql, values if conn.dialect.positional else dict(zip([n for n, _ in binds], values, strict=True))
            )
            raw = cursor.fetchall() if many else cursor.fetchmany(1)
        finally:
            cursor.close()
        return [
            self.row(
                *[value if convert is None else convert(value) for convert, value in zip(results, row, strict=True)]
            )
            for row in raw
        ]

    def first(self, conn: Connection, **params: Any) -> Any:
        rows = self._rows(conn, params, many=False)
        return rows[0] if rows else None

    def all(self, conn: Connection, **params: Any) -> list[Any]:
        return self._rows(conn, params, many=True)
