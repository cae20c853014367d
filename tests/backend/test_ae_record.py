"""An adverse event an SAE report can be written from: a nurse completes an SMS report (CTCAE v5 term, dates,
severity, hospital, action taken with the study drug, when the site became aware, narrative) through the API or the
page; every change is audited, the reporting deadline runs from awareness, a signed version stays as signed, and
the masked assessor never learns what was done with the study drug."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlmodel import select

from schedules.ae_versions import history
from schedules.ctcae import DEFAULT_FOR_APP_TERM, ctcae_by_soc, ctcae_term, ctcae_terms
from schedules.models import AdverseEvent, Alert, AlertKind
from schedules.vocabulary import AE_TERMS
from tests.backend.test_ae_signatures import sign, trial  # noqa: F401 (the fixture)
from tests.backend.test_api_symptoms import REVIEW, audit_rows
from tests.backend.test_pages import csrf, fresh, sign_in
from tests.conftest import utc
from tests.sms_helpers import inbound_params, post_signed

# Everything an SAE report needs beyond what the SMS said (NOW is 2026-03-02 12:00 in Beijing).
RECORD = {
    "ctcae_term": "10016558",  # Fever
    "onset_date": "2026-03-01",
    "stop_date": None,
    "severity": "severe",
    "ongoing": True,
    "went_to_hospital": True,
    "action_taken": "drug_interrupted",
    "aware_at": "2026-03-02T03:30:00+00:00",
    "narrative": "Fever 39.5 °C since 1 March; admitted to the county hospital on 2 March.",
    "reason": "called the participant back",
}
WORDS = "发烧39.5度，住院了"
SMS = f"AE {WORDS}"


def sms_ae(client, session) -> AdverseEvent:
    """A suspected-serious adverse event as it arrives by SMS: term 'other', no dates, no severity."""
    assert post_signed(client, "/sms/inbound", inbound_params(SMS)).status_code == 200
    session.expire_all()
    ae = session.exec(select(AdverseEvent)).one()
    assert ae.source == "sms" and ae.term == "other" and ae.suspected_serious and ae.onset_date is None
    return ae


def record(client, trial, ae_id: int, who: str = "nurse", **body):
    return client.post(f"/api/v1/adverse-events/{ae_id}/record", json=body, headers=trial[who])


def serious_alert(session, ae_id: int) -> Alert:
    session.expire_all()
    return session.exec(select(Alert).where(Alert.ref_id == ae_id, Alert.kind == AlertKind.SERIOUS_AE.value)).one()


# --- the term list -------------------------------------------------------------------------------------------------
def test_the_shipped_ctcae_list_has_unique_meddra_codes_grouped_by_soc_with_an_other_term_in_each():
    terms = ctcae_terms()
    assert 80 <= len(terms) and len({t.meddra_code for t in terms}) == len(terms)
    assert all(t.meddra_code.isdigit() and len(t.meddra_code) == 8 for t in terms)
    assert ctcae_term("10022095").term == "Injection site reaction" and ctcae_term("99999999") is None
    groups = ctcae_by_soc()
    assert len({soc for soc, _ in groups}) == len(groups)  # each SOC is one block: one <optgroup>
    assert all(any(t.term.endswith("Other, specify") for t in members) for _, members in groups)
    # The app's own terms start from a CTCAE term where the match is plain.
    assert set(DEFAULT_FOR_APP_TERM) < set(AE_TERMS) and all(ctcae_term(c) for c in DEFAULT_FOR_APP_TERM.values())
    assert ctcae_term(DEFAULT_FOR_APP_TERM["injection_site_reaction"]).term == "Injection site reaction"


def test_staff_read_the_ctcae_list_and_the_assessor_gets_it_without_the_withheld_terms(client, trial):
    nurse = client.get("/api/v1/ctcae-terms", headers=trial["nurse"])
    assert nurse.status_code == 200
    codes = {t["meddra_code"]: t for t in nurse.get_json()}
    assert codes["10016558"] == {"meddra_code": "10016558", "term": "Fever", "soc": ctcae_term("10016558").soc}
    assert "10022095" in codes
    masked = client.get("/api/v1/ctcae-terms", headers=trial["assessor"]).get_json()
    assert {t["meddra_code"] for t in masked} == set(codes) - {"10022095", "10064774"}
    assert "actions_taken" not in client.get("/api/v1/adverse-event-terms", headers=trial["assessor"]).get_json()
    terms = client.get("/api/v1/adverse-event-terms", headers=trial["nurse"]).get_json()
    assert "drug_interrupted" in terms["actions_taken"]


# --- completing through the API ------------------------------------------------------------------------------------
def test_a_nurse_completes_an_sms_report_with_every_field_and_each_change_is_audited(client, session, trial):
    ae = sms_ae(client, session)
    assert ae.aware_at == ae.reported_at and ae.ctcae_term == "" and ae.action_taken is None
    shown = client.get(f"/api/v1/adverse-events/{ae.id}", headers=trial["nurse"]).get_json()
    assert shown["ctcae_term"] == "" and shown["ctcae_suggestion"] == ""  # 'other' needs the nurse's judgement
    response = record(client, trial, ae.id, **RECORD)
    assert response.status_code == 200, response.get_json()
    body = response.get_json()
    assert body["ctcae_term"] == "10016558" and body["ctcae_term_name"] == "Fever"
    assert body["onset_date"] == "2026-03-01" and body["severity"] == "severe" and body["ongoing"] is True
    assert body["went_to_hospital"] is True and body["action_taken"] == "drug_interrupted"
    assert body["aware_at"] == "2026-03-02T03:30:00+00:00" and body["narrative"].startswith("Fever 39.5")
    assert body["raw_text"] == WORDS and body["other_text"] == ""  # the participant's own words are kept
    rows = audit_rows(session, "adverseevent", ae.id)
    changed = {row.field: row for row in rows if row.action == "update"}
    expected = {"ctcae_term", "onset_date", "severity", "ongoing", "action_taken", "aware_at", "narrative"}
    assert expected <= set(changed)  # went_to_hospital was already yes from the SMS: no change, no row
    assert changed["ctcae_term"].new_value == "10016558" and changed["ctcae_term"].old_value == ""
    assert changed["action_taken"].new_value == "drug_interrupted"
    assert all(changed[name].reason == "called the participant back" for name in expected)
    assert all(changed[name].actor.startswith("staff:") for name in expected)


def test_the_reporting_deadline_moves_with_the_time_the_site_became_aware_and_the_move_is_audited(
    client, session, trial
):
    ae = sms_ae(client, session)
    alert = serious_alert(session, ae.id)
    assert alert.deadline_at == ae.reported_at + timedelta(hours=24)
    earlier = ae.reported_at - timedelta(hours=2)  # the participant had phoned the site before texting
    response = record(client, trial, ae.id, aware_at=earlier.isoformat(), reason="phone call logged at 02:00")
    assert response.status_code == 200, response.get_json()
    assert response.get_json()["deadline_at"] == (earlier + timedelta(hours=24)).isoformat()
    assert serious_alert(session, ae.id).deadline_at == earlier + timedelta(hours=24)
    moved = [row for row in audit_rows(session, "alert", alert.id) if row.field == "deadline_at"]
    assert len(moved) == 1 and moved[0].reason == "phone call logged at 02:00"


@pytest.mark.parametrize(
    "body,field,sentence",
    [
        ({"onset_date": "2026-03-03"}, "onset_date", "is in the future: it is 2026-03-02 where the participant lives"),
        ({"onset_date": "2026-03-01", "stop_date": "2026-02-27"}, "stop_date", "is before the onset date"),
        ({"aware_at": "2026-03-02T05:00:00+00:00"}, "aware_at", "cannot have become aware in the future"),
        (
            {"onset_date": "2026-03-02", "aware_at": "2026-03-01T10:00:00+00:00"},
            "aware_at",
            "before the event began (onset 2026-03-02)",
        ),
        ({"ongoing": True, "stop_date": "2026-03-02"}, "ongoing", "an ongoing event has no stop date"),
    ],
)
def test_a_record_that_cannot_be_true_is_refused_with_a_sentence_and_nothing_changes(
    client, session, trial, body, field, sentence
):
    ae = sms_ae(client, session)
    response = record(client, trial, ae.id, **body)
    assert response.status_code == 422, response.get_json()
    error = response.get_json()
    assert sentence in error["message"] and error["errors"]["json"][field] == [error["message"]]
    assert fresh(session, AdverseEvent, ae.id).onset_date is None


def test_codes_and_lists_outside_the_vocabulary_are_refused_by_the_schema(client, session, trial):
    ae = sms_ae(client, session)
    for body, field in [
        ({"ctcae_term": "10099999"}, "ctcae_term"),
        ({"action_taken": "stopped"}, "action_taken"),
        ({"aware_at": "2026-03-02T03:30:00"}, "aware_at"),  # no offset: which clock?
        ({"reason": "nothing else"}, "ctcae_term"),
    ]:
        response = record(client, trial, ae.id, **body)
        assert response.status_code == 422 and field in response.get_json()["errors"]["json"], body
    assert record(client, trial, ae.id, **RECORD).status_code == 200
    again = record(client, trial, ae.id, **RECORD)
    assert again.status_code == 422 and "nothing to change" in again.get_json()["message"]


def test_the_assessor_may_not_complete_a_record_and_never_sees_the_action_taken(client, session, trial):
    ae = sms_ae(client, session)
    refused = record(client, trial, ae.id, who="assessor", **RECORD)
    assert refused.status_code == 403
    assert record(client, trial, ae.id, **RECORD).status_code == 200
    masked = client.get(f"/api/v1/adverse-events/{ae.id}", headers=trial["assessor"]).get_json()
    assert "action_taken" not in masked and "narrative" not in masked and "drug" not in str(masked)
    assert masked["ctcae_term"] == "10016558" and masked["aware_at"] == RECORD["aware_at"]
    # A CTCAE term that tells the arm is withheld like the app's own term.
    assert record(client, trial, ae.id, ctcae_term="10022095").status_code == 200
    masked = client.get(f"/api/v1/participants/{trial['pid']}/adverse-events", headers=trial["assessor"]).get_json()
    assert masked[0]["ctcae_term"] == "withheld" and masked[0]["ctcae_term_name"] == "withheld"


# --- signatures ----------------------------------------------------------------------------------------------------
def test_a_completed_record_is_signed_and_a_later_completion_opens_a_version_that_carries_the_new_fields(
    client, session, trial
):
    ae = sms_ae(client, session)
    assert record(client, trial, ae.id, **RECORD).status_code == 200
    assert (
        client.post(f"/api/v1/adverse-events/{ae.id}/review", json=REVIEW, headers=trial["investigator"]).status_code
        == 200
    )
    signed = sign(client, trial, ae.id)
    assert signed.status_code == 200, signed.get_json()
    correction = record(client, trial, ae.id, action_taken="drug_withdrawn", reason="ward letter: drug stopped")
    assert correction.status_code == 200 and correction.get_json()["version"] == 2
    follow_up = client.post(
        f"/api/v1/adverse-events/{ae.id}/follow-up",
        json={"ongoing": False, "stop_date": "2026-03-02", "outcome": "recovered", "reason": "discharge letter"},
        headers=trial["investigator"],
    )
    assert follow_up.status_code == 200 and follow_up.get_json()["version"] == 2, follow_up.get_json()
    versions = client.get(f"/api/v1/adverse-events/{ae.id}/versions", headers=trial["investigator"]).get_json()
    first, second = versions
    assert first["content"]["ctcae_term"] == "10016558" and first["content"]["action_taken"] == "drug_interrupted"
    assert first["content"]["aware_at"] == RECORD["aware_at"]  # not the report's own time: so it is signed
    assert all(s["intact"] for s in first["signatures"])
    changes = {c["field"]: (c["before"], c["after"]) for c in second["changes"]}
    assert changes["action_taken"] == ("drug_interrupted", "drug_withdrawn")
    assert changes["ongoing"] == (True, False) and changes["stop_date"] == (None, "2026-03-02")
    assert sign(client, trial, ae.id).status_code == 200


def test_a_version_signed_with_the_default_awareness_time_stays_intact(client, session, trial):
    """A version signed before the SAE fields existed has no aware_at in its content; the column, filled with the
    report's own time, must not make it look changed."""
    ae = sms_ae(client, session)
    assert (
        client.post(f"/api/v1/adverse-events/{ae.id}/review", json=REVIEW, headers=trial["investigator"]).status_code
        == 200
    )
    assert sign(client, trial, ae.id).status_code == 200
    session.expire_all()
    (view,) = history(session, session.get(AdverseEvent, ae.id))
    assert "aware_at" not in view.content and "ctcae_term" not in view.content
    assert view.signatures and all(s.intact for s in view.signatures)


