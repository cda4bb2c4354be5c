"""Prepared statements for the few hot statements of the public API (PostgreSQL only)."""

from __future__ import annotations

import time
from functools import lru_cache
from typing import Any, TypeVar

from django.db import connections, router
from django.db.backends.postgresql.base import ServerBindingCursor
from django.db.models import Model

ModelT = TypeVar("ModelT", bound=Model)


class PreparingCursor(ServerBindingCursor):
    """Binds on the server and prepares every statement it runs."""

    def execute(self, query: Any, params: Any = None, **options: Any) -> Any:
        return super().execute(query, params, prepare=True)


def prepared_cursor(using: str) -> Any:
    """A cursor whose statements PostgreSQL parses and plans once per connection.

    For the hot statements (the comment page, the submit): the page statement
    took longer to plan than to run, and client-side binding costs Python time
    for every parameter. Django binds parameters on the client (no prepared
    statements, for the sake of connection poolers); this cursor binds on the
    server and prepares. Behind PgBouncer in transaction mode that needs
    max_prepared_statements (PgBouncer 1.21+). It is wrapped like any Django
    cursor: errors, query logging and counting.
    """
    connection = connections[using]
    connection.ensure_connection()
    connection.validate_thread_sharing()
    if connection.connection.prepare_threshold is None:
        # Django's None turns preparing off altogether; a threshold never reached
        # lets only `prepare=True` prepare (Django's own cursors bind on the client
        # and never prepare).
        connection.connection.prepare_threshold = 2**31 - 1
    cursor = connection.make_cursor(PreparingCursor(connection.connection))
    return _LoggedCursor(cursor) if connection.queries_logged else cursor


class _LoggedCursor:
    """Records the statement in connection.queries, as Django's debug cursor does
    (which cannot show a prepared statement's text)."""

    def __init__(self, cursor: Any) -> None:
        self.cursor = cursor

    def __enter__(self) -> _LoggedCursor:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.cursor.close()

    def execute(self, sql: str, params: Any = None) -> Any:
        start = time.monotonic()
        try:
            return self.cursor.execute(sql, params)
        finally:
            self.cursor.db.queries_log.append(
                {
                    "sql": self.cursor.db.ops.compose_sql(sql, params),
                    "time": f"{time.monotonic() - start:.3f}",
                }
            )

    def fetchone(self) -> tuple[Any, ...] | None:
        return self.cursor.fetchone()

    def fetchall(self) -> list[tuple[Any, ...]]:
        return self.cursor.fetchall()


def get_by(
    model: type[ModelT],
    field: str,
    value: object,
    only: tuple[str, ...] | None = None,
    using: str | None = None,
) -> ModelT | None:
    """`model.objects.filter(field=value).only(*only).first()` as a prepared statement
    on PostgreSQL (any other database: the ORM). For look-ups on a unique field in
    hot paths; a field left out is loaded when first read, as with `only`."""
    using = using or router.db_for_read(model)
    if connections[using].vendor != "postgresql":
        found = model.objects.using(using).filter(**{field: value})
        return (found.only(*only) if only else found).first()
    sql, names = _select_by_sql(model, field, only)
    with prepared_cursor(using) as cursor:
        cursor.execute(sql, [value])
        row = cursor.fetchone()
    return None if row is None else model.from_db(using, names, row)


@lru_cache(maxsize=16)
def _select_by_sql(
    model: type[Model], field: str, only: tuple[str, ...] | None
) -> tuple[str, list[str]]:
    meta = model._meta
    fields = [f for f in meta.concrete_fields if only is None or f.primary_key or f.name in only]
    columns = ", ".join(connections["default"].ops.quote_name(f.column) for f in fields)
    where = connections["default"].ops.quote_name(meta.get_field(field).column)
    table = connections["default"].ops.quote_name(meta.db_table)
    sql = f"SELECT {columns} FROM {table} WHERE {where} = %s LIMIT 1"  # noqa: S608 (names from the model)
    return sql, [f.attname for f in fields]
