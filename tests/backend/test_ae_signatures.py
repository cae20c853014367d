"""Electronic signatures of adverse events (21 CFR 11.50, 11.200) through the API: email and password again, a
meaning, signer and time shown with the record; a follow-up after sign-off is a new version, signed again; the
database refuses to rewrite a signature."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError
from sqlmodel import select

from backend.identity.security import token_digest
from backend.identity.staff import create_staff, issue_staff_token
from backend.models import SignInLock
from backend.web.api.symptom_schemas import MaskedAdverseEventSchema
from schedules.models import AdverseEvent, AdverseEventSignature, AdverseEventVersion
from tests.backend.test_api_symptoms import REVIEW
from tests.backend.test_pages import csrf, sign_in
from tests.conftest import utc
from tests.factories import STRONG_PASSWORD, auth, make_participant, make_site, make_study

NOW = utc("2026-03-02T04:00Z")
EMAIL = "li.wei@example.org"
WRONG = "not-the-password-at-all"
SIGN = {"email": EMAIL, "password": STRONG_PASSWORD, "meaning": "approved"}


def _staff(session, email: str, role: str, site) -> dict:
    staff = create_staff(session, email=email, password=STRONG_PASSWORD, role=role, site=site)
    raw, _ = issue_staff_token(session, staff=staff, now=utc("2026-01-01T00:00Z"), ttl=timedelta(days=365))
    return {"id": staff.id, "headers": auth(raw)}


@pytest.fixture
def trial(session, clock):
    clock.move_to(NOW)
    site = make_site(session)
    participant = make_participant(session, study=make_study(session), site=site)
    people = {
        "investigator": _staff(session, EMAIL, "investigator", site),
        "colleague": _staff(session, "zhang.min@example.org", "investigator", site),
        "nurse": _staff(session, "nurse@example.org", "nurse", site),
        "assessor": _staff(session, "assessor@example.org", "assessor", site),
    }
    session.commit()
    return {"pid": participant.id, **{name: who["headers"] for name, who in people.items()}, "ids": people}


def reviewed_ae(client, trial) -> int:
    """A suspected-serious adverse event reported by a nurse and graded by the investigator."""
    reported = client.post(
        f"/api/v1/participants/{trial['pid']}/adverse-events",
        json={"term": "fever", "onset_date": "2026-03-01", "went_to_hospital": True, "reason": "phoned the site"},
        headers=trial["nurse"],
    )
    assert reported.status_code == 201, reported.get_json()
    ae_id = reported.get_json()["id"]
    review = client.post(f"/api/v1/adverse-events/{ae_id}/review", json=REVIEW, headers=trial["investigator"])
    assert review.status_code == 200, review.get_json()
    return ae_id


def sign(client, trial, ae_id: int, who: str = "investigator", **body):
    return client.post(f"/api/v1/adverse-events/{ae_id}/sign-off", json={**SIGN, **body}, headers=trial[who])


def signatures_in_db(session) -> list[AdverseEventSignature]:
    session.expire_all()
    return session.exec(select(AdverseEventSignature)).all()


def failures(session, email: str = EMAIL) -> int:
    session.expire_all()
    row = session.get(SignInLock, token_digest(email))
    return row.failures if row else 0


@pytest.mark.parametrize("missing", ["password", "meaning", "email"])
def test_sign_off_without_password_meaning_or_email_is_refused_and_signs_nothing(client, session, trial, missing):
    ae_id = reviewed_ae(client, trial)
    body = {k: v for k, v in SIGN.items() if k != missing}
    response = client.post(f"/api/v1/adverse-events/{ae_id}/sign-off", json=body, headers=trial["investigator"])
    assert response.status_code == 422 and missing in response.get_json()["errors"]["json"]
    bare = client.post(f"/api/v1/adverse-events/{ae_id}/sign-off", headers=trial["investigator"])
    assert bare.status_code == 422
    assert signatures_in_db(session) == [] and session.get(AdverseEvent, ae_id).signed_off_at is None


def test_a_meaning_outside_the_list_is_refused(client, session, trial):
    ae_id = reviewed_ae(client, trial)
    response = sign(client, trial, ae_id, meaning="ok")
    assert response.status_code == 422 and "meaning" in response.get_json()["errors"]["json"]
    assert signatures_in_db(session) == []


def test_a_wrong_password_signs_nothing_and_counts_towards_the_lockout(client, session, trial):
    ae_id = reviewed_ae(client, trial)
    refused = sign(client, trial, ae_id, password=WRONG)
    assert refused.status_code == 403
    assert refused.get_json()["message"].startswith("wrong password: nothing was signed")
    assert "WWW-Authenticate" not in refused.headers  # the bearer token is fine: only the signature is refused
    assert signatures_in_db(session) == [] and session.get(AdverseEvent, ae_id).signed_off_at is None
    assert failures(session) == 1
    for _ in range(9):
        assert sign(client, trial, ae_id, password=WRONG).status_code == 403
    # Ten wrong passwords lock the account: the right one signs nothing, and sign-in is locked too.
    locked = sign(client, trial, ae_id)
    assert locked.status_code == 429 and "locked" in locked.get_json()["message"] and locked.headers["Retry-After"]
    token = client.post("/api/v1/auth/token", json={"email": EMAIL, "password": STRONG_PASSWORD})
    assert token.status_code == 429
    assert signatures_in_db(session) == []


def test_signing_as_another_account_is_refused_without_trying_its_password(client, session, trial):
    ae_id = reviewed_ae(client, trial)
    response = sign(client, trial, ae_id, email="zhang.min@example.org")
    assert response.status_code == 403 and "sign with your own account" in response.get_json()["message"]
    assert signatures_in_db(session) == [] and failures(session, "zhang.min@example.org") == 0


def test_a_right_password_and_a_meaning_make_a_signature_shown_with_the_record(client, session, trial):
    ae_id = reviewed_ae(client, trial)
    signed = sign(client, trial, ae_id, email="LI.Wei@example.org")
    assert signed.status_code == 200, signed.get_json()
    body = signed.get_json()
    assert "password" not in signed.get_data(as_text=True)
    (signature,) = body["signatures"]
    assert {k: signature[k] for k in ("version", "meaning", "signer_id", "signer_email", "signer_role", "intact")} == {
        "version": 1,
        "meaning": "approved",
        "signer_id": trial["ids"]["investigator"]["id"],
        "signer_email": EMAIL,
        "signer_role": "investigator",
        "intact": True,
    }
    assert signature["signed_at"].startswith("2026-03-02T04:00:00") and len(signature["content_hash"]) == 64
    assert body["signed_off_at"].startswith("2026-03-02T04:00:00") and body["version"] == 1
    (row,) = signatures_in_db(session)
    assert (row.signer_id, row.meaning, row.version) == (trial["ids"]["investigator"]["id"], "approved", 1)
    detail = client.get(f"/api/v1/adverse-events/{ae_id}", headers=trial["nurse"]).get_json()
    listed = client.get(f"/api/v1/participants/{trial['pid']}/adverse-events", headers=trial["nurse"]).get_json()
    assert detail["signatures"] == listed[0]["signatures"] == [signature]
    # A colleague may co-sign; the same signer and meaning twice is refused.
    assert sign(client, trial, ae_id).status_code == 409
    assert sign(client, trial, ae_id, who="colleague", email="zhang.min@example.org").status_code == 200
    assert len(signatures_in_db(session)) == 2


def test_nurses_and_the_assessor_cannot_sign_even_with_their_password(client, session, trial):
    ae_id = reviewed_ae(client, trial)
    for who, email in (("nurse", "nurse@example.org"), ("assessor", "assessor@example.org")):
        response = sign(client, trial, ae_id, who=who, email=email)
        assert response.status_code == 403 and "only an investigator or admin" in response.get_json()["message"]
    assert signatures_in_db(session) == []


def test_follow_up_after_sign_off_is_a_new_version_signed_again_and_the_old_one_stays_readable(client, session, trial):
    ae_id = reviewed_ae(client, trial)
    assert sign(client, trial, ae_id).status_code == 200
    follow_up = client.post(
        f"/api/v1/adverse-events/{ae_id}/follow-up",
        json={
            "outcome": "recovered",
            "stop_date": "2026-03-02",
            "narrative": "Discharged on day 2; fever resolved without sequelae.",
            "reason": "discharge letter received",
        },
        headers=trial["investigator"],
    )
    assert follow_up.status_code == 200, follow_up.get_json()  # it was 409 once signed off
    body = follow_up.get_json()
    assert (body["version"], body["outcome"], body["stop_date"], body["narrative"]) == (
        2,
        "recovered",
        "2026-03-02",
        "Discharged on day 2; fever resolved without sequelae.",
    )
    assert body["signed_off_at"] is None and [s["version"] for s in body["signatures"]] == [1]
    versions = client.get(f"/api/v1/adverse-events/{ae_id}/versions", headers=trial["nurse"])
    assert versions.status_code == 200
    old, new = versions.get_json()
    assert (old["version"], old["current"], old["signed"], old["content"]["outcome"]) == (1, False, True, "recovering")
    assert [(s["signer_email"], s["meaning"], s["intact"]) for s in old["signatures"]] == [(EMAIL, "approved", True)]
    assert (new["version"], new["current"], new["signed"], new["signatures"]) == (2, True, False, [])
    assert {c["field"]: (c["before"], c["after"]) for c in new["changes"]} == {
        "outcome": ("recovering", "recovered"),
        "stop_date": (None, "2026-03-02"),
        "narrative": (None, "Discharged on day 2; fever resolved without sequelae."),
    }
    again = sign(client, trial, ae_id)
    assert again.status_code == 200 and [s["version"] for s in again.get_json()["signatures"]] == [1, 2]
    session.expire_all()
    assert [v.version for v in session.exec(select(AdverseEventVersion)).all()] == [1, 2]


def test_follow_up_needs_a_reason_and_a_field(client, trial):
    ae_id = reviewed_ae(client, trial)
    url = f"/api/v1/adverse-events/{ae_id}/follow-up"
    no_reason = client.post(url, json={"outcome": "recovered"}, headers=trial["investigator"])
    assert no_reason.status_code == 422 and "reason" in no_reason.get_json()["errors"]["json"]
    nothing = client.post(url, json={"reason": "call"}, headers=trial["investigator"])
    assert nothing.status_code == 422 and "outcome" in nothing.get_json()["errors"]["json"]
    early = client.post(url, json={"stop_date": "2026-02-01", "reason": "call"}, headers=trial["investigator"])
    assert early.status_code == 422 and "onset" in early.get_json()["message"]


def test_the_masked_assessor_sees_the_adverse_event_as_before_without_narrative_or_versions(client, trial):
    ae_id = reviewed_ae(client, trial)
    sign(client, trial, ae_id)
    client.post(
        f"/api/v1/adverse-events/{ae_id}/follow-up",
        json={"outcome": "recovered", "narrative": "written by the investigator", "reason": "call"},
        headers=trial["investigator"],
    )
    shown = client.get(f"/api/v1/adverse-events/{ae_id}", headers=trial["assessor"]).get_json()
    assert set(shown) == set(MaskedAdverseEventSchema().fields)
    assert "written by the investigator" not in str(shown)
    assert client.get(f"/api/v1/adverse-events/{ae_id}/versions", headers=trial["assessor"]).status_code == 403


@pytest.mark.parametrize("table", ["ae_signature", "ae_version"])
@pytest.mark.parametrize("statement", ["UPDATE {table} SET version = 7", "DELETE FROM {table}"])
def test_database_refuses_to_rewrite_a_signature_or_a_signed_version(client, session, trial, table, statement):
    ae_id = reviewed_ae(client, trial)
    assert sign(client, trial, ae_id).status_code == 200
    session.expire_all()
    with pytest.raises(DBAPIError, match="append-only"):
        with session.begin_nested():
            session.execute(text(statement.format(table=table)))
    (row,) = signatures_in_db(session)
    assert row.version == 1 and len(session.exec(select(AdverseEventVersion)).all()) == 1


# --- the nurse pages -----------------------------------------------------------------------------
def page_form(client, ae_id: int, form: str, **fields):
    """Post one form of the adverse-event page, with the session's CSRF token and the form's prefix."""
    data = {f"{form}-csrf_token": csrf(client)}
    for name, value in fields.items():
        data[f"{form}-{name}"] = value
    return client.post(f"/adverse-events/{ae_id}/{form.replace('_', '-')}", data=data)


def test_signing_on_the_page_asks_for_the_password_and_shows_the_signature_with_the_record(client, session, trial):
    ae_id = reviewed_ae(client, trial)
    sign_in(client, EMAIL)
    page = client.get(f"/adverse-events/{ae_id}")
    assert page.status_code == 200 and 'type="password"' in page.text and "Not signed." in page.text
    empty = page_form(client, ae_id, "sign", email=EMAIL, password="", meaning="approved")
    assert empty.status_code == 422 and "Enter your password to sign." in empty.text
    wrong = page_form(client, ae_id, "sign", email=EMAIL, password=WRONG, meaning="approved")
    assert wrong.status_code == 403 and "wrong password: nothing was signed" in wrong.text
    assert signatures_in_db(session) == [] and failures(session) == 1
    signed = page_form(client, ae_id, "sign", email=EMAIL, password=STRONG_PASSWORD, meaning="approved")
    assert signed.status_code == 303, signed.text
    assert failures(session) == 0  # the right password clears the count, as a sign-in does
    page = client.get(f"/adverse-events/{ae_id}").text
    assert "<strong>Approved</strong> by li.wei@example.org (investigator)" in page
    assert "on 2026-03-02 12:00 (Asia/Shanghai)" in page
    participant = client.get(f"/participants/{trial['pid']}").text
    assert "approved by li.wei@example.org on 2026-03-02 12:00 (Asia/Shanghai)" in participant
    assert f'href="/adverse-events/{ae_id}"' in participant


def test_follow_up_on_the_page_after_signing_is_a_new_version_and_the_signed_one_stays_on_the_page(
    client, session, trial
):
    ae_id = reviewed_ae(client, trial)
    sign(client, trial, ae_id)
    sign_in(client, EMAIL)
    saved = page_form(
        client,
        ae_id,
        "follow_up",
        outcome="recovered",
        stop_date="2026-03-02",
        narrative="Discharged; fever resolved.",
        reason="discharge letter received",
    )
    assert saved.status_code == 303, saved.text
    page = client.get(f"/adverse-events/{ae_id}").text
    assert "version 2" in page and "Signatures of version 2" in page and "Not signed." in page
    assert "Discharged; fever resolved." in page
    version_1 = page[page.index('id="version-1"') :]
    assert "outcome: recovering → recovered" in page[page.index('id="version-2"') : page.index('id="version-1"')]
    assert "<strong>Approved</strong> by li.wei@example.org" in version_1 and "recovering" in version_1
    resigned = page_form(client, ae_id, "sign", email=EMAIL, password=STRONG_PASSWORD, meaning="reviewed")
    assert resigned.status_code == 303
    assert [(s.version, s.meaning) for s in signatures_in_db(session)] == [(1, "approved"), (2, "reviewed")]


def test_nurses_read_the_adverse_event_page_but_cannot_sign_and_the_assessor_cannot_open_it(client, session, trial):
    ae_id = reviewed_ae(client, trial)
    sign_in(client, "nurse@example.org")
    page = client.get(f"/adverse-events/{ae_id}")
    assert page.status_code == 200 and 'type="password"' not in page.text
    refused = page_form(client, ae_id, "sign", email="nurse@example.org", password=STRONG_PASSWORD, meaning="approved")
    assert refused.status_code == 403 and signatures_in_db(session) == []
    client.post("/logout", data={"logout-csrf_token": csrf(client)})
    sign_in(client, "assessor@example.org")
    assert client.get(f"/adverse-events/{ae_id}").status_code == 403
    assert f'href="/adverse-events/{ae_id}"' not in client.get(f"/participants/{trial['pid']}").text
