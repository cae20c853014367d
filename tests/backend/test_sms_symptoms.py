"""VAS and adverse events over SMS, end to end: planned prompt -> dispatch -> signed inbound webhook -> record -> reply,
and a suspected-serious report paging the site's on-call numbers ahead of routine traffic."""

from __future__ import annotations

import json
import uuid
from datetime import timedelta
from decimal import Decimal
from xml.etree import ElementTree

import pytest
from sqlmodel import select
from twilio.request_validator import RequestValidator

from backend.config import replace_settings
from backend.models import AuditEntry
from backend.runtime.jobs import run_job
from notifications.models import VAS_ASKING_PURPOSES, OutboundMessage
from schedules.models import AdverseEvent, Alert, VasScore
from tests.conftest import PUBLIC_BASE_URL, TWILIO_TOKEN, utc
from tests.factories import VAULT, make_participant, make_site, make_study

IL2_PHONE = "+8613812345678"
CONTROL_PHONE = "+8613812340002"
ON_CALL = ("+8613900000099", "+8613900000098")
SITE_PHONE = "+861088325555"
PROMPT_AT = utc("2026-03-01T12:00Z")  # 20:00 in Beijing on the first-dose date


@pytest.fixture
def trial(session, clock):
    """An il2 participant writing Chinese, a control participant writing English, at a site with two on-call numbers."""
    clock.move_to(utc("2026-02-20T00:00Z"))
    study = make_study(session)
    site = make_site(session, on_call=ON_CALL, phone=SITE_PHONE)
    il2 = make_participant(session, study=study, site=site, code="P-001", arm="il2", phone=IL2_PHONE, language="zh-CN")
    control = make_participant(
        session, study=study, site=site, code="P-002", arm="control", phone=CONTROL_PHONE, language="en"
    )
    return {"site": site, "il2": il2, "control": control}


@pytest.fixture
def prompted(app, trial, clock, sender):
    """The week-1 VAS prompt planned by the plan job and sent by the dispatch job at 20:00 local."""
    clock.move_to(PROMPT_AT - timedelta(hours=1))
    run_job(app, "plan_messages")
    clock.move_to(PROMPT_AT)
    run_job(app, "dispatch_outbox")
    return trial


def sms(client, body: str, *, phone: str = CONTROL_PHONE, sid: str | None = None) -> str:
    """Post a signed inbound SMS as Twilio would and return the TwiML reply text."""
    params = {"From": phone, "To": "+15005550006", "Body": body, "MessageSid": sid or f"SM{uuid.uuid4().hex}"}
    signature = RequestValidator(TWILIO_TOKEN).compute_signature(PUBLIC_BASE_URL + "/sms/inbound", params)
    response = client.post("/sms/inbound", data=params, headers={"X-Twilio-Signature": signature})
    assert response.status_code == 200, response.data
    return " ".join(message.text or "" for message in ElementTree.fromstring(response.data).iter("Message"))


def scores(session, participant) -> list[VasScore]:
    session.expire_all()
    return session.exec(select(VasScore).where(VasScore.participant_id == participant.id).order_by(VasScore.id)).all()


def sent_to(sender, phone: str) -> list[str]:
    return [body for to, body, _ in sender.sent if to == phone]


# --- VAS prompts ---------------------------------------------------------------------------------
def test_weekly_vas_prompt_reaches_both_arms_in_their_language_with_the_scale(prompted, sender):
    [control_prompt] = sent_to(sender, CONTROL_PHONE)
    assert "0 = not active, 10 = extremely active" in control_prompt
    # The il2 participant's prompt is in the day's dose reminder: one SMS asks both.
    [il2_text] = sent_to(sender, IL2_PHONE)
    assert "0 = 完全不活动，10 = 极度活动" in il2_text and "回复 1" in il2_text


