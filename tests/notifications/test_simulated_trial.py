"""A whole trial, enrollment to the end of follow-up, for one participant of each arm: every SMS each one gets.

Time is moved by the test and the jobs run at fixed points of each local day (08:00 and 20:00 in Beijing); the
participants answer as people do: the IL-2 participant confirms most injections the same evening, some only after
the next morning's nudge, and both send their weekly score.
"""

from __future__ import annotations

import re
from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

from sqlmodel import select

from notifications.models import OutboundMessage, Purpose
from schedules.models import Dose, Participant, VasScore
from tests.conftest import utc
from tests.factories import make_participant, make_site, make_study
from tests.sms_helpers import (
    fresh,
    inbound_params,
    post_signed,
    received,
    reply_text,
    run_all_jobs,
    standin,
    twilio,
)  # noqa: F401 (fixtures)

BEIJING = ZoneInfo("Asia/Shanghai")
IL2_PHONE, CONTROL_PHONE = "+8613812345678", "+8613812345679"
FIRST_DOSE = date(2026, 3, 1)
DOSING_WORDS = re.compile(r"inject|dose|reply 1|1 =|注射|打针|回复 1", re.IGNORECASE)
CJK = re.compile(r"[\u4e00-\u9fff]")


def _at(day: date, hour: int, minute: int = 0) -> datetime:
    """A Beijing wall-clock time as UTC."""
    return datetime(day.year, day.month, day.day, hour, minute, tzinfo=BEIJING).astimezone(ZoneInfo("UTC"))


def _local(instant: datetime) -> datetime:
    return instant.astimezone(BEIJING)


