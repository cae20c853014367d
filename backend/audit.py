"""The audit trail: every flushed change of an audited table becomes append-only rows."""

from __future__ import annotations

import enum
import json
import logging
from datetime import date, datetime
from decimal import Decimal

from sqlalchemy import TextClause, event, inspect, select
from sqlalchemy.orm import ORMExecuteState, Session, SessionTransaction

from backend import audit_chain
from backend.models import AuditEntry
from schedules.changes import current_actor, set_change_writer
from schedules.dbtypes import utcnow

log = logging.getLogger("backend.audit")

REDACTED = "<redacted>"

# Database-level refusal: no code path, ORM or raw SQL, can rewrite history.
SQLITE_TRIGGERS = [
    "CREATE TRIGGER IF NOT EXISTS audit_entry_no_update BEFORE UPDATE ON audit_entry "
    "BEGIN SELECT RAISE(ABORT, 'audit_entry is append-only'); END",
    "CREATE TRIGGER IF NOT EXISTS audit_entry_no_delete BEFORE DELETE ON audit_entry "
    "BEGIN SELECT RAISE(ABORT, 'audit_entry is append-only'); END",
]
POSTGRES_TRIGGERS = [
    "CREATE OR REPLACE FUNCTION audit_entry_refuse() RETURNS trigger LANGUAGE plpgsql AS $$ "
    "BEGIN RAISE EXCEPTION 'audit_entry is append-only'; END $$",
    "CREATE TRIGGER audit_entry_no_update BEFORE UPDATE OR DELETE ON audit_entry "
    "FOR EACH ROW EXECUTE FUNCTION audit_entry_refuse()",
    "CREATE TRIGGER audit_entry_no_truncate BEFORE TRUNCATE ON audit_entry "
    "FOR EACH STATEMENT EXECUTE FUNCTION audit_entry_refuse()",
]


def _text(value) -> str | None:
    if value is None:
        return None
    kind = type(value)
    if kind is str:  # most values: skip the checks below
        return value
    if kind is datetime or kind is date:  # the next most common (schedules): same text as below
        return value.isoformat()
    if kind is int or kind is bool or kind is float:  # ids, counts, flags: what the checks below end in
        return str(value)
    if isinstance(value, enum.Enum):
        return str(value.value)
    if isinstance(value, (datetime, date)):
        return value.isoformat()
    if isinstance(value, Decimal):
        return format(value, "f")
    return str(value)


def _shared_text():
    """_text that renders each datetime object once: bulk rows share one `now` across thousands of rows."""
    seen: dict[int, tuple] = {}

    def text(value) -> str | None:
        if type(value) is not datetime:
            return _text(value)
        hit = seen.get(id(value))
        if hit is None:  # the object is kept with its text: its id cannot be reused meanwhile
            hit = seen[id(value)] = (value, value.isoformat())
        return hit[1]

    return text


def _is_audited(obj) -> bool:
    return getattr(type(obj), "__audited__", False)


# json.dumps with options builds a new encoder per call; enrollment writes dozens of these rows.
_CREATE_JSON = json.JSONEncoder(ensure_ascii=False, sort_keys=True)


def _create_row(base: dict, values: dict, redact: set) -> dict:
    # One row per created entity, its values as JSON: complete, and 10x fewer rows than per field.
    shown = {key: (REDACTED if key in redact else _text(value)) for key, value in values.items() if value is not None}
    return {**base, "field": "*", "old_value": None, "new_value": _CREATE_JSON.encode(shown)}


def _update_rows(base: dict, changes, redact: set, *, text=_text) -> list[dict]:
    rows = []
    for key, old, new in changes:
        old, new = text(old), text(new)
        if old == new:
            continue
        if key in redact:
            old, new = REDACTED, REDACTED
        rows.append({**base, "field": key, "old_value": old, "new_value": new})
    return rows


