"""The serious-event chase, end to end: a suspected-serious alert nobody acknowledges pages on-call again every
chase_every_minutes (30) until a nurse acknowledges it in the queue or an on-call phone texts ACK <alert number>;
every page round and the acknowledgement show on the alert (API and nurse queue)."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
from sqlmodel import select

from backend.models import AuditEntry
from backend.runtime.jobs import run_job
from notifications import chase
from notifications.chase import chase_serious_alerts
from notifications.models import InboundMessage, OutboundMessage, OutboxStatus
from notifications.pages import page_rounds
from schedules.models import Alert, AlertKind
from tests.conftest import utc
from tests.factories import STRONG_PASSWORD, VAULT, auth, make_participant, make_site, make_staff_token, make_study
from tests.sms_helpers import fresh, inbound_params, post_signed, reply_text

ON_CALL = ("+8613900000099", "+8613900000098")
OTHER_ON_CALL = "+4915100000077"
PARTICIPANT_PHONE = "+8613812345678"
STRANGER = "+8613700000001"
REPORTED_AT = utc("2026-03-02T02:00Z")  # 10:00 in Beijing
MINUTE = timedelta(minutes=1)


@pytest.fixture
def world(session, clock):
    """Site PKUPH (two on-call numbers) with participant P-001; site BERLIN with one on-call number of its own."""
    clock.move_to(REPORTED_AT - timedelta(days=3))
    study = make_study(session)
    site = make_site(session, on_call=ON_CALL)
    berlin = make_site(session, code="BERLIN", time_zone="Europe/Berlin", on_call=(OTHER_ON_CALL,))
    participant = make_participant(session, study=study, site=site, phone=PARTICIPANT_PHONE)
    nurse = make_staff_token(session, site=site, now=REPORTED_AT - timedelta(days=1), ttl=timedelta(days=7))
    session.commit()
    return {"site": site, "berlin": berlin, "participant": participant, "nurse": nurse}


def text(client, body: str, *, sender: str) -> str:
    """A signed inbound SMS through the webhook; returns the TwiML reply text."""
    response = post_signed(client, "/sms/inbound", inbound_params(body, sender=sender))
    assert response.status_code == 200, response.data
    return reply_text(response)


@pytest.fixture
def alert(world, client, clock, database) -> Alert:
    """P-001 texts that they were hospitalised at 10:00 Beijing time: the suspected-serious alert, round 1 queued."""
    clock.move_to(REPORTED_AT)
    text(client, "AE 住院了", sender=PARTICIPANT_PHONE)
    with fresh(database) as s:
        return s.exec(select(Alert).where(Alert.kind == AlertKind.SERIOUS_AE.value)).one()


def run_minutes(app, clock, sender, start: timedelta, end: timedelta, *, at_each=None) -> list[tuple[int, str, str]]:
    """Run the chase and dispatch jobs every minute from REPORTED_AT + start to + end (inclusive);
    returns (minute, to, body) for each SMS to an on-call number."""
    pages, offset = [], start
    while offset <= end:
        clock.move_to(REPORTED_AT + offset)
        if at_each is not None:
            at_each(offset)
        before = len(sender.sent)
        run_job(app, "chase_serious_alerts")
        run_job(app, "dispatch_outbox")
        minute = int(offset.total_seconds() // 60)
        pages += [(minute, to, body) for to, body, _ in sender.sent[before:] if to in ON_CALL]
        offset += MINUTE
    return pages


def page_rows(database) -> list[OutboundMessage]:
    with fresh(database) as s:
        return list(
            s.exec(
                select(OutboundMessage).where(OutboundMessage.purpose == "staff_alert").order_by(OutboundMessage.id)
            ).all()
        )


def minutes_paged(pages) -> dict[int, int]:
    """How many on-call SMS went out at each minute."""
    counts: dict[int, int] = {}
    for minute, _, _ in pages:
        counts[minute] = counts.get(minute, 0) + 1
    return counts


# --- the chase -------------------------------------------------------------------------------------
def test_nobody_acknowledges_so_on_call_is_paged_at_0_30_and_60_minutes(app, alert, clock, sender, database):
    pages = run_minutes(app, clock, sender, timedelta(0), timedelta(minutes=61))

    assert minutes_paged(pages) == {0: 2, 30: 2, 60: 2}
    assert len(page_rows(database)) == 6
    by_minute = {minute: body for minute, to, body in pages if to == ON_CALL[0]}
    # The protocol's default language (zh-CN), the round, when it was reported (local time) and what to text back.
    assert f"ACK {alert.id}" in by_minute[0]
    assert by_minute[30].startswith("第 2 次呼叫") and by_minute[60].startswith("第 3 次呼叫")
    for minute in (30, 60):
        assert "P-001" in by_minute[minute] and "2026-03-02 10:00 (Asia/Shanghai)" in by_minute[minute]
        assert f"ACK {alert.id}" in by_minute[minute]
    with fresh(database) as s:
        rounds = page_rounds(s, s.get(Alert, alert.id), vault=VAULT)
    assert [(r.round, r.at) for r in rounds] == [
        (1, REPORTED_AT),
        (2, REPORTED_AT + timedelta(minutes=30)),
        (3, REPORTED_AT + timedelta(minutes=60)),
    ]
    assert {r.number for r in rounds[0].recipients} == {"+86\u20260099", "+86\u20260098"}


def test_acknowledged_in_the_queue_at_45_minutes_there_is_no_page_at_60(app, alert, world, client, clock, sender):
    def acknowledge_at_45(offset):
        if offset == timedelta(minutes=45):
            response = client.post(f"/api/v1/alerts/{alert.id}/acknowledge", headers=auth(world["nurse"]))
            assert response.status_code == 200, response.json

    pages = run_minutes(app, clock, sender, timedelta(0), timedelta(minutes=120), at_each=acknowledge_at_45)

    assert minutes_paged(pages) == {0: 2, 30: 2}


def test_running_the_job_twice_in_a_minute_pages_once(app, alert, clock, sender, database):
    clock.move_to(REPORTED_AT + timedelta(seconds=5))
    run_job(app, "dispatch_outbox")  # round 1 leaves
    clock.move_to(REPORTED_AT + timedelta(minutes=30, seconds=1))
    run_job(app, "chase_serious_alerts")
    clock.move_to(REPORTED_AT + timedelta(minutes=30, seconds=40))
    run_job(app, "chase_serious_alerts")
    run_job(app, "dispatch_outbox")

    assert len(page_rows(database)) == 4
    assert sorted(to for to, body, _ in sender.sent if body.startswith("第 2 次呼叫")) == sorted(ON_CALL)


def test_a_second_scheduler_that_read_before_the_first_queued_the_round_adds_no_page(alert, session, monkeypatch):
    now = REPORTED_AT + timedelta(minutes=30)
    session.expire_all()
    for row in session.exec(select(OutboundMessage).where(OutboundMessage.purpose == "staff_alert")).all():
        row.status = OutboxStatus.SENT.value  # round 1 has left
    stale = page_rounds(session, session.get(Alert, alert.id))
    assert chase_serious_alerts(session, now=now, vault=VAULT) == 2

    # The other scheduler still sees round 1 as the last: the round's dedupe keys stop its copy.
    monkeypatch.setattr(chase, "page_rounds", lambda *args, **kwargs: stale)
    assert chase_serious_alerts(session, now=now + timedelta(seconds=20), vault=VAULT) == 0
    session.expire_all()
    assert len(session.exec(select(OutboundMessage).where(OutboundMessage.purpose == "staff_alert")).all()) == 4


def test_after_a_dispatch_outage_the_repeat_counts_from_when_the_page_left(app, alert, clock, sender, database):
    # The dispatcher is down: round 1 waits in the outbox, so no round 2 piles up behind it.
    clock.move_to(REPORTED_AT + timedelta(minutes=45))
    run_job(app, "chase_serious_alerts")
    assert len(page_rows(database)) == 2
    run_job(app, "dispatch_outbox")  # back: round 1 leaves at 45 min

    pages = run_minutes(app, clock, sender, timedelta(minutes=46), timedelta(minutes=80))

    assert minutes_paged(pages) == {75: 2}


def test_a_resolved_alert_is_not_chased(app, alert, world, client, clock, sender):
    clock.move_to(REPORTED_AT + timedelta(minutes=10))
    response = client.post(
        f"/api/v1/alerts/{alert.id}/resolve", json={"note": "called: admitted overnight"}, headers=auth(world["nurse"])
    )
    assert response.status_code == 200, response.json
    assert minutes_paged(run_minutes(app, clock, sender, timedelta(minutes=10), timedelta(minutes=70))) == {10: 2}


# --- ACK by SMS ------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "spelling", ["ACK {id}", "ack {id}", "Ack{id}", "ＡＣＫ　{fullwidth}", "确认 {id}", "ACK #{id}."]
)
def test_ack_from_an_on_call_phone_acknowledges_stops_the_chase_and_is_confirmed(
    app, alert, client, clock, sender, database, spelling
):
    fullwidth = "".join(chr(ord(d) - ord("0") + ord("０")) for d in str(alert.id))
    run_minutes(app, clock, sender, timedelta(0), timedelta(minutes=31))
    clock.move_to(REPORTED_AT + timedelta(minutes=40))

    reply = text(client, spelling.format(id=alert.id, fullwidth=fullwidth), sender=ON_CALL[1])

    assert reply == f"已确认提醒 {alert.id}，不再重复呼叫。请在护士工作台记录处理情况。"
    with fresh(database) as s:
        acknowledged = s.get(Alert, alert.id)
        assert (acknowledged.state, acknowledged.acknowledged_at, acknowledged.acknowledged_by) == (
            "acknowledged",
            REPORTED_AT + timedelta(minutes=40),
            "sms:on-call +86\u20260098",
        )
        [audit] = s.exec(
            select(AuditEntry).where(
                AuditEntry.entity == "alert", AuditEntry.entity_id == str(alert.id), AuditEntry.field == "state"
            )
        ).all()
        assert (audit.actor, audit.reason) == (
            "sms:on-call +86\u20260098",
            "acknowledged by SMS ACK from on-call +86…0098",
        )
        inbound = s.exec(select(InboundMessage).order_by(InboundMessage.id.desc())).first()
        assert (inbound.intent, inbound.outcome) == ("staff_ack", f"alert {alert.id} acknowledged by SMS")
    assert minutes_paged(run_minutes(app, clock, sender, timedelta(minutes=41), timedelta(minutes=120))) == {}


def test_a_second_ack_says_it_was_already_acknowledged_and_changes_nothing(alert, client, clock, database):
    clock.move_to(REPORTED_AT + timedelta(minutes=5))
    text(client, f"ACK {alert.id}", sender=ON_CALL[0])
    clock.move_to(REPORTED_AT + timedelta(minutes=6))

    assert (
        text(client, f"ack {alert.id}", sender=ON_CALL[1])
        == f"提醒 {alert.id} 已于 2026-03-02 10:05 被确认，未作更改。"
    )
    with fresh(database) as s:
        assert s.get(Alert, alert.id).acknowledged_by == "sms:on-call +86\u20260099"


@pytest.mark.parametrize(
    ("sender_key", "body", "expected"),
    [
        ("stranger", "ACK {id}", "This number is not on an on-call list, so nothing was acknowledged."),
        ("berlin", "ACK {id}", "没有编号为 {id} 的提醒"),  # on call, but at another site: as if unknown
        ("on_call", "ACK {missing}", "没有编号为 {missing} 的提醒"),
        ("on_call", "ACK", "请回复 ACK 加呼叫短信中的提醒编号"),
        ("on_call", "got it", "请回复 ACK 加呼叫短信中的提醒编号"),
        ("stranger", "hello", "Sorry, this number cannot process your message."),
    ],
)
def test_an_ack_that_is_not_for_this_alert_or_not_from_its_on_call_list_only_gets_a_reply(
    app, alert, client, clock, sender, database, sender_key, body, expected
):
    number = {"stranger": STRANGER, "berlin": OTHER_ON_CALL, "on_call": ON_CALL[0]}[sender_key]
    run_minutes(app, clock, sender, timedelta(0), timedelta(0))
    clock.move_to(REPORTED_AT + timedelta(minutes=10))

    reply = text(client, body.format(id=alert.id, missing=alert.id + 1000), sender=number)

    assert expected.format(id=alert.id, missing=alert.id + 1000) in reply
    with fresh(database) as s:
        assert (s.get(Alert, alert.id).state, s.get(Alert, alert.id).acknowledged_by) == ("open", "")
    assert minutes_paged(run_minutes(app, clock, sender, timedelta(minutes=30), timedelta(minutes=30))) == {30: 2}


def test_ack_from_the_participants_own_phone_does_not_acknowledge(app, alert, client, clock, sender, database):
    run_minutes(app, clock, sender, timedelta(0), timedelta(0))
    clock.move_to(REPORTED_AT + timedelta(minutes=10))

    reply = text(client, f"ACK {alert.id}", sender=PARTICIPANT_PHONE)

    assert reply  # answered as any participant's text is
    with fresh(database) as s:
        assert s.get(Alert, alert.id).state == "open"
    assert minutes_paged(run_minutes(app, clock, sender, timedelta(minutes=30), timedelta(minutes=30))) == {30: 2}


# --- on the alert ----------------------------------------------------------------------------------
def test_the_alert_api_lists_each_page_round_and_how_it_was_acknowledged(app, alert, world, client, clock, sender):
    run_minutes(app, clock, sender, timedelta(0), timedelta(minutes=30))
    clock.move_to(REPORTED_AT + timedelta(minutes=31))
    text(client, f"确认 {alert.id}", sender=ON_CALL[0])

    body = client.get(f"/api/v1/alerts/{alert.id}", headers=auth(world["nurse"])).json

    assert (body["acknowledged_by"], body["acknowledged_via"]) == ("sms:on-call +86\u20260099", "sms")
    assert [(p["round"], p["at"], p["numbers"], p["delivered"]) for p in body["pages"]] == [
        (1, "2026-03-02T02:00:00+00:00", 2, 0),
        (2, "2026-03-02T02:30:00+00:00", 2, 0),
    ]
    assert sorted((r["number"], r["status"]) for r in body["pages"][1]["recipients"]) == [
        ("+86\u20260098", "sent"),
        ("+86\u20260099", "sent"),
    ]
    listed = client.get("/api/v1/alerts?state=acknowledged", headers=auth(world["nurse"])).json
    assert [(a["id"], len(a["pages"])) for a in listed] == [(alert.id, 2)]


def test_an_alert_acknowledged_in_the_queue_says_so(app, alert, world, client, clock):
    clock.move_to(REPORTED_AT + timedelta(minutes=3))
    client.post(f"/api/v1/alerts/{alert.id}/acknowledge", headers=auth(world["nurse"]))
    body = client.get(f"/api/v1/alerts/{alert.id}", headers=auth(world["nurse"])).json
    assert body["acknowledged_via"] == "queue" and [p["round"] for p in body["pages"]] == [1]


def sign_in(client, email: str) -> None:
    """Sign in through the login form, CSRF token included."""
    page = client.get("/login").text
    token = re.search(r'name="csrf_token" type="hidden" value="([^"]+)"', page).group(1)
    client.post("/login", data={"csrf_token": token, "email": email, "password": STRONG_PASSWORD})


def test_the_nurse_queue_shows_the_page_rounds_and_the_sms_acknowledgement(app, alert, client, clock, sender):
    run_minutes(app, clock, sender, timedelta(0), timedelta(minutes=30))
    clock.move_to(REPORTED_AT + timedelta(minutes=32))
    text(client, f"ACK {alert.id}", sender=ON_CALL[1])
    sign_in(client, "nurse-PKUPH@example.org")

    page = client.get("/alerts").text

    row = re.search(rf'<tr id="alert-{alert.id}".*?</tr>', page, re.S).group(0)
    assert "acknowledged by SMS (ACK) from on-call +86\u20260098, 2026-03-02 10:32 (Asia/Shanghai)" in row
    assert "paged 2026-03-02 10:00 (Asia/Shanghai): 2 numbers, 0 delivered" in row
    assert "paged again (round 2) 2026-03-02 10:30 (Asia/Shanghai): 2 numbers" in row
    assert "+86\u20260099 sent" in row
