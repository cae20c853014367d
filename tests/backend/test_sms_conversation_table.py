"""The SMS conversation as a table: each inbound text, through the signed webhook, with its stored effect and reply.

Each row starts from a fresh participant in a named situation (see `_given`) and checks what a nurse or an
analyst would find afterwards (dose state, VAS, adverse event, new alerts, consent, on-call pages) and what the
participant was answered.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import Decimal

import pytest
from sqlmodel import select

from backend.config import replace_settings
from notifications.consent import mark_opted_out
from notifications.models import InboundMessage, OutboundMessage, Purpose
from schedules.changes import Actor
from schedules.models import AdverseEvent, Alert, Dose, Participant, VasScore
from tests.conftest import utc
from tests.factories import make_participant
from tests.sms_helpers import (
    fresh,
    inbound_params,
    post_signed,
    reply_text,
    run_all_jobs,
    standin,
    twilio,
)  # noqa: F401 (fixtures)

CN_PHONE, US_PHONE = "+8613812345678", "+12125550123"
DOSE_DAY = utc("2026-03-01T12:30Z")  # 20:30 in Beijing, 1 March: dose 1's window is open
AFTER_FOLLOW_UP = utc("2026-09-15T04:00Z")


@dataclass(frozen=True)
class Given:
    """A participant's situation before the text arrives."""

    arm: str = "il2"
    language: str = "en"
    phone: str = CN_PHONE
    time_zone: str = "Asia/Shanghai"
    prompts_sent: bool = False  # the 1 March reminder and VAS prompt went out at 20:00 (a VAS is pending)
    opted_out: bool = False
    at: datetime = DOSE_DAY
    we_answer_keywords: bool = False


DOSE = Given()
DOSE_ZH = Given(language="zh-CN")
DOSE_AND_VAS = Given(prompts_sent=True)
CONTROL = Given(arm="control")
CONTROL_ZH = Given(arm="control", language="zh-CN")
CONTROL_VAS = Given(arm="control", prompts_sent=True)
CONTROL_US = Given(arm="control", we_answer_keywords=True)
OPTED_OUT = Given(opted_out=True)
OPTED_OUT_US = Given(opted_out=True, we_answer_keywords=True)
US = Given(we_answer_keywords=True)
NEW_YORK = Given(phone=US_PHONE, time_zone="America/New_York", at=utc("2026-03-02T01:30Z"))
ENDED = Given(at=AFTER_FOLLOW_UP)


@dataclass(frozen=True)
class Effect:
    """What the text must leave behind; `reply` parts must all appear ('' alone: no reply at all)."""

    reply: tuple[str, ...] = ()
    dose: str = "scheduled"
    vas: Decimal | None = None
    ae: str | None = None  # None | 'normal' | 'serious'
    alerts: frozenset[str] = field(default_factory=frozenset)
    opted_out: bool = False
    not_in_reply: tuple[str, ...] = ()
    site: str | None = None  # the dose's injection site afterwards


def fx(*reply, **kw) -> Effect:
    """An Effect with its reply parts given positionally."""
    if "alerts" in kw:
        kw["alerts"] = frozenset(kw["alerts"])
    return Effect(reply=reply, **kw)


SERIOUS = dict(ae="serious", alerts={"serious_ae"})
NORMAL_AE = dict(ae="normal", alerts={"adverse_event"})
UNREADABLE = dict(alerts={"unreadable_reply"})
DOSING_WORDS = ("inject", "1 (done)", "1 =", "注射")

