"""Prepared statements for the hot statements: the public API's page and submit, and
the spam check's reads and transition (PostgreSQL; any other database gets the ORM)."""

from __future__ import annotations

import time
from functools import lru_cache
from typing import Any, TypeVar

from django.db import connections, router
from django.db.backends.postgresql.base import ServerBindingCursor
from django.db.models import (
    AutoField,
    BooleanField,
    CharField,
    EmailField,
    F,
    Field,
    Model,
    SlugField,
    TextField,
    URLField,
)

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

    @property
    def rowcount(self) -> int:
        return self.cursor.rowcount

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


def first(model: type[ModelT], using: str | None = None) -> ModelT | None:
    """`model.objects.order_by("pk").first()` as a prepared statement on PostgreSQL
    (a singleton row such as the moderation rules, read by every check)."""
    using = using or router.db_for_read(model)
    if connections[using].vendor != "postgresql":
        return model.objects.using(using).order_by("pk").first()
    sql, names = _select_by_sql(model, None, None)
    with prepared_cursor(using) as cursor:
        cursor.execute(sql)
        row = cursor.fetchone()
    return None if row is None else model.from_db(using, names, row)


@lru_cache(maxsize=16)
def _select_by_sql(
    model: type[Model], field: str | None, only: tuple[str, ...] | None
) -> tuple[str, list[str]]:
    meta = model._meta
    quote = connections["default"].ops.quote_name
    fields = [f for f in meta.concrete_fields if only is None or f.primary_key or f.name in only]
    columns = ", ".join(quote(f.column) for f in fields)
    table = quote(meta.db_table)
    if field is None:
        sql = f"SELECT {columns} FROM {table} ORDER BY {quote(meta.pk.column)} LIMIT 1"  # noqa: S608 (names from the model)
    else:
        where = quote(meta.get_field(field).column)
        sql = f"SELECT {columns} FROM {table} WHERE {where} = %s LIMIT 1"  # noqa: S608 (names from the model)
    return sql, [f.attname for f in fields]


def exists(model: type[Model], where: dict[str, object], using: str | None = None) -> bool:
    """`model.objects.filter(**where).exists()` as a prepared statement on PostgreSQL
    (see `_conditions` for `where`). For the guard of a rarer, richer ORM query on a
    hot path."""
    using = using or router.db_for_read(model)
    connection = connections[using]
    if connection.vendor != "postgresql":
        return model.objects.using(using).filter(**_orm_lookups(where)).exists()
    shape, params = _conditions(model, where, connection)
    sql = f"SELECT 1 FROM {_table(model)} WHERE {_where_sql(model, shape)} LIMIT 1"  # noqa: S608 (names from the model)
    with prepared_cursor(using) as cursor:
        cursor.execute(sql, params)
        return cursor.fetchone() is not None


def update_where(
    model: type[Model],
    where: dict[str, object],
    values: dict[str, object],
    using: str | None = None,
) -> int:
    """`model.objects.filter(**where).update(**values)` as a prepared statement on
    PostgreSQL (see `_conditions` for `where`); returns the number of rows changed.
    Values are prepared as QuerySet.update prepares them (a foreign key takes an
    instance, or its id under its attname). For the transitions a worker applies on
    every check, where compiling the ORM query cost more than running it."""
    using = using or router.db_for_write(model)
    connection = connections[using]
    if connection.vendor != "postgresql":
        return model.objects.using(using).filter(**_orm_lookups(where)).update(**values)
    meta = model._meta
    params = []
    for name, value in values.items():
        model_field = meta.get_field(name)
        if hasattr(value, "prepare_database_save"):  # a model instance for a foreign key
            value = value.prepare_database_save(model_field)
        params.append(model_field.get_db_prep_save(value, connection=connection))
    shape, where_params = _conditions(model, where, connection)
    sql = _update_sql(model, tuple(values), shape)
    with prepared_cursor(using) as cursor:
        cursor.execute(sql, params + where_params)
        return cursor.rowcount


def _conditions(
    model: type[Model], where: dict[str, object], connection: Any
) -> tuple[tuple[tuple[str, int], ...], list[object]]:
    """The shape of `where` (per field: -1 for IS NULL, 0 for =, n for IN of n values)
    and its parameters. `where` names fields; a list or tuple means IN, None IS NULL."""
    shape, params = [], []
    for name, value in where.items():
        if value is None:
            shape.append((name, -1))
            continue
        values = value if isinstance(value, list | tuple) else [value]
        shape.append((name, len(values) if isinstance(value, list | tuple) else 0))
        model_field = model._meta.get_field(name)
        params += [model_field.get_db_prep_value(item, connection) for item in values]
    return tuple(shape), params


def _orm_lookups(where: dict[str, object]) -> dict[str, object]:
    """The same conditions as ORM lookups, for the other databases."""
    lookups: dict[str, object] = {}
    for name, value in where.items():
        if value is None:
            lookups[f"{name}__isnull"] = True
        elif isinstance(value, list | tuple):
            lookups[f"{name}__in"] = value
        else:
            lookups[name] = value
    return lookups


