"""Rows of hand-written statements, read as the ORM would read them, for the wire.

The reads that run on every socket connect and every page of history are
written in SQL: building the same queries through the ORM costs ~0.5-1.5 ms of
CPU each on the benchmark machine, several times the statement itself, and a
restart's reconnect storm is bound by that CPU (docs/benchmarks.md, issue #19).
Their rows become these slotted objects, which ``social.realtime.protocol``
reads as it reads model instances.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from django.db import connection
from django.db.models import Model


@dataclass(slots=True)
class WireUser:
    """The columns of a user ``protocol.user_dict`` reads."""

    pk: int
    username: str


def one_row(sql: str, params: Any) -> tuple[Any, ...] | None:
    """The first row of a hand-written statement (None when it has none)."""
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        return cursor.fetchone()


def all_rows(sql: str, params: Any) -> list[tuple[Any, ...]]:
    """Every row of a hand-written statement."""
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        return cursor.fetchall()


def first_column(sql: str, params: Any) -> list[Any]:
    """The first column of every row of a hand-written statement."""
    return [row[0] for row in all_rows(sql, params)]


def db_time(value: datetime) -> Any:
    """An aware datetime as a statement's parameter, as the ORM would pass it (SQLite: UTC text)."""
    return connection.ops.adapt_datetimefield_value(value)


def converted_rows(sql: str, params: dict[str, Any], fields: dict[int, Any]) -> list[list[Any]]:
    """The rows of a hand-written statement with ``fields``' columns (position -> model field) read as
    the ORM would read them: SQLite's text datetimes and 0/1 booleans, both databases' JSON text."""
    rows = all_rows(sql, params)
    converters = []
    for position, field in fields.items():
        column = field.get_col(field.model._meta.db_table)
        functions = connection.ops.get_db_converters(column) + column.get_db_converters(connection)
        if functions:
            converters.append((position, column, functions))
    if not converters:
        return [list(row) for row in rows]
    converted = []
    for row in rows:
        values = list(row)
        for position, column, functions in converters:
            for function in functions:
                values[position] = function(values[position], column, connection)
        converted.append(values)
    return converted


def first_instance(model: type[Model], where: str, params: dict[str, Any]) -> Any:
    """The first row of ``model``'s table matching ``where`` (SQL on its columns), as a model
    instance, or None: ``Manager.raw``, which skips building a query (~0.3 ms of CPU against
    ~0.8 ms for the same ``filter().first()`` on the benchmark machine)."""
    # The columns by name, as the ORM lists them: ``SELECT *`` would change its result's
    # shape under a prepared statement when a migration adds a column.
    columns = ", ".join(field.column for field in model._meta.concrete_fields)
    rows = model._default_manager.raw(f"SELECT {columns} FROM {model._meta.db_table} WHERE {where} LIMIT 1", params)
    return next(iter(rows), None)