ROWS: list[tuple[str, Given, str, dict, Effect]] = [
    # --- dose answers, plain and mixed
    ("one", DOSE, "1", {}, fx("Recorded: injection for 2026-03-01 taken", dose="taken")),
    ("full-width one", DOSE, "１", {}, fx("taken", dose="taken")),
    ("two", DOSE, "2", {}, fx("not taken", dose="skipped")),
    ("yes while subscribed", DOSE, "Yes!", {}, fx("taken", dose="taken")),
    ("taken thanks", DOSE, "taken, thanks", {}, fx("taken", dose="taken", not_in_reply=("also recorded",))),
    ("taken fever", DOSE, "taken, bit of fever", {}, fx("taken", "bit of fever", dose="taken", **NORMAL_AE)),
    ("1 but red site", DOSE_ZH, "1 但是注射部位红肿", {}, fx("已完成", "但是注射部位红肿", dose="taken", **NORMAL_AE)),
    ("done, fever zh", DOSE_ZH, "已打，有点发烧", {}, fx("已完成", "有点发烧", dose="taken", **NORMAL_AE)),
    ("full-width mixed", DOSE_ZH, "１，头痛", {}, fx("已完成", "头痛", dose="taken", **NORMAL_AE)),
    ("2 hospitalised zh", DOSE_ZH, "2 住院了", {}, fx("可能较严重", "120", "未完成", dose="skipped", **SERIOUS)),
    ("1 5 is nonsense", DOSE, "1 5", {}, fx("did not understand", **UNREADABLE)),
    # --- the injection site named with the dose, read back, never a symptom
    ("1 L-thigh", DOSE, "1 L-thigh", {}, fx("taken", "Site: Left thigh.", dose="taken", site="thigh_left")),
    ("taken left arm", DOSE, "taken left arm", {}, fx("Site: Left upper arm.", dose="taken", site="arm_left")),
    ("1 左腿", DOSE_ZH, "1 左腿", {}, fx("已完成", "注射部位：左大腿。", dose="taken", site="thigh_left")),
    ("已打 左腿", DOSE_ZH, "已打 左腿", {}, fx("已完成", "注射部位：左大腿。", dose="taken", site="thigh_left")),
    ("已打右腹 run together", DOSE_ZH, "已打右腹", {}, fx("注射部位：腹部右侧。", dose="taken", site="abdomen_right")),
    ("full-width site", DOSE, "１ Ｒ－ＡＲＭ", {}, fx("Site: Right upper arm.", dose="taken", site="arm_right")),
    (
        "site and a symptom",
        DOSE_ZH,
        "1 左腿 有点红肿",
        {},
        fx("注射部位：左大腿。", "有点红肿", dose="taken", site="thigh_left", **NORMAL_AE),
    ),
    (
        "site after both prompts",
        DOSE_AND_VAS,
        "1 L-thigh",
        {},
        fx("Site: Left thigh.", dose="taken", site="thigh_left"),
    ),
    ("site alone is not a dose", DOSE, "left thigh", {}, fx("did not understand", **UNREADABLE)),
    (
        "control names a site",
        CONTROL,
        "1 left arm",
        {},
        fx("did not understand", not_in_reply=DOSING_WORDS, **UNREADABLE),
    ),
    # --- serious words anywhere, with no keyword
    ("hospitalised last night zh", DOSE_ZH, "昨晚住院了", {}, fx("可能较严重", "120", **SERIOUS)),
    ("went to hospital zh", DOSE_ZH, "去医院了", {}, fx("可能较严重", **SERIOUS)),
    ("admitted zh", DOSE_ZH, "今天入院", {}, fx("可能较严重", **SERIOUS)),
    ("ward zh", DOSE_ZH, "收入院观察", {}, fx("可能较严重", **SERIOUS)),
    ("emergency zh", DOSE_ZH, "在急诊", {}, fx("可能较严重", **SERIOUS)),
    ("ambulance zh", DOSE_ZH, "叫了救护车", {}, fx("可能较严重", **SERIOUS)),
    ("resuscitation zh", DOSE_ZH, "正在抢救", {}, fx("可能较严重", **SERIOUS)),
    ("unconscious zh", DOSE_ZH, "他昏迷了", {}, fx("可能较严重", **SERIOUS)),
    ("full-width ICU", DOSE_ZH, "在ＩＣＵ", {}, fx("可能较严重", **SERIOUS)),
    ("hospitalization", DOSE, "hospitalization since Monday", {}, fx("This may be serious", "120", **SERIOUS)),
    ("hospitalised", DOSE, "I was hospitalised.", {}, fx("This may be serious", **SERIOUS)),
    ("admitted", DOSE, "ADMITTED yesterday", {}, fx("This may be serious", **SERIOUS)),
    ("ER", DOSE, "at the ER!", {}, fx("This may be serious", **SERIOUS)),
    ("A&E", DOSE, "went to A&E", {}, fx("This may be serious", **SERIOUS)),
    ("ambulance", DOSE, "(ambulance)", {}, fx("This may be serious", **SERIOUS)),
    ("emergency", DOSE, "Emergency", {}, fx("This may be serious", **SERIOUS)),
    ("water is not ER", DOSE, "drank more water", {}, fx("did not understand", **UNREADABLE)),
    (
        "New York number",
        NEW_YORK,
        "in hospital",
        {},
        fx("This may be serious", "911", not_in_reply=("120",), **SERIOUS),
    ),
    # --- adverse-event keyword
    ("AE headache", DOSE, "AE headache", {}, fx("we received your report", "120", **NORMAL_AE)),
    ("AE zh", DOSE_ZH, "副作用头痛", {}, fx("护士会尽快查看", **NORMAL_AE)),
    ("AE hospital", DOSE, "ae: admitted to hospital", {}, fx("This may be serious", **SERIOUS)),
    # --- VAS
    ("V 4.5", DOSE, "V 4.5", {}, fx("Recorded VAS 4.5 of 10", vas=Decimal("4.5"))),
    ("V full-width", DOSE_ZH, "Ｖ ４．５", {}, fx("评分 4.5", vas=Decimal("4.5"))),
    ("V with symptom", DOSE, "V 6 knee pain", {}, fx("VAS 6.0", "knee pain", vas=Decimal("6.0"), **NORMAL_AE)),
    ("V hospital", DOSE, "V 7, in hospital", {}, fx("This may be serious", "VAS 7.0", vas=Decimal("7.0"), **SERIOUS)),
    ("V out of range", DOSE, "V 12", {}, fx("between 0 and 10")),
    ("V 120 is also a page", DOSE, "V 120", {}, fx("This may be serious", "between 0 and 10", **SERIOUS)),
    ("V decimals", DOSE, "V 4.55", {}, fx("at most 1 decimal")),
    ("bare score after prompt", DOSE_AND_VAS, "4.5", {}, fx("VAS 4.5", vas=Decimal("4.5"))),
    ("1 after both prompts", DOSE_AND_VAS, "1", {}, fx("taken", "V 1", dose="taken")),
    ("words after prompt", DOSE_AND_VAS, "tired", {}, fx("did not understand", **UNREADABLE)),
    ("serious after prompt", DOSE_AND_VAS, "住院了", {}, fx("This may be serious", **SERIOUS)),
    # --- the control arm: no dose to answer, no dosing words
    ("control 1 after prompt", CONTROL_VAS, "1", {}, fx("VAS 1.0", vas=Decimal("1.0"))),
    ("control score and symptom", CONTROL_VAS, "3 膝盖疼", {}, fx("VAS 3.0", vas=Decimal("3.0"), **NORMAL_AE)),
    ("control 1 and symptom", CONTROL, "1 knee pain", {}, fx("we received your report", **NORMAL_AE)),
    ("control bare 1", CONTROL, "1", {}, fx("did not understand", not_in_reply=DOSING_WORDS, **UNREADABLE)),
    ("control zh unreadable", CONTROL_ZH, "好", {}, fx("未能理解", not_in_reply=DOSING_WORDS, **UNREADABLE)),
    ("control help", CONTROL_US, "HELP", {}, fx("V 4.5 = score", not_in_reply=DOSING_WORDS)),
    # --- consent beyond the plain keywords
    ("carrier STOP in French", DOSE, "ARRET", {"OptOutType": "STOP"}, fx("", opted_out=True, alerts={"opted_out"})),
    ("carrier STOP in Chinese", DOSE_ZH, "停止", {"OptOutType": "STOP"}, fx("", opted_out=True, alerts={"opted_out"})),
    ("ARRET alone", DOSE, "ARRET", {}, fx("did not understand", **UNREADABLE)),
    ("carrier HELP", US, "ayuda", {"OptOutType": "HELP"}, fx("Reply: 1 = injection done")),
    ("carrier START", OPTED_OUT, "oui", {"OptOutType": "START"}, fx("")),
    ("YES opts back in", OPTED_OUT, "YES", {}, fx("")),
    ("YES opts in, answered", OPTED_OUT_US, "yes.", {}, fx("subscribed again")),
    ("1 while opted out", OPTED_OUT, "1", {}, fx("", dose="taken", opted_out=True)),
    ("STOP answered by us", US, "stop", {}, fx("You are unsubscribed", opted_out=True, alerts={"opted_out"})),
    ("HELP answered by us", US, "help?", {}, fx("Reply: 1 = injection done", "+861088325555")),
    ("HELP by the carrier", DOSE, "HELP", {}, fx("")),
    # --- after the study
    ("score after the end", ENDED, "V 5", {}, fx("has ended", "not recorded")),
    ("dose after the end", ENDED, "1", {}, fx("has ended")),
    ("hospital after the end", ENDED, "in hospital", {}, fx("This may be serious", **SERIOUS)),
]

