"""Schemathesis over the whole API, from the live /api/openapi.json: no server error, and every
response (status, content type, headers, body) as the document describes it.

Generated requests carry real credentials: staff operations an admin's bearer token, participant
app operations a participant's access token; both are minted again after any operation that may
have revoked them, so a generated sign-out does not blind the rest of the run. Every operation runs
schemathesis' coverage phase (boundary and negative values) plus a few fuzzed examples; the whole
file stays well under 90 seconds."""

from __future__ import annotations

from datetime import date, timedelta

import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)
from sqlmodel import select

from backend.db import get_database
from backend.identity.app_tokens import start_device_session
from backend.identity.staff import issue_staff_token
from backend.models import Staff
from schedules.dbtypes import utcnow
from schedules.models import Participant
from tests.factories import make_participant, make_site, make_staff_token, make_study

CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
]
APP_PATHS = ("/api/v1/me", "/api/v1/app/sign-out")
_CONTEXT: dict = {}
# Operations that may end the credentials used for them: the next case gets new ones.
SIGNS_OUT = {
    ("POST", "/api/v1/auth/token/revoke"): "staff_token",
    ("POST", "/api/v1/app/sign-out"): "app_token",
    ("POST", "/api/v1/participants/{participant_id}/devices/revoke"): "app_token",
}


@pytest.fixture
def api_schema(app, session, request):
    """The live document of an app with a study, site, admin and an enrolled participant whose doses started lately."""
    if not hasattr(request.node, "_nodeid"):
        # schemathesis 4's lazy loader renames subtests through Node._nodeid, which pytest 9 no longer has.
        request.node._nodeid = request.node.nodeid
    now = utcnow()
    study = make_study(session, now=now)
    site = make_site(session)
    make_staff_token(session, role="admin", site=None, email="admin@example.org", now=now)
    participant = make_participant(
        session, study=study, site=site, code="P-100", first_dose=date.today() - timedelta(days=4), now=now
    )
    _CONTEXT.clear()
    _CONTEXT.update(app=app, participant_id=participant.id, staff_email="admin@example.org")
    return schemathesis.openapi.from_wsgi("/api/openapi.json", app)


def _mint(for_app: bool) -> str:
    """A new, valid token for the admin or the participant."""
    app = _CONTEXT["app"]
    with app.app_context(), get_database(app).session() as session:
        now = utcnow()
        if for_app:
            participant = session.get(Participant, _CONTEXT["participant_id"])
            return start_device_session(
                session, participant=participant, device_name="schemathesis", now=now
            ).access_token
        staff = session.exec(select(Staff).where(Staff.email == _CONTEXT["staff_email"])).one()
        token, _ = issue_staff_token(session, staff=staff, now=now, ttl=timedelta(hours=1))
        return token


def _token(for_app: bool) -> str:
    key = "app_token" if for_app else "staff_token"
    if key not in _CONTEXT:
        _CONTEXT[key] = _mint(for_app)
    return _CONTEXT[key]


schema = schemathesis.pytest.from_fixture("api_schema")


@schema.parametrize()
@settings(max_examples=5, deadline=None, suppress_health_check=list(HealthCheck), derandomize=True, database=None)
def test_api_matches_its_openapi_document(case):
    for_app = case.path == "/api/v1/me" or case.path.startswith(APP_PATHS[0] + "/") or case.path == APP_PATHS[1]
    headers = {"Authorization": f"Bearer {_token(for_app)}"}
    try:
        case.call_and_validate(headers=headers, checks=CHECKS)
    finally:
        if (case.method.upper(), case.path) in SIGNS_OUT:
            _CONTEXT.pop(SIGNS_OUT[(case.method.upper(), case.path)], None)