# --- the page ------------------------------------------------------------------------------------------------------
def _record_form(token: str, **fields) -> dict:
    base = {
        "record-csrf_token": token,
        "record-ctcae_term": "10016558",
        "record-onset_date": "2026-03-01",
        "record-stop_date": "",
        "record-severity": "severe",
        "record-ongoing": "yes",
        "record-went_to_hospital": "yes",
        "record-action_taken": "drug_interrupted",
        "record-aware_at": "2026-03-02T11:30",  # site time (Beijing): 03:30 UTC
        "record-narrative": "Fever since 1 March, admitted on 2 March.",
        "record-reason": "called back",
    }
    return base | {f"record-{name}": value for name, value in fields.items()}


def test_a_nurse_completes_the_record_on_the_adverse_event_page(client, session, trial):
    ae = sms_ae(client, session)
    sign_in(client, "nurse@example.org")
    page = client.get(f"/adverse-events/{ae.id}")
    assert page.status_code == 200
    assert '<optgroup label="General disorders and administration site conditions">' in page.text
    assert "not coded yet" in page.text and 'id="record"' in page.text
    saved = client.post(f"/adverse-events/{ae.id}/record", data=_record_form(csrf(client)))
    assert saved.status_code == 303, saved.text
    shown = client.get(f"/adverse-events/{ae.id}").text
    assert "Fever" in shown and "MedDRA 10016558" in shown and "drug interrupted" in shown
    ae = fresh(session, AdverseEvent, ae.id)
    assert ae.ctcae_term == "10016558" and ae.action_taken == "drug_interrupted" and ae.ongoing is True
    assert ae.aware_at == utc("2026-03-02T03:30Z") and ae.raw_text == WORDS
    assert serious_alert(session, ae.id).deadline_at == utc("2026-03-03T03:30Z")
    refused = client.post(
        f"/adverse-events/{ae.id}/record", data=_record_form(csrf(client), stop_date="2026-02-20", ongoing="no")
    )
    assert refused.status_code == 422 and "is before the onset date 2026-03-01" in refused.text
    assert fresh(session, AdverseEvent, ae.id).stop_date is None


