"""Twilio webhooks end to end: signed replies confirm doses once, STOP/START, delivery status, refusals."""

from datetime import date, timedelta

from sqlmodel import select
from twilio.request_validator import RequestValidator

from notifications.models import InboundMessage, OutboundMessage, OutboxStatus, Purpose, StatusCallback
from schedules.models import Alert, AlertKind, Dose, DoseEvent, Participant
from tests.conftest import PUBLIC_BASE_URL, TWILIO_TOKEN, utc
from tests.factories import make_participant
from tests.sms_helpers import (
    DOSE_REMINDERS,
    fresh,
    inbound_params,
    post_signed,
    received,
    reply_text,
    run_all_jobs,
    run_jobs_across,
    signature,
    standin,
    table_counts,
    twilio,
    we_answer_keywords,
)  # noqa: F401 (fixtures)

HOUR = timedelta(hours=1)


def _participant_received(standin, database, purposes=(*DOSE_REMINDERS, "dose_nudge")):
    return [
        (at, row.purpose) for at, row in received(standin, database) if row.participant_id and row.purpose in purposes
    ]


def _everything_to_participant(standin, database):
    return _participant_received(standin, database, purposes=[p.value for p in Purpose])


def _reminder_sent(app, session, clock, *, language="zh-CN"):
    """A participant whose 1 March reminder (20:00 Shanghai = 12:00Z) has just gone out."""
    clock.move_to(utc("2026-03-01T10:00Z"))
    participant = make_participant(
        session, language=language, first_dose=date(2026, 3, 1), now=utc("2026-03-01T10:00Z")
    )
    session.commit()
    run_all_jobs(app)
    clock.move_to(utc("2026-03-01T12:00Z"))
    run_all_jobs(app)
    return participant


# --- inbound ----------------------------------------------------------------------------------------------------------
def test_signed_1_after_the_reminder_records_the_dose_reads_it_back_and_cancels_the_nudge(
    app, client, session, clock, twilio, database
):
    participant = _reminder_sent(app, session, clock, language="en")
    assert _participant_received(twilio, database) == [(utc("2026-03-01T12:00Z"), Purpose.DOSE_AND_VAS.value)]
    clock.move_to(utc("2026-03-01T12:20Z"))

    response = post_signed(client, "/sms/inbound", inbound_params("1"))

    assert response.status_code == 200 and response.mimetype in ("application/xml", "text/xml")
    # (1 March is also a VAS day, so the read-back adds how to send a score instead.)
    assert reply_text(response).startswith("Thank you. Recorded: injection for 2026-03-01 taken.")
    with fresh(database) as s:
        dose = s.exec(select(Dose).where(Dose.participant_id == participant.id, Dose.seq == 1)).one()
        nudge = s.exec(
            select(OutboundMessage).where(
                OutboundMessage.purpose == Purpose.DOSE_NUDGE.value, OutboundMessage.ref_id == dose.id
            )
        ).one()
    assert dose.state == "taken" and dose.source == "sms"
    assert nudge.status == OutboxStatus.CANCELLED.value
    run_jobs_across(app, clock, utc("2026-03-01T13:00Z"), utc("2026-03-02T05:00Z"), HOUR)
    assert _participant_received(twilio, database) == [(utc("2026-03-01T12:00Z"), Purpose.DOSE_AND_VAS.value)]


def test_the_same_messagesid_twice_has_one_effect(app, client, session, clock, twilio, database):
    _reminder_sent(app, session, clock)
    params = inbound_params("1")
    first = post_signed(client, "/sms/inbound", params)
    before = table_counts(database)

    again = post_signed(client, "/sms/inbound", params)  # Twilio retries the webhook

    assert again.status_code == 200 and reply_text(again) == reply_text(first) != ""
    assert table_counts(database) == before
    with fresh(database) as s:
        assert len(s.exec(select(InboundMessage)).all()) == 1
        assert len(s.exec(select(DoseEvent).where(DoseEvent.to_state == "taken")).all()) == 1
        assert len(s.exec(select(OutboundMessage).where(OutboundMessage.purpose == Purpose.REPLY.value)).all()) == 1


