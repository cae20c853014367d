"""Input that used to end in a server error now gets a 4xx with a sentence, and changes nothing it should not."""

from __future__ import annotations

import re
from datetime import timedelta

from sqlmodel import select

from notifications.models import InboundMessage, StatusCallback
from schedules.models import Dose
from tests.conftest import utc
from tests.factories import STRONG_PASSWORD, auth, make_site, make_staff_token, make_study
from tests.sms_helpers import inbound_params, post_signed


def test_a_next_link_with_a_smuggled_newline_gets_the_login_page_then_the_dashboard(client, session):
    from backend.identity.staff import create_staff

    site = make_site(session)
    create_staff(session, email="nurse@example.org", password=STRONG_PASSWORD, role="nurse", site=site)
    page = client.get("/login?next=/%0D%0A//evil.example")
    assert page.status_code == 200 and "evil.example" not in page.text
    token = re.search(r'name="csrf_token" type="hidden" value="([^"]+)"', page.text).group(1)
    data = {"csrf_token": token, "email": "nurse@example.org", "password": STRONG_PASSWORD}
    signed_in = client.post("/login?next=/%0D%0A//evil.example", data=data)
    assert signed_in.status_code == 303 and signed_in.headers["Location"] == "/"


def test_an_overlong_message_sid_is_refused_with_a_sentence_and_stores_nothing(client, session):
    too_long = "SM" + "0" * 70
    inbound = post_signed(client, "/sms/inbound", inbound_params("1", sid=too_long))
    assert inbound.status_code == 400 and "not a Twilio message id" in inbound.text
    status = post_signed(client, "/sms/status", {"MessageSid": too_long, "MessageStatus": "delivered"})
    assert status.status_code == 400 and "not a Twilio message id" in status.text
    assert session.exec(select(InboundMessage)).all() == []
    assert session.exec(select(StatusCallback)).all() == []


def test_a_status_callback_with_a_non_ascii_digit_error_code_or_outbox_is_kept_not_a_500(client, session):
    # '²' and '٣' are digits to str.isdigit() but not to int(): they used to end in a ValueError.
    params = {"MessageSid": "SM" + "e" * 32, "MessageStatus": "undelivered", "ErrorCode": "3000²"}
    assert post_signed(client, "/sms/status?outbox=٣", params).status_code == 204
    [kept] = session.exec(select(StatusCallback)).all()
    assert (kept.status, kept.error_code) == ("undelivered", None)


def test_a_status_callback_with_numbers_too_big_for_the_columns_is_kept_not_a_500(client, session):
    # ErrorCode and the outbox id are 32-bit INTEGER columns: PostgreSQL refused a larger number with a DataError.
    params = {"MessageSid": "SM" + "f" * 32, "MessageStatus": "failed", "ErrorCode": "99999999999"}
    assert post_signed(client, "/sms/status?outbox=99999999999", params).status_code == 204
    [kept] = session.exec(select(StatusCallback)).all()
    assert (kept.status, kept.error_code) == ("failed", None)


def test_hold_and_resume_before_the_first_dose_keeps_the_whole_schedule(client, session, clock):
    clock.move_to(utc("2026-02-20T00:00Z"))
    make_study(session)
    site = make_site(session)
    token = make_staff_token(session, role="nurse", site=site, ttl=timedelta(days=365))
    body = {
        "study": "NCT04237987",
        "study_code": "P-051",
        "arm": "il2",
        "site": "PKUPH",
        "phone": "+8613812345672",
        "time_zone": "Asia/Shanghai",
        "reminder_time": "20:00",
        "first_dose_date": "2026-03-01",
    }
    pid = client.post("/api/v1/participants", json=body, headers=auth(token)).get_json()["id"]
    held = client.post(f"/api/v1/participants/{pid}/hold", json={"reason": "lab results pending"}, headers=auth(token))
    assert held.status_code == 200, held.get_json()
    resumed = client.post(f"/api/v1/participants/{pid}/resume", json={"reason": "labs fine"}, headers=auth(token))
    assert resumed.status_code == 200, resumed.get_json()
    assert resumed.get_json()["participant"]["status"] == "active"
    planned = session.exec(select(Dose).where(Dose.participant_id == pid, Dose.state == "scheduled")).all()
    assert len(planned) == 46 and min(d.local_date for d in planned).isoformat() == "2026-03-01"
