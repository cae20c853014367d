"""Blinding by construction: the masked outcome assessor gets the same answers whichever arm a participant is in.

The same trial is played twice, on two fresh databases, with one participant who reports the same things on the
same dates; the only differences are the arm and what the arm brings with it (dose reminders and replies, missed
doses, a nurse's hold). The assessor then calls every operation of the OpenAPI document and opens every nurse
page; each answer must be the same in both worlds once ids are numbered in order of appearance. Operations and
pages are read from the document and the URL map, so a new route is covered without editing this test.
"""

from __future__ import annotations

import json
import re
from contextlib import ExitStack
from dataclasses import dataclass
from datetime import timedelta

import pytest
from sqlmodel import select

from backend.app import create_app
from backend.extensions import set_sender
from backend.identity.staff import create_staff
from notifications.senders import RecordingSmsSender
from schedules.models import AdverseEvent, Alert, AlertKind, VasScore
from tests.backend.test_app_authorization import OPERATIONS, example_body, url
from tests.conftest import fresh_database_url, migrate_database, utc
from tests.conftest import test_settings as settings_for
from tests.factories import STRONG_PASSWORD, auth, make_participant, make_site, make_staff_token, make_study
from tests.sms_helpers import inbound_params, post_signed, run_all_jobs

ASSESSOR_EMAIL = "assessor@example.org"
YEAR = timedelta(days=365)
# Words that would tell the arm: the drug, dosing, the arm codes, and what the participant typed (an injection site).
TELLING = re.compile(
    r"interleukin|IL-?2|\bil2\b|inject|注射|dose|dosing|\bheld\b|on_hold|on hold|follow_up_end|红肿|injection_site",
    re.IGNORECASE,
)
# Operations last in the walk: giving up one's own token ends the walk.
LAST = ("post", "/api/v1/auth/token/revoke")


@dataclass
class World:
    """One play of the trial: its app, the ids the assessor will ask about and the tokens of its staff."""

    app: object
    ids: dict
    nurse: str
    investigator: str
    assessor: str


def _jobs_at(app, clock, *instants: str) -> None:
    for instant in instants:
        clock.move_to(utc(instant))
        run_all_jobs(app)


