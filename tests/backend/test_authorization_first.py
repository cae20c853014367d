"""Who may call is decided before the input is read: a caller who may not use an operation gets 401/403,
never 422 with hints about the fields, whatever the body or query; every API route declares its access."""

from __future__ import annotations

import pytest

from tests.backend.app_fixtures import signed_in, trial  # noqa: F401  (fixture)
from tests.backend.test_app_authorization import APP_ONLY, PROTECTED, STAFF_ONLY, url
from tests.factories import auth, make_staff_token

WRITES = ("post", "put", "patch", "delete")
# The one write the masked assessor may make: giving up their own token.
ASSESSOR_MAY = {("post", "/api/v1/auth/token/revoke")}
ASSESSOR_REFUSED = [op for op in STAFF_ONLY if op[0] in WRITES and op not in ASSESSOR_MAY]
# Wrong in every way a schema can check: an unknown field, a NUL, a list for a string; a query no schema takes.
INVALID_BODY = {"bogus": "\x00", "reason": ["not", "text"], "taken": "perhaps", "code": 7}
INVALID_QUERY = "?when=never&limit=0&state=nonsense&kind=nonsense"
API_PREFIX = "/api/v1/"


def invalid_call(client, method: str, path: str, headers: dict | None = None, **ids):
    """The operation with a body and query that no schema accepts."""
    return client.open(
        url(path, **ids) + INVALID_QUERY, method=method.upper(), json=INVALID_BODY, headers=headers or {}
    )


def _ids(ops):
    return [f"{m.upper()} {p}" for m, p in ops]


def test_the_assessor_list_covers_the_writes_that_leaked_field_hints():
    assert ("post", "/api/v1/participants/{participant_id}/activation-codes") in ASSESSOR_REFUSED
    assert ("post", "/api/v1/participants/{participant_id}/devices/revoke") in ASSESSOR_REFUSED
    assert ("post", "/api/v1/adverse-events/{ae_id}/review") in ASSESSOR_REFUSED
    assert len(ASSESSOR_REFUSED) > 10


@pytest.mark.parametrize("method,path", ASSESSOR_REFUSED, ids=_ids(ASSESSOR_REFUSED))
def test_the_masked_assessor_gets_403_not_field_hints_on_every_write(client, trial, session, method, path):
    assessor = make_staff_token(session, role="assessor", site=trial.site)
    response = invalid_call(client, method, path, auth(assessor), participant_id=trial.a.id)
    assert response.status_code == 403, response.get_json()
    assert "errors" not in response.get_json()


@pytest.mark.parametrize("method,path", STAFF_ONLY, ids=_ids(STAFF_ONLY))
def test_a_participant_token_on_a_staff_operation_is_403_before_the_input_is_read(client, trial, method, path):
    tokens = signed_in(client, trial, trial.a)
    response = invalid_call(client, method, path, auth(tokens["access_token"]), participant_id=trial.a.id)
    assert response.status_code == 403, response.get_json()
    assert "errors" not in response.get_json()


@pytest.mark.parametrize("method,path", APP_ONLY, ids=_ids(APP_ONLY))
def test_a_staff_token_on_an_app_operation_is_403_before_the_input_is_read(client, trial, method, path):
    response = invalid_call(client, method, path, auth(trial.nurse))
    assert response.status_code == 403, response.get_json()
    assert "errors" not in response.get_json()


@pytest.mark.parametrize("method,path", PROTECTED, ids=_ids(PROTECTED))
def test_no_token_is_401_before_the_input_is_read(client, trial, method, path):
    response = invalid_call(client, method, path, participant_id=trial.a.id)
    assert response.status_code == 401, response.get_json()
    assert "errors" not in response.get_json()


def test_every_api_route_declares_who_may_call_it(app):
    from backend.web.auth import declared_access

    with app.app_context():
        undeclared = [
            f"{method} {rule.rule}"
            for rule in app.url_map.iter_rules()
            if rule.rule.startswith(API_PREFIX)
            for method in sorted(rule.methods - {"HEAD", "OPTIONS"})
            if declared_access(rule.endpoint, method) is None
        ]
    assert not undeclared


def test_an_operation_without_a_declaration_is_refused(app, client):
    from flask import Blueprint

    extra = Blueprint("undeclared", __name__)
    extra.add_url_rule(f"{API_PREFIX}undeclared", "undeclared", lambda: "open", methods=["GET"])
    app.register_blueprint(extra)
    response = client.get(f"{API_PREFIX}undeclared")
    assert response.status_code == 403 and response.get_json()["message"] == "this operation declares no access rule"
