"""Changes written with bulk SQL land in the audit trail exactly as the flush would have written them."""

from __future__ import annotations

import json

from sqlmodel import select

from backend.models import AuditEntry
from schedules.changes import Actor, acting, record_changes
from schedules.models import Alert
from schedules.queries import dose_by_seq
from tests.conftest import utc
from tests.factories import make_participant

STAFF = Actor("staff", "staff:3")
FIELDS = ("actor", "source", "action", "entity", "field", "old_value", "new_value", "reason")


def _trail(session, entity: str, entity_id) -> list[tuple]:
    rows = session.exec(
        select(AuditEntry)
        .where(AuditEntry.entity == entity, AuditEntry.entity_id == str(entity_id))
        .order_by(AuditEntry.id)
    ).all()
    return [tuple(getattr(r, f) for f in FIELDS) for r in rows]


def test_bulk_create_writes_the_same_row_as_the_flush(session):
    participant = make_participant(session)
    values = dict(
        participant_id=participant.id,
        site_id=participant.site_id,
        kind="missed_dose",
        priority="high",
        ref_type="dose",
        ref_id=7,
        dedupe_key="k:orm",
        summary="dose 7 missed",
        opened_at=utc("2026-03-02T04:01Z"),
    )
    with acting(session, STAFF, "because"):
        orm = Alert(**values)
        session.add(orm)
    bulk = Alert(**{**values, "dedupe_key": "k:bulk"})
    with acting(session, STAFF, "because"):
        session.add(bulk)
        session.flush()
        # Take the flushed row's values as if it had been inserted with SQL, and report it.
        columns = {c.key: getattr(bulk, c.key) for c in Alert.__table__.columns}
        session.expunge(bulk)
    before = len(_trail(session, "alert", bulk.id))
    with acting(session, STAFF, "because"):
        record_changes(session, Alert, created=[columns])
    orm_rows, bulk_rows = _trail(session, "alert", orm.id), _trail(session, "alert", bulk.id)[before:]
    assert len(orm_rows) == 1 and len(bulk_rows) == 1
    assert orm_rows[0][:5] == bulk_rows[0][:5] and orm_rows[0][-1] == bulk_rows[0][-1] == "because"
    assert (
        orm_rows[0][6].replace("k:orm", "k:bulk").replace(f'"id": "{orm.id}"', f'"id": "{bulk.id}"') == bulk_rows[0][6]
    )


def test_bulk_update_writes_one_row_per_changed_field_and_redacts(session):
    participant = make_participant(session)
    dose = dose_by_seq(session, participant, 1)
    with acting(session, STAFF, "fix"):
        record_changes(
            session,
            type(dose),
            updated=[
                (
                    dose.id,
                    {
                        "state": ("scheduled", "missed"),
                        "note": ("", ""),
                        "updated_at": (utc("2026-03-01T00:00Z"), utc("2026-03-02T00:00Z")),
                    },
                )
            ],
        )
        record_changes(session, type(participant), updated=[(participant.id, {"phone_hash": ("a", "b")})])
    rows = _trail(session, "dose", dose.id)
    assert [r for r in rows if r[2] == "update"] == [
        ("staff:staff:3", "staff", "update", "dose", "state", "scheduled", "missed", "fix"),
        (
            "staff:staff:3",
            "staff",
            "update",
            "dose",
            "updated_at",
            "2026-03-01T00:00:00+00:00",
            "2026-03-02T00:00:00+00:00",
            "fix",
        ),
    ]
    phone = [r for r in _trail(session, "participant", participant.id) if r[4] == "phone_hash"]
    assert phone == [
        ("staff:staff:3", "staff", "update", "participant", "phone_hash", "<redacted>", "<redacted>", "fix")
    ]


def test_enrolled_schedule_is_audited_like_a_flushed_dose(session):
    participant = make_participant(session)
    enrolled = dose_by_seq(session, participant, 2)
    rows = session.exec(
        select(AuditEntry).where(AuditEntry.entity == "dose", AuditEntry.entity_id == str(enrolled.id))
    ).all()
    assert [(r.action, r.field, r.reason) for r in rows] == [("create", "*", "enrollment")]
    with acting(session, STAFF, "by hand"):
        orm = type(enrolled)(
            **{
                k: getattr(enrolled, k)
                for k in ("participant_id", "local_date", "due_at", "window_opens_at", "window_closes_at", "updated_at")
            },
            seq=999,
        )
        session.add(orm)
    by_hand = session.exec(
        select(AuditEntry).where(AuditEntry.entity == "dose", AuditEntry.entity_id == str(orm.id))
    ).one()
    bulk_values, orm_values = json.loads(rows[0].new_value), json.loads(by_hand.new_value)
    assert {**bulk_values, "id": "x", "seq": "x"} == {**orm_values, "id": "x", "seq": "x"}
    assert bulk_values["id"] == str(enrolled.id) and bulk_values["state"] == "scheduled"