def test_vas_prompts_are_planned_every_seven_days_at_the_chosen_time_for_both_arms(app, trial, session, clock):
    for day in range(1, 16):
        clock.move_to(utc(f"2026-03-{day:02d}T11:00Z"))
        run_job(app, "plan_messages")
    session.expire_all()
    prompts = session.exec(
        select(OutboundMessage)
        .where(OutboundMessage.purpose.in_(VAS_ASKING_PURPOSES))  # alone, or in a dose reminder
        .order_by(OutboundMessage.due_at)
    ).all()
    by_participant = {}
    for row in prompts:
        by_participant.setdefault(row.participant_id, []).append(row.due_at)
    weekly = [utc("2026-03-01T12:00Z"), utc("2026-03-08T12:00Z"), utc("2026-03-15T12:00Z")]
    assert by_participant == {trial["il2"].id: weekly, trial["control"].id: weekly}


# --- VAS answers ---------------------------------------------------------------------------------
def test_bare_number_within_24_hours_of_the_prompt_is_recorded_and_read_back(prompted, client, session, clock):
    clock.move_to(PROMPT_AT + timedelta(hours=23))
    reply = sms(client, "3.5")
    assert reply.startswith("Recorded VAS 3.5 of 10")
    [score] = scores(session, prompted["control"])
    assert (score.value, score.source, score.status, score.recorded_at) == (
        Decimal("3.5"),
        "sms",
        "valid",
        PROMPT_AT + timedelta(hours=23),
    )


def test_bare_number_in_chinese_conversation_is_read_back_in_chinese(prompted, client, session, clock):
    clock.move_to(PROMPT_AT + timedelta(minutes=30))
    assert "评分 3.5（满分 10）" in sms(client, "3.5", phone=IL2_PHONE)
    assert [s.value for s in scores(session, prompted["il2"])] == [Decimal("3.5")]


@pytest.mark.parametrize(
    "body, reason",
    [
        ("11", "must be between 0 and 10"),
        ("-1", "must be between 0 and 10"),
        ("4.55", "at most 1 decimal place"),
    ],
)
def test_impossible_scores_are_refused_with_the_reason_and_nothing_recorded(
    prompted, client, session, clock, body, reason
):
    clock.move_to(PROMPT_AT + timedelta(minutes=30))
    reply = sms(client, body)
    assert reply.startswith("Not recorded") and reason in reply
    assert scores(session, prompted["control"]) == []
    # Refusal leaves the prompt open: the corrected answer still counts as a bare number.
    assert sms(client, "4").startswith("Recorded VAS 4.0 of 10")


def test_words_after_a_prompt_are_not_a_score_and_go_to_the_nurses(prompted, client, session, clock):
    clock.move_to(PROMPT_AT + timedelta(minutes=30))
    reply = sms(client, "abc")
    # No digit at all may be a symptom in words: the reply says it was not understood, shows the score format,
    # and a nurse reads it.
    assert "did not understand" in reply and "V + score 0-10" in reply and "Recorded" not in reply
    assert scores(session, prompted["control"]) == []
    assert session.exec(
        select(Alert).where(Alert.participant_id == prompted["control"].id, Alert.kind == "unreadable_reply")
    ).one()


def test_out_of_range_score_is_refused_in_chinese(prompted, client, session, clock):
    clock.move_to(PROMPT_AT + timedelta(minutes=30))
    assert "0 到 10 之间，未记录" in sms(client, "11", phone=IL2_PHONE)
    assert scores(session, prompted["il2"]) == []


@pytest.mark.parametrize("body", ["V ４,５", "VAS 4.5", "v4,5", "V 4.5"])
def test_prefixed_score_with_full_width_digits_or_comma_decimal_is_recorded(trial, client, session, clock, body):
    clock.move_to(utc("2026-03-04T02:00Z"))  # no prompt pending: the V prefix alone says it is a score
    assert sms(client, body).startswith("Recorded VAS 4.5 of 10")
    assert [s.value for s in scores(session, trial["control"])] == [Decimal("4.5")]


