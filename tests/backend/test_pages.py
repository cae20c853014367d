"""Nurse pages through the Flask test client: session login, CSRF refusal, site scoping, masking,
the actions on a participant and the alert queue."""

from __future__ import annotations

import re
from datetime import date

import pytest
from sqlmodel import select

from backend.app import create_app
from backend.extensions import set_sender
from backend.identity.staff import create_staff
from backend.models import AuditEntry
from notifications.models import OutboundMessage
from schedules.dbtypes import utcnow
from schedules.missed import flag_missed_doses
from schedules.models import Alert, DoseEvent, Participant
from schedules.queries import dose_by_seq
from tests.conftest import test_settings as settings_for
from tests.conftest import utc
from tests.factories import STRONG_PASSWORD, make_participant, make_site, make_study

NOW = "2026-03-06T06:00Z"  # 14:00 in Shanghai: doses of 1, 3 and 5 March have closed unreported


@pytest.fixture
def world(session, clock):
    """Two sites, a participant at each (A-001 missed three doses), nurses, an assessor and an admin."""
    clock.move_to(utc(NOW))
    study = make_study(session)
    site_a = make_site(session, code="SITE-A")
    site_b = make_site(session, code="SITE-B", time_zone="Europe/Berlin", on_call=("+4915100000099",))
    a1 = make_participant(session, study=study, site=site_a, code="A-001", phone="+8613800000011")
    a2 = make_participant(
        session, study=study, site=site_a, code="A-002", phone="+8613800000012", first_dose=date(2026, 3, 10)
    )
    b1 = make_participant(
        session, study=study, site=site_b, code="B-001", phone="+4915112345678", time_zone="Europe/Berlin"
    )
    for email, role, site in [
        ("nurse-a@example.org", "nurse", site_a),
        ("nurse-b@example.org", "nurse", site_b),
        ("assessor-a@example.org", "assessor", site_a),
        ("admin@example.org", "admin", None),
    ]:
        create_staff(session, email=email, password=STRONG_PASSWORD, role=role, site=site)
    flag_missed_doses(session, now=utcnow())
    session.commit()
    return {"a1": a1.id, "a2": a2.id, "b1": b1.id}


def _token(html: str, name: str = "logout-csrf_token") -> str:
    return re.search(rf'name="{re.escape(name)}" type="hidden" value="([^"]+)"', html).group(1)


def sign_in(client, email: str, password: str = STRONG_PASSWORD):
    """Sign in through the login form, CSRF token included."""
    page = client.get("/login")
    return client.post(
        "/login", data={"csrf_token": _token(page.text, "csrf_token"), "email": email, "password": password}
    )


def csrf(client) -> str:
    """A CSRF token of the signed-in session (valid for every form of that session)."""
    return _token(client.get("/").text)


def fresh(session, model, ident):
    """Re-read a row after a request changed it in its own session."""
    session.expire_all()
    return session.get(model, ident)


# --- login ---------------------------------------------------------------------------------------
def test_anonymous_visitors_are_sent_to_the_login_page(client, world):
    response = client.get(f"/participants/{world['a1']}")
    assert response.status_code == 303
    assert response.headers["Location"].startswith("/login?next=/participants/")
    page = client.get("/login")
    assert '<label for="email">Email</label>' in page.text and '<label for="password">Password</label>' in page.text


def test_wrong_password_is_refused_and_the_right_one_opens_the_nurses_own_dashboard(client, world):
    refused = sign_in(client, "nurse-a@example.org", "not-the-password-at-all")
    assert refused.status_code == 401 and "Wrong email or password." in refused.text
    assert client.get("/").status_code == 303

    assert sign_in(client, "NURSE-A@example.org").status_code == 303
    dashboard = client.get("/")
    assert dashboard.status_code == 200
    assert "A-001" in dashboard.text and "A-002" in dashboard.text
    assert "B-001" not in dashboard.text


