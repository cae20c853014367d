"""The closing message: one SMS on the follow-up end date at the chosen time (out of quiet hours), thanking the
participant, saying no more reminders will come and giving the site's phone; never to those who opted out or
withdrew, never twice."""

import re
from datetime import date, timedelta

from sqlmodel import select

from backend.operations.participants import withdraw
from notifications.consent import mark_opted_out
from notifications.models import OutboundMessage, Purpose
from schedules.models import Participant
from tests.conftest import utc
from tests.factories import ACTOR, make_participant, make_site, make_study
from tests.sms_helpers import fresh, received, run_jobs_across, standin, twilio  # noqa: F401 (fixtures)

HOUR = timedelta(hours=1)
DOSING_WORDS = re.compile(r"inject|dose|注射", re.IGNORECASE)
CLOSING_EN = (
    "Your follow-up in the study has now ended. Thank you for taking part! You will get no more reminders. "
    "If you have questions, please call the study site on +861088325555."
)
CLOSING_ZH = "您的研究随访已结束，衷心感谢您的参与！今后不会再收到提醒短信。如有疑问，请致电研究中心 +861088325555。"


def _to_participants(twilio, database):
    return [
        (at, row.participant_id, row.purpose, row.body) for at, row in received(twilio, database) if row.participant_id
    ]


def test_a_control_participant_gets_the_last_vas_prompt_then_one_closing_message_on_the_end_date(
    app, session, clock, twilio, database
):
    # Control arm: six months from the first-dose date, so follow-up ends on 1 September; the last weekly
    # prompt is on 30 August (26 weeks after 1 March).
    clock.move_to(utc("2026-08-28T00:00Z"))
    participant = make_participant(session, arm="control", language="en", first_dose=date(2026, 3, 1))
    session.commit()
    assert participant.follow_up_end_date == date(2026, 9, 1)

    run_jobs_across(app, clock, utc("2026-08-28T00:00Z"), utc("2026-09-04T00:00Z"), HOUR)

    sent = _to_participants(twilio, database)
    assert [(at, purpose) for at, _, purpose, _ in sent] == [
        (utc("2026-08-30T12:00Z"), Purpose.VAS_PROMPT.value),
        (utc("2026-09-01T12:00Z"), Purpose.STUDY_CLOSING.value),  # 20:00 in Beijing, the chosen time
    ]
    assert sent[-1][3] == CLOSING_EN
    assert not [body for *_, body in sent if DOSING_WORDS.search(body)]


def test_an_il2_participant_is_told_in_chinese_once_however_often_planning_runs(app, session, clock, twilio, database):
    clock.move_to(utc("2026-08-29T00:00Z"))
    participant = make_participant(session, first_dose=date(2026, 3, 1))
    session.commit()
    assert participant.follow_up_end_date == date(2026, 8, 30)  # three months after the last dose (30 May)

    run_jobs_across(app, clock, utc("2026-08-29T00:00Z"), utc("2026-08-31T12:00Z"), timedelta(minutes=30))

    assert [(at, purpose, body) for at, _, purpose, body in _to_participants(twilio, database)] == [
        (utc("2026-08-30T12:00Z"), Purpose.STUDY_CLOSING.value, CLOSING_ZH)
    ]


def test_a_chosen_time_in_quiet_hours_sends_it_at_the_end_of_quiet_hours_on_the_end_date(
    app, session, clock, twilio, database
):
    clock.move_to(utc("2026-08-29T00:00Z"))
    make_participant(session, arm="control", reminder_time="23:00", first_dose=date(2026, 3, 1))
    session.commit()
    run_jobs_across(app, clock, utc("2026-08-31T00:00Z"), utc("2026-09-02T00:00Z"), HOUR)
    # 08:00 on 1 September in Beijing, not 23:00 (quiet) nor 08:00 the next day (follow-up is over by then).
    assert [(at, purpose) for at, _, purpose, _ in _to_participants(twilio, database)] == [
        (utc("2026-09-01T00:00Z"), Purpose.STUDY_CLOSING.value)
    ]


def test_no_closing_message_to_those_who_opted_out_or_withdrew(app, session, clock, twilio, database):
    clock.move_to(utc("2026-08-29T00:00Z"))
    study, site = make_study(session), make_site(session)
    people = [
        make_participant(
            session, study=study, site=site, code=f"P-{i}", phone=f"+861381234560{i}", arm="control", language="en"
        )
        for i in range(3)
    ]
    session.commit()
    run_jobs_across(app, clock, utc("2026-08-31T00:00Z"), utc("2026-08-31T02:00Z"), HOUR)
    with fresh(database) as s:  # the closing messages are planned by now; two people then leave
        assert len(s.exec(select(OutboundMessage).where(OutboundMessage.purpose == "study_closing")).all()) == 3
        mark_opted_out(
            s, participant=s.get(Participant, people[0].id), now=utc("2026-08-31T03:00Z"), actor=ACTOR, why="STOP"
        )
        withdraw(
            s,
            participant=s.get(Participant, people[1].id),
            reason="moved away",
            actor=ACTOR,
            now=utc("2026-08-31T03:00Z"),
        )
        s.commit()

    run_jobs_across(app, clock, utc("2026-08-31T03:00Z"), utc("2026-09-02T00:00Z"), HOUR)

    assert [(pid, purpose) for _, pid, purpose, _ in _to_participants(twilio, database)] == [
        (people[2].id, Purpose.STUDY_CLOSING.value)
    ]


def test_every_purpose_fits_the_outbox_column_without_a_migration():
    from notifications.models import OutboundMessage

    width = OutboundMessage.__table__.c.purpose.type.length
    assert all(len(p.value) <= width for p in Purpose), width


def test_a_planned_closing_message_follows_a_moved_end_date_instead_of_being_lost(
    app, session, clock, twilio, database
):
    clock.move_to(utc("2026-08-31T00:00Z"))
    participant = make_participant(session, arm="control", language="en", first_dose=date(2026, 3, 1))
    session.commit()
    run_jobs_across(app, clock, utc("2026-08-31T00:00Z"), utc("2026-08-31T01:00Z"), HOUR)  # planned for 1 September
    with fresh(database) as s:
        s.get(Participant, participant.id).follow_up_end_date = date(2026, 9, 20)  # as a recomputed end date would
        s.commit()

    run_jobs_across(app, clock, utc("2026-08-31T02:00Z"), utc("2026-09-02T00:00Z"), HOUR)
    with fresh(database) as s:
        [row] = s.exec(select(OutboundMessage).where(OutboundMessage.purpose == "study_closing")).all()
    assert (row.status, row.due_at) == ("planned", utc("2026-09-20T12:00Z"))
    clock.move_to(utc("2026-09-20T12:00Z"))
    run_jobs_across(app, clock, utc("2026-09-20T12:00Z"), utc("2026-09-20T13:00Z"), HOUR)
    assert [purpose for _, _, purpose, _ in _to_participants(twilio, database)][-1] == Purpose.STUDY_CLOSING.value
