"""Bulk SQL on the session's transaction: many rows in one statement (or COPY), large IN lists as one parameter."""

from __future__ import annotations

import enum
import json
from datetime import date, datetime, timezone
from decimal import Decimal
from operator import itemgetter
from typing import Sequence

from sqlalchemy import Table, TextClause, any_, bindparam, cast, insert, text, update
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


def _pg_insert_sql(dialect, table: Table, columns: list, returning: Sequence[str], conflict_keys: Sequence[str]) -> str:
    quote = dialect.identifier_preparer.quote
    names = ", ".join(quote(c.name) for c in columns)
    record = ", ".join(f"{quote(c.name)} {c.type.compile(dialect=dialect)}" for c in columns)
    return (
        f"INSERT INTO {quote(table.name)} ({names}) SELECT {names}"
        f" FROM json_to_recordset(CAST(:bulk_rows AS json)) AS bulk({record})"
        + (
            f" ON CONFLICT ({', '.join(quote(table.c[k].name) for k in conflict_keys)}) DO NOTHING"
            if conflict_keys
            else ""
        )
        + (f" RETURNING {', '.join(quote(table.c[k].name) for k in returning)}" if returning else "")
    )


# The statement depends only on these; building it costs more than running a small insert. Kept as the text()
# clause itself: one made anew would be compiled anew at every call (SQLAlchemy caches by clause).
_pg_sql_cache: dict[tuple, TextClause] = {}
# Values COPY takes as psycopg renders them; anything else is rendered as the JSON rows render it.
_PLAIN = frozenset({str, int, float, bool, type(None)})


def _plain(value):
    if type(value) in _PLAIN:
        return value
    if isinstance(value, str) and not isinstance(value, enum.Enum):  # e.g. a table's quoted_name: its text, as in JSON
        return str(value)
    return _json_value(value)


def _pg_copy(connection, table: Table, columns: list, groups: Sequence[tuple[dict, Sequence[dict]]]) -> None:
    """COPY the rows in on the session's own connection (same transaction): PostgreSQL's cheapest way in,
    with no JSON to parse and heap pages filled a batch of rows at a time; values as the JSON rows carry them.
    Each group is (values its rows share, rows); every group has the same shared columns."""
    quote = connection.dialect.identifier_preparer.quote
    shared_columns = [c for c in table.columns if c.key in groups[0][0]]
    pick = itemgetter(*[c.key for c in columns])
    single = len(columns) == 1
    names = ", ".join(quote(c.name) for c in shared_columns + columns)
    with connection.connection.driver_connection.cursor() as cursor:
        with cursor.copy(f"COPY {quote(table.name)} ({names}) FROM STDIN") as copy:
            for shared, rows in groups:
                head = tuple(_plain(shared[c.key]) for c in shared_columns)
                for row in rows:
                    values = (pick(row),) if single else pick(row)
                    if not _PLAIN.issuperset(map(type, values)):
                        values = tuple(map(_plain, values))
                    copy.write_row(head + values)


def bulk_insert(
    session: Session,
    table: Table,
    rows: Sequence[dict],
    *,
    returning: Sequence[str] = (),
    skip_conflicts_on: str | Sequence[str] | None = None,
    shared: dict | None = None,
) -> list[tuple]:
    """Insert many rows in one statement on the session's transaction; the `returning` columns of
    the rows inserted. On PostgreSQL plain inserts are one COPY, and inserts that return values or skip
    conflicts carry the rows as one JSON parameter (json_to_recordset): no per-value parameter handling,
    however many rows; elsewhere an executemany. `shared` holds the values every row has (rendered and, with
    COPY, looked up once). With `skip_conflicts_on` (a unique column, or the columns of a unique constraint),
    rows whose values there exist already are left out. Values are plain: numbers, text, booleans, dates
    and aware datetimes."""
    if not rows:
        return []
    shared = shared or {}
    if shared.keys() & rows[0].keys():
        raise ValueError(f"columns both shared and per row: {sorted(shared.keys() & rows[0].keys())}")
    connection = session.connection()
    dialect = connection.dialect
    conflict_keys = (skip_conflicts_on,) if isinstance(skip_conflicts_on, str) else tuple(skip_conflicts_on or ())
    columns = [c for c in table.columns if c.key in rows[0]]
    if dialect.name == "postgresql" and not returning and not conflict_keys:
        _pg_copy(connection, table, columns, [(shared, rows)])
        return []
    if shared:
        rows = [{**shared, **r} for r in rows]
        columns = [c for c in table.columns if c.key in rows[0]]
    if dialect.name == "postgresql":
        result = _pg_json_insert(
            connection, table, columns, rows, returning=tuple(returning), conflict_keys=conflict_keys
        )
    else:
        statement = _dialect_insert(dialect.name, table)
        if conflict_keys:
            statement = statement.on_conflict_do_nothing(index_elements=[table.c[k] for k in conflict_keys])
        if returning:
            statement = statement.returning(*[table.c[k] for k in returning])
        result = connection.execute(statement, list(rows))
    return [tuple(r) for r in result] if returning else []


def _dialect_insert(dialect_name: str, table: Table):
    """The dialect's own INSERT construct (the one with ON CONFLICT): PostgreSQL's, else SQLite's."""
    if dialect_name == "postgresql":
        from sqlalchemy.dialects.postgresql import insert as dialect_insert
    else:
        from sqlalchemy.dialects.sqlite import insert as dialect_insert
    return dialect_insert(table)


_insert_once_cache: dict[tuple, object] = {}