def test_login_starts_a_new_session_and_logout_needs_a_post_with_a_token(client, world):
    with client.session_transaction() as before:
        before["planted"] = "by someone else"
    sign_in(client, "nurse-a@example.org")
    with client.session_transaction() as after:
        assert "planted" not in after

    assert client.post("/logout").status_code == 400
    assert client.get("/").status_code == 200
    assert client.post("/logout", data={"logout-csrf_token": csrf(client)}).status_code == 303
    assert client.get("/").status_code == 303


def test_login_and_actions_without_a_csrf_token_are_refused_and_change_nothing(client, world, session):
    refused = client.post("/login", data={"email": "nurse-a@example.org", "password": STRONG_PASSWORD})
    assert refused.status_code == 400
    assert client.get("/").status_code == 303

    sign_in(client, "nurse-a@example.org")
    hold = client.post(
        f"/participants/{world['a1']}/hold", data={"hold-effective": "2026-03-07", "hold-reason": "forged"}
    )
    assert hold.status_code == 400
    assert fresh(session, Participant, world["a1"]).status == "active"
    alert = session.exec(select(Alert).where(Alert.participant_id == world["a1"])).first()
    assert client.post(f"/alerts/{alert.id}/acknowledge").status_code == 400
    assert fresh(session, Alert, alert.id).state == "open"


def test_login_posts_are_rate_limited(client, world):
    for _ in range(10):
        sign_in(client, "nurse-a@example.org", "wrong-password-again")
    assert sign_in(client, "nurse-a@example.org").status_code == 429


# --- site scoping and masking ----------------------------------------------------------------------
def test_a_nurse_of_site_a_can_neither_see_nor_change_a_participant_of_site_b(client, world, session):
    sign_in(client, "nurse-a@example.org")
    token = csrf(client)
    b1 = world["b1"]
    assert client.get(f"/participants/{b1}").status_code == 404
    dose = dose_by_seq(session, fresh(session, Participant, b1), 1)
    for action, data in [
        ("hold", {"hold-effective": "2026-03-07", "hold-reason": "x"}),
        ("withdraw", {"withdraw-confirm": "y", "withdraw-reason": "x"}),
        ("dose", {"dose-dose": str(dose.id), "dose-taken": "yes", "dose-reason": "x"}),
        ("details", {"details-time_zone": "Asia/Tokyo", "details-reminder_time": "09:00", "details-reason": "x"}),
    ]:
        response = client.post(f"/participants/{b1}/{action}", data={f"{action}-csrf_token": token, **data})
        assert response.status_code == 404, action
    b_alert = session.exec(select(Alert).where(Alert.participant_id == b1)).first()
    assert (
        client.post(f"/alerts/{b_alert.id}/acknowledge", data={f"ack{b_alert.id}-csrf_token": token}).status_code == 404
    )
    assert f'id="alert-{b_alert.id}"' not in client.get("/alerts").text
    participant = fresh(session, Participant, b1)
    assert (participant.status, participant.time_zone) == ("active", "Europe/Berlin")
    assert fresh(session, Alert, b_alert.id).state == "open"


def test_an_admin_sees_every_site_and_can_filter_by_site(client, world):
    sign_in(client, "admin@example.org")
    everyone = client.get("/").text
    assert all(code in everyone for code in ("A-001", "A-002", "B-001"))
    only_b = client.get("/?site=SITE-B").text
    assert "B-001" in only_b and "A-001" not in only_b
    assert client.get(f"/participants/{world['b1']}").status_code == 200