def test_a_bad_or_missing_signature_gets_403_and_writes_nothing(app, client, session, clock, twilio, database):
    _reminder_sent(app, session, clock)
    params = inbound_params("1")
    before = table_counts(database)

    wrong = post_signed(client, "/sms/inbound", params, sign=signature("/sms/inbound", {**params, "Body": "2"}))
    missing = client.post("/sms/inbound", data=params)
    # Signed for the URL this test client uses, not the public one Twilio knows: also refused.
    internal = post_signed(
        client,
        "/sms/inbound",
        params,
        sign=RequestValidator(TWILIO_TOKEN).compute_signature("http://localhost/sms/inbound", params),
    )
    status = post_signed(
        client, "/sms/status", {"MessageSid": "SM" + "1" * 32, "MessageStatus": "delivered"}, sign="bogus"
    )

    assert [r.status_code for r in (wrong, missing, internal, status)] == [403, 403, 403, 403]
    assert table_counts(database) == before
    with fresh(database) as s:
        assert s.exec(select(Dose).where(Dose.seq == 1)).one().state == "scheduled"


def test_signature_is_checked_against_the_public_url_behind_a_proxy(
    app, client, session, clock, twilio, database, we_answer_keywords
):
    _reminder_sent(app, session, clock)
    params = inbound_params("HELP")
    # The proxy forwards to an internal host and scheme; Twilio signed the public https URL.
    response = client.post(
        "/sms/inbound",
        data=params,
        base_url="http://10.0.0.7:8000",
        headers={"X-Twilio-Signature": signature("/sms/inbound", params)},
    )
    assert response.status_code == 200 and "+861088325555" in reply_text(response)
    assert PUBLIC_BASE_URL.startswith("https://")


def test_unknown_sender_gets_a_neutral_reply_and_unreadable_text_is_kept_for_nurses(
    app, client, session, clock, twilio, database
):
    clock.move_to(utc("2026-03-01T10:00Z"))
    make_participant(session, language="en", first_dose=date(2026, 3, 1), now=utc("2026-03-01T10:00Z"))
    session.commit()
    stranger = reply_text(post_signed(client, "/sms/inbound", inbound_params("1", sender="+8613999999999")))
    unreadable = reply_text(post_signed(client, "/sms/inbound", inbound_params("what is this about")))

    assert stranger == "Sorry, this number cannot process your message."
    assert unreadable.startswith("Sorry, we did not understand.")
    with fresh(database) as s:
        rows = s.exec(select(InboundMessage).order_by(InboundMessage.id)).all()
        alerts = s.exec(select(Alert).where(Alert.kind == AlertKind.UNREADABLE_REPLY.value)).all()
        assert s.exec(select(Dose).where(Dose.seq == 1)).one().state == "scheduled"
    assert [r.participant_id is None for r in rows] == [True, False]
    assert rows[1].needs_review and rows[1].body == "what is this about"
    assert len(alerts) == 1


