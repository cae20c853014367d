"""A participant's audit trail: the audit rows of every audited table whose rows belong to that participant.

A table joins the trail by declaring on its model how its rows name a participant:

- `__audit_participant__ = "participant_id"`: the column holding the participant's id (`"id"` on the
  participant table itself);
- `__audit_participant__ = staticmethod(fn)`: `fn(participant_id)` returns a SELECT of the ids of the rows
  concerning that participant, for a table that concerns several at once (an export and its link table);
- `__audit_participant__ = None`: deliberately left out (say why beside it).

Every audited table with a `participant_id` column must declare one of these (tests/backend/test_participant_trail.py).
"""

from __future__ import annotations

from typing import Callable

from sqlalchemy import String, cast, or_, select
from sqlalchemy.sql import Select
from sqlmodel import Session, SQLModel

# Every model module, so the registry below is complete however this module was reached.
import backend.identity.models  # noqa: F401
import notifications.models  # noqa: F401
import schedules.models  # noqa: F401
from backend.models import AuditEntry

UNDECLARED = object()


def _by_column(model: type, column: str) -> Callable[[int], Select]:
    key = model.__mapper__.primary_key[0]
    return lambda participant_id: select(cast(key, String)).where(getattr(model, column) == participant_id)


def _by_function(fn: Callable[[int], Select]) -> Callable[[int], Select]:
    def ids(participant_id: int) -> Select:
        rows = fn(participant_id).subquery()
        return select(cast(list(rows.c)[0], String))

    return ids


def audited_models() -> list[type]:
    """Every mapped model whose changes are audited, by table name."""
    models = [m.class_ for m in SQLModel._sa_registry.mappers if getattr(m.class_, "__audited__", False)]
    return sorted(models, key=lambda m: m.__tablename__)


def participant_tables() -> dict[str, Callable[[int], Select]]:
    """Table name -> participant id -> SELECT of the ids (as text, as `audit_entry.entity_id`) of its rows in
    that participant's trail."""
    tables = {}
    for model in audited_models():
        declared = getattr(model, "__audit_participant__", UNDECLARED)
        if declared is None or declared is UNDECLARED:
            continue
        by = _by_column(model, declared) if isinstance(declared, str) else _by_function(declared)
        tables[model.__tablename__] = by
    return tables


def trail_statement(participant_id: int) -> Select:
    """The SELECT of the participant's audit rows, oldest first: per table, its ids found through its participant
    index, then their audit rows through the entity_id index (never a scan of the whole trail)."""
    clauses = [
        (AuditEntry.entity == table) & AuditEntry.entity_id.in_(ids(participant_id))
        for table, ids in participant_tables().items()
    ]
    return select(AuditEntry).where(or_(*clauses)).order_by(AuditEntry.id)


def participant_trail(session: Session, participant_id: int) -> list[AuditEntry]:
    """Every audit row of the participant's own rows (details, consent, doses, VAS, adverse events, alerts,
    app access, ...), oldest first."""
    return list(session.scalars(trail_statement(participant_id)))
