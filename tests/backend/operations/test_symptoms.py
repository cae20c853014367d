"""VAS and adverse-event operations: each entry point (staff API, app, SMS) gets the whole effect, the on-call page
included, because each calls backend/operations/symptoms.py; and the scale and languages are the protocol's."""

from __future__ import annotations

import dataclasses
import json
import subprocess
import sys
from datetime import timedelta
from decimal import Decimal

import pytest
from sqlmodel import select

from backend.operations import symptoms as operations
from notifications.models import OutboundMessage
from schedules.changes import Actor
from schedules.errors import InvalidInput
from schedules.models import AdverseEvent, Alert, Study
from schedules.participants import update_details
from schedules.protocol import VasRule
from schedules.studies import load_study, protocol_of

# The app tests' fixture: study, site, nurse, P-001 and P-002.
from tests.backend.app_fixtures import signed_in, trial  # noqa: F401
from tests.backend.test_sms_symptoms import sms
from tests.factories import ACTOR, VAULT, auth, make_site, make_staff_token

ON_CALL = ("+8613900000099", "+8613900000098")


@pytest.fixture
def paged_site(session, trial):  # noqa: F811
    """P-001's site with two on-call numbers (the shared fixture has one)."""
    site = make_site(session, code="ONCALL", on_call=ON_CALL)
    trial.a.site_id = site.id
    session.add(trial.a)
    session.flush()
    return site


def pages_for(session, ae_id: int) -> list[OutboundMessage]:
    """The on-call SMS queued for one adverse event."""
    return list(
        session.exec(
            select(OutboundMessage).where(
                OutboundMessage.purpose == "staff_alert",
                OutboundMessage.ref_type == "adverse_event",
                OutboundMessage.ref_id == ae_id,
            )
        ).all()
    )


def alert_for(session, ae_id: int) -> Alert:
    """The nurse alert of one adverse event."""
    return session.exec(select(Alert).where(Alert.ref_type == "adverse_event", Alert.ref_id == ae_id)).one()


def by_staff_api(client, session, trial, site):  # noqa: F811
    nurse = make_staff_token(session, role="nurse", site=site, email="n2@example.org", ttl=timedelta(days=365))
    response = client.post(
        f"/api/v1/participants/{trial.a.id}/adverse-events",
        headers=auth(nurse),
        json={"term": "fever", "went_to_hospital": True, "reason": "phoned the site"},
    )
    assert response.status_code == 201, response.get_json()
    return response.get_json()["id"]


def by_app(client, session, trial, site):  # noqa: F811
    trial.nurse = make_staff_token(session, role="nurse", site=site, email="n3@example.org", ttl=timedelta(days=365))
    headers = auth(signed_in(client, trial, trial.a)["access_token"])
    body = {"term": "fever", "went_to_hospital": True}
    response = client.post("/api/v1/me/adverse-events", json=body, headers=headers)
    assert response.status_code == 201, response.get_json()
    return response.get_json()["id"]


def by_sms(client, session, trial, site):  # noqa: F811
    assert "120" in sms(client, "AE 发烧 住院了", phone="+8613812345678")
    return session.exec(select(AdverseEvent.id).where(AdverseEvent.participant_id == trial.a.id)).one()


@pytest.mark.parametrize("report", [by_staff_api, by_app, by_sms], ids=["staff-api", "app", "sms"])
def test_a_suspected_serious_event_pages_on_call_from_every_entry_point(
    report,
    client,
    session,
    trial,  # noqa: F811
    paged_site,
):
    ae_id = report(client, session, trial, paged_site)
    ae = session.get(AdverseEvent, ae_id)
    assert ae.suspected_serious is True
    alert = alert_for(session, ae_id)
    assert (alert.kind, alert.priority, alert.deadline_at is not None) == ("serious_ae", "high", True)
    pages = pages_for(session, ae_id)
    assert len(pages) == len(ON_CALL) and {VAULT.decrypt(p.recipient_ciphertext) for p in pages} == set(ON_CALL)
    assert all(p.priority == 0 and "P-001" in p.body for p in pages)


def test_an_ordinary_event_opens_a_nurse_alert_and_pages_nobody(session, trial, paged_site):  # noqa: F811
    ae = operations.report_adverse_event(
        session,
        participant=trial.a,
        actor=Actor("app", f"participant:{trial.a.id}"),
        now=trial.a.enrolled_at,
        vault=VAULT,
        term="headache",
        severity="mild",
    )
    assert alert_for(session, ae.id).kind == "adverse_event" and pages_for(session, ae.id) == []


def test_a_serious_word_in_free_text_pages_on_call_without_a_hospital_answer(session, trial, paged_site):  # noqa: F811
    ae = operations.report_adverse_event(
        session,
        participant=trial.a,
        actor=Actor("sms", f"participant:{trial.a.id}"),
        now=trial.a.enrolled_at,
        vault=VAULT,
        raw_text="fever, went to the emergency room",
    )
    assert ae.suspected_serious and len(pages_for(session, ae.id)) == len(ON_CALL)