# --- STOP / START -----------------------------------------------------------------------------------------------------
def test_stop_silences_everything_even_replies_until_start(
    app, client, session, clock, twilio, database, we_answer_keywords
):
    clock.move_to(utc("2026-03-01T10:00Z"))
    participant = make_participant(session, language="en", first_dose=date(2026, 3, 1), now=utc("2026-03-01T10:00Z"))
    session.commit()
    run_all_jobs(app)

    stop = post_signed(client, "/sms/inbound", inbound_params(" stop! "))
    assert reply_text(stop).startswith("You are unsubscribed")  # the one confirmation carriers allow
    # Opted out: no reminders, nudges or VAS prompts over the next days, and replies stay unsent.
    run_jobs_across(app, clock, utc("2026-03-01T11:00Z"), utc("2026-03-04T06:00Z"), HOUR)
    silent = [reply_text(post_signed(client, "/sms/inbound", inbound_params(text))) for text in ("STOP", "V 5", "1")]
    assert silent == ["", "", ""]
    # HELP is still answered, as carriers answer it for an opted-out number; it sends nothing else.
    assert reply_text(post_signed(client, "/sms/inbound", inbound_params("HELP"))).startswith("Reply: 1 = injection")
    assert _everything_to_participant(twilio, database) == []
    with fresh(database) as s:
        p = s.get(Participant, participant.id)
        assert p.opted_out and p.status == "active"  # still in the trial
        assert len(s.exec(select(Alert).where(Alert.kind == AlertKind.OPTED_OUT.value)).all()) == 1
        assert (
            s.exec(
                select(OutboundMessage).where(
                    OutboundMessage.participant_id == p.id, OutboundMessage.status == OutboxStatus.PLANNED.value
                )
            ).all()
            == []
        )

    clock.move_to(utc("2026-03-05T01:00Z"))
    start = post_signed(client, "/sms/inbound", inbound_params("START"))
    assert reply_text(start).startswith("You are subscribed again")
    run_jobs_across(app, clock, utc("2026-03-05T02:00Z"), utc("2026-03-05T13:00Z"), HOUR)
    assert _everything_to_participant(twilio, database) == [(utc("2026-03-05T12:00Z"), Purpose.DOSE_REMINDER.value)]
    with fresh(database) as s:
        # What they sent while opted out was still recorded (they stay in the trial); only the answers were held back.
        assert (
            s.exec(select(Dose).where(Dose.participant_id == participant.id, Dose.seq == 2)).one().state == "taken_late"
        )


def test_chinese_stop_and_start_keywords_work_with_full_width_characters(
    app, client, session, clock, twilio, database, we_answer_keywords
):
    _reminder_sent(app, session, clock)
    assert "退订" in reply_text(post_signed(client, "/sms/inbound", inbound_params("退订")))
    assert reply_text(post_signed(client, "/sms/inbound", inbound_params("１"))) == ""
    assert "重新订阅" in reply_text(post_signed(client, "/sms/inbound", inbound_params("订阅")))
    assert "已记录为：已注射" in reply_text(post_signed(client, "/sms/inbound", inbound_params("１")))


def test_twilio_21610_on_a_send_marks_opted_out_without_retry_and_alerts_nurses(app, session, clock, twilio, database):
    clock.move_to(utc("2026-03-01T10:00Z"))
    participant = make_participant(session, first_dose=date(2026, 3, 1), now=utc("2026-03-01T10:00Z"))
    session.commit()
    run_all_jobs(app)
    # Twilio refuses the first send to the unsubscribed number (the reminder, which asks the VAS prompt too).
    twilio.fail_next(status=400, code=21610, message="Attempt to send to unsubscribed recipient", count=1)

    clock.move_to(utc("2026-03-01T12:00Z"))
    run_all_jobs(app)

    with fresh(database) as s:
        reminder = s.exec(select(OutboundMessage).where(OutboundMessage.purpose.in_(DOSE_REMINDERS))).first()
        p = s.get(Participant, participant.id)
        alerts = s.exec(select(Alert).where(Alert.participant_id == p.id)).all()
    assert reminder.status == OutboxStatus.FAILED.value and reminder.attempts == 1 and reminder.last_error_code == 21610
    assert p.opted_out and p.status == "active"
    assert [(a.kind, a.state) for a in alerts] == [(AlertKind.OPTED_OUT.value, "open")]
    seen, accepted = twilio.requests_seen(), len(twilio.messages)
    run_jobs_across(app, clock, utc("2026-03-01T13:00Z"), utc("2026-03-03T13:00Z"), HOUR)
    assert _everything_to_participant(twilio, database) == []
    # Nothing more was even attempted for this participant (digests to nurses may go out).
    assert all(row.purpose == "digest" for _, row in received(twilio, database))
    assert twilio.requests_seen() - seen == len(twilio.messages) - accepted  # the refused reminder was never retried


# --- delivery status --------------------------------------------------------------------------------------------------
def _status(client, sid, status, code=None):
    params = {"MessageSid": sid, "MessageStatus": status, "AccountSid": "AC" + "0" * 32}
    if code:
        params["ErrorCode"] = str(code)
    return post_signed(client, "/sms/status", params)


