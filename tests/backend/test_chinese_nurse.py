"""Issue 17's acceptance: a zh-CN nurse works a missed dose and a suspected serious event from the dashboard to
resolved without seeing an English word or a code.

Every page on the way is read as the nurse reads it: the text between the tags (scripts and styles left out) and
the attributes a screen reader or a hover says aloud (aria-label, title, placeholder, alt, data-label, and an
<optgroup>'s label). What may stay in Latin letters is listed below, short and explicit."""

from __future__ import annotations

import html
import re
from datetime import date

import pytest
from sqlmodel import select

from backend.identity.staff import create_staff
from schedules.ctcae import ctcae_terms
from schedules.missed import flag_missed_doses
from schedules.models import AdverseEvent, Alert, AlertKind, AlertState, Participant
from tests.backend.test_pages import csrf, sign_in
from tests.conftest import utc
from tests.factories import STRONG_PASSWORD, make_participant, make_site, make_study
from tests.sms_helpers import inbound_params, post_signed

PHONE = "+8613812345678"
NURSE = "li@example.org"

# Latin-letter tokens a Chinese page may show: identifiers (the study's, the site's, the arm's, the participant's),
# time-zone names, e-mail addresses, MedDRA/CTCAE term names (English in the trial's coding), a few proper nouns
# and the SMS keywords a participant types, and "English", the language switch naming that language in itself.
ALLOWED_PATTERNS = [
    r"[\w.+-]+@[\w-]+(?:\.[\w-]+)+",  # e-mail addresses
    r"\b[A-Z]-\d{3}\b",  # study codes of participants (P-001)
    r"\bAsia/Shanghai\b",
    r"\bNCT\d+\b",  # the study's registry code
    r"(?<![\w/])/app/",  # the participant app's address, typed as it is
]
ALLOWED_WORDS = {
    "Trial",  # the product's name, Trial Companion
    "Companion",
    "PKUPH",  # the site's code
    "il2",  # the arm's code (protocols/NCT04237987.toml)
    "VAS",
    "SMS",
    "CTCAE",
    "MedDRA",
    "v5",
    "ACK",
    "START",
    "STOP",
    "HELP",
    "English",
}
READ_ATTRIBUTES = ("aria-label", "title", "placeholder", "alt", "data-label", "label")


def visible_text(page: str) -> str:
    """What the nurse reads or hears of a page: text outside tags and the read-aloud attributes."""
    page = re.sub(r"<(script|style)\b.*?</\1>", " ", page, flags=re.S | re.I)
    page = re.sub(r"<!--.*?-->", " ", page, flags=re.S)
    spoken = [html.unescape(value) for name in READ_ATTRIBUTES for value in re.findall(rf'\s{name}="([^"]*)"', page)]
    text = html.unescape(re.sub(r"<[^>]+>", " ", page))
    return " ".join((text + " " + " ".join(spoken)).split())


def foreign_words(text: str) -> list[str]:
    """Latin-letter words and codes left once the allowed identifiers, names and keywords are taken out."""
    # Longest first, so "Injection site reaction" goes before "Injection".
    for name in sorted({t.term for t in ctcae_terms()}, key=len, reverse=True):
        text = text.replace(name, " ")
    for pattern in ALLOWED_PATTERNS:
        text = re.sub(pattern, " ", text)
    return [w for w in re.findall(r"[A-Za-z][A-Za-z0-9_]*", text) if w not in ALLOWED_WORDS]


def assert_all_chinese(page: str, where: str) -> str:
    text = visible_text(page)
    codes = re.findall(r"\b[a-z0-9]+_[a-z0-9_]+\b", text)
    assert not codes, f"{where}: codes shown to the nurse: {codes}"
    words = foreign_words(text)
    assert not words, f"{where}: English shown to the nurse: {sorted(set(words))}"
    return text


def _token(page: str, name: str) -> str:
    return re.search(rf'name="{re.escape(name)}" type="hidden" value="([^"]+)"', page).group(1)


def _value(page: str, name: str) -> str:
    return re.search(rf'name="{re.escape(name)}"[^>]*value="([^"]*)"', page).group(1)


@pytest.fixture
def ward(session, clock):
    """A Beijing site that reads Chinese, a nurse there with no language of her own, P-001 enrolled there."""
    clock.move_to(utc("2026-02-25T00:00Z"))
    study = make_study(session)
    beijing = make_site(session, code="PKUPH", on_call=("+8613900000098",))
    beijing.language = "zh-CN"
    make_participant(session, study=study, site=beijing, code="P-001", phone=PHONE, first_dose=date(2026, 3, 1))
    create_staff(session, email=NURSE, password=STRONG_PASSWORD, role="nurse", site=beijing)
    session.commit()


