"""The dashboard tells who to call today and why: today's dose, open alert kinds, contact problems, opted out."""

from __future__ import annotations

import re
from datetime import date

import pytest

from backend.identity.staff import create_staff
from schedules.missed import flag_missed_doses
from tests.backend.test_pages import sign_in
from tests.conftest import utc
from tests.factories import STRONG_PASSWORD, make_participant, make_site, make_study

NOW = "2026-03-03T06:00Z"  # 14:00 on 3 March in Beijing


@pytest.fixture
def ward(session, clock):
    """P-001 doses from 3 March (window open), P-002 from 1 March (dose 1 missed at noon on 2 March), P-003 control."""
    clock.move_to(utc("2026-02-25T00:00Z"))
    study = make_study(session)
    site = make_site(session, code="PKUPH")
    make_participant(session, study=study, site=site, code="P-001", first_dose=date(2026, 3, 3))
    make_participant(session, study=study, site=site, code="P-002", phone="+8613812345679", first_dose=date(2026, 3, 2))
    make_participant(session, study=study, site=site, code="P-003", phone="+8613812345670", arm="control")
    create_staff(session, email="li@example.org", password=STRONG_PASSWORD, role="nurse", site=site, language="zh-CN")
    create_staff(session, email="anna@example.org", password=STRONG_PASSWORD, role="nurse", site=site, language="en")
    clock.move_to(utc(NOW))
    flag_missed_doses(session, now=utc(NOW))
    session.commit()


def _today(page: str) -> dict[str, tuple[str, str]]:
    rows = re.findall(
        r'<tr data-code="([^"]+)" data-today="([a-z_]+)">.*?<td [^>]*class="today[^"]*">(.*?)</td>', page, re.S
    )
    return {code: (state, " ".join(text.split())) for code, state, text in rows}


def test_each_participants_day_in_plain_words(app, ward):
    anna = app.test_client()
    sign_in(anna, "anna@example.org")
    today = _today(anna.get("/").text)
    assert today["P-001"] == ("waiting", "window open, no reply yet (closes 2026-03-04 12:00 (Asia/Shanghai))")
    assert today["P-002"] == ("missed", "missed: no reply before 2026-03-03 12:00 (Asia/Shanghai)")
    assert today["P-003"] == ("no_regimen", "no study drug")
    assert list(_today(anna.get("/?show=waiting").text)) == ["P-001"]
    assert list(_today(anna.get("/?show=missed").text)) == ["P-002"]
    assert list(_today(anna.get("/?show=alerts").text)) == ["P-002"]
    # Who needs a call first: the miss, then the open window, then nothing to take.
    assert list(_today(anna.get("/").text)) == ["P-002", "P-001", "P-003"]


def test_a_chinese_nurse_reads_the_day_in_chinese(app, ward):
    li = app.test_client()
    sign_in(li, "li@example.org")
    page = li.get("/").text
    today = _today(page)
    assert today["P-002"] == ("missed", "漏打：在 2026年3月3日 12:00 (Asia/Shanghai) 前没有回复")
    assert today["P-003"][1] == "无研究用药"
    assert "今天" in page and "漏打" in page