def test_the_masked_assessor_sees_vas_and_adverse_events_but_no_arm_or_dosing(client, world):
    sign_in(client, "assessor-a@example.org")
    dashboard = client.get("/").text
    assert "A-001" in dashboard and "Latest VAS" in dashboard and "Adverse events" in dashboard
    assert "Arm" not in dashboard and "il2" not in dashboard and "Adherence" not in dashboard
    page = client.get(f"/participants/{world['a1']}").text
    assert "Adverse events" in page and "Patient global VAS" in page
    assert "il2" not in page and "Dose calendar" not in page and "Record dose" not in page and "Messages" not in page
    assert client.get("/alerts").status_code == 403
    assert client.post(f"/participants/{world['a1']}/hold", data={"hold-csrf_token": csrf(client)}).status_code == 403


# --- the dashboard --------------------------------------------------------------------------------
def test_dashboard_sorts_by_risk_and_filters_by_status(client, world):
    sign_in(client, "nurse-a@example.org")
    text = client.get("/").text
    assert text.index('data-code="A-001"') < text.index('data-code="A-002"')
    a1_row = text[text.index('data-code="A-001"') : text.index('data-code="A-002"')]
    assert "0%" in a1_row and "(0/3)" in a1_row and "3 open, 2 high:" in a1_row and "Missed dose" in a1_row
    # 14:00 on 6 March: the dose of 5 March closed at noon without a reply, the one of 7 March is not due yet.
    assert "missed: no reply before 2026-03-06 12:00 (Asia/Shanghai)" in a1_row
    assert "No participants match." in client.get("/?status=on_hold").text


# --- the participant page and its actions ---------------------------------------------------------
def test_participant_page_shows_calendar_vas_chart_assets_and_site_times_with_the_zone_named(client, world):
    sign_in(client, "nurse-a@example.org")
    response = client.get(f"/participants/{world['a1']}")
    page = response.text
    assert 'class="month"' in page and "March 2026" in page and "Missed" in page and "Planned" in page
    assert "2026-03-06 14:00 (Asia/Shanghai)" in page  # the missed-dose alerts opened at 06:00Z
    assert "Content-Security-Policy" in response.headers
    assert not re.search(r'(src|href)="https?://', page), "pages must load nothing from the internet"
    assert client.get("/static/vendor/chart.umd.js").status_code == 200


def test_recording_a_dose_reported_by_phone_changes_adherence_and_resolves_the_alert(client, world, session):
    sign_in(client, "nurse-a@example.org")
    participant = fresh(session, Participant, world["a1"])
    dose = dose_by_seq(session, participant, 3)
    assert "Adherence <strong>0%</strong>" in client.get(f"/participants/{participant.id}").text

    response = client.post(
        f"/participants/{participant.id}/dose",
        data={
            "dose-csrf_token": csrf(client),
            "dose-dose": str(dose.id),
            "dose-taken": "yes",
            "dose-taken_at": "2026-03-05T21:15",
            "dose-reason": "phoned in: took it last night",
        },
    )
    assert response.status_code == 303
    page = client.get(response.headers["Location"]).text
    # Taken at 21:15 on its own day, inside the window: on time, though reported after the window closed.
    assert "Dose 3 (2026-03-05) recorded: taken on time" in page
    assert "Adherence <strong>33%</strong>" in page

    dose = fresh(session, type(dose), dose.id)
    assert dose.state == "taken" and dose.taken_at == utc("2026-03-05T13:15Z")
    event = session.exec(select(DoseEvent).where(DoseEvent.dose_id == dose.id, DoseEvent.to_state == "taken")).one()
    assert event.source == "staff" and event.actor.startswith("staff:staff:")
    alert = session.exec(select(Alert).where(Alert.ref_type == "dose", Alert.ref_id == dose.id)).one()
    assert (
        alert.state == "resolved"
        and alert.resolution_note == "dose reported by staff after its window closed: taken on time"
    )


