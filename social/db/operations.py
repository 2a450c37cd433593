"""Migration operations that a large table can take while the service runs.

On PostgreSQL, ``CREATE INDEX`` and ``DROP INDEX`` hold a lock that stops every
write to the table (and ``DROP`` every read) until they finish or, waiting for
the lock, queue everything behind them; the ``CONCURRENTLY`` forms do not. They
cannot run inside a transaction, so a migration using these sets
``atomic = False``. Elsewhere (SQLite: the tests, the default run) the plain
statement is used: there is no one else to lock out.
"""

from __future__ import annotations

from typing import Any

from django.contrib.postgres import operations as postgres_operations
from django.db import migrations


class DropIndexConcurrently(migrations.RunSQL):
    """Drop a single-column index by name (``CONCURRENTLY`` on PostgreSQL); reversed, create it again.

    For the index Django made for a ``ForeignKey`` that is now ``db_index=False``:
    pair it with that ``AlterField`` in ``SeparateDatabaseAndState`` so the
    schema editor's own, locking, ``DROP INDEX`` never runs.
    """

    def __init__(self, *, table: str, column: str, name: str) -> None:
        self.table, self.column, self.name = table, column, name
        super().__init__(sql="", reverse_sql="", elidable=False)

    def deconstruct(self) -> tuple[str, list[Any], dict[str, Any]]:
        return self.__class__.__qualname__, [], {"table": self.table, "column": self.column, "name": self.name}

    def _statement(self, schema_editor: Any, *, drop: bool) -> str:
        concurrently = " CONCURRENTLY" if schema_editor.connection.vendor == "postgresql" else ""
        quote = schema_editor.quote_name
        if drop:
            return f"DROP INDEX{concurrently} IF EXISTS {quote(self.name)}"
        return (
            f"CREATE INDEX{concurrently} IF NOT EXISTS {quote(self.name)} ON {quote(self.table)} ({quote(self.column)})"
        )

    def database_forwards(self, app_label: str, schema_editor: Any, from_state: Any, to_state: Any) -> None:
        self._ensure_outside_transaction(schema_editor)
        schema_editor.execute(self._statement(schema_editor, drop=True))

    def database_backwards(self, app_label: str, schema_editor: Any, from_state: Any, to_state: Any) -> None:
        self._ensure_outside_transaction(schema_editor)
        schema_editor.execute(self._statement(schema_editor, drop=False))

    def _ensure_outside_transaction(self, schema_editor: Any) -> None:
        if schema_editor.connection.vendor == "postgresql" and schema_editor.connection.in_atomic_block:
            raise RuntimeError(f"{self.describe()} needs a migration with atomic = False (CONCURRENTLY)")

    def describe(self) -> str:
        return f"Drop index {self.name} on {self.table} without locking the table"


class _ConcurrentlyOnPostgres:
    """Django's ``CONCURRENTLY`` operation on PostgreSQL; the plain one (``plain``) elsewhere, where
    ``django.contrib.postgres`` would pass an argument the schema editor does not take."""

    plain: type[migrations.operations.base.Operation]

    def database_forwards(self, app_label: str, schema_editor: Any, from_state: Any, to_state: Any) -> None:
        if schema_editor.connection.vendor == "postgresql":
            super().database_forwards(app_label, schema_editor, from_state, to_state)
        else:
            self.plain.database_forwards(self, app_label, schema_editor, from_state, to_state)

    def database_backwards(self, app_label: str, schema_editor: Any, from_state: Any, to_state: Any) -> None:
        if schema_editor.connection.vendor == "postgresql":
            super().database_backwards(app_label, schema_editor, from_state, to_state)
        else:
            self.plain.database_backwards(self, app_label, schema_editor, from_state, to_state)


_INDEX_VALID_SQL = "SELECT i.indisvalid FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid WHERE c.relname = %s"


class AddIndexConcurrently(_ConcurrentlyOnPostgres, postgres_operations.AddIndexConcurrently):
    """``AddIndex`` that builds the index with ``CREATE INDEX CONCURRENTLY`` on PostgreSQL.

    Safe to run again after a failure: an index an earlier run finished is kept,
    and the invalid one a failed (or cancelled) concurrent build leaves is built again.
    """

    plain = migrations.AddIndex

    def database_forwards(self, app_label: str, schema_editor: Any, from_state: Any, to_state: Any) -> None:
        if schema_editor.connection.vendor == "postgresql":
            with schema_editor.connection.cursor() as cursor:
                cursor.execute(_INDEX_VALID_SQL, [self.index.name])
                found = cursor.fetchone()
            if found is not None and found[0]:
                return
            if found is not None:
                schema_editor.execute(f"DROP INDEX CONCURRENTLY IF EXISTS {schema_editor.quote_name(self.index.name)}")
        super().database_forwards(app_label, schema_editor, from_state, to_state)


class RemoveIndexConcurrently(_ConcurrentlyOnPostgres, postgres_operations.RemoveIndexConcurrently):
    """``RemoveIndex`` that drops the index with ``DROP INDEX CONCURRENTLY`` on PostgreSQL."""

    plain = migrations.RemoveIndex