def test_bare_number_more_than_24_hours_after_the_prompt_is_not_taken_as_a_score(prompted, client, session, clock):
    clock.move_to(PROMPT_AT + timedelta(hours=24, minutes=1))
    reply = sms(client, "3.5")
    assert "did not understand" in reply
    assert scores(session, prompted["control"]) == []
    assert session.exec(
        select(Alert).where(Alert.participant_id == prompted["control"].id, Alert.kind == "unreadable_reply")
    ).one()


def test_a_prompt_answered_stays_answered_when_someone_else_is_prompted_later(prompted, client, session, clock):
    # The prompt a bare number answers is the sender's own latest one, not the latest sent to anyone.
    clock.move_to(PROMPT_AT + timedelta(minutes=10))
    assert sms(client, "4").startswith("Recorded VAS 4.0 of 10")
    later = PROMPT_AT + timedelta(minutes=30)
    session.add(
        OutboundMessage(
            participant_id=prompted["il2"].id,
            purpose="vas_prompt",
            dedupe_key="test:later-prompt",
            body="x",
            due_at=later,
            next_attempt_at=later,
            status="sent",
            sent_at=later,
        )
    )
    session.commit()
    clock.move_to(PROMPT_AT + timedelta(minutes=40))
    assert "did not understand" in sms(client, "5")
    assert [s.value for s in scores(session, prompted["control"])] == [Decimal("4.0")]


def test_undo_within_an_hour_withdraws_the_last_vas_and_keeps_the_row(prompted, client, session, clock):
    clock.move_to(PROMPT_AT + timedelta(minutes=10))
    sms(client, "V 4.5")
    clock.move_to(PROMPT_AT + timedelta(minutes=69))
    assert "4.5 has been removed" in sms(client, "UNDO")
    [score] = scores(session, prompted["control"])
    assert (score.status, score.value, score.withdrawn_at) == (
        "withdrawn",
        Decimal("4.5"),
        PROMPT_AT + timedelta(minutes=69),
    )


def test_undo_after_an_hour_leaves_the_score(prompted, client, session, clock):
    clock.move_to(PROMPT_AT + timedelta(minutes=10))
    sms(client, "V 4.5")
    clock.move_to(PROMPT_AT + timedelta(minutes=71))
    assert "nothing to undo" in sms(client, "UNDO")
    assert [s.status for s in scores(session, prompted["control"])] == ["valid"]


def test_replayed_message_sid_records_the_score_once(prompted, client, session, clock):
    clock.move_to(PROMPT_AT + timedelta(minutes=10))
    first = sms(client, "V 6.5", sid="SMreplay0001")
    assert sms(client, "V 6.5", sid="SMreplay0001") == first
    assert len(scores(session, prompted["control"])) == 1


# --- adverse events ------------------------------------------------------------------------------
def test_serious_ae_by_sms_pages_every_on_call_number_first_with_a_24_hour_clock(
    app, trial, client, session, clock, sender
):
    clock.move_to(PROMPT_AT - timedelta(hours=1))
    run_job(app, "plan_messages")  # routine traffic due at 20:00: the dose reminder and VAS prompts
    clock.move_to(PROMPT_AT)
    reply = sms(client, "AE 发烧 住院了", phone=IL2_PHONE)
    assert SITE_PHONE in reply and "120" in reply and "立即致电" in reply

    session.expire_all()
    [ae] = session.exec(select(AdverseEvent).where(AdverseEvent.participant_id == trial["il2"].id)).all()
    assert (ae.raw_text, ae.source, ae.suspected_serious, ae.matched_keywords) == ("发烧 住院了", "sms", True, "住院")
    [alert] = session.exec(select(Alert).where(Alert.ref_type == "adverse_event", Alert.ref_id == ae.id)).all()
    assert (alert.kind, alert.priority, alert.state) == ("serious_ae", "high", "open")
    assert alert.deadline_at == ae.reported_at + timedelta(hours=24) == PROMPT_AT + timedelta(hours=24)
    pages = session.exec(select(OutboundMessage).where(OutboundMessage.purpose == "staff_alert")).all()
    assert sorted(VAULT.decrypt(row.recipient_ciphertext) for row in pages) == sorted(ON_CALL)
    assert {(row.priority, row.ref_type, row.ref_id) for row in pages} == {(0, "adverse_event", ae.id)}

    # Under a backlog the dispatcher claims by priority: with room for one message per batch, the pages still go first.
    replace_settings(app.config, DISPATCH_BATCH_SIZE=1)
    run_job(app, "dispatch_outbox")  # one job cycle
    recipients = [to for to, _, _ in sender.sent]
    assert sorted(recipients[:2]) == sorted(ON_CALL), "the on-call pages go out before routine messages"
    assert {IL2_PHONE, CONTROL_PHONE} <= set(recipients[2:])
    for number in ON_CALL:
        [page] = sent_to(sender, number)
        assert "P-001" in page and "2026-03-02 20:00 (Asia/Shanghai)" in page


