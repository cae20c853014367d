"""The deviation log page: the site's deviations, the filters as a GET form, a review form that saves and audits."""

from __future__ import annotations

import re

import pytest
from sqlmodel import select

from backend.models import AuditEntry
from schedules.dbtypes import utcnow
from schedules.deviations import detect_deviations
from schedules.models import Deviation
from tests.backend.test_pages import csrf, fresh, sign_in
from tests.backend.test_pages import world as world  # the fixture: A-001 missed three doses, B-001 at another site


def _detected(session):
    detect_deviations(session, now=utcnow())
    session.commit()
    return session.exec(select(Deviation).order_by(Deviation.local_date, Deviation.id)).all()


def _rows(html: str) -> list[str]:
    return re.findall(r'<tr id="deviation-\d+" data-kind="(\w+)" data-participant="([\w-]+)"', html)


def test_the_nurse_sees_her_sites_deviations_linked_to_the_participant(app, client, world, session):
    _detected(session)
    sign_in(client, "nurse-a@example.org")
    page = client.get("/deviations")
    assert page.status_code == 200
    assert _rows(page.text) == [("missed_dose", "A-001")] * 3
    assert f'href="/participants/{world["a1"]}"' in page.text
    assert "3 doses not taken in a row (the protocol: 2 in a row is major)" in page.text and "2026-03-05" in page.text
    assert 'href="/deviations"' in client.get("/").text  # in the navigation

    # In Berlin the window of 5 March is still open at NOW: two of B-001's doses have closed, not three.
    elsewhere = app.test_client()
    sign_in(elsewhere, "nurse-b@example.org")
    other = elsewhere.get("/deviations")
    assert _rows(other.text) == [("missed_dose", "B-001")] * 2 and "A-001" not in other.text


def test_the_filters_are_a_get_form(client, world, session):
    _detected(session)
    sign_in(client, "admin@example.org")
    assert len(_rows(client.get("/deviations").text)) == 5
    assert {p for _, p in _rows(client.get("/deviations?participant=B-001").text)} == {"B-001"}
    assert {p for _, p in _rows(client.get("/deviations?site=SITE-A").text)} == {"A-001"}
    assert _rows(client.get("/deviations?kind=late_dose").text) == []
    assert len(_rows(client.get("/deviations?date_from=2026-03-03&date_to=2026-03-03").text)) == 2
    assert "No deviations match these filters." in client.get("/deviations?review_state=reviewed").text


def test_a_review_posted_from_the_page_is_saved_and_audited(client, world, session):
    first = _detected(session)[0]
    sign_in(client, "nurse-a@example.org")
    token = csrf(client)
    prefix = f"review{first.id}"
    refused = client.post(
        f"/deviations/{first.id}/review",
        data={f"{prefix}-csrf_token": token, f"{prefix}-review_state": "reviewed", f"{prefix}-comment": ""},
    )
    assert refused.status_code == 422 and "Say what was found." in refused.text

    saved = client.post(
        f"/deviations/{first.id}/review",
        data={
            f"{prefix}-csrf_token": token,
            f"{prefix}-review_state": "reviewed",
            f"{prefix}-comment": "called: travelling, took it the next morning",
            f"{prefix}-next": "/deviations?participant=A-001",
        },
    )
    assert saved.status_code == 303 and saved.headers["Location"] == "/deviations?participant=A-001"
    row = fresh(session, Deviation, first.id)
    assert (row.review_state, row.comment) == ("reviewed", "called: travelling, took it the next morning")
    audit = session.exec(
        select(AuditEntry).where(
            AuditEntry.entity == "deviation", AuditEntry.entity_id == str(first.id), AuditEntry.field == "review_state"
        )
    ).one()
    assert audit.new_value == "reviewed" and audit.reason == "called: travelling, took it the next morning"
    assert "called: travelling" in client.get("/deviations?review_state=reviewed").text

    assert client.post(f"/deviations/{first.id}/review", data={f"{prefix}-review_state": "reviewed"}).status_code == 400


def test_another_sites_nurse_cannot_review_and_the_assessor_is_refused(app, client, world, session):
    first = _detected(session)[0]  # A-001's
    sign_in(client, "nurse-b@example.org")
    prefix = f"review{first.id}"
    data = {f"{prefix}-csrf_token": csrf(client), f"{prefix}-review_state": "reviewed", f"{prefix}-comment": "x"}
    assert client.post(f"/deviations/{first.id}/review", data=data).status_code == 404

    assessor = app.test_client()
    sign_in(assessor, "assessor-a@example.org")
    assert assessor.get("/deviations").status_code == 403
    assert 'href="/deviations"' not in assessor.get("/").text


@pytest.mark.parametrize(
    ("stored", "english", "chinese"),
    [
        (
            "missed_in_a_row_major = 2: 3 doses not taken in a row",
            "3 doses not taken in a row (the protocol: 2 in a row is major)",
            "连续 3 剂未用药（方案规定：连续 2 次为重大）",
        ),
        (
            "late_major_after_hours = 24: taken 25 h after the window closed",
            "taken 25 h after the window closed (the protocol: more than 24 h is major)",
            "在时间窗关闭后 25 小时用药（方案规定：超过 24 小时为重大）",
        ),
        (
            "out_of_window_change_classification = minor: missed changed to taken 3 day(s) after the window closed,"
            " by staff:staff:7",
            "the record was changed from missed to taken on time 3 days after the window closed, by staff account 7",
            "工作人员账号 7 在时间窗关闭 3 天后把记录从“漏打”改为“按时用药”",
        ),
        ("hold_classification = minor: 4 dose(s) held by staff:staff:2", "4 doses held by staff account 2", None),
        ("phoned: she was travelling", "phoned: she was travelling", "phoned: she was travelling"),
    ],
)
def test_the_log_reads_each_stored_rule_in_words(app, stored, english, chinese):
    from flask import g

    from backend.web.words import deviation_words

    for language, expected in (("en", english), ("zh-CN", chinese)):
        if expected is None:
            continue
        with app.test_request_context("/deviations"):
            g.page_language = language
            assert deviation_words(stored) == expected