def test_delivered_then_a_late_sent_callback_stays_delivered(app, client, session, clock, twilio, database):
    _reminder_sent(app, session, clock)
    [(_, row)] = received(twilio, database, DOSE_REMINDERS)
    assert row.status == "sent" and row.provider_status == "queued"

    codes = [
        _status(client, row.provider_sid, s).status_code for s in ("sent", "delivered", "sent", "queued", "delivered")
    ]

    assert codes == [204] * 5
    with fresh(database) as s:
        after = s.get(OutboundMessage, row.id)
        callbacks = s.exec(
            select(StatusCallback).where(StatusCallback.message_sid == row.provider_sid).order_by(StatusCallback.id)
        ).all()
    assert (after.status, after.provider_status) == ("delivered", "delivered")
    assert [(c.status, c.applied) for c in callbacks] == [
        ("sent", True),
        ("delivered", True),
        ("sent", False),
        ("queued", False),
        ("delivered", False),
    ]


def test_undelivered_reminder_is_a_contact_problem_not_a_missed_dose(app, client, session, clock, twilio, database):
    _reminder_sent(app, session, clock)
    [(_, reminder)] = received(twilio, database, DOSE_REMINDERS)

    assert _status(client, reminder.provider_sid, "undelivered", 30003).status_code == 204
    with fresh(database) as s:
        alerts = s.exec(select(Alert)).all()
        row = s.get(OutboundMessage, reminder.id)
    assert row.status == "undelivered" and row.last_error_code == 30003
    assert [(a.kind, a.priority) for a in alerts] == [(AlertKind.CONTACT_PROBLEM.value, "high")]

    # The phone stays unreachable: the nudge is undelivered too, and the window closes unreported.
    run_jobs_across(app, clock, utc("2026-03-01T13:00Z"), utc("2026-03-02T00:00Z"), HOUR)
    [nudge] = [r for _, r in received(twilio, database) if r.purpose == Purpose.DOSE_NUDGE.value]
    _status(client, nudge.provider_sid, "undelivered", 30003)
    run_jobs_across(app, clock, utc("2026-03-02T01:00Z"), utc("2026-03-02T05:00Z"), HOUR)
    with fresh(database) as s:
        kinds = [a.kind for a in s.exec(select(Alert)).all()]
        assert s.exec(select(Dose).where(Dose.seq == 1)).one().state == "missed"
    assert AlertKind.MISSED_DOSE.value not in kinds and set(kinds) == {AlertKind.CONTACT_PROBLEM.value}


def test_status_callback_for_an_unknown_sid_is_kept_but_changes_nothing(app, client, session, clock, twilio, database):
    assert _status(client, "SM" + "9" * 32, "delivered").status_code == 204
    with fresh(database) as s:
        [callback] = s.exec(select(StatusCallback)).all()
    assert callback.applied is False


def test_a_callback_that_beats_the_dispatchers_record_of_the_send_is_applied_when_the_send_is_recorded(
    app, client, session, clock, twilio, database
):
    from backend.extensions import get_sender, set_sender

    inner = get_sender(app)

    class FastCarrier:
        """Twilio answers the create, and its 'undelivered' callback lands before our batch is recorded."""

        name = "twilio"

        def send(self, **kwargs):
            result = inner.send(**kwargs)
            assert _status(client, result.provider_sid, "undelivered", 30005).status_code == 204
            return result

    set_sender(app, FastCarrier())
    _reminder_sent(app, session, clock)

    [(_, reminder)] = received(twilio, database, DOSE_REMINDERS)
    with fresh(database) as s:
        callbacks = s.exec(select(StatusCallback).where(StatusCallback.message_sid == reminder.provider_sid)).all()
        alerts = s.exec(select(Alert).where(Alert.ref_type == "outbox", Alert.ref_id == reminder.id)).all()
    assert (reminder.status, reminder.last_error_code) == ("undelivered", 30005)
    assert [c.applied for c in callbacks] == [True]
    assert [(a.kind, a.priority) for a in alerts] == [(AlertKind.CONTACT_PROBLEM.value, "high")]