def test_serious_ae_pages_reach_every_on_call_number_in_the_next_dispatch_cycle(app, trial, client, clock, sender):
    clock.move_to(PROMPT_AT + timedelta(hours=3))
    sms(client, "AE 昨晚去了急诊", phone=IL2_PHONE)
    run_job(app, "dispatch_outbox")
    assert sorted(to for to, _, _ in sender.sent) == sorted(ON_CALL)


def test_ordinary_ae_by_sms_opens_a_normal_alert_and_pages_nobody(app, trial, client, session, clock, sender):
    clock.move_to(PROMPT_AT + timedelta(hours=2))
    reply = sms(client, "AE headache")
    assert "a nurse will review it" in reply and SITE_PHONE in reply and "emergency services" in reply
    session.expire_all()
    [ae] = session.exec(select(AdverseEvent).where(AdverseEvent.participant_id == trial["control"].id)).all()
    assert (ae.raw_text, ae.suspected_serious) == ("headache", False)
    [alert] = session.exec(select(Alert).where(Alert.ref_type == "adverse_event", Alert.ref_id == ae.id)).all()
    assert (alert.kind, alert.priority, alert.deadline_at) == ("adverse_event", "normal", None)
    assert session.exec(select(OutboundMessage).where(OutboundMessage.purpose == "staff_alert")).all() == []
    run_job(app, "dispatch_outbox")
    assert not any(to in ON_CALL for to, _, _ in sender.sent)


@pytest.mark.parametrize("body", ["不良反应 头痛", "副作用头痛"])
def test_chinese_ae_keywords_report_an_event(trial, client, session, clock, body):
    clock.move_to(PROMPT_AT)
    assert "护士会尽快查看" in sms(client, body, phone=IL2_PHONE)
    session.expire_all()
    assert [ae.raw_text for ae in session.exec(select(AdverseEvent)).all()] == ["头痛"]


def test_sms_scores_undos_and_reports_are_in_the_audit_trail(prompted, client, session, clock):
    clock.move_to(PROMPT_AT + timedelta(minutes=5))
    sms(client, "3.5")
    sms(client, "UNDO")
    sms(client, "AE 发烧 住院了")
    session.expire_all()
    [score] = scores(session, prompted["control"])
    [ae] = session.exec(select(AdverseEvent)).all()
    who = f"sms:participant:{prompted['control'].id}"
    vas_rows = session.exec(
        select(AuditEntry).where(AuditEntry.entity == "vasscore", AuditEntry.entity_id == str(score.id))
    ).all()
    assert {(r.action, r.actor) for r in vas_rows} == {("create", who), ("update", who)}
    assert any(r.field == "status" and r.new_value == "withdrawn" for r in vas_rows)
    ae_rows = session.exec(
        select(AuditEntry).where(AuditEntry.entity == "adverseevent", AuditEntry.entity_id == str(ae.id))
    ).all()
    assert [r.action for r in ae_rows] == ["create"] and ae_rows[0].actor == who
    created = ae_rows[0].new_value if ae_rows[0].field != "*" else json.loads(ae_rows[0].new_value)["raw_text"]
    assert "发烧 住院了" in created