OPT_OUT = ["STOP", "STOPALL", "UNSUBSCRIBE", "CANCEL", "END", "QUIT", "OPTOUT", "REVOKE", "退订", "TD"]
OPT_IN = ["START", "YES", "UNSTOP", "订阅"]
HELP = ["HELP", "INFO", "帮助"]


def _spellings(word: str) -> list[str]:
    """Three ways a phone sends a keyword: as listed, another case with punctuation, full-width or spaced."""
    if word.isascii():
        full_width = "".join(chr(ord(ch) + 0xFEE0) for ch in word)
        return [word, f" {word.lower().capitalize()}! ", full_width]
    return [word, f"{word}。", f" {word} "]


for word in OPT_OUT:
    for spelling in _spellings(word):
        ROWS.append((f"opt-out {spelling!r}", DOSE, spelling, {}, fx("", opted_out=True, alerts={"opted_out"})))
for word in OPT_IN:
    for spelling in _spellings(word):
        ROWS.append((f"opt-in {spelling!r}", OPTED_OUT, spelling, {}, fx("")))
for word in HELP:
    for spelling in _spellings(word):
        ROWS.append((f"help {spelling!r}", DOSE, spelling, {}, fx("")))


def _given(app, session, clock, given: Given) -> Participant:
    """Enrol the participant (first dose 1 March) and bring them to the situation."""
    clock.move_to(utc("2026-03-01T10:00Z"))
    participant = make_participant(
        session,
        arm=given.arm,
        language=given.language,
        phone=given.phone,
        time_zone=given.time_zone,
        first_dose=date(2026, 3, 1),
        now=utc("2026-03-01T10:00Z"),
    )
    session.commit()
    if given.prompts_sent:
        run_all_jobs(app)
        clock.move_to(utc("2026-03-01T12:00Z"))
        run_all_jobs(app)
    if given.opted_out:
        mark_opted_out(
            session, participant=participant, now=utc("2026-03-01T11:00Z"), actor=Actor("sms", "t"), why="STOP"
        )
        session.commit()
    if given.we_answer_keywords:
        replace_settings(app.config, SMS_KEYWORD_REPLIES="us")
    clock.move_to(given.at)
    return participant


