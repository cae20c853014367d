"""Object-level authorization for every operation in the OpenAPI document, not a sample.

- no token: 401 everywhere except the few public operations;
- a participant's app token on any staff operation: 403, the same answer for another participant's
  id as for one that does not exist (nothing revealed);
- a staff token on any /me operation: 403;
- participant A's token on participant B's things: 404.
"""

from __future__ import annotations

import re

import pytest

from backend.app import create_app
from tests.backend.app_fixtures import signed_in, trial  # noqa: F401  (fixture)
from tests.conftest import test_settings as settings_for
from tests.factories import auth

# Reference data the app needs too (the adverse-event vocabulary): any signed-in caller may read it.
SHARED = {("get", "/api/v1/adverse-event-terms")}
PUBLIC = {
    ("post", "/api/v1/auth/token"),
    ("post", "/api/v1/app/activate"),
    ("post", "/api/v1/app/token/refresh"),
    ("get", "/api/v1/calendar/{secret}.ics"),
}
METHODS = ("get", "post", "put", "patch", "delete")


def _spec() -> dict:
    # The document does not depend on the database; nothing connects until a request needs a session.
    app = create_app(settings_for("sqlite://", INSTANCE_DIR="/tmp/trial-companion-test-instance"))
    return app.test_client().get("/api/openapi.json").get_json()


SPEC = _spec()
OPERATIONS = sorted((method, path) for path, item in SPEC["paths"].items() for method in item if method in METHODS)
PROTECTED = [op for op in OPERATIONS if op not in PUBLIC]
APP_ONLY = [
    op
    for op in PROTECTED
    if op[1] == "/api/v1/me" or op[1].startswith("/api/v1/me/") or op[1] == "/api/v1/app/sign-out"
]
STAFF_ONLY = [op for op in PROTECTED if op not in APP_ONLY and op not in SHARED]
# Fields some request schemas give no example for (a caller who is let in must get past validation).
KNOWN = {"reminder_time": "20:00", "language": "en", "injection_site": "thigh_left", "time_zone": "Asia/Shanghai"}


def _resolve(schema: dict) -> dict:
    while "$ref" in schema:
        schema = SPEC["components"]["schemas"][schema["$ref"].rsplit("/", 1)[1]]
    return schema


def _sample(name: str, prop: dict):
    prop = _resolve(prop)
    if prop.get("example") is not None:
        return prop["example"]
    if name in KNOWN:
        return KNOWN[name]
    if prop.get("enum"):
        return next(v for v in prop["enum"] if v is not None)
    kind = prop.get("type")
    return {"integer": 1, "number": 1, "boolean": True, "array": [], "object": {}}.get(kind, "x")


def example_body(method: str, path: str):
    """A body built from the document's own examples, valid enough to get past validation."""
    content = SPEC["paths"][path][method].get("requestBody", {}).get("content", {}).get("application/json")
    if content is None:
        return None
    schema = _resolve(content["schema"])
    return {
        name: _sample(name, prop) for name, prop in schema.get("properties", {}).items() if not prop.get("readOnly")
    }


def url(path: str, **ids) -> str:
    """The path with every {param} filled in (unknown ones with 1)."""
    return re.sub(r"\{(\w+)\}", lambda m: str(ids.get(m.group(1), 1)), path)


def call(client, method: str, path: str, headers: dict | None = None, **ids):
    return client.open(url(path, **ids), method=method.upper(), json=example_body(method, path), headers=headers or {})


def test_the_operation_lists_cover_the_participant_app():
    assert ("get", "/api/v1/me/doses") in APP_ONLY and ("post", "/api/v1/me/doses/{seq}/report") in APP_ONLY
    assert ("post", "/api/v1/participants/{participant_id}/activation-codes") in STAFF_ONLY
    assert ("post", "/api/v1/participants/{participant_id}/devices/revoke") in STAFF_ONLY
    assert len(PROTECTED) == len(APP_ONLY) + len(STAFF_ONLY) + len(SHARED) and len(OPERATIONS) > 30


@pytest.mark.parametrize("method,path", sorted(SHARED))
def test_shared_reference_data_is_readable_by_the_app(client, trial, method, path):
    tokens = signed_in(client, trial, trial.a)
    assert call(client, method, path, auth(tokens["access_token"])).status_code == 200


