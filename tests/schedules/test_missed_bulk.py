"""The missed-dose job writes in bulk but keeps the full record: dose events, alerts and audit rows."""

from __future__ import annotations

import json

from sqlmodel import select

from backend.audit import _text
from backend.models import AuditEntry
from backend.web.alert_text import alert_summary
from schedules.changes import Actor
from schedules.doses import missed_alert_key, report_dose, transition
from schedules.missed import flag_missed_doses
from schedules.models import Alert, DoseEvent
from schedules.queries import dose_by_seq
from tests.conftest import utc
from tests.factories import make_participant

SMS = Actor("sms", "participant:1")


def test_every_change_of_the_job_is_audited_and_recorded_as_a_dose_event(session):
    participant = make_participant(session)
    dose = dose_by_seq(session, participant, 1)
    old_updated = dose.updated_at
    report = flag_missed_doses(session, now=utc("2026-03-02T04:01Z"))
    assert report.flagged == 1 and report.alerts_opened == 1 and dose.state == "missed"
    event = session.exec(select(DoseEvent).where(DoseEvent.dose_id == dose.id)).one()
    assert (event.from_state, event.to_state, event.source, event.actor, event.note) == (
        "scheduled",
        "missed",
        "job",
        "job:flag_missed_doses",
        "window closed without a report",
    )
    updates = session.exec(
        select(AuditEntry).where(
            AuditEntry.entity == "dose", AuditEntry.entity_id == str(dose.id), AuditEntry.action == "update"
        )
    ).all()
    assert {(u.field, u.old_value, u.new_value) for u in updates} == {
        ("state", "scheduled", "missed"),
        ("updated_at", old_updated.isoformat(), "2026-03-02T04:01:00+00:00"),
    }
    assert {(u.actor, u.source, u.reason) for u in updates} == {
        ("job:flag_missed_doses", "job", "window closed without a report")
    }
    alert = session.exec(select(Alert).where(Alert.dedupe_key == missed_alert_key(dose.id))).one()
    created = session.exec(
        select(AuditEntry).where(AuditEntry.entity == "alert", AuditEntry.entity_id == str(alert.id))
    ).one()
    values = json.loads(created.new_value)
    assert (created.action, created.field, created.actor, created.source) == (
        "create",
        "*",
        "job:flag_missed_doses",
        "job",
    )
    assert values["kind"] == "missed_dose" and values["state"] == "open" and values["ref_id"] == str(dose.id)
    assert "deadline_at" not in values and values["id"] == str(alert.id)

    # The loaded dose follows the database without a second audit row at the next flush; a late report still works.
    session.flush()
    assert (
        len(
            session.exec(
                select(AuditEntry).where(
                    AuditEntry.entity == "dose", AuditEntry.entity_id == str(dose.id), AuditEntry.action == "update"
                )
            ).all()
        )
        == 2
    )
    report_dose(session, dose=dose, taken=True, actor=SMS, now=utc("2026-03-02T06:00Z"))
    assert dose.state == "taken_late"


def test_existing_alert_is_kept_and_not_counted(session):
    participant = make_participant(session)
    dose = dose_by_seq(session, participant, 1)
    session.add(
        Alert(
            participant_id=participant.id,
            site_id=participant.site_id,
            kind="missed_dose",
            dedupe_key=missed_alert_key(dose.id),
            summary="opened by hand",
            opened_at=utc("2026-03-02T04:00Z"),
        )
    )
    session.flush()
    report = flag_missed_doses(session, now=utc("2026-03-02T04:01Z"))
    assert report.flagged == 1 and report.alerts_opened == 0
    alerts = session.exec(select(Alert).where(Alert.participant_id == participant.id)).all()
    assert [a.summary for a in alerts] == ["opened by hand"]


def test_dose_reported_in_the_same_session_before_the_run_is_not_flagged(session):
    participant = make_participant(session)
    dose = dose_by_seq(session, participant, 1)
    report_dose(session, dose=dose, taken=False, actor=SMS, now=utc("2026-03-02T03:00Z"))
    report = flag_missed_doses(session, now=utc("2026-03-02T04:01Z"))
    assert report.flagged == 0 and dose.state == "skipped"


def test_two_misses_in_one_run_make_the_second_high_priority(session):
    participant = make_participant(session)
    first, second = dose_by_seq(session, participant, 1), dose_by_seq(session, participant, 2)
    report = flag_missed_doses(session, now=utc("2026-03-04T04:01Z"))  # both windows closed since the last run
    assert report.flagged == 2 and report.high_priority == 1
    alerts = {a.ref_id: a for a in session.exec(select(Alert).where(Alert.participant_id == participant.id)).all()}
    assert (alerts[first.id].priority, alert_summary(alerts[first.id])) == (
        "normal",
        f"dose 1 ({first.local_date.isoformat()}) missed",
    )
    assert (alerts[second.id].priority, alert_summary(alerts[second.id])) == (
        "high",
        f"dose 2 ({second.local_date.isoformat()}) missed: second in a row",
    )


def test_held_dose_between_two_misses_does_not_break_the_row(session):
    participant = make_participant(session)
    flag_missed_doses(session, now=utc("2026-03-02T04:01Z"))
    transition(session, dose_by_seq(session, participant, 2), "held", actor=SMS, at=utc("2026-03-02T05:00Z"))
    session.flush()
    third = dose_by_seq(session, participant, 3)
    report = flag_missed_doses(session, now=third.window_closes_at)
    assert report.flagged == 1 and report.high_priority == 1
    alert = session.exec(select(Alert).where(Alert.ref_id == third.id)).one()
    assert alert_summary(alert) == f"dose 3 ({third.local_date.isoformat()}) missed: second in a row"


def test_contact_problem_summary_and_the_audit_row_holds_every_stored_value(session):
    participant = make_participant(session)
    dose = dose_by_seq(session, participant, 1)
    report = flag_missed_doses(session, now=utc("2026-03-02T04:01Z"), undelivered=lambda ids: {dose.id} & set(ids))
    assert report.contact_problems == 1 and report.high_priority == 0
    alert = session.exec(select(Alert).where(Alert.ref_id == dose.id)).one()
    assert (alert.kind, alert.priority, alert.state, alert.dedupe_key, alert.site_id) == (
        "contact_problem",
        "normal",
        "open",
        missed_alert_key(dose.id),
        participant.site_id,
    )
    assert alert_summary(alert) == f"dose 1 ({dose.local_date.isoformat()}) missed, and its reminder was not delivered"
    created = session.exec(
        select(AuditEntry).where(AuditEntry.entity == "alert", AuditEntry.entity_id == str(alert.id))
    ).one()
    # What the flush listener would have written for the same row: every non-null column, as text.
    stored = {c.key: _text(getattr(alert, c.key)) for c in Alert.__table__.columns if getattr(alert, c.key) is not None}
    assert json.loads(created.new_value) == stored