def _play(app, clock, arm: str) -> World:
    """The trial for one participant of `arm`: the same reports on the same dates in either arm."""
    database = app.extensions["database"]
    clock.move_to(utc("2026-02-20T00:00Z"))
    with database.session() as s:
        study, site = make_study(s), make_site(s)
        nurse = make_staff_token(s, role="nurse", site=site, email="nurse@example.org", ttl=YEAR)
        investigator = make_staff_token(s, role="investigator", site=site, email="investigator@example.org", ttl=YEAR)
        assessor = make_staff_token(s, role="assessor", site=site, email="assessor-api@example.org", ttl=YEAR)
        create_staff(s, email=ASSESSOR_EMAIL, password=STRONG_PASSWORD, role="assessor", site=site)
        participant = make_participant(s, study=study, site=site, code="P-001", arm=arm, language="zh-CN")
        s.commit()
        participant_id = participant.id
    client = app.test_client()

    _jobs_at(app, clock, "2026-03-01T12:00Z")  # 20:00 in Beijing: the reminder (IL-2 only) and the VAS prompt
    if arm == "il2":
        clock.move_to(utc("2026-03-01T12:30Z"))
        post_signed(client, "/sms/inbound", inbound_params("1"))
    clock.move_to(utc("2026-03-01T13:00Z"))
    post_signed(client, "/sms/inbound", inbound_params("V 4.5"))
    clock.move_to(utc("2026-03-02T01:00Z"))
    post_signed(client, "/sms/inbound", inbound_params("AE 注射部位红肿，发烧"))
    clock.move_to(utc("2026-03-02T02:00Z"))
    staff_report = client.post(
        f"/api/v1/participants/{participant_id}/adverse-events",
        json={"term": "injection_site_reaction", "severity": "mild", "reason": "participant phoned the site"},
        headers=auth(nurse),
    )
    assert staff_report.status_code == 201, staff_report.get_json()
    clock.move_to(utc("2026-03-02T03:00Z"))
    post_signed(client, "/sms/inbound", inbound_params("昨晚住院了"))
    _jobs_at(app, clock, "2026-03-02T06:00Z", "2026-03-04T06:00Z", "2026-03-06T06:00Z")
    if arm == "il2":
        clock.move_to(utc("2026-03-06T06:30Z"))
        held = client.post(f"/api/v1/participants/{participant_id}/hold", json={"reason": "fever"}, headers=auth(nurse))
        assert held.status_code == 200, held.get_json()
    _jobs_at(app, clock, "2026-03-08T12:00Z")
    clock.move_to(utc("2026-03-08T13:00Z"))
    post_signed(client, "/sms/inbound", inbound_params("V 5"))
    with database.session() as s:
        serious = s.exec(select(AdverseEvent).where(AdverseEvent.suspected_serious.is_(True))).one()
        first_ae = s.exec(select(AdverseEvent).order_by(AdverseEvent.id)).first()
        alert = s.exec(select(Alert).where(Alert.kind == AlertKind.SERIOUS_AE.value)).one()
        first_vas = s.exec(select(VasScore).order_by(VasScore.id)).first()
        ids = dict(participant_id=participant_id, ae_id=first_ae.id, alert_id=alert.id, vas_id=first_vas.id, seq=1)
        serious_id = serious.id
    clock.move_to(utc("2026-03-09T01:00Z"))
    review = client.post(
        f"/api/v1/adverse-events/{serious_id}/review",
        json={
            "ctcae_grade": 3,
            "serious": True,
            "serious_criteria": ["hospitalisation"],
            "relatedness": "possible",
            "outcome": "recovering",
            "reason": "reviewed with the ward",
        },
        headers=auth(investigator),
    )
    assert review.status_code == 200, review.get_json()
    # The nurse completes both records: what was done with the study drug differs by arm (the control arm has
    # none), and the staff report is coded with a CTCAE term the protocol withholds (Injection site reaction).
    clock.move_to(utc("2026-03-09T02:00Z"))
    action = "drug_interrupted" if arm == "il2" else "not_applicable"
    for ae_id, code in ((serious_id, "10016558"), (staff_report.get_json()["id"], "10022095")):
        completed = client.post(
            f"/api/v1/adverse-events/{ae_id}/record",
            json={"ctcae_term": code, "onset_date": "2026-03-01", "action_taken": action, "reason": "called back"},
            headers=auth(nurse),
        )
        assert completed.status_code == 200, completed.get_json()
    clock.move_to(utc("2026-03-10T02:00Z"))
    return World(app, ids, nurse, investigator, assessor)


# --- what the assessor sees ----------------------------------------------------------------------------------------
def _number_ids(value, seen: dict):
    """Ids replaced by their order of appearance, per key: the same story gives the same numbers."""
    if isinstance(value, dict):
        out = {}
        for key, item in value.items():
            if isinstance(item, int) and not isinstance(item, bool) and (key == "id" or key.endswith("_id")):
                numbers = seen.setdefault(key, {})
                out[key] = f"<{key} {numbers.setdefault(item, len(numbers) + 1)}>"
            else:
                out[key] = _number_ids(item, seen)
        return out
    if isinstance(value, list):
        return [_number_ids(item, seen) for item in value]
    return value


_VOLATILE_HTML = [
    (re.compile(r'(name="[\w-]*csrf_token" type="hidden" value=")[^"]+'), r"\1<csrf>"),
    (re.compile(r'nonce="[^"]+"'), 'nonce="<nonce>"'),
]
_HTML_IDS = re.compile(r"(/(?:participants|alerts|adverse-events|vas)/)(\d+)|(#|ACK |alert-)(\d+)")


def _page_text(html: str) -> str:
    for pattern, replacement in _VOLATILE_HTML:
        html = pattern.sub(replacement, html)
    seen: dict[str, int] = {}
    return _HTML_IDS.sub(lambda m: (m.group(1) or m.group(3)) + f"<{seen.setdefault(m.group(0), len(seen) + 1)}>", html)


def _api_answers(world: World) -> dict[str, tuple]:
    client = world.app.test_client()
    operations = sorted(OPERATIONS, key=lambda op: (op[0] != "get", op == LAST, op))
    answers = {}
    for method, path in operations:
        response = client.open(
            url(path, **world.ids),
            method=method.upper(),
            json=example_body(method, path),
            headers=auth(world.assessor),
        )
        body = response.get_json(silent=True)
        shown = _number_ids(body, {}) if body is not None else response.get_data(as_text=True)
        answers[f"{method.upper()} {path}"] = (response.status_code, json.dumps(shown, ensure_ascii=False, indent=1))
    return answers


