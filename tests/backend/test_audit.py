"""The audit trail: every change lands with who, when, why — and the database refuses to rewrite it."""

from __future__ import annotations

import json

import pytest
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError
from sqlmodel import select

from backend.models import AuditEntry
from schedules.changes import Actor
from schedules.participants import hold_dosing
from tests.conftest import utc
from tests.factories import make_participant


def test_enrollment_and_hold_are_audited_with_actor_and_reason(session, clock):
    clock.move_to(utc("2026-03-05T00:00Z"))
    participant = make_participant(session)
    hold_dosing(
        session,
        participant=participant,
        reason="platelets low",
        effective=participant.first_dose_date,
        actor=Actor("staff", "staff:7"),
        now=utc("2026-03-05T00:00Z"),
    )
    rows = session.exec(
        select(AuditEntry).where(AuditEntry.entity == "participant", AuditEntry.entity_id == str(participant.id))
    ).all()
    created = next(r for r in rows if r.action == "create")
    values = json.loads(created.new_value)
    assert values["study_code"] == "P-001" and created.reason == "enrollment" and created.field == "*"
    assert values["phone_ciphertext"] == "<redacted>"  # personal data never copied into the trail
    status = next(r for r in rows if r.field == "status" and r.action == "update")
    assert (status.old_value, status.new_value, status.actor, status.source, status.reason) == (
        "active",
        "on_hold",
        "staff:staff:7",
        "staff",
        "platelets low",
    )


@pytest.mark.parametrize("statement", ["UPDATE audit_entry SET reason = 'rewritten'", "DELETE FROM audit_entry"])
def test_database_refuses_to_rewrite_the_audit_trail(session, statement):
    make_participant(session)
    count = len(session.exec(select(AuditEntry)).all())
    assert count > 0
    with pytest.raises(DBAPIError, match="append-only"):
        with session.begin_nested():
            session.execute(text(statement))
    assert len(session.exec(select(AuditEntry).where(AuditEntry.reason == "rewritten")).all()) == 0
    assert len(session.exec(select(AuditEntry)).all()) == count