def _rows_for(obj, action: str) -> list[dict]:
    """The audit rows of one flushed object, without the columns shared by the whole flush (see _SHARED)."""
    state = inspect(obj)
    mapper = state.mapper
    redact = getattr(type(obj), "__audit_redact__", set())
    keep = getattr(type(obj), "__audit_filter__", None)
    entity = str(mapper.local_table.name)  # plain text (not quoted_name): COPY takes it as it is
    # identity is not assigned yet in after_flush; the primary key attribute already is.
    entity_id = "/".join(str(v) for v in mapper.primary_key_from_instance(obj) if v is not None)
    base = dict(action=action, entity=entity, entity_id=entity_id)
    rows = []
    if action == "create":
        rows.append(_create_row(base, {attr.key: getattr(obj, attr.key) for attr in mapper.column_attrs}, redact))
    if action == "update":
        changes = []
        for attr in mapper.column_attrs:
            history = state.attrs[attr.key].history
            if history.has_changes():
                changes.append(
                    (
                        attr.key,
                        history.deleted[0] if history.deleted else None,
                        history.added[0] if history.added else None,
                    )
                )
        rows += _update_rows(base, changes, redact)
    if action == "delete":
        rows.append({**base, "field": "", "old_value": None, "new_value": None})
    if keep is not None:
        rows = [r for r in rows if keep(action, r["field"], r["old_value"], r["new_value"])]
    return rows


def _bulk_rows(model: type, created, updated) -> list[dict]:
    """The audit rows the flush listener would write for these bulk-written creates and updates (without the
    shared columns). Built for thousands of rows: per row only its own values are rendered, once."""
    if not getattr(model, "__audited__", False):
        return []
    redact = getattr(model, "__audit_redact__", set())
    keep = getattr(model, "__audit_filter__", None)
    mapper = inspect(model)
    entity = str(mapper.local_table.name)  # plain text (not quoted_name): COPY takes it as it is
    # In sorted order: the JSON below comes out as sort_keys makes it, without sorting each row again.
    keys = sorted(attr.key for attr in mapper.column_attrs)
    shown_keys = [(k, k in redact) for k in keys]
    pk = [col.key for col in mapper.primary_key]
    text, encode = _shared_text(), _CREATE_JSON.encode
    rows: list[dict] = []
    for values in created:
        entity_id = "/".join(str(values[k]) for k in pk if values.get(k) is not None)
        shown = {
            k: REDACTED if hidden else v if type(v) is str else text(v)
            for k, hidden in shown_keys
            if (v := values.get(k)) is not None
        }
        row = {
            "action": "create",
            "entity": entity,
            "entity_id": entity_id,
            "field": "*",
            "old_value": None,
            "new_value": encode(shown),
        }
        if keep is None or keep("create", "*", None, row["new_value"]):
            rows.append(row)
    for key, fields in updated:
        entity_id = "/".join(str(k) for k in (key if isinstance(key, tuple) else (key,)) if k is not None)
        changed = _update_rows(
            dict(action="update", entity=entity, entity_id=entity_id),
            [(f, old, new) for f, (old, new) in fields.items()],
            redact,
            text=text,
        )
        rows += [r for r in changed if keep is None or keep("update", r["field"], r["old_value"], r["new_value"])]
    return rows


def _shared(session: Session) -> dict:
    """The columns every audit row of one flush or bulk write shares: when, who, through what, why."""
    actor, reason = current_actor(session)
    return dict(at=session.info.get("now") or utcnow(), actor=actor.label, source=actor.source, reason=reason or "")


def _write_bulk_changes(session: Session, changes) -> None:
    """Audit rows for changes written with bulk SQL (schedules.changes.record_many): the same rows
    the flush listener writes for the same changes, for every model reported, in one statement."""
    rows: list[dict] = []
    for change in changes:
        rows += _bulk_rows(change.model, change.created, change.updated)
    if rows:
        _queue(session, rows)


def _after_flush(session: Session, flush_context) -> None:
    rows: list[dict] = []
    for obj in session.new:
        if _is_audited(obj):
            rows += _rows_for(obj, "create")
    for obj in session.dirty:
        if _is_audited(obj) and session.is_modified(obj, include_collections=False):
            rows += _rows_for(obj, "update")
    for obj in session.deleted:
        if _is_audited(obj):
            rows += _rows_for(obj, "delete")
    if rows:
        _queue(session, rows)


# Audit rows wait in the session until its transaction commits, and only then join the chain: the chain head
# is locked last, after every row lock the transaction takes, and held only while it commits. (Locked at the
# first flush, it would be held through the rest of the transaction, and two writers each holding a row the
# other needs next would deadlock behind it.) A read of the trail in the same transaction writes them first.
_PENDING = "audit_pending"  # [(the transaction or savepoint flushed in, rows, their shared columns)]
_APPENDED = "audit_appended"  # this transaction has appended (and holds the head): later rows go straight in
_COMMIT_SEEN = "audit_commit_seen"  # savepoints a before_commit was called in (see _before_commit)


def _queue(session: Session, rows: list[dict]) -> None:
    shared = _shared(session)
    if session.info.get(_APPENDED):
        audit_chain.append(session, [(rows, shared)])
        return
    flushed_in = session.get_nested_transaction() or session.get_transaction()
    session.info.setdefault(_PENDING, []).append((flushed_in, rows, shared))