def test_the_page_suggests_the_ctcae_term_of_a_structured_report(client, session, trial):
    reported = client.post(
        f"/api/v1/participants/{trial['pid']}/adverse-events",
        json={"term": "injection_site_reaction", "severity": "mild", "reason": "phoned the site"},
        headers=trial["nurse"],
    )
    ae_id = reported.get_json()["id"]
    assert reported.get_json()["ctcae_suggestion"] == "10022095"
    sign_in(client, "nurse@example.org")
    page = client.get(f"/adverse-events/{ae_id}").text
    assert '<option selected value="10022095">Injection site reaction (10022095)</option>' in page


# --- the migration -------------------------------------------------------------------------------------------------
def test_the_migration_gives_existing_reports_their_report_time_as_awareness_and_keeps_signatures_intact(
    tmp_path, clock
):
    """Reports and signatures from before 0013: after the upgrade each became known when it was reported, is not
    coded, and its signed version still matches what was signed."""
    from alembic import command
    from sqlalchemy import text

    from backend import migrate
    from backend.app import create_app
    from backend.db import get_database
    from tests.backend.test_ae_signatures import EMAIL, SIGN, _staff
    from tests.conftest import fresh_database_url, test_settings
    from tests.factories import make_participant, make_site, make_study

    clock.move_to(utc("2026-03-02T04:00Z"))
    with fresh_database_url(tmp_path) as url:
        app = create_app(test_settings(url, INSTANCE_DIR=str(tmp_path)))
        migrate.upgrade(app)
        database = get_database(app)
        with database.session() as s:
            site = make_site(s)
            pid = make_participant(s, study=make_study(s), site=site).id
            investigator = _staff(s, EMAIL, "investigator", site)["headers"]
            s.commit()
        client = app.test_client()
        reported = client.post(
            f"/api/v1/participants/{pid}/adverse-events",
            json={"term": "fever", "went_to_hospital": True, "reason": "phoned"},
            headers=investigator,
        ).get_json()
        assert client.post(f"/api/v1/adverse-events/{reported['id']}/review", json=REVIEW, headers=investigator)
        signed = client.post(f"/api/v1/adverse-events/{reported['id']}/sign-off", json=SIGN, headers=investigator)
        assert signed.status_code == 200, signed.get_json()
        database.engine.dispose()
        command.downgrade(migrate.alembic_config(app), "0012_audit_chain")
        migrate.upgrade(app)
        with database.engine.connect() as conn:
            row = conn.execute(text("SELECT aware_at, reported_at, ctcae_term, action_taken FROM adverseevent")).one()
        assert row.aware_at == row.reported_at and row.ctcae_term == "" and row.action_taken is None
        versions = client.get(f"/api/v1/adverse-events/{reported['id']}/versions", headers=investigator).get_json()
        assert [s["intact"] for v in versions for s in v["signatures"]] == [True]
        database.engine.dispose()