def test_a_chinese_nurse_works_a_missed_dose_and_a_serious_event_to_resolved_in_chinese(
    app, client, session, ward, clock
):
    # 10:00 in Beijing on 2 March: P-001 texts that she was in hospital last night.
    clock.move_to(utc("2026-03-02T02:00Z"))
    assert post_signed(client, "/sms/inbound", inbound_params("昨晚住院了", sender=PHONE)).status_code == 200
    # 14:00: dose 1 (1 March) has closed with no reply.
    clock.move_to(utc("2026-03-02T06:00Z"))
    flag_missed_doses(session, now=utc("2026-03-02T06:00Z"))
    session.commit()
    missed = session.exec(select(Alert).where(Alert.kind == AlertKind.MISSED_DOSE.value)).one()
    serious = session.exec(select(Alert).where(Alert.kind == AlertKind.SERIOUS_AE.value)).one()
    ae = session.exec(select(AdverseEvent)).one()
    pid = session.exec(select(Participant.id)).one()

    nurse = app.test_client()
    assert sign_in(nurse, NURSE).status_code == 303

    dashboard = nurse.get("/")
    assert dashboard.status_code == 200
    assert "漏打" in assert_all_chinese(dashboard.text, "dashboard")
    link = f"/participants/{pid}"
    assert f'href="{link}"' in dashboard.text

    participant = nurse.get(link)
    text = assert_all_chinese(participant.text, "participant page")
    assert "受试者 P-001" in text and "用药日历" in text and "2026年3月" in text and "昨晚住院了" in text
    assert f'href="/adverse-events/{ae.id}"' in participant.text

    queue = nurse.get("/alerts")
    text = assert_all_chinese(queue.text, "alert queue")
    assert "第 1 剂（2026年3月1日）漏打" in text and "疑似严重" in text

    ae_page = nurse.get(f"/adverse-events/{ae.id}")
    text = assert_all_chinese(ae_page.text, "adverse-event page")
    assert "完善记录" in text and "血液及淋巴系统疾病" in text

    # Completing the record: a form error first (no reason), then the record saved.
    record = {
        "record-csrf_token": _token(ae_page.text, "record-csrf_token"),
        "record-ctcae_term": "",
        "record-onset_date": "2026-03-01",
        "record-stop_date": "",
        "record-ongoing": "yes",
        "record-severity": "severe",
        "record-went_to_hospital": "yes",
        "record-action_taken": "dose_not_changed",
        "record-aware_at": _value(ae_page.text, "record-aware_at"),
        "record-narrative": "受试者昨晚因发热住院，今日电话随访。",
        "record-reason": "",
    }
    refused = nurse.post(f"/adverse-events/{ae.id}/record", data=record)
    assert refused.status_code == 422
    assert "请填写更改原因。" in assert_all_chinese(refused.text, "adverse-event form error")
    saved = nurse.post(f"/adverse-events/{ae.id}/record", data={**record, "record-reason": "电话随访"})
    assert saved.status_code == 303
    text = assert_all_chinese(nurse.get(saved.headers["Location"]).text, "adverse-event page after saving")
    assert "记录已保存为第 1 版。" in text and "重度" in text and "剂量未改变" in text

    # Both alerts: acknowledged from the queue, then resolved with a note; the queue after each step.
    for alert in (serious, missed):
        queue = nurse.get("/alerts").text
        ack = nurse.post(
            f"/alerts/{alert.id}/acknowledge",
            data={f"ack{alert.id}-csrf_token": _token(queue, f"ack{alert.id}-csrf_token"), f"ack{alert.id}-next": ""},
        )
        assert ack.status_code == 303
        text = assert_all_chinese(nurse.get(ack.headers["Location"]).text, f"queue after acknowledging {alert.kind}")
        assert "已确认提醒" in text
        again = nurse.post(
            f"/alerts/{alert.id}/acknowledge",
            data={f"ack{alert.id}-csrf_token": csrf(nurse), f"ack{alert.id}-next": ""},
        )
        assert again.status_code == 422
        assert "此提醒已确认，不是未处理状态。" in assert_all_chinese(again.text, "acknowledging twice")
        queue = nurse.get("/alerts").text
        token = _token(queue, f"resolve{alert.id}-csrf_token")
        empty = nurse.post(
            f"/alerts/{alert.id}/resolve", data={f"resolve{alert.id}-csrf_token": token, f"resolve{alert.id}-note": ""}
        )
        assert empty.status_code == 422
        assert_all_chinese(empty.text, f"resolving {alert.kind} without a note")
        resolved = nurse.post(
            f"/alerts/{alert.id}/resolve",
            data={f"resolve{alert.id}-csrf_token": token, f"resolve{alert.id}-note": "已电话联系受试者"},
        )
        assert resolved.status_code == 303
        text = assert_all_chinese(nurse.get(resolved.headers["Location"]).text, f"queue after resolving {alert.kind}")
        assert "已解决提醒" in text

    session.expire_all()
    assert {a.state for a in session.exec(select(Alert)).all()} == {AlertState.RESOLVED.value}
    done = nurse.get("/alerts?show=resolved")
    assert "已电话联系受试者" in assert_all_chinese(done.text, "resolved alerts")
    assert_all_chinese(nurse.get(link).text, "participant page at the end")
    assert_all_chinese(nurse.get("/").text, "dashboard at the end")
    assert_all_chinese(nurse.get("/no-such-page").text, "not found")


def test_the_check_hears_attributes_and_sees_codes_but_not_scripts():
    page = (
        '<script>var english = "yes";</script><p title="Open" data-x="ignored">中文 P-001 Asia/Shanghai '
        "li@example.org Fever</p><span>too_many_decimals</span>"
    )
    text = visible_text(page)
    assert "english" not in text and "ignored" not in text
    assert foreign_words(text) == ["too_many_decimals", "Open"]
