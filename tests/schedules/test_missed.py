"""The missed-dose job: closes windows once, opens one alert, escalates the second in a row, scales with what closed."""

from __future__ import annotations

from datetime import date, timedelta

from sqlalchemy import event, insert, text
from sqlmodel import select

from backend.web.alert_text import alert_summary
from schedules.changes import Actor
from schedules.doses import report_dose
from schedules.missed import _closed, flag_missed_doses
from schedules.models import Alert, Dose
from schedules.queries import dose_by_seq
from tests.conftest import utc
from tests.factories import make_participant, make_site, make_study

SMS = Actor("sms", "participant:1")


def test_unanswered_dose_is_missed_when_window_closes_then_reported_late(session, clock):
    participant = make_participant(session)
    first = dose_by_seq(session, participant, 1)
    report_dose(session, dose=first, taken=True, actor=SMS, now=utc("2026-03-01T12:30Z"))
    dose = dose_by_seq(session, participant, 2)
    assert dose.local_date == date(2026, 3, 3) and dose.window_closes_at == utc("2026-03-04T04:00Z")

    assert flag_missed_doses(session, now=utc("2026-03-04T03:59Z")).flagged == 0
    report = flag_missed_doses(session, now=utc("2026-03-04T04:01Z"))
    assert report.flagged == 1 and report.alerts_opened == 1 and dose.state == "missed"
    again = flag_missed_doses(session, now=utc("2026-03-04T04:02Z"))
    assert again.flagged == 0 and again.alerts_opened == 0
    alerts = session.exec(select(Alert).where(Alert.participant_id == participant.id)).all()
    assert [(a.kind, a.priority, a.state) for a in alerts] == [("missed_dose", "normal", "open")]

    report_dose(session, dose=dose, taken=True, actor=SMS, now=utc("2026-03-04T06:00Z"))
    assert dose.state == "taken_late"
    # Accounted for: nobody needs to call about it, and the queue says why it closed.
    assert alerts[0].state == "resolved" and alerts[0].resolution_note.endswith("taken late")


def test_second_missed_in_a_row_is_high_priority(session):
    participant = make_participant(session)
    flag_missed_doses(session, now=utc("2026-03-02T04:01Z"))
    flag_missed_doses(session, now=utc("2026-03-04T04:01Z"))
    alerts = session.exec(select(Alert).where(Alert.participant_id == participant.id).order_by(Alert.id)).all()
    assert [a.priority for a in alerts] == ["normal", "high"]


def test_unreachable_participant_gets_contact_problem_not_missed(session):
    participant = make_participant(session)
    dose = dose_by_seq(session, participant, 1)
    flag_missed_doses(session, now=utc("2026-03-02T04:01Z"), undelivered=lambda ids: {dose.id} & set(ids))
    alert = session.exec(select(Alert).where(Alert.participant_id == participant.id)).one()
    assert alert.kind == "contact_problem" and "not delivered" in alert_summary(alert)


def test_job_touches_only_closed_windows_among_100000_doses(session, database):
    study, site = make_study(session), make_site(session)
    participant = make_participant(session, study=study, site=site)
    base = utc("2027-01-01T00:00Z")
    rows = [
        dict(
            participant_id=participant.id,
            seq=1000 + i,
            local_date=date(2027, 1, 1) + timedelta(days=i // 50),
            due_at=base + timedelta(minutes=i),
            window_opens_at=base + timedelta(minutes=i),
            window_closes_at=base + timedelta(days=400, minutes=i),
            state="scheduled",
            note="",
            updated_at=base,
        )
        for i in range(100_000)
    ]
    session.execute(insert(Dose), rows)
    closed_by = utc("2026-03-20T04:01Z")  # participant's first 10 doses (1..19 March) have closed
    assert len(_closed(session, now=closed_by, batch=5000)) == 10  # the only read not by id: what closed, no more
    loaded = []

    def count_dose(_session, obj):
        if isinstance(obj, Dose):
            loaded.append(obj.id)

    event.listen(session, "loaded_as_persistent", count_dose)
    try:
        report = flag_missed_doses(session, now=closed_by)
    finally:
        event.remove(session, "loaded_as_persistent", count_dose)
    assert report.flagged == 10
    assert loaded == []  # no ORM objects: every later statement goes by the flagged ids
    plan = _plan(session, closed_by)
    assert "ix_dose_state_window_closes" in plan, plan


def _plan(session, now) -> str:
    dialect = session.get_bind().dialect.name
    sql = (
        "SELECT id FROM dose WHERE state = 'scheduled' AND window_closes_at <= :now"
        " ORDER BY window_closes_at LIMIT 5000"
    )
    value = now if dialect == "postgresql" else now.replace(tzinfo=None).isoformat(sep=" ")
    if dialect == "postgresql":
        session.execute(text("ANALYZE dose"))
        return "\n".join(r[0] for r in session.execute(text("EXPLAIN " + sql), {"now": value}))
    return "\n".join(str(r[-1]) for r in session.execute(text("EXPLAIN QUERY PLAN " + sql), {"now": value}))
