"""Bulk SQL on the session's transaction: many rows in one statement, large IN lists as one parameter."""

from __future__ import annotations

import enum
import json
from datetime import date, datetime, timezone
from decimal import Decimal
from typing import Sequence

from sqlalchemy import String, Table, any_, bindparam, cast, text
from sqlalchemy.orm import Session


def _json_value(value):
    if isinstance(value, datetime):
        if value.tzinfo is None:
            raise ValueError("naive datetime given where an aware UTC one is required")
        return value.astimezone(timezone.utc).isoformat()
    if isinstance(value, (date, Decimal)):
        return str(value)
    if isinstance(value, enum.Enum):
        return value.value
    raise TypeError(f"cannot bulk-insert a {type(value).__name__}")


def _pg_insert_sql(dialect, table: Table, columns: list, shared: list, returning: Sequence[str], conflict_keys: Sequence[str]) -> str:
    quote = dialect.identifier_preparer.quote
    names = ", ".join(quote(c.name) for c in shared + columns)
    record = ", ".join(f"{quote(c.name)} {c.type.compile(dialect=dialect)}" for c in columns)
    # Shared values as parameters cast to the column's type (its base type: length checks stay with the insert,
    # as they are for the JSON fields), in the select list beside the per-row fields.
    values = ", ".join([f"CAST(:shared_{i} AS {_base_type(c, dialect)})" for i, c in enumerate(shared)] + [quote(c.name) for c in columns])
    return (f"INSERT INTO {quote(table.name)} ({names}) SELECT {values} FROM json_to_recordset(CAST(:bulk_rows AS json)) AS bulk({record})"
            + (f" ON CONFLICT ({', '.join(quote(table.c[k].name) for k in conflict_keys)}) DO NOTHING" if conflict_keys else "")
            + (f" RETURNING {', '.join(quote(table.c[k].name) for k in returning)}" if returning else ""))


def _base_type(column, dialect) -> str:
    """The column's type without a length: text for any string type, else its own."""
    return "TEXT" if isinstance(column.type, String) else column.type.compile(dialect=dialect)


def _shared_value(value):
    """A shared value as a parameter: as it would travel in the JSON rows (datetimes as UTC ISO text)."""
    if value is None or isinstance(value, (str, bool, int, float)):
        return value
    return _json_value(value)


# The statement text depends only on these; building it costs more than running a small insert.
_pg_sql_cache: dict[tuple, str] = {}


def bulk_insert(session: Session, table: Table, rows: Sequence[dict], *, returning: Sequence[str] = (),
                skip_conflicts_on: str | Sequence[str] | None = None, shared: dict | None = None) -> list[tuple]:
    """Insert many rows in one statement on the session's transaction; the `returning` columns of
    the rows inserted. On PostgreSQL the rows travel as one JSON parameter (json_to_recordset):
    one short statement and no per-value parameter handling, however many rows; elsewhere an
    executemany. `shared` holds values every row has (sent once, not per row). With `skip_conflicts_on`
    (a unique column, or the columns of a unique constraint), rows whose values there exist already are
    left out. Values are plain: numbers, text, booleans, dates and aware datetimes."""
    if not rows:
        return []
    shared = shared or {}
    if shared.keys() & rows[0].keys():
        raise ValueError(f"columns both shared and per row: {sorted(shared.keys() & rows[0].keys())}")
    connection = session.connection()
    dialect = connection.dialect
    conflict_keys = (skip_conflicts_on,) if isinstance(skip_conflicts_on, str) else tuple(skip_conflicts_on or ())
    columns = [c for c in table.columns if c.key in rows[0]]
    if dialect.name == "postgresql":
        shared_columns = [c for c in table.columns if c.key in shared]
        key = (table.name, tuple(c.key for c in columns), tuple(c.key for c in shared_columns), tuple(returning), conflict_keys)
        sql = _pg_sql_cache.get(key)
        if sql is None:
            sql = _pg_sql_cache[key] = _pg_insert_sql(dialect, table, columns, shared_columns, returning, conflict_keys)
        if len(rows[0]) == len(columns) and all(c.name == c.key for c in columns):
            # The rows as they are (json_to_recordset picks fields by name): no copy of every row re-keyed.
            payload = json.dumps(rows, default=_json_value, ensure_ascii=False)
        else:
            payload = json.dumps([{c.name: r[c.key] for c in columns} for r in rows], default=_json_value, ensure_ascii=False)
        params = {f"shared_{i}": _shared_value(shared[c.key]) for i, c in enumerate(shared_columns)}
        result = connection.execute(text(sql), {"bulk_rows": payload, **params})
    else:
        from sqlalchemy.dialects.sqlite import insert as dialect_insert

        statement = dialect_insert(table)
        if conflict_keys:
            statement = statement.on_conflict_do_nothing(index_elements=[table.c[k] for k in conflict_keys])
        if returning:
            statement = statement.returning(*[table.c[k] for k in returning])
        result = connection.execute(statement, [{**shared, **r} for r in rows] if shared else list(rows))
    return [tuple(r) for r in result] if returning else []


def in_values(session: Session, column, values: Sequence):
    """`column IN values` as one array parameter on PostgreSQL (a list of a thousand parameters costs
    more to send and parse than the query itself), a plain IN elsewhere."""
    values = list(values)
    if session.get_bind().dialect.name == "postgresql":
        from sqlalchemy.dialects.postgresql import ARRAY

        return column == any_(cast(bindparam(None, values, type_=ARRAY(column.type)), ARRAY(column.type)))
    return column.in_(values)
