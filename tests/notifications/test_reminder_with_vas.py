"""A dose reminder and a VAS prompt due within the same hour go as one SMS that asks both; whatever happens to the
dose before it goes (reported, re-timed, held), the day's VAS prompt still goes, once."""

from datetime import date, timedelta

from sqlmodel import select

from backend.operations.participants import change_details, hold
from notifications.models import OutboundMessage, OutboxStatus, Purpose
from notifications.templates import render
from schedules.models import Dose, Participant, VasScore
from tests.conftest import utc
from tests.factories import ACTOR, VAULT, make_participant
from tests.sms_helpers import (
    fresh,
    inbound_params,
    post_signed,
    received,
    reply_text,
    run_all_jobs,
    run_jobs_across,
    standin,
    twilio,
)  # noqa: F401 (fixtures)

HOUR = timedelta(hours=1)
EVENING = utc("2026-03-01T12:00Z")  # 20:00 in Shanghai on the first-dose date: dose 1 and the first VAS prompt
COMBINED = (
    "提醒：今天（2026-03-01）需要注射，完成后请回复 1，无法注射请回复 2。另请为过去一周病情的活动程度打分"
    "（0 = 完全不活动，10 = 极度活动），回复 V 加分数，例如 V 4.5。如有疑问请致电研究中心 +861088325555。"
)


def _to_participant(twilio, database):
    return [(at, row.purpose, row.body) for at, row in received(twilio, database) if row.participant_id]


def _planned(database, participant_id):
    with fresh(database) as s:
        return s.exec(
            select(OutboundMessage).where(
                OutboundMessage.participant_id == participant_id, OutboundMessage.status == OutboxStatus.PLANNED.value
            )
        ).all()


def _enrolled(app, session, clock, *, language="zh-CN"):
    clock.move_to(utc("2026-03-01T02:00Z"))
    participant = make_participant(
        session, language=language, first_dose=date(2026, 3, 1), now=utc("2026-03-01T02:00Z")
    )
    session.commit()
    run_all_jobs(app)
    return participant


def test_on_a_vas_day_one_sms_asks_both_and_each_answer_is_recorded_with_no_second_prompt(
    app, client, session, clock, twilio, database
):
    participant = _enrolled(app, session, clock)
    run_jobs_across(app, clock, utc("2026-03-01T03:00Z"), EVENING, HOUR)
    assert _to_participant(twilio, database) == [(EVENING, Purpose.DOSE_AND_VAS.value, COMBINED)]

    # The participant answers both: the dose, then a bare score (a VAS prompt went out, in that SMS).
    clock.move_to(EVENING + timedelta(minutes=20))
    post_signed(client, "/sms/inbound", inbound_params("1"))
    score_reply = reply_text(post_signed(client, "/sms/inbound", inbound_params("4.5")))
    assert score_reply.startswith("已记录：评分 4.5")
    with fresh(database) as s:
        assert s.exec(select(Dose).where(Dose.participant_id == participant.id, Dose.seq == 1)).one().state == "taken"
        assert [v.value for v in s.exec(select(VasScore)).all()] == [4.5]

    # The reported dose leaves nothing to send that evening or the next morning: no nudge, no VAS prompt again.
    run_jobs_across(app, clock, utc("2026-03-01T13:00Z"), utc("2026-03-02T06:00Z"), HOUR)
    assert [purpose for _, purpose, _ in _to_participant(twilio, database)] == [Purpose.DOSE_AND_VAS.value]


def test_a_dose_reported_before_the_reminder_leaves_the_vas_prompt_to_go_alone_at_its_time(
    app, client, session, clock, twilio, database
):
    participant = _enrolled(app, session, clock)
    [combined] = [row for row in _planned(database, participant.id) if row.purpose == Purpose.DOSE_AND_VAS.value]

    clock.move_to(utc("2026-03-01T04:00Z"))  # noon in Shanghai: the participant reports the dose early
    post_signed(client, "/sms/inbound", inbound_params("1"))
    with fresh(database) as s:
        row = s.get(OutboundMessage, combined.id)
    assert (row.purpose, row.status, row.body) == (Purpose.VAS_PROMPT.value, "planned", render("vas_prompt", "zh-CN"))

    run_jobs_across(app, clock, utc("2026-03-01T05:00Z"), utc("2026-03-02T06:00Z"), HOUR)
    assert _to_participant(twilio, database) == [(EVENING, Purpose.VAS_PROMPT.value, render("vas_prompt", "zh-CN"))]


def test_a_new_reminder_time_moves_the_one_sms_that_asks_both(app, session, clock, twilio, database):
    participant = _enrolled(app, session, clock, language="en")
    with fresh(database) as s:
        change_details(
            s,
            participant=s.get(Participant, participant.id),
            vault=VAULT,
            actor=ACTOR,
            reason="works late",
            now=utc("2026-03-01T02:00Z"),
            reminder_time="21:30",
        )
        s.commit()
    assert sorted((row.purpose, row.due_at) for row in _planned(database, participant.id)) == [
        (Purpose.DOSE_AND_VAS.value, utc("2026-03-01T13:30Z")),
        (Purpose.DOSE_NUDGE.value, utc("2026-03-02T00:00Z")),
    ]
    run_jobs_across(app, clock, utc("2026-03-01T03:00Z"), utc("2026-03-01T14:00Z"), timedelta(minutes=30))
    [(at, purpose, body)] = _to_participant(twilio, database)
    assert (at, purpose) == (utc("2026-03-01T13:30Z"), Purpose.DOSE_AND_VAS.value)
    assert "today's injection (2026-03-01)" in body and "V 4.5" in body


def test_on_hold_the_vas_prompt_still_goes_alone_and_no_dose_is_mentioned(app, session, clock, twilio, database):
    participant = _enrolled(app, session, clock, language="en")
    [combined] = [row for row in _planned(database, participant.id) if row.purpose == Purpose.DOSE_AND_VAS.value]
    with fresh(database) as s:
        hold(
            s,
            participant=s.get(Participant, participant.id),
            reason="ALT raised",
            actor=ACTOR,
            now=utc("2026-03-01T03:00Z"),
            effective=date(2026, 3, 1),
        )
        s.commit()
    # The same planned row, now the prompt alone: the day's one VAS prompt.
    assert [(row.id, row.purpose) for row in _planned(database, participant.id)] == [
        (combined.id, Purpose.VAS_PROMPT.value)
    ]
    run_jobs_across(app, clock, utc("2026-03-01T03:00Z"), utc("2026-03-02T06:00Z"), HOUR)
    assert _to_participant(twilio, database) == [(EVENING, Purpose.VAS_PROMPT.value, render("vas_prompt", "en"))]


def test_a_control_participant_gets_the_vas_prompt_alone(app, session, clock, twilio, database):
    clock.move_to(utc("2026-03-01T02:00Z"))
    make_participant(session, arm="control", language="en", first_dose=date(2026, 3, 1), now=utc("2026-03-01T02:00Z"))
    session.commit()
    run_jobs_across(app, clock, utc("2026-03-01T02:00Z"), utc("2026-03-02T06:00Z"), HOUR)
    assert _to_participant(twilio, database) == [(EVENING, Purpose.VAS_PROMPT.value, render("vas_prompt", "en"))]
