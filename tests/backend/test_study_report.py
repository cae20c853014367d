"""The study report page: each figure from the rows a nurse would count by hand, and each link to those rows."""

from __future__ import annotations

import re
from datetime import date, timedelta

import pytest
from sqlmodel import select

from backend.identity.staff import create_staff
from backend.operations.alerts import resolve_alert
from backend.operations.doses import record_dose
from backend.operations.symptoms import record_vas, report_adverse_event
from schedules.ae_review import review_adverse_event
from schedules.dbtypes import utcnow
from schedules.deviations import detect_deviations
from schedules.missed import flag_missed_doses
from schedules.models import Alert, AlertKind
from schedules.queries import dose_by_seq
from tests.backend.test_pages import sign_in
from tests.conftest import utc
from tests.factories import ACTOR, STRONG_PASSWORD, VAULT, make_participant, make_site, make_study

NOW = "2026-03-20T06:00Z"  # 14:00 in Shanghai: ten doses of A-001 (1 to 19 March) have closed


def _serious(session, participant, *, at, resolve_after=None):
    """A suspected-serious report at `at`, its alert resolved `resolve_after` later (None: left open)."""
    ae = report_adverse_event(
        session, participant=participant, actor=ACTOR, now=at, vault=VAULT, raw_text="admitted", went_to_hospital=True
    )
    alert = session.exec(select(Alert).where(Alert.ref_id == ae.id, Alert.kind == AlertKind.SERIOUS_AE.value)).one()
    if resolve_after is not None:
        resolve_alert(session, alert=alert, note="SAE report sent", actor=ACTOR, now=at + resolve_after)
    return alert.id


@pytest.fixture
def world(session, clock):
    """Site A: A-001 (IL-2, six doses taken then four missed), A-002 (control); site B: B-001 (IL-2, nothing)."""
    clock.move_to(utc("2026-02-25T00:00Z"))
    study = make_study(session)
    site_a = make_site(session, code="SITE-A")
    site_b = make_site(session, code="SITE-B", time_zone="Europe/Berlin", on_call=("+4915100000099",))
    a1 = make_participant(session, study=study, site=site_a, code="A-001", phone="+8613800000011")
    a2 = make_participant(session, study=study, site=site_a, code="A-002", arm="control", phone="+8613800000012")
    b1 = make_participant(
        session, study=study, site=site_b, code="B-001", phone="+4915112345678", time_zone="Europe/Berlin"
    )
    for seq in range(1, 7):
        dose = dose_by_seq(session, a1, seq)
        record_dose(session, dose=dose, taken=True, actor=ACTOR, now=dose.due_at, reason="participant SMS")
    clock.move_to(utc(NOW))
    now = utcnow()
    flag_missed_doses(session, now=now)
    detect_deviations(session, now=now)
    record_vas(session, participant=a1, value="3.5", actor=ACTOR, now=utc("2026-03-03T12:00Z"))
    record_vas(session, participant=a1, value="4", actor=ACTOR, now=utc("2026-03-12T12:00Z"))
    record_vas(session, participant=a2, value="6", actor=ACTOR, now=utc("2026-03-02T12:00Z"))
    fever = report_adverse_event(session, participant=a1, actor=ACTOR, now=now, vault=VAULT, term="fever")
    review_adverse_event(
        session, ae=fever, actor=ACTOR, now=now, ctcae_grade=2, serious=False, serious_criteria=[],
        relatedness="possible", outcome="recovering",
    )  # fmt: skip
    report_adverse_event(session, participant=b1, actor=ACTOR, now=now, vault=VAULT, term="fever")
    alerts = {
        "on_time": _serious(session, a1, at=now - timedelta(days=3), resolve_after=timedelta(hours=5)),
        "late": _serious(session, a1, at=now - timedelta(days=4), resolve_after=timedelta(hours=30)),
        "overdue": _serious(session, a2, at=now - timedelta(days=2)),
        "running": _serious(session, b1, at=now - timedelta(hours=3)),
    }
    for email, role, site in [
        ("nurse-a@example.org", "nurse", site_a),
        ("admin@example.org", "admin", None),
        ("assessor@example.org", "assessor", None),
    ]:
        create_staff(session, email=email, password=STRONG_PASSWORD, role=role, site=site)
    session.commit()
    return {"fever": fever.id, "alerts": alerts, "a1": a1.id}


def _row(html: str, table: str, key: str) -> str:
    """The text of one row of a report table, tags stripped."""
    body = re.search(rf'<table class="grid" id="{table}">(.*?)</table>', html, re.S).group(1)
    row = re.search(rf'<tr data-[a-z]+="{re.escape(key)}"[^>]*>(.*?)</tr>', body, re.S).group(1)
    return " ".join(re.sub(r"<[^>]+>", " ", row).split())