@lru_cache(maxsize=64)
def _where_sql(model: type[Model], shape: tuple[tuple[str, int], ...]) -> str:
    quote = connections["default"].ops.quote_name
    conditions = []
    for name, size in shape:
        column = quote(model._meta.get_field(name).column)
        if size < 0:
            conditions.append(f"{column} IS NULL")
        elif size == 0:
            conditions.append(f"{column} = %s")
        else:
            conditions.append(f"{column} IN ({', '.join(['%s'] * size)})")
    return " AND ".join(conditions)


@lru_cache(maxsize=64)
def _update_sql(
    model: type[Model], names: tuple[str, ...], shape: tuple[tuple[str, int], ...]
) -> str:
    quote = connections["default"].ops.quote_name
    assignments = ", ".join(f"{quote(model._meta.get_field(name).column)} = %s" for name in names)
    return f"UPDATE {_table(model)} SET {assignments} WHERE {_where_sql(model, shape)}"  # noqa: S608 (names from the model)


def _table(model: type[Model]) -> str:
    return connections["default"].ops.quote_name(model._meta.db_table)


def add_to(
    model: type[Model], pk: object, field: str, delta: int, using: str | None = None
) -> None:
    """`UPDATE ... SET field = field + delta WHERE pk = pk`, prepared on PostgreSQL."""
    using = using or router.db_for_write(model)
    if connections[using].vendor != "postgresql":
        model.objects.using(using).filter(pk=pk).update(**{field: F(field) + delta})
        return
    meta = model._meta
    quote = connections[using].ops.quote_name
    column = quote(meta.get_field(field).column)
    sql = (
        f"UPDATE {quote(meta.db_table)} SET {column} = {column} + %s "  # noqa: S608 (names from the model)
        f"WHERE {quote(meta.pk.column)} = %s"
    )
    with prepared_cursor(using) as cursor:
        cursor.execute(sql, [delta, pk])


def insert(instance: Model, using: str | None = None) -> None:
    """INSERT `instance` as `save()` would for a new row (defaults, auto_now_add), as a
    prepared statement on PostgreSQL, and set its primary key. Sends no signals: for
    rows that have no receivers, such as the audit events."""
    model = type(instance)
    using = using or router.db_for_write(model)
    connection = connections[using]
    if connection.vendor != "postgresql":
        instance.save(using=using, force_insert=True)
        return
    columns, params = insert_columns(instance, connection)
    quote = connection.ops.quote_name
    sql = (
        f"INSERT INTO {quote(model._meta.db_table)} ({columns[0]}) VALUES ({columns[1]}) "  # noqa: S608 (names from the model)
        f"RETURNING {quote(model._meta.pk.column)}"
    )
    with prepared_cursor(using) as cursor:
        cursor.execute(sql, params)
        instance.pk = cursor.fetchone()[0]
    instance._state.adding = False
    instance._state.db = using


def insert_columns(
    instance: Model,
    connection: Any,
    expressions: dict[str, str] | None = None,
) -> tuple[tuple[str, str], list[object]]:
    """("col, col, ...", "%s, expr, ...") and the parameters of an INSERT of `instance`:
    every concrete field but the auto primary key, prepared as Model.save prepares it
    (defaults, auto_now_add); `expressions` puts SQL in place of some attnames."""
    columns, fields = _insert_plan(
        type(instance), tuple(sorted((expressions or {}).items())), connection.vendor
    )
    params = []
    for model_field, plain_type, plain_pre_save in fields:
        if plain_pre_save:
            value = getattr(instance, model_field.attname)
        else:
            value = model_field.pre_save(instance, add=True)
        if plain_type is not None and (value is None or type(value) is plain_type):
            params.append(value)  # what get_db_prep_save would return, without the calls
        else:
            params.append(model_field.get_db_prep_save(value, connection=connection))
    return columns, params


# Field classes whose get_db_prep_save returns a value of this type (or None) unchanged.
_PLAIN_TYPES: dict[type[Field], type] = {
    CharField: str, TextField: str, EmailField: str, URLField: str, SlugField: str,
    BooleanField: bool,
}  # fmt: skip


@lru_cache(maxsize=32)
def _insert_plan(
    model: type[Model], expressions: tuple[tuple[str, str], ...], vendor: str
) -> tuple[tuple[str, str], tuple[tuple[Field, type | None, bool], ...]]:
    """The column list, the VALUES list and, for each bound field, how to read and
    prepare its value: worked out once per model, not for every submit (issue 7)."""
    quote = connections["default"].ops.quote_name
    sql_for = dict(expressions)
    columns, values, fields = [], [], []
    for model_field in model._meta.local_concrete_fields:
        if model_field.primary_key and isinstance(model_field, AutoField):
            continue
        columns.append(quote(model_field.column))
        if model_field.attname in sql_for:
            values.append(sql_for[model_field.attname])
            continue
        values.append("%s")
        plain_pre_save = type(model_field).pre_save is Field.pre_save
        fields.append((model_field, _PLAIN_TYPES.get(type(model_field)), plain_pre_save))
    return (", ".join(columns), ", ".join(values)), tuple(fields)