def test_a_callback_that_raced_the_record_of_its_send_is_applied_by_the_expiry_job(
    app, client, session, clock, twilio, database
):
    from backend.runtime.jobs import run_job

    _reminder_sent(app, session, clock)
    [(_, reminder)] = received(twilio, database, DOSE_REMINDERS)
    with fresh(database) as s:
        # Stored while the send was being recorded elsewhere, so it found no row and stayed unapplied.
        s.add(
            StatusCallback(
                message_sid=reminder.provider_sid,
                status="undelivered",
                error_code=30003,
                received_at=reminder.sent_at - timedelta(seconds=1),
            )
        )
        s.commit()
    clock.move_to(utc("2026-03-01T12:01Z"))

    summary = run_job(app, "expire_stale_messages")
    _status(client, reminder.provider_sid, "sent")  # late and out of order: refused, and stays refused
    again = run_job(app, "expire_stale_messages")

    assert "applied 1 status callback" in summary and "applied 0 status callback" in again
    with fresh(database) as s:
        row = s.get(OutboundMessage, reminder.id)
        kinds = [a.kind for a in s.exec(select(Alert)).all()]
    assert (row.status, row.last_error_code) == ("undelivered", 30003)
    assert kinds == [AlertKind.CONTACT_PROBLEM.value]


def test_free_text_after_a_vas_prompt_is_kept_for_nurses_not_taken_as_a_bad_score(
    app, client, session, clock, twilio, database
):
    _reminder_sent(app, session, clock, language="en")  # 1 March: dose reminder and weekly VAS prompt
    reply = reply_text(post_signed(client, "/sms/inbound", inbound_params("my arm is swollen and red")))
    bad_score = reply_text(post_signed(client, "/sms/inbound", inbound_params("11")))

    assert reply.startswith("Sorry, we did not understand. A nurse will see your message.")
    assert bad_score.startswith("Not recorded")
    with fresh(database) as s:
        alerts = s.exec(select(Alert).where(Alert.kind == AlertKind.UNREADABLE_REPLY.value)).all()
        kept = s.exec(select(InboundMessage).where(InboundMessage.needs_review == True)).all()  # noqa: E712
    assert len(alerts) == 1 and [m.body for m in kept] == ["my arm is swollen and red"]


def test_the_nurse_sees_each_consent_change_with_what_caused_it(app, client, session, clock, twilio, database):
    from backend.identity.staff import create_staff
    from schedules.models import Site
    from tests.backend.test_pages import sign_in
    from tests.factories import STRONG_PASSWORD

    participant = _reminder_sent(app, session, clock, language="en")
    site = session.get(Site, participant.site_id)
    create_staff(session, email="nurse@example.org", password=STRONG_PASSWORD, role="nurse", site=site)
    session.commit()
    assert reply_text(post_signed(client, "/sms/inbound", {**inbound_params("ARRET"), "OptOutType": "STOP"})) == ""
    clock.move_to(utc("2026-03-01T13:00Z"))
    assert reply_text(post_signed(client, "/sms/inbound", inbound_params("YES"))) == ""  # the carrier answers

    sign_in(client, "nurse@example.org")
    page = client.get(f"/participants/{participant.id}").get_data(as_text=True)
    changes = page[page.index('id="consent-changes"') :].split("</ul>")[0]
    assert "20:00 (Asia/Shanghai): opted out (participant sent &#39;ARRET&#39; (the carrier&#39;s keyword))" in changes
    assert "21:00 (Asia/Shanghai): opted back in (participant sent &#39;YES&#39;)" in changes
    with fresh(database) as s:
        assert not s.get(Participant, participant.id).opted_out
        dose = s.exec(select(Dose).where(Dose.participant_id == participant.id, Dose.seq == 1)).one()
    assert dose.state == "scheduled"  # YES opted back in; it was not a dose report
