"""Issue 14 item 7's acceptance: schemathesis over the whole API of a live gunicorn (4 workers) on a fresh
database with the demo trial, its document read from the server's /api/openapi.json; no request, however
odd, gets a server error.

Staff operations carry an admin's bearer token (the account made with `flask staff create`), participant
app operations a demo participant's access token; both are minted again after an operation that may have
revoked them. A bounded number of examples per operation keeps the file well under 90 seconds."""

from __future__ import annotations

from datetime import timedelta

import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis.checks import not_a_server_error
from sqlmodel import select

from backend.app import create_app
from backend.db import get_database
from backend.identity.app_tokens import start_device_session
from backend.identity.staff import issue_staff_token
from backend.models import Staff
from schedules.dbtypes import utcnow
from schedules.models import AdverseEvent, Alert, Dose, Participant, VasScore
from tests.conftest import fresh_database_url
from tests.conftest import test_settings as settings_for
from tests.factories import STRONG_PASSWORD
from tests.live_server import flask_cli, live_server, server_environ

ADMIN = "fuzz-admin@example.org"
PARTICIPANT = "P-001"  # a demo participant three weeks into their doses
EXAMPLES = 25
# Operations that may end the credentials used for them: the next case gets new ones.
SIGNS_OUT = {
    ("POST", "/api/v1/auth/token/revoke"): "staff",
    ("POST", "/api/v1/app/sign-out"): "app",
    ("POST", "/api/v1/participants/{participant_id}/devices/revoke"): "app",
}
_TOKENS: dict[str, str] = {}
# Path ids schemathesis makes up almost never exist, so every case would stop at a 404: half of them
# (the even ones, below 2**31) are turned into ids the demo data has; odd and out-of-range ones stay as made.
_ID_COLUMNS = {
    "participant_id": Participant.id,
    "ae_id": AdverseEvent.id,
    "alert_id": Alert.id,
    "vas_id": VasScore.id,
    "seq": Dose.seq,
}
_IDS: dict[str, list[int]] = {}


@pytest.fixture(scope="module")
def live_api(tmp_path_factory):
    """gunicorn on a fresh database migrated, seeded and given an admin through the operator CLI; (server, app)."""
    tmp = tmp_path_factory.mktemp("live-api")
    with fresh_database_url(tmp) as url:
        env = server_environ(url, tmp)
        flask_cli(env, "db", "upgrade")
        flask_cli(env, "seed-demo")
        flask_cli(
            {**env, "STAFF_PASSWORD": STRONG_PASSWORD},
            *("staff", "create", "--email", ADMIN, "--role", "admin"),
            *("--as", "admin@demo.local", "--reason", "schemathesis run"),
        )
        # The test's own handle on the same database, for minting tokens as the identity functions do.
        app = create_app(settings_for(url, INSTANCE_DIR=str(tmp)))
        with get_database(app).session() as session:
            _IDS.update({name: sorted(set(session.exec(select(column)).all())) for name, column in _ID_COLUMNS.items()})
        with live_server(env, tmp / "gunicorn.log", workers=4) as server:
            _TOKENS.clear()
            yield server, app
        get_database(app).engine.dispose()


@pytest.fixture
def live_schema(live_api, request):
    """The API document as the live server serves it; requests go to that server."""
    if not hasattr(request.node, "_nodeid"):
        # schemathesis 4's lazy loader renames subtests through Node._nodeid, which pytest 9 no longer has.
        request.node._nodeid = request.node.nodeid
    server, _ = live_api
    return schemathesis.openapi.from_url(server.base_url + "/api/openapi.json", timeout=30)


def _mint(app, kind: str) -> str:
    """A new, valid bearer token for the admin ('staff') or the demo participant ('app')."""
    with get_database(app).session() as session:
        now = utcnow()
        if kind == "app":
            participant = session.exec(select(Participant).where(Participant.study_code == PARTICIPANT)).one()
            return start_device_session(session, participant=participant, device_name="fuzz", now=now).access_token
        staff = session.exec(select(Staff).where(Staff.email == ADMIN)).one()
        token, _ = issue_staff_token(session, staff=staff, now=now, ttl=timedelta(hours=1))
        return token


def _use_existing_ids(case) -> None:
    for name, value in (case.path_parameters or {}).items():
        if type(value) is int and 0 <= value < 2**31 and value % 2 == 0 and _IDS.get(name):
            case.path_parameters[name] = _IDS[name][value // 2 % len(_IDS[name])]


def _kind(path: str) -> str:
    return "app" if path == "/api/v1/me" or path.startswith(("/api/v1/me/", "/api/v1/app/")) else "staff"


schema = schemathesis.pytest.from_fixture("live_schema")


@schema.parametrize()
@settings(
    max_examples=EXAMPLES, deadline=None, suppress_health_check=list(HealthCheck), derandomize=True, database=None
)
def test_no_request_gets_a_server_error_from_the_live_server(case, live_api):
    _, app = live_api
    kind = _kind(case.path)
    _use_existing_ids(case)
    if kind not in _TOKENS:
        _TOKENS[kind] = _mint(app, kind)
    try:
        case.call_and_validate(headers={"Authorization": f"Bearer {_TOKENS[kind]}"}, checks=[not_a_server_error])
    finally:
        if (case.method.upper(), case.path) in SIGNS_OUT:
            _TOKENS.pop(SIGNS_OUT[(case.method.upper(), case.path)], None)