def _state(database, participant_id: int) -> dict:
    with fresh(database) as s:
        return {
            "alerts": {a.id: a.kind for a in s.exec(select(Alert).where(Alert.participant_id == participant_id))},
            "pages": len(
                s.exec(select(OutboundMessage).where(OutboundMessage.purpose == Purpose.STAFF_ALERT.value)).all()
            ),
        }


@pytest.mark.parametrize("given, body, extra, effect", [pytest.param(*row[1:], id=row[0]) for row in ROWS])
def test_inbound_text_has_its_effect_and_reply(
    app, client, session, clock, twilio, database, given, body, extra, effect
):
    participant = _given(app, session, clock, given)
    before = _state(database, participant.id)

    params = {**inbound_params(body, sender=given.phone), **extra}
    response = post_signed(client, "/sms/inbound", params)

    assert response.status_code == 200
    reply = reply_text(response)
    if effect.reply == ("",):
        assert reply == ""
    for part in effect.reply:
        assert part in reply, (part, reply)
    for part in effect.not_in_reply:
        assert part.lower() not in reply.lower(), (part, reply)
    after = _state(database, participant.id)
    new_alerts = {kind for alert_id, kind in after["alerts"].items() if alert_id not in before["alerts"]}
    with fresh(database) as s:
        p = s.get(Participant, participant.id)
        dose = s.exec(select(Dose).where(Dose.participant_id == p.id, Dose.seq == 1)).first()
        scores = s.exec(select(VasScore).where(VasScore.participant_id == p.id)).all()
        events = s.exec(select(AdverseEvent).where(AdverseEvent.participant_id == p.id)).all()
        inbound = s.exec(select(InboundMessage).where(InboundMessage.message_sid == params["MessageSid"])).one()
        logged_replies = s.exec(
            select(OutboundMessage).where(
                OutboundMessage.purpose == Purpose.REPLY.value, OutboundMessage.ref_id == inbound.id
            )
        ).all()
    assert inbound.body == body  # the raw text is always kept
    assert [r.body for r in logged_replies] == ([reply] if reply else [])  # a reply is logged only when one was sent
    if dose is not None:
        assert dose.state == effect.dose
        assert dose.injection_site == effect.site
    assert [s.value for s in scores] == ([effect.vas] if effect.vas is not None else [])
    if effect.ae is None:
        assert events == []
    else:
        assert len(events) == 1 and events[0].suspected_serious == (effect.ae == "serious")
        assert events[0].raw_text.strip()
    assert new_alerts == set(effect.alerts)
    assert p.opted_out == effect.opted_out
    # Every suspected serious event pages the on-call list at once (one number at this site).
    assert after["pages"] - before["pages"] == (1 if effect.ae == "serious" else 0)


def test_the_table_is_at_least_sixty_texts():
    assert len(ROWS) >= 60


def test_a_hospitalisation_without_keyword_reaches_the_on_call_phone_in_the_same_dispatch(
    app, client, session, clock, twilio, database
):
    _given(app, session, clock, DOSE_ZH)
    post_signed(client, "/sms/inbound", inbound_params("昨晚住院了"))
    run_all_jobs(app)  # one pass of every job, dispatch included
    sent_to = [m["To"] for m in twilio.messages]
    assert "+8613900000099" in sent_to