def test_learning_later_that_the_participant_went_to_hospital_escalates_as_the_report_would_have(
    client, session, trial
):
    from notifications.models import OutboundMessage

    assert post_signed(client, "/sms/inbound", inbound_params("AE 头痛")).status_code == 200
    session.expire_all()
    ae = session.exec(select(AdverseEvent)).one()
    assert not ae.suspected_serious
    (ordinary,) = session.exec(select(Alert).where(Alert.ref_id == ae.id)).all()
    assert (ordinary.kind, ordinary.deadline_at) == (AlertKind.ADVERSE_EVENT.value, None)

    answer = record(client, trial, ae.id, went_to_hospital=True, aware_at="2026-03-02T04:00:00+00:00")
    assert answer.status_code == 200, answer.get_json()
    assert answer.get_json()["suspected_serious"] is True
    alert = serious_alert(session, ae.id)
    assert alert.id == ordinary.id and alert.priority == "high"
    assert alert.deadline_at == utc("2026-03-03T04:00Z")  # 24 h from when the site became aware
    pages = session.exec(select(OutboundMessage).where(OutboundMessage.purpose == "staff_alert")).all()
    assert pages and all(f"{alert.id}" in page.body for page in pages)  # on-call paged, told the alert's number

    # Already serious: recording it again pages nobody a second time.
    again = record(client, trial, ae.id, narrative="Admitted overnight for observation.")
    assert again.status_code == 200
    session.expire_all()
    assert len(session.exec(select(OutboundMessage).where(OutboundMessage.purpose == "staff_alert")).all()) == len(
        pages
    )


def test_a_hospital_stay_learnt_after_the_alert_was_resolved_opens_a_serious_alert(client, session, trial):
    assert post_signed(client, "/sms/inbound", inbound_params("AE 头痛")).status_code == 200
    session.expire_all()
    ae = session.exec(select(AdverseEvent)).one()
    ordinary = session.exec(select(Alert).where(Alert.ref_id == ae.id)).one()
    resolved = client.post(
        f"/api/v1/alerts/{ordinary.id}/resolve", json={"note": "called: a mild headache"}, headers=trial["nurse"]
    )
    assert resolved.status_code == 200, resolved.get_json()

    assert record(client, trial, ae.id, went_to_hospital=True).status_code == 200
    alert = serious_alert(session, ae.id)
    assert alert.id != ordinary.id and alert.state == "open" and alert.deadline_at is not None