def test_a_whole_trial_for_each_arm_sends_each_person_what_they_should_get(
    app, client, session, clock, twilio, database
):
    clock.move_to(utc("2026-02-28T02:00Z"))
    study, site = make_study(session), make_site(session)
    il2 = make_participant(
        session,
        study=study,
        site=site,
        code="P-IL2",
        arm="il2",
        phone=IL2_PHONE,
        language="zh-CN",
        first_dose=FIRST_DOSE,
        now=utc("2026-02-28T02:00Z"),
    )
    control = make_participant(
        session,
        study=study,
        site=site,
        code="P-CTL",
        arm="control",
        phone=CONTROL_PHONE,
        language="en",
        first_dose=FIRST_DOSE,
        now=utc("2026-02-28T02:00Z"),
    )
    session.commit()
    il2_id, control_id = il2.id, control.id
    ends = {il2_id: il2.follow_up_end_date, control_id: control.follow_up_end_date}
    with fresh(database) as s:
        dose_days = {d.local_date: d.seq for d in s.exec(select(Dose).where(Dose.participant_id == il2_id))}
    vas_days = {FIRST_DOSE + timedelta(days=7 * k) for k in range(40)}
    # Every fourth injection is confirmed only the next morning, after the nudge.
    late = {day for day, seq in dose_days.items() if seq % 4 == 0}
    replies: dict[str, list[str]] = {IL2_PHONE: [], CONTROL_PHONE: []}

    def send(phone: str, body: str) -> None:
        replies[phone].append(reply_text(post_signed(client, "/sms/inbound", inbound_params(body, sender=phone))))

    day = date(2026, 2, 28)
    last_day = max(ends.values()) + timedelta(days=5)
    while day <= last_day:
        clock.move_to(_at(day, 8))
        run_all_jobs(app)
        yesterday = day - timedelta(days=1)
        if yesterday in late:
            clock.move_to(_at(day, 8, 30))
            send(IL2_PHONE, "1")
        clock.move_to(_at(day, 20))
        run_all_jobs(app)
        clock.move_to(_at(day, 21))
        if day in dose_days and day not in late:
            send(IL2_PHONE, "1")
        if day in vas_days:
            for phone, participant_id in ((IL2_PHONE, il2_id), (CONTROL_PHONE, control_id)):
                if day < ends[participant_id]:
                    send(phone, "V 4")
        day += timedelta(days=1)

    got = {phone: [] for phone in (IL2_PHONE, CONTROL_PHONE)}
    for at, row in received(twilio, database):
        if row.participant_id == il2_id:
            got[IL2_PHONE].append((at, row))
        elif row.participant_id == control_id:
            got[CONTROL_PHONE].append((at, row))

    # --- the IL-2 participant: one reminder per injection, a nudge only when unconfirmed, weekly scores, one goodbye
    il2_msgs = got[IL2_PHONE]
    by_purpose = lambda msgs, *purposes: [(at, row) for at, row in msgs if row.purpose in purposes]  # noqa: E731
    reminders = by_purpose(il2_msgs, Purpose.DOSE_REMINDER.value, Purpose.DOSE_AND_VAS.value)
    assert sorted(_local(at).date() for at, _ in reminders) == sorted(dose_days)
    assert all(_local(at).time().strftime("%H:%M") == "20:00" for at, _ in reminders)
    nudges = by_purpose(il2_msgs, Purpose.DOSE_NUDGE.value)
    assert sorted(_local(at).date() for at, _ in nudges) == sorted(d + timedelta(days=1) for d in late)
    assert all(_local(at).strftime("%H:%M") == "08:00" and "昨天" in row.body for at, row in nudges)
    asked_vas = by_purpose(il2_msgs, Purpose.VAS_PROMPT.value, Purpose.DOSE_AND_VAS.value)
    il2_vas_days = sorted(d for d in vas_days if d < ends[il2_id])
    assert sorted(_local(at).date() for at, _ in asked_vas) == il2_vas_days
    combined = by_purpose(il2_msgs, Purpose.DOSE_AND_VAS.value)
    assert combined and all(_local(at).date() in dose_days for at, _ in combined)  # one SMS asks both
    closing = by_purpose(il2_msgs, Purpose.STUDY_CLOSING.value)
    assert [(_local(at).date(), _local(at).strftime("%H:%M")) for at, _ in closing] == [(ends[il2_id], "20:00")]
    assert len(il2_msgs) == len(reminders) + len(nudges) + len(asked_vas) - len(combined) + len(closing)
    assert max(at for at, _ in il2_msgs) == closing[0][0]  # nothing after the goodbye
    assert all(CJK.search(row.body) for _, row in il2_msgs)  # in their language
    assert all(CJK.search(text) for text in replies[IL2_PHONE])

    # --- the control participant: weekly scores and one goodbye, never a word about injections
    control_msgs = got[CONTROL_PHONE]
    assert {row.purpose for _, row in control_msgs} == {Purpose.VAS_PROMPT.value, Purpose.STUDY_CLOSING.value}
    prompts = by_purpose(control_msgs, Purpose.VAS_PROMPT.value)
    assert [_local(at).date() for at, _ in prompts] == sorted(d for d in vas_days if d < ends[control_id])
    assert all(_local(at).strftime("%H:%M") == "20:00" for at, _ in control_msgs)
    closing = by_purpose(control_msgs, Purpose.STUDY_CLOSING.value)
    assert [_local(at).date() for at, _ in closing] == [ends[control_id]]
    assert not [row.body for _, row in control_msgs if DOSING_WORDS.search(row.body)]
    assert not [text for text in replies[CONTROL_PHONE] if DOSING_WORDS.search(text)]
    assert all(row.body.isascii() for _, row in control_msgs)

    with fresh(database) as s:
        doses = s.exec(select(Dose).where(Dose.participant_id == il2_id)).all()
        assert {d.state for d in doses} == {"taken"}
        scores = s.exec(select(VasScore).where(VasScore.participant_id == control_id)).all()
        assert len(scores) == len(prompts)
        planned = s.exec(
            select(OutboundMessage).where(
                OutboundMessage.participant_id.in_([il2_id, control_id]), OutboundMessage.status == "planned"
            )
        ).all()
        assert planned == []
        assert s.get(Participant, il2_id).status == "active"
