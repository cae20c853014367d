"""After the sender was down, stale messages are expired with the reason, whichever job sees them first;
none is cancelled silently and none goes out late."""

from datetime import date

from sqlmodel import select

from backend.config import replace_settings
from backend.models import AuditEntry
from backend.runtime.jobs import run_job
from notifications.models import OutboundMessage, OutboxStatus
from tests.conftest import utc
from tests.factories import make_participant
from tests.sms_helpers import fresh, received, run_all_jobs, standin, twilio  # noqa: F401 (fixtures)


def test_a_six_hour_outage_expires_every_stale_message_even_when_planning_runs_first(
    app, session, clock, twilio, database
):
    clock.move_to(utc("2026-03-01T06:00Z"))
    make_participant(session, first_dose=date(2026, 3, 1), now=utc("2026-03-01T06:00Z"))
    session.commit()
    run_all_jobs(app)  # the 20:00 local reminder (asking the VAS prompt too) is planned; then the sender goes down
    with fresh(database) as s:
        evening = [row.id for row in s.exec(select(OutboundMessage)).all() if row.due_at == utc("2026-03-01T12:00Z")]
    assert len(evening) == 1

    clock.move_to(utc("2026-03-01T18:00Z"))  # six hours later; planning runs before the expiry job
    run_job(app, "plan_messages")
    run_all_jobs(app)

    with fresh(database) as s:
        rows = [s.get(OutboundMessage, row_id) for row_id in evening]
        audit = s.exec(
            select(AuditEntry).where(
                AuditEntry.entity == "outboundmessage",
                AuditEntry.entity_id.in_([str(row_id) for row_id in evening]),
                AuditEntry.field == "status",
            )
        ).all()
        cancelled = s.exec(select(OutboundMessage).where(OutboundMessage.status == OutboxStatus.CANCELLED.value)).all()
    assert {row.status for row in rows} == {OutboxStatus.EXPIRED.value}
    assert cancelled == []
    assert len(audit) == 1 and all(a.new_value == "expired" and "too late" in a.reason for a in audit)
    assert [row for _, row in received(twilio, database) if row.id in evening] == []


def test_a_digest_held_up_past_its_day_is_expired_with_the_reason_never_sent_the_next_morning(
    app, session, clock, twilio, database
):
    clock.move_to(utc("2026-03-01T00:30Z"))  # 08:30 in Beijing: past DIGEST_LOCAL_HOUR
    make_participant(session, first_dose=date(2026, 3, 1), now=utc("2026-03-01T00:30Z"))
    session.commit()
    replace_settings(app.config, DIGEST_WHEN_EMPTY=True)  # a digest even with no alert open
    run_job(app, "send_daily_digest")  # queued; then the sender is down all day
    with fresh(database) as s:
        (digest,) = s.exec(select(OutboundMessage).where(OutboundMessage.purpose == "digest")).all()
    assert digest.status == OutboxStatus.PLANNED.value

    clock.move_to(utc("2026-03-01T16:30Z"))  # 00:30 on 2 March in Beijing: the sender is back
    run_job(app, "dispatch_outbox")

    with fresh(database) as s:
        row = s.get(OutboundMessage, digest.id)
        audit = s.exec(
            select(AuditEntry).where(
                AuditEntry.entity == "outboundmessage",
                AuditEntry.entity_id == str(digest.id),
                AuditEntry.field == "status",
            )
        ).all()
    assert row.status == OutboxStatus.EXPIRED.value
    assert [a.new_value for a in audit] == ["expired"] and "too late" in audit[0].reason
    assert [r for _, r in received(twilio, database) if r.id == digest.id] == []