def test_an_action_without_a_reason_or_against_a_domain_rule_is_a_form_error_not_a_crash(client, world, session):
    sign_in(client, "nurse-a@example.org")
    token = csrf(client)
    pid = world["a1"]
    no_reason = client.post(
        f"/participants/{pid}/hold", data={"hold-csrf_token": token, "hold-effective": "2026-03-07", "hold-reason": " "}
    )
    assert no_reason.status_code == 422 and "Give a reason for this change." in no_reason.text
    bad_zone = client.post(
        f"/participants/{pid}/details",
        data={
            "details-csrf_token": token,
            "details-time_zone": "Mars/Olympus",
            "details-reminder_time": "20:00",
            "details-reason": "moved",
        },
    )
    assert bad_zone.status_code == 422 and "is not an IANA time zone" in bad_zone.text
    not_held = client.post(
        f"/participants/{pid}/resume",
        data={"resume-csrf_token": token, "resume-resume_date": "2026-03-07", "resume-reason": "better"},
    )
    assert not_held.status_code == 422 and "dosing is not on hold" in not_held.text
    participant = fresh(session, Participant, pid)
    assert (participant.status, participant.time_zone) == ("active", "Asia/Shanghai")


def test_hold_resume_details_and_withdraw_each_record_their_reason_and_replan_messages(client, world, session):
    sign_in(client, "nurse-a@example.org")
    token = csrf(client)
    pid = world["a1"]

    def post(action, **data):
        response = client.post(
            f"/participants/{pid}/{action}",
            data={f"{action}-csrf_token": token, **{f"{action}-{k}": v for k, v in data.items()}},
        )
        assert response.status_code == 303, client.get(f"/participants/{pid}").text
        return fresh(session, Participant, pid)

    assert post("hold", effective="2026-03-07", reason="raised liver enzymes").status == "on_hold"
    assert post("resume", resume_date="2026-03-09", reason="enzymes normal").status == "active"
    changed = post("details", time_zone="Asia/Shanghai", reminder_time="08:30", reason="works nights now")
    assert changed.reminder_time == "08:30"
    reminder = session.exec(
        select(OutboundMessage).where(
            OutboundMessage.participant_id == pid,
            OutboundMessage.purpose == "dose_reminder",
            OutboundMessage.status == "planned",
        )
    ).first()
    assert reminder is None or reminder.due_at.minute == 30  # 08:30 in Shanghai is 00:30 UTC
    reasons = set(
        session.exec(
            select(AuditEntry.reason).where(AuditEntry.entity == "participant", AuditEntry.entity_id == str(pid))
        ).all()
    )
    assert {"raised liver enzymes", "enzymes normal", "works nights now"} <= reasons
    assert post("withdraw", confirm="y", reason="consent withdrawn").status == "withdrawn"


# --- the alert queue --------------------------------------------------------------------------------
def test_alert_queue_acknowledge_then_resolve_with_a_note(client, world, session):
    sign_in(client, "nurse-a@example.org")
    queue = client.get("/alerts").text
    assert queue.index("priority-high") < queue.index("priority-normal")
    assert "(Asia/Shanghai)" in queue
    alert = session.exec(select(Alert).where(Alert.participant_id == world["a1"]).order_by(Alert.id)).first()
    token = csrf(client)

    acknowledged = client.post(f"/alerts/{alert.id}/acknowledge", data={f"ack{alert.id}-csrf_token": token})
    assert acknowledged.status_code == 303
    assert "acknowledged by nurse-a@example.org" in client.get("/alerts").text
    again = client.post(f"/alerts/{alert.id}/acknowledge", data={f"ack{alert.id}-csrf_token": token})
    assert again.status_code == 422 and "alert is acknowledged, not open" in again.text

    no_note = client.post(
        f"/alerts/{alert.id}/resolve", data={f"resolve{alert.id}-csrf_token": token, f"resolve{alert.id}-note": ""}
    )
    assert no_note.status_code == 422 and "Say what was done." in no_note.text
    resolved = client.post(
        f"/alerts/{alert.id}/resolve",
        data={
            f"resolve{alert.id}-csrf_token": token,
            f"resolve{alert.id}-note": "called: sharps bin was empty, new supply sent",
            f"resolve{alert.id}-next": f"/participants/{world['a1']}",
        },
    )
    assert resolved.status_code == 303 and resolved.headers["Location"] == f"/participants/{world['a1']}"
    assert fresh(session, Alert, alert.id).state == "resolved"
    assert f'id="alert-{alert.id}"' not in client.get("/alerts").text
    assert "new supply sent" in client.get("/alerts?show=resolved").text