def insert_once(session: Session, table: Table, values: dict, *, unique_on: str, returning: str) -> object | None:
    """Insert one row unless a row with the same `unique_on` value exists; the `returning` column of the row
    inserted, None when it was skipped (a concurrent copy is waited for). The statement is built once per
    dialect and table: the SMS webhook's first write, where building it cost as much as running it."""
    connection = session.connection()
    key = (connection.dialect.name, table.name, unique_on, returning)
    statement = _insert_once_cache.get(key)
    if statement is None:
        statement = _insert_once_cache[key] = (
            _dialect_insert(connection.dialect.name, table)
            .on_conflict_do_nothing(index_elements=[table.c[unique_on]])
            .returning(table.c[returning])
        )
    return connection.execute(statement, values).scalar()


_update_insert_cache: dict[tuple, tuple] = {}


def update_then_insert(
    session: Session,
    updated: Table,
    row_id: int,
    changes: dict,
    inserted: Table,
    values: dict,
    *,
    returning: str | None = None,
) -> object | None:
    """UPDATE one row of `updated` (by id) with `changes` and INSERT `values` into `inserted`; the `returning`
    column of the new row. One round trip on PostgreSQL (the UPDATE as a data-modifying WITH, which runs to
    completion whether or not the INSERT reads it), two elsewhere; built once per set of columns."""
    connection = session.connection()
    one_trip = connection.dialect.name == "postgresql"
    key = (one_trip, updated.name, tuple(changes), inserted.name, tuple(values), returning)
    statements = _update_insert_cache.get(key)
    if statements is None:
        update_row = (
            update(updated)
            .where(updated.c.id == bindparam("u_id", type_=updated.c.id.type))
            .values({k: bindparam(f"u_{k}", type_=updated.c[k].type) for k in changes})
        )
        insert_row = insert(inserted).values({k: bindparam(f"i_{k}", type_=inserted.c[k].type) for k in values})
        if returning:
            insert_row = insert_row.returning(inserted.c[returning])
        statements = (insert_row.add_cte(update_row.cte("updated_row")),) if one_trip else (update_row, insert_row)
        _update_insert_cache[key] = statements
    update_params = {"u_id": row_id, **{f"u_{k}": v for k, v in changes.items()}}
    insert_params = {f"i_{k}": v for k, v in values.items()}
    if one_trip:
        result = connection.execute(statements[0], {**update_params, **insert_params})
    else:
        connection.execute(statements[0], update_params)
        result = connection.execute(statements[1], insert_params)
    return result.scalar() if returning else None


# Up to this many rows one JSON parameter beats COPY's extra round trips; beyond it COPY's speed wins.
FEW_ROWS = 64


def _pg_json_insert(
    connection, table: Table, columns: list, rows, *, returning=(), conflict_keys=(), then: str = "", params=None
):
    """The rows as one JSON parameter (json_to_recordset); with `then` (a statement with `params`), that
    statement runs after the insert in the same round trip (the insert as a data-modifying WITH)."""
    key = (table.name, tuple(c.key for c in columns), returning, conflict_keys, then)
    statement = _pg_sql_cache.get(key)
    if statement is None:
        sql = _pg_insert_sql(connection.dialect, table, columns, returning, conflict_keys)
        statement = _pg_sql_cache[key] = text(f"WITH inserted AS ({sql}) {then}" if then else sql)
    payload = json.dumps([{c.name: r[c.key] for c in columns} for r in rows], default=_json_value, ensure_ascii=False)
    return connection.execute(statement, {**(params or {}), "bulk_rows": payload})


_then_cache: dict[str, TextClause] = {}


def bulk_insert_then(
    session: Session, table: Table, groups: Sequence[tuple[Sequence[dict], dict]], then: str, params: dict
) -> None:
    """bulk_insert_groups, then the SQL statement `then` with its bound `params` (the same text every time, so
    it is compiled once): on PostgreSQL both in one round trip for a few rows (where a lock is held until
    commit, every round trip inside counts), COPY and a second statement for many."""
    groups = [(rows, shared) for rows, shared in groups if rows]
    connection = session.connection()
    if connection.dialect.name == "postgresql" and groups and sum(len(rows) for rows, _ in groups) <= FEW_ROWS:
        flat = [{**shared, **row} for rows, shared in groups for row in rows]
        columns = [c for c in table.columns if c.key in flat[0]]
        _pg_json_insert(connection, table, columns, flat, then=then, params=params)
        return
    bulk_insert_groups(session, table, groups)
    statement = _then_cache.get(then)
    if statement is None:
        statement = _then_cache[then] = text(then)
    connection.execute(statement, params)


def bulk_insert_groups(session: Session, table: Table, groups: Sequence[tuple[Sequence[dict], dict]]) -> None:
    """Insert groups of rows, each (rows, the values they share), all with the same columns: one COPY for
    every group on PostgreSQL (a round trip per group saved), bulk_insert per group elsewhere."""
    groups = [(rows, shared) for rows, shared in groups if rows]
    if not groups:
        return
    connection = session.connection()
    if connection.dialect.name != "postgresql":
        for rows, shared in groups:
            bulk_insert(session, table, rows, shared=shared)
        return
    columns = [c for c in table.columns if c.key in groups[0][0][0]]
    _pg_copy(connection, table, columns, [(shared, rows) for rows, shared in groups])


def in_values(session: Session, column, values: Sequence):
    """`column IN values` as one array parameter on PostgreSQL (a list of a thousand parameters costs
    more to send and parse than the query itself), a plain IN elsewhere."""
    values = list(values)
    if session.get_bind().dialect.name == "postgresql":
        from sqlalchemy.dialects.postgresql import ARRAY

        return column == any_(cast(bindparam(None, values, type_=ARRAY(column.type)), ARRAY(column.type)))
    return column.in_(values)