_RULE_PARAM = re.compile(r"<(?:[^:>]+:)?(\w+)>")


def _page_rules(app) -> list[tuple[str, str]]:
    """Every nurse-page route (method, rule) of the URL map."""
    return sorted(
        (method, rule.rule)
        for rule in app.url_map.iter_rules()
        if rule.endpoint.startswith("pages.") and rule.endpoint not in ("pages.login", "pages.logout")
        for method in rule.methods - {"HEAD", "OPTIONS"}
    )


def _page_answers(world: World) -> dict[str, tuple]:
    from tests.backend.test_pages import sign_in

    client = world.app.test_client()
    sign_in(client, ASSESSOR_EMAIL)
    answers = {}
    for method, rule in _page_rules(world.app):
        path = _RULE_PARAM.sub(lambda m: str(world.ids.get(m.group(1), 1)), rule)
        response = client.open(path, method=method)
        name = _RULE_PARAM.sub(r"{\1}", rule)
        answers[f"{method} {name}"] = (response.status_code, _page_text(response.get_data(as_text=True)))
    return answers


@pytest.fixture
def worlds(clock, tmp_path):
    """The trial played once per arm, each on a fresh database of its own."""
    with ExitStack() as stack:
        played = {}
        for arm in ("il2", "control"):
            url_ = stack.enter_context(fresh_database_url(tmp_path))
            migrate_database(url_, tmp_path)
            app = create_app(settings_for(url_, INSTANCE_DIR=str(tmp_path / arm)))
            set_sender(app, RecordingSmsSender())
            stack.callback(app.extensions["database"].engine.dispose)
            played[arm] = _play(app, clock, arm)
        yield played


def test_the_assessor_gets_the_same_answer_from_every_operation_and_page_in_either_arm(worlds):
    il2, control = worlds["il2"], worlds["control"]
    pages = _page_answers(il2), _page_answers(control)
    api = _api_answers(il2), _api_answers(control)
    assert set(api[0]) == {f"{m.upper()} {p}" for m, p in OPERATIONS}
    differ = [name for name in api[0] if api[0][name] != api[1][name]]
    differ += [name for name in pages[0] if pages[0][name] != pages[1][name]]
    assert differ == [], "\n\n".join(
        f"{name}\nIL-2:    {(api[0] | pages[0])[name]}\ncontrol: {(api[1] | pages[1])[name]}" for name in differ
    )
    # What is the same in both arms must still say nothing of the treatment: no drug, no dosing, no free text.
    for name, (status, text) in (api[0] | pages[0]).items():
        found = TELLING.search(text)
        assert found is None, (name, text[max(0, found.start() - 150) : found.end() + 80])
    # The walk saw something: the assessor's own views answered with data.
    assert api[0]["GET /api/v1/participants/{participant_id}/vas"][0] == 200
    assert '"value": 4.5' in api[0]["GET /api/v1/participants/{participant_id}/vas"][1]
    assert pages[0]["GET /participants/{participant_id}"][0] == 200
    chart = pages[0]["GET /participants/{participant_id}"][1]  # the VAS chart's data: both values are drawn
    assert '"y": 4.5' in chart and '"y": 5.0' in chart
    assert pages[0]["POST /participants/{participant_id}/hold"][0] == 403
    # The coded records reached the assessor without what was done with the study drug.
    listed = api[0]["GET /api/v1/participants/{participant_id}/adverse-events"]
    assert '"ctcae_term": "10016558"' in listed[1] and '"ctcae_term": "withheld"' in listed[1]
    assert "action_taken" not in listed[1] and "10022095" not in listed[1]
    assert api[0]["POST /api/v1/adverse-events/{ae_id}/record"][0] == 403
    # The deviation log tells of dosing: in the IL-2 world it has rows (a missed dose, the hold) and the assessor is
    # refused it on the API and the page, as in the control world where it is empty.
    for name in (
        "GET /api/v1/deviations",
        "GET /api/v1/deviations/{deviation_id}",
        "PATCH /api/v1/deviations/{deviation_id}",
        "GET /deviations",
        "POST /deviations/{deviation_id}/review",
    ):
        assert (api[0] | pages[0])[name][0] == 403, name
    logged = il2.app.test_client().get("/api/v1/deviations", headers=auth(il2.nurse)).get_json()
    assert {"missed_dose", "hold"} <= {d["kind"] for d in logged}