def _study_with_scale(session, trial, **vas):  # noqa: F811
    """Give P-001's study a different VAS scale, as a second trial's protocol file might."""
    protocol = protocol_of(session.get(Study, trial.a.study_id))
    changed = dataclasses.replace(protocol, vas=dataclasses.replace(protocol.vas, **vas))
    load_study(session, protocol=changed, source_file="test", actor=ACTOR, reason="test", now=trial.a.enrolled_at)
    return changed


def test_vas_text_is_read_on_the_protocols_scale(session, trial):  # noqa: F811
    actor = Actor("app", f"participant:{trial.a.id}")
    with pytest.raises(operations.VasRefused) as refused:
        operations.record_vas(session, participant=trial.a, value="55", actor=actor, now=trial.a.enrolled_at)
    assert refused.value.reason == "out_of_range"
    assert refused.value.params == {"scale_min": "0", "scale_max": "10", "decimals": 1}
    _study_with_scale(session, trial, scale_max=Decimal("100"), decimals=0)
    score = operations.record_vas(session, participant=trial.a, value="55", actor=actor, now=trial.a.enrolled_at)
    assert score.value == Decimal("55")
    with pytest.raises(operations.VasRefused) as refused:
        operations.record_vas(session, participant=trial.a, value="5.5", actor=actor, now=trial.a.enrolled_at)
    assert refused.value.reason == "too_many_decimals" and refused.value.params["decimals"] == 0


def test_the_app_words_a_refusal_in_the_participants_language_on_its_scale(client, session, trial):  # noqa: F811
    _study_with_scale(session, trial, scale_max=Decimal("100"), decimals=0)
    headers = auth(signed_in(client, trial, trial.a)["access_token"])
    assert client.post("/api/v1/me/vas", json={"value": 55}, headers=headers).status_code == 201
    chinese = client.post("/api/v1/me/vas", json={"value": "101"}, headers=headers)
    assert chinese.status_code == 422 and "评分需在 0 到 100 之间" in chinese.get_json()["message"]
    trial.a.language = "en"
    session.add(trial.a)
    session.flush()
    english = client.post("/api/v1/me/vas", json={"value": "4.5"}, headers=headers)
    assert english.status_code == 422 and "at most 0 decimal place" in english.get_json()["message"]


def test_sms_undo_uses_the_protocols_undo_period(session, trial):  # noqa: F811
    actor = Actor("sms", f"participant:{trial.a.id}")
    at = trial.a.enrolled_at
    operations.record_vas(session, participant=trial.a, value=Decimal("4.5"), actor=actor, now=at)
    minutes = protocol_of(session.get(Study, trial.a.study_id)).vas.undo_minutes
    late, in_time = at + timedelta(minutes=minutes + 1), at + timedelta(minutes=minutes - 1)
    assert operations.undo_last_vas(session, participant=trial.a, actor=actor, now=late) is None
    assert operations.undo_last_vas(session, participant=trial.a, actor=actor, now=in_time).value == Decimal("4.5")


def test_a_language_change_is_checked_against_the_studys_protocol(session, trial):  # noqa: F811
    _study_with_scale(session, trial)  # same protocol, reloaded below with one language
    protocol = protocol_of(session.get(Study, trial.a.study_id))
    chinese_only = dataclasses.replace(protocol, languages=("zh-CN",))
    load_study(session, protocol=chinese_only, source_file="test", actor=ACTOR, reason="test", now=trial.a.enrolled_at)
    with pytest.raises(InvalidInput) as refused:
        update_details(
            session,
            participant=trial.a,
            vault=VAULT,
            actor=Actor("app", "participant"),
            reason=None,
            now=trial.a.enrolled_at,
            language="en",
        )
    assert refused.value.field == "language" and "zh-CN" in refused.value.message


def test_operations_never_import_flask():
    code = (
        "import json, sys, backend.operations.symptoms; "
        "print(json.dumps(sorted(m for m in sys.modules if m.split('.')[0] == 'flask')))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert json.loads(out) == []


def test_vas_scale_params_write_the_range_as_people_do():
    rule = VasRule(
        every_days=7,
        reply_window_hours=24,
        undo_minutes=60,
        scale_min=Decimal("0.0"),
        scale_max=Decimal("10.0"),
        decimals=1,
    )
    assert operations.vas_scale_params(rule) == {"scale_min": "0", "scale_max": "10", "decimals": 1}


WRITES = {
    "record_vas",
    "correct_vas",
    "undo_last_vas",
    "report_adverse_event",
    "review_adverse_event",
    "follow_up_adverse_event",
    "sign_adverse_event",
}


def test_entry_points_reach_the_domain_writes_only_through_the_operations():
    import ast
    from pathlib import Path

    root = Path(__file__).resolve().parents[3]
    offenders = []
    for path in [*sorted((root / "backend" / "web").rglob("*.py")), root / "backend" / "operations" / "sms_replies.py"]:
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.ImportFrom) and node.module in (
                "schedules.symptoms",
                "schedules.ae_review",
                "notifications.escalation",
            ):
                names = {alias.name for alias in node.names} & (WRITES | {"escalate_serious_ae"})
                offenders += [f"{path.relative_to(root)}: {name}" for name in sorted(names)]
    assert offenders == []
