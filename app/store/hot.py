"""The runtime's hottest statements, executed on SQLite's driver without SQLAlchemy's execution layer.

SQLAlchemy's execution of one small statement (execution context, events, result object)
costs several times what SQLite takes to run it, and the runtime's batch runs a few of them
per step (a record's UPDATE, a task's INSERT, the run's save). `execute` compiles such a
statement once per set of parameter names, keeps its SQL text and bind processors (the same
ones SQLAlchemy would apply: JSON, UTC date-times), and runs it on the DBAPI cursor of the
caller's connection, in the caller's transaction and savepoints. A driver error is raised
as SQLAlchemy would wrap it (`DBAPIError.instance`), so callers catch the same exceptions.

Anything else (PostgreSQL, a statement with a default to compute) goes through
`Connection.execute` as before.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable
from typing import Any, Final

from sqlalchemy import Connection
from sqlalchemy.exc import DBAPIError
from sqlalchemy.sql import Executable

# (statement, its parameter names) -> (SQL, [(parameter name, bind processor)]), or None
# when the driver path cannot run it (a value SQLAlchemy computes itself).
_FORMS: Final[dict[tuple[Executable, tuple[str, ...]], tuple[str, list[tuple[str, Callable[[Any], Any] | None]]]
                   | None]] = {}


def _form(conn: Connection, statement: Executable, names: tuple[str, ...],
          ) -> tuple[str, list[tuple[str, Callable[[Any], Any] | None]]] | None:
    key = (statement, names)
    if key in _FORMS:
        return _FORMS[key]
    compiled: Any = statement.compile(dialect=conn.dialect, column_keys=list(names))  # type: ignore[attr-defined]
    order = compiled.positiontup
    form = None
    if order is not None and set(order) <= set(names) and not compiled.insert_prefetch \
            and not compiled.update_prefetch:
        processors = compiled._bind_processors
        form = (compiled.string, [(name, processors.get(name)) for name in order])
    _FORMS[key] = form
    return form


def execute(conn: Connection, statement: Executable, params: dict[str, Any]) -> Any:
    """Run `statement` with `params`; on SQLite a DBAPI cursor (`rowcount`, `fetchone()`),
    elsewhere SQLAlchemy's result, which answers the same two."""
    if conn.dialect.name != "sqlite":
        return conn.execute(statement, params)
    form = _form(conn, statement, tuple(params))
    if form is None:
        return conn.execute(statement, params)
    sql, binds = form
    values = [params[name] if process is None else process(params[name]) for name, process in binds]
    cursor = conn.connection.driver_connection.cursor()  # type: ignore[union-attr]
    try:
        cursor.execute(sql, values)
    except sqlite3.Error as exc:
        raise DBAPIError.instance(sql, values, exc, sqlite3.Error) from exc
    return cursor


def scalar(conn: Connection, statement: Executable, params: dict[str, Any]) -> Any:
    """The first column of the one row `statement` returns (an INSERT's RETURNING id)."""
    result = execute(conn, statement, params)
    try:
        row = result.fetchone()
        assert row is not None, "the statement returned no row"
        return row[0]
    finally:
        result.close()  # a RETURNING statement is finished before the transaction goes on