def write_pending(session: Session) -> None:
    """Append the transaction's queued audit rows to the chain now (at commit, or before a read of the trail)."""
    pending = session.info.pop(_PENDING, None)
    if pending:
        audit_chain.append(session, [(rows, shared) for _, rows, shared in pending])
        session.info[_APPENDED] = True


def _before_commit(session: Session) -> None:
    session.flush()  # the last changes' rows are queued by this flush
    nested = session.get_nested_transaction()
    if nested is not None:
        # A savepoint's own commit keeps its rows queued for the transaction's. (Session.commit() closes open
        # savepoints first, so the transaction's call comes with none open.) But the transaction's own
        # SessionTransaction.commit() with a savepoint open calls this for the transaction and then again as it
        # commits the savepoint, before the savepoint closes: that second call is the last chance.
        seen = session.info.setdefault(_COMMIT_SEEN, set())
        if nested not in seen:
            seen.add(nested)
            return
    write_pending(session)


def _within(transaction: SessionTransaction | None, ancestor: SessionTransaction) -> bool:
    while transaction is not None:
        if transaction is ancestor:
            return True
        transaction = transaction.parent
    return False


def _after_soft_rollback(session: Session, previous_transaction: SessionTransaction) -> None:
    # A rolled-back savepoint (or transaction) takes its queued rows with it, as it takes its changes.
    pending = session.info.get(_PENDING)
    if pending:
        session.info[_PENDING] = [p for p in pending if not _within(p[0], previous_transaction)]


def _after_transaction_end(session: Session, transaction: SessionTransaction) -> None:
    session.info.get(_COMMIT_SEEN, set()).discard(transaction)
    if transaction.parent is None:
        session.info.pop(_PENDING, None)
        session.info.pop(_APPENDED, None)
        session.info.pop(_COMMIT_SEEN, None)


def _after_commit(session: Session) -> None:
    # (Called for a savepoint's release too: its rows rightly wait for the transaction's commit.)
    if session.info.get(_PENDING) and not session.in_nested_transaction():  # only if SQLAlchemy's calls change
        log.error("a transaction committed with %d audit row batch(es) not written", len(session.info[_PENDING]))


def _reads_trail(state: ORMExecuteState) -> bool:
    """A query of AuditEntry (its primary mapper: cheap, where listing a statement's FROMs costs ~1 ms), or
    SQL text naming the table."""
    if isinstance(state.statement, TextClause):
        return AuditEntry.__tablename__ in state.statement.text
    mapper = state.bind_mapper
    return mapper is not None and mapper.class_ is AuditEntry


def _before_execute(state: ORMExecuteState) -> None:
    session = state.session
    # Not inside a savepoint: rows written there would go if it rolls back, while the changes they record stay.
    if session.info.get(_PENDING) and not session.in_nested_transaction() and _reads_trail(state):
        write_pending(session)  # the transaction sees its own audit rows


_HOOKS = [
    ("after_flush", _after_flush),
    ("before_commit", _before_commit),
    ("after_soft_rollback", _after_soft_rollback),
    ("after_transaction_end", _after_transaction_end),
    ("after_commit", _after_commit),
    ("do_orm_execute", _before_execute),
]


def install_audit_listener() -> None:
    """Register the audit hooks on every ORM session (idempotent)."""
    for name, hook in _HOOKS:
        if not event.contains(Session, name, hook):
            event.listen(Session, name, hook)
    set_change_writer(_write_bulk_changes)


def record_operator_action(session: Session, *, action: str, entity: str, entity_id: str, detail: dict) -> None:
    """One audit row for an operator's action on the data as a whole (a backup): who and when from the
    session's actor, what and where in `detail`; written in the session's transaction."""
    row = {
        "action": action,
        "entity": entity,
        "entity_id": entity_id,
        "field": "",
        "old_value": None,
        "new_value": _CREATE_JSON.encode(detail),
    }
    _queue(session, [row])


def field_changes(session: Session, *, entity: str, entity_id: int, field: str) -> list[AuditEntry]:
    """The audited updates of one field of one row, oldest first (who, when, old, new, why)."""
    return list(
        session.scalars(
            select(AuditEntry)
            .where(
                AuditEntry.entity == entity,
                AuditEntry.entity_id == str(entity_id),
                AuditEntry.field == field,
                AuditEntry.action == "update",
            )
            .order_by(AuditEntry.id)
        )
    )