def test_the_admin_reads_adherence_by_site_and_by_arm(client, world):
    sign_in(client, "admin@example.org")
    page = client.get("/report").text
    # 10 doses closed, 6 taken on time; B-001: 10 closed, none taken (Berlin's 19 March closes at 11:00Z).
    assert _row(page, "adherence-by-site", "SITE-A") == "SITE-A 2 60% (6 of 10) 60% (6 of 10)"
    assert _row(page, "adherence-by-site", "SITE-B") == "SITE-B 1 0% (0 of 9) 0% (0 of 9)"
    assert _row(page, "adherence-by-arm", "il2") == "il2 2 32% (6 of 19) 32% (6 of 19)"
    assert "no dose due (no study drug" in _row(page, "adherence-by-arm", "control")
    assert 'href="/?site=SITE-B"' in page and 'href="/?arm=control"' in page


def test_vas_completion_counts_each_ended_study_week_and_lists_who_answered(client, world):
    sign_in(client, "admin@example.org")
    page = client.get("/report").text
    assert _row(page, "vas-weeks", "1") == "Week 1 67% (2 of 3)"
    assert _row(page, "vas-weeks", "2") == "Week 2 33% (1 of 3)"
    assert 'data-week="3"' not in page  # 15 to 21 March has not ended
    week = client.get("/report/vas-week/1").text
    answers = dict(re.findall(r'data-code="([^"]+)" data-answered="(yes|no)"', week))
    assert answers == {"A-001": "yes", "A-002": "yes", "B-001": "no"}
    assert client.get("/report/vas-week/3").status_code == 404


def test_adverse_events_by_term_and_grade_link_to_the_reports(client, world):
    sign_in(client, "admin@example.org")
    page = client.get("/report").text
    assert _row(page, "ae-grades", "fever") == "Fever 1 1 2"  # grade 2: one; not graded: one; all: two
    rows = client.get("/report/adverse-events?term=fever&grade=2").text
    assert re.findall(r'data-ae="(\d+)"', rows) == [str(world["fever"])]
    assert len(re.findall(r'data-ae="', client.get("/report/adverse-events?term=fever").text)) == 2
    assert client.get("/report/adverse-events?term=fever&grade=4").status_code == 404


def test_serious_event_reporting_is_judged_against_each_deadline(client, world):
    sign_in(client, "admin@example.org")
    page = client.get("/report").text
    for standing in ("on_time", "late", "overdue", "running"):
        assert _row(page, "sae-standings", standing).endswith(" 1")
    # One on time of three whose clock has ended or run out; the running one is not judged yet.
    assert "<strong>33%</strong>" in page
    late = client.get("/report/serious-events?standing=late").text
    assert re.findall(r'data-alert="(\d+)"', late) == [str(world["alerts"]["late"])]
    assert "SAE report sent" in late


def test_a_nurse_sees_only_her_site_and_the_assessor_is_refused(app, client, world):
    sign_in(client, "nurse-a@example.org")
    page = client.get("/report").text
    assert 'data-key="SITE-B"' not in page and 'data-key="SITE-A"' in page
    assert _row(page, "sae-standings", "running").endswith(" 0")  # B-001's event is another site's
    assert client.get("/report?site=SITE-B").status_code == 404
    assessor = app.test_client()
    sign_in(assessor, "assessor@example.org")
    assert assessor.get("/report").status_code == 403
    assert assessor.get("/report/vas-week/1").status_code == 403


def test_study_weeks_follow_each_participants_own_first_dose(session, clock):
    from schedules.study_report import vas_weeks

    clock.move_to(utc("2026-02-25T00:00Z"))
    study, site = make_study(session), make_site(session)
    early = make_participant(session, study=study, site=site, code="E-1", first_dose=date(2026, 3, 1))
    late = make_participant(
        session, study=study, site=site, code="L-1", phone="+8613800000099", first_dose=date(2026, 3, 8)
    )
    weeks = vas_weeks([early, late], [], now=utc("2026-03-16T00:00Z"))
    assert [(w.week, sorted(w.expected)) for w in weeks] == [(1, sorted([early.id, late.id])), (2, [early.id])]


def test_a_coded_report_is_counted_under_its_ctcae_term(client, world, session):
    from backend.operations.ae_review import complete_adverse_event
    from schedules.models import AdverseEvent

    fever = session.get(AdverseEvent, world["fever"])
    complete_adverse_event(
        session, ae=fever, actor=ACTOR, now=utc(NOW), changes={"ctcae_term": "10016558"}, vault=VAULT, reason="coded"
    )
    session.commit()
    sign_in(client, "admin@example.org")
    page = client.get("/report").text
    assert _row(page, "ae-grades", "ctcae:10016558") == "Fever (CTCAE) 1 0 1"
    assert _row(page, "ae-grades", "fever") == "Fever 0 1 1"  # B-001's report, not coded yet


def test_open_deviations_by_classification_link_to_the_log(client, world):
    sign_in(client, "admin@example.org")
    page = client.get("/report").text
    # A-001 missed 7 to 19 March (four in a row: major); B-001 missed every dose (a run of nine: major).
    major = int(_row(page, "open-deviations", "major").split()[-1])
    assert major == 4 + 9 and _row(page, "open-deviations", "minor") == "Minor 0"
    assert 'href="/deviations?review_state=open&amp;classification=major"' in page
    listed = client.get("/deviations?review_state=open&classification=major").text
    assert listed.count('<tr id="deviation-') == major
