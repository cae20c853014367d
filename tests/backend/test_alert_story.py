"""The alert queue says what happened, in the nurse's language: the participant's words, our reply, the dose and
its date; a resolved alert is not said to be acknowledged unless someone acknowledged it first."""

from __future__ import annotations

import re
from datetime import date

import pytest
from sqlmodel import select

from backend.identity.staff import create_staff
from schedules.missed import flag_missed_doses
from schedules.models import Alert, AlertKind, Participant
from tests.backend.test_pages import csrf, sign_in
from tests.conftest import utc
from tests.factories import STRONG_PASSWORD, make_participant, make_site, make_study
from tests.sms_helpers import inbound_params, post_signed

PHONE = "+8613812345678"


@pytest.fixture
def ward(session, clock):
    """A Beijing site whose nurse reads Chinese and a Berlin nurse reading English; P-001 enrolled in Beijing."""
    clock.move_to(utc("2026-02-25T00:00Z"))
    study = make_study(session)
    beijing = make_site(session, code="PKUPH", on_call=("+8613900000098",))
    beijing.language = "zh-CN"
    make_participant(session, study=study, site=beijing, code="P-001", phone=PHONE, first_dose=date(2026, 3, 1))
    create_staff(session, email="li@example.org", password=STRONG_PASSWORD, role="nurse", site=beijing)
    create_staff(session, email="admin@example.org", password=STRONG_PASSWORD, role="admin", site=None, language="en")
    session.commit()


def _row(page: str, kind: str) -> str:
    row = re.search(rf'<tr id="alert-\d+" data-kind="{kind}".*?</tr>', page, re.S).group(0)
    return " ".join(re.sub(r"<[^>]+>", " ", row).split())


def test_a_serious_text_shows_the_words_and_the_reply_in_the_nurses_language(app, client, ward, clock):
    clock.move_to(utc("2026-03-02T02:00Z"))
    assert post_signed(client, "/sms/inbound", inbound_params("昨晚住院了", sender=PHONE)).status_code == 200
    li, admin = app.test_client(), app.test_client()
    sign_in(li, "li@example.org")
    sign_in(admin, "admin@example.org")
    chinese = _row(li.get("/alerts").text, "serious_ae")
    assert "通过短信报告了疑似严重事件：消息中提到“住院”" in chinese
    assert "受试者写道： 昨晚住院了" in chinese and "我们回复：" in chinese and "120" in chinese
    english = _row(admin.get("/alerts").text, "serious_ae")
    assert "Suspected serious event reported by SMS: the message mentions 住院" in english
    assert "They wrote: 昨晚住院了" in english and "We replied:" in english


def test_a_missed_dose_names_its_number_and_local_date(app, session, ward, clock):
    clock.move_to(utc("2026-03-02T06:00Z"))  # 14:00 in Beijing: dose 1 of 1 March has closed
    flag_missed_doses(session, now=utc("2026-03-02T06:00Z"))
    session.commit()
    li = app.test_client()
    sign_in(li, "li@example.org")
    assert "第 1 剂（2026年3月1日）漏打：时间窗关闭前没有回复" in _row(li.get("/alerts").text, "missed_dose")


def test_resolving_alone_is_not_shown_as_an_acknowledgement(app, session, ward, clock):
    clock.move_to(utc("2026-03-02T06:00Z"))
    flag_missed_doses(session, now=utc("2026-03-02T06:00Z"))
    session.commit()
    alert = session.exec(select(Alert).where(Alert.kind == AlertKind.MISSED_DOSE.value)).one()
    admin = app.test_client()
    sign_in(admin, "admin@example.org")
    answer = admin.post(
        f"/alerts/{alert.id}/resolve",
        data={f"resolve{alert.id}-csrf_token": csrf(admin), f"resolve{alert.id}-note": "Called: she forgot"},
    )
    assert answer.status_code == 303
    resolved = _row(admin.get("/alerts?show=resolved").text, "missed_dose")
    assert "resolved by admin@example.org, 2026-03-02 14:00 (Asia/Shanghai): Called: she forgot" in resolved
    assert "acknowledged by" not in resolved


def test_the_message_log_says_what_came_of_each_text_without_codes(app, client, ward, session, clock):
    clock.move_to(utc("2026-03-02T02:00Z"))
    assert post_signed(client, "/sms/inbound", inbound_params("V 4.55", sender=PHONE)).status_code == 200
    pid = session.exec(select(Participant.id)).one()
    li, admin = app.test_client(), app.test_client()
    sign_in(li, "li@example.org")
    sign_in(admin, "admin@example.org")
    english = " ".join(re.sub(r"<[^>]+>", " ", admin.get(f"/participants/{pid}").text).split())
    assert "VAS not accepted: too many decimals" in english and "sent as the answer to their message" in english
    assert "too_many_decimals" not in english and "twiml" not in english
    chinese = " ".join(re.sub(r"<[^>]+>", " ", li.get(f"/participants/{pid}").text).split())
    assert "VAS 未被接受：小数位过多" in chinese and "已作为对其短信的回复发出" in chinese