def test_after_a_form_only_same_site_paths_are_followed(client, world, session):
    sign_in(client, "nurse-a@example.org")
    alert = session.exec(select(Alert).where(Alert.participant_id == world["a1"])).first()
    response = client.post(
        f"/alerts/{alert.id}/acknowledge",
        data={f"ack{alert.id}-csrf_token": csrf(client), f"ack{alert.id}-next": "//evil.example/phish"},
    )
    assert response.headers["Location"] == "/alerts"


# --- the SMS simulator -------------------------------------------------------------------------------
def test_the_simulator_does_not_exist_unless_sms_is_in_console_mode(client, world):
    sign_in(client, "nurse-a@example.org")
    assert client.get("/simulator").status_code == 404
    assert client.post("/simulator/reply", data={}).status_code == 404


@pytest.fixture
def console_client(database, sender, tmp_path):
    application = create_app(
        settings_for(database.url, INSTANCE_DIR=str(tmp_path), SMS_BACKEND="console"), database=database
    )
    set_sender(application, sender)
    return application.test_client()


def test_the_simulator_replies_as_the_participant_and_runs_the_jobs(console_client, world, session, sender):
    client = console_client
    sign_in(client, "nurse-a@example.org")
    page = client.get(f"/simulator?participant={world['a1']}")
    assert page.status_code == 200 and "B-001" not in page.text
    token = csrf(client)
    response = client.post(
        "/simulator/reply", data={"sim-csrf_token": token, "sim-participant": str(world["a1"]), "sim-body": "V 4.5"}
    )
    assert response.status_code == 303
    shown = client.get(response.headers["Location"]).text
    assert re.search(r'id="last-reply">[^<]*4\.5', shown)  # the reply, in the participant's language
    other_site = client.post(
        "/simulator/reply", data={"sim-csrf_token": token, "sim-participant": str(world["b1"]), "sim-body": "1"}
    )
    assert other_site.status_code == 422

    ran = client.post("/simulator/run-jobs", data={"jobs-csrf_token": token, "jobs-participant": str(world["a1"])})
    assert ran.status_code == 303
    flashed = client.get(ran.headers["Location"]).text
    assert "flag_missed_doses:" in flashed and "dispatch_outbox:" in flashed


# --- display helpers ---------------------------------------------------------------------------------
def test_times_name_their_zone_and_the_calendar_puts_each_dose_on_its_local_date(app, session, world):
    from datetime import timedelta

    from backend.web.i18n import local_text
    from backend.web.pages.display import month_grids
    from backend.web.words import duration_words
    from schedules.queries import doses_of

    with app.test_request_context("/", headers={"Accept-Language": "en"}):
        assert local_text(utc("2026-03-04T04:00Z"), "Asia/Shanghai") == "2026-03-04 12:00 (Asia/Shanghai)"
        assert [duration_words(timedelta(minutes=m)) for m in (5, 200, 60 * 51)] == ["5 min", "3 h 20 min", "2 d 3 h"]
        grids = month_grids(doses_of(session, world["a1"]), today=date(2026, 3, 6))
    assert [g.title for g in grids] == ["March 2026", "April 2026", "May 2026"]
    march = [cell for week in grids[0].weeks for cell in week if cell.day]
    assert march[0].day == date(2026, 3, 1) and march[0].dose.state == "missed"
    assert [c.day for c in march if c.today] == [date(2026, 3, 6)]
    assert len(grids[0].weeks[0]) == 7 and grids[0].weeks[0][0].day is None  # 1 March 2026 is a Sunday