@pytest.mark.parametrize("method,path", PROTECTED, ids=[f"{m.upper()} {p}" for m, p in PROTECTED])
def test_no_token_is_401_with_the_error_shape(client, trial, method, path):
    response = call(client, method, path, participant_id=trial.b.id)
    assert response.status_code == 401, response.get_json()
    body = response.get_json()
    assert body["code"] == 401 and body["status"] == "Unauthorized" and body["message"]


@pytest.mark.parametrize("method,path", STAFF_ONLY, ids=[f"{m.upper()} {p}" for m, p in STAFF_ONLY])
def test_participant_token_on_staff_operations_is_403_and_reveals_nothing(client, trial, method, path):
    tokens = signed_in(client, trial, trial.a)
    other = call(client, method, path, auth(tokens["access_token"]), participant_id=trial.b.id)
    missing = call(client, method, path, auth(tokens["access_token"]), participant_id=999999)
    own = call(client, method, path, auth(tokens["access_token"]), participant_id=trial.a.id)
    assert other.status_code == missing.status_code == own.status_code == 403, (other.get_json(), missing.get_json())
    assert other.get_json() == missing.get_json()


@pytest.mark.parametrize("method,path", APP_ONLY, ids=[f"{m.upper()} {p}" for m, p in APP_ONLY])
def test_staff_token_on_app_operations_is_403(client, trial, method, path):
    response = call(client, method, path, auth(trial.nurse))
    assert response.status_code == 403, response.get_json()
    assert "participant app" in response.get_json()["message"]


def test_a_cannot_reach_b_adverse_event_or_dose_and_gets_404(client, trial, clock):
    a = signed_in(client, trial, trial.a)
    b = signed_in(client, trial, trial.b)
    b_ae = client.post("/api/v1/me/adverse-events", json={"term": "fever"}, headers=auth(b["access_token"])).get_json()[
        "id"
    ]
    response = client.get(f"/api/v1/me/adverse-events/{b_ae}", headers=auth(a["access_token"]))
    assert response.status_code == 404 and response.get_json()["message"] == "no such adverse event"
    assert (
        client.get("/api/v1/me/adverse-events/999999", headers=auth(a["access_token"])).get_json()
        == response.get_json()
    )
    # B's dose exists only as B's: A's "/me" addresses A's own schedule, and B's staff URL is closed to A.
    b_report = client.post(
        f"/api/v1/participants/{trial.b.id}/doses/1/report", json={"taken": True}, headers=auth(a["access_token"])
    )
    assert b_report.status_code == 403
    assert client.get("/api/v1/me/doses/1", headers=auth(b["access_token"])).get_json()["state"] == "scheduled"


def test_b_dose_number_that_a_lacks_is_404(client, trial, session):
    from schedules.queries import dose_by_seq

    a = signed_in(client, trial, trial.a)
    b = signed_in(client, trial, trial.b)
    dose_by_seq(session, trial.b, 46).seq = 47  # B now has a dose 47; A does not
    session.flush()
    assert client.get("/api/v1/me/doses/47", headers=auth(b["access_token"])).status_code == 200
    response = client.post("/api/v1/me/doses/47/report", json={"taken": True}, headers=auth(a["access_token"]))
    assert response.status_code == 404 and response.get_json() == {
        "code": 404,
        "status": "Not Found",
        "message": "you have no dose 47",
    }


def _integer_params(method: str, path: str) -> list[str]:
    item = SPEC["paths"][path]
    params = item.get("parameters", []) + item[method].get("parameters", [])
    return [p["name"] for p in params if p.get("in") == "path" and p.get("schema", {}).get("type") == "integer"]


WITH_IDS = [op for op in PROTECTED if _integer_params(*op)]


@pytest.mark.parametrize("method,path", WITH_IDS, ids=[f"{m.upper()} {p}" for m, p in WITH_IDS])
def test_ids_beyond_the_database_integer_are_not_found(client, trial, method, path):
    """A path id the database cannot hold is simply not found (SQLite overflows past 2**63 - 1)."""
    token = signed_in(client, trial, trial.a)["access_token"] if (method, path) in APP_ONLY else trial.nurse
    for huge in (2**31, 2**63):
        response = call(client, method, path, auth(token), **{name: huge for name in _integer_params(method, path)})
        assert response.status_code == 404, (huge, response.get_json())
