"""The audit trail: every flushed change of an audited table becomes append-only rows."""

from __future__ import annotations

import enum
import json
from datetime import date, datetime
from decimal import Decimal

from sqlalchemy import event, inspect
from sqlalchemy.orm import Session

from backend.models import AuditEntry
from schedules.bulk import bulk_insert
from schedules.changes import current_actor, set_change_writer
from schedules.dbtypes import utcnow

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
    if isinstance(value, enum.Enum):
        return str(value.value)
    if isinstance(value, (datetime, date)):
        return value.isoformat()
    if isinstance(value, Decimal):
        return format(value, "f")
    return str(value)


def _is_audited(obj) -> bool:
    return getattr(type(obj), "__audited__", False)


# json.dumps with options builds a new encoder per call; enrollment writes dozens of these rows.
_CREATE_JSON = json.JSONEncoder(ensure_ascii=False, sort_keys=True)


def _create_row(base: dict, values: dict, redact: set) -> dict:
    # One row per created entity, its values as JSON: complete, and 10x fewer rows than per field.
    shown = {key: (REDACTED if key in redact else _text(value)) for key, value in values.items() if value is not None}
    return {**base, "field": "*", "old_value": None, "new_value": _CREATE_JSON.encode(shown)}


def _update_rows(base: dict, changes, redact: set) -> list[dict]:
    rows = []
    for key, old, new in changes:
        if _text(old) == _text(new):
            continue
        if key in redact:
            old, new = REDACTED, REDACTED
        rows.append({**base, "field": key, "old_value": _text(old), "new_value": _text(new)})
    return rows


def _rows_for(obj, action: str, actor: str, source: str, reason: str, at: datetime) -> list[dict]:
    state = inspect(obj)
    mapper = state.mapper
    redact = getattr(type(obj), "__audit_redact__", set())
    keep = getattr(type(obj), "__audit_filter__", None)
    entity = mapper.local_table.name
    # identity is not assigned yet in after_flush; the primary key attribute already is.
    entity_id = "/".join(str(v) for v in mapper.primary_key_from_instance(obj) if v is not None)
    base = dict(at=at, actor=actor, source=source, action=action, entity=entity, entity_id=entity_id, reason=reason or "")
    rows = []
    if action == "create":
        rows.append(_create_row(base, {attr.key: getattr(obj, attr.key) for attr in mapper.column_attrs}, redact))
    if action == "update":
        changes = []
        for attr in mapper.column_attrs:
            history = state.attrs[attr.key].history
            if history.has_changes():
                changes.append((attr.key, history.deleted[0] if history.deleted else None, history.added[0] if history.added else None))
        rows += _update_rows(base, changes, redact)
    if action == "delete":
        rows.append({**base, "field": "", "old_value": None, "new_value": None})
    if keep is not None:
        rows = [r for r in rows if keep(action, r["field"], r["old_value"], r["new_value"])]
    return rows


def _bulk_rows(model: type, created, updated, *, actor, reason: str | None, at: datetime) -> list[dict]:
    """The audit rows the flush listener would write for these bulk-written creates and updates."""
    if not getattr(model, "__audited__", False):
        return []
    redact = getattr(model, "__audit_redact__", set())
    keep = getattr(model, "__audit_filter__", None)
    mapper = inspect(model)
    entity = mapper.local_table.name
    keys = [attr.key for attr in mapper.column_attrs]
    pk = [col.key for col in mapper.primary_key]

    def base(action: str, entity_id: str) -> dict:
        return dict(at=at, actor=actor.label, source=actor.source, action=action, entity=entity, entity_id=entity_id, reason=reason or "")

    rows: list[dict] = []
    for values in created:
        entity_id = "/".join(str(values[k]) for k in pk if values.get(k) is not None)
        row = _create_row(base("create", entity_id), {k: values.get(k) for k in keys}, redact)
        if keep is None or keep("create", row["field"], row["old_value"], row["new_value"]):
            rows.append(row)
    for key, fields in updated:
        entity_id = "/".join(str(k) for k in (key if isinstance(key, tuple) else (key,)) if k is not None)
        changed = _update_rows(base("update", entity_id), [(f, old, new) for f, (old, new) in fields.items()], redact)
        rows += [r for r in changed if keep is None or keep("update", r["field"], r["old_value"], r["new_value"])]
    return rows


def _write_bulk_changes(session: Session, changes) -> None:
    """Audit rows for changes written with bulk SQL (schedules.changes.record_many): the same rows
    the flush listener writes for the same changes, for every model reported, in one statement."""
    actor, reason = current_actor(session)
    at = session.info.get("now") or utcnow()
    rows: list[dict] = []
    for change in changes:
        rows += _bulk_rows(change.model, change.created, change.updated, actor=actor, reason=reason, at=at)
    if rows:
        bulk_insert(session, AuditEntry.__table__, rows)


def _after_flush(session: Session, flush_context) -> None:
    actor, reason = current_actor(session)
    at = session.info.get("now") or utcnow()
    rows: list[dict] = []
    for obj in session.new:
        if _is_audited(obj):
            rows += _rows_for(obj, "create", actor.label, actor.source, reason, at)
    for obj in session.dirty:
        if _is_audited(obj) and session.is_modified(obj, include_collections=False):
            rows += _rows_for(obj, "update", actor.label, actor.source, reason, at)
    for obj in session.deleted:
        if _is_audited(obj):
            rows += _rows_for(obj, "delete", actor.label, actor.source, reason, at)
    if rows:
        # Core insert on the flush's own connection: same transaction, no second flush.
        bulk_insert(session, AuditEntry.__table__, rows)


def install_audit_listener() -> None:
    """Register the audit hook on every ORM session (idempotent)."""
    if not event.contains(Session, "after_flush", _after_flush):
        event.listen(Session, "after_flush", _after_flush)
    set_change_writer(_write_bulk_changes)
