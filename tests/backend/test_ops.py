"""Operations: liveness, readiness with reasons, Prometheus metrics across processes, logs without personal data."""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
from datetime import timedelta

from twilio.request_validator import RequestValidator

from backend.app import create_app
from backend.runtime.logging_setup import JsonFormatter, RequestIdFilter, TextFormatter, configure_logging, redact
from notifications.models import OutboundMessage
from tests import conftest
from tests.conftest import PUBLIC_BASE_URL, TWILIO_TOKEN, fresh_database_url, utc
from tests.factories import make_participant

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
PHONE = "+8613812345678"


def _signed_post(client, path, params, headers=None):
    signature = RequestValidator(TWILIO_TOKEN).compute_signature(PUBLIC_BASE_URL + path, params)
    return client.post(path, data=params, headers={"X-Twilio-Signature": signature, **(headers or {})})


def _outbox_row(participant, key, *, due, status="planned"):
    return OutboundMessage(
        participant_id=participant.id,
        site_id=participant.site_id,
        purpose="dose_reminder",
        dedupe_key=key,
        body="x",
        due_at=due,
        next_attempt_at=due,
        status=status,
    )


def _metric(text, name):
    for line in text.splitlines():
        if line.startswith(name + " ") or line.startswith(name + "{"):
            return float(line.rsplit(" ", 1)[1])
    raise AssertionError(f"{name} not in /metrics")


# --- liveness and readiness -------------------------------------------------------------------------------------------
def test_healthz_answers_without_touching_the_database(client):
    response = client.get("/healthz")
    assert response.status_code == 200 and response.get_json() == {"status": "ok"}


def test_readyz_is_ok_when_the_schema_is_at_the_newest_migration(client):
    response = client.get("/readyz")
    body = response.get_json()
    assert response.status_code == 200, body
    assert body["status"] == "ok" and body["database"] == "ok" and body["migrations"].startswith("current")


def test_readyz_is_503_and_says_to_upgrade_when_migrations_have_not_run(tmp_path):
    with fresh_database_url(tmp_path) as url:
        app = create_app(conftest.test_settings(url, INSTANCE_DIR=str(tmp_path)))
        try:
            response = app.test_client().get("/readyz")
        finally:
            app.extensions["database"].engine.dispose()
    body = response.get_json()
    assert response.status_code == 503
    assert body["status"] == "unavailable" and body["database"] == "ok"
    assert "flask --app wsgi db upgrade" in body["migrations"] and "empty schema" in body["migrations"]


def test_readyz_is_503_when_the_database_cannot_be_reached(tmp_path):
    app = create_app(conftest.test_settings(f"sqlite:///{tmp_path}/no/such/dir/db.sqlite", INSTANCE_DIR=str(tmp_path)))
    response = app.test_client().get("/readyz")
    body = response.get_json()
    assert response.status_code == 503
    assert body["status"] == "unavailable" and body["database"].startswith("unreachable: ")
    assert str(tmp_path) not in json.dumps(body)  # the reason names the failure, not where the database lives


# --- metrics ----------------------------------------------------------------------------------------------------------
def test_metrics_report_outbox_depth_oldest_due_age_and_messages_in_flight(client, session, clock):
    now = utc("2026-03-01T12:00Z")
    clock.move_to(now)
    participant = make_participant(session, now=now)
    session.add_all(
        [
            _outbox_row(participant, "m:1", due=now - timedelta(minutes=3)),
            _outbox_row(participant, "m:2", due=now - timedelta(seconds=30)),
            _outbox_row(participant, "m:3", due=now + timedelta(hours=1)),  # not due yet
            _outbox_row(participant, "m:4", due=now - timedelta(minutes=9), status="sending"),
            _outbox_row(participant, "m:5", due=now - timedelta(minutes=60), status="sent"),
        ]
    )
    session.commit()

    response = client.get("/metrics")

    assert response.status_code == 200 and response.mimetype == "text/plain"
    text = response.get_data(as_text=True)
    assert _metric(text, "trial_outbox_due") == 2
    assert _metric(text, "trial_outbox_oldest_due_seconds") == 180
    assert _metric(text, "trial_outbox_sending") == 1
    for name in (
        "trial_messages_sent_total",
        "trial_messages_planned_total",
        "trial_messages_failed_total",
        "trial_job_seconds",
        "trial_webhook_seconds",
        "trial_http_request_seconds",
    ):
        assert f"# TYPE {name.removesuffix('_total')}" in text, name


def test_metrics_count_requests_by_route_template_not_by_concrete_path(client):
    client.get("/api/v1/participants/123456")  # 401 without a token; the id must not become a label
    text = client.get("/metrics").get_data(as_text=True)
    assert 'route="/api/v1/participants/<int' in text and ':participant_id>"' in text
    assert "123456" not in text


def test_metrics_from_separate_processes_are_merged_through_the_shared_directory(tmp_path):
    env = {**os.environ, "PROMETHEUS_MULTIPROC_DIR": str(tmp_path / "metrics"), "PYTHONPATH": ROOT}
    bump = (
        "from backend.runtime import metrics as m; m.MESSAGES_SENT.inc({n}); m.MESSAGES_FAILED.labels('30006').inc();"
        "m.JOB_DURATION.labels('dispatch_outbox').observe(0.2)"
    )
    for n in (3, 4):  # two dispatchers, each its own process, each gone before the scrape
        subprocess.run([sys.executable, "-c", bump.format(n=n)], env=env, check=True, cwd=ROOT)
    scrape = subprocess.run(
        [sys.executable, "-c", "from backend.runtime import metrics as m; print(m.render_latest().decode())"],
        env=env,
        check=True,
        cwd=ROOT,
        capture_output=True,
        text=True,
    ).stdout

    assert _metric(scrape, "trial_messages_sent_total") == 7
    assert 'trial_messages_failed_total{code="30006"} 2.0' in scrape
    assert _metric(scrape, 'trial_job_seconds_count{job="dispatch_outbox"}') == 2
    files = sorted(p.name for p in (tmp_path / "metrics").iterdir())
    assert all(name.count("_") == 1 and "-" in name for name in files), files  # <type>_<host>-<pid>.db


# --- logs -------------------------------------------------------------------------------------------------------------
def test_logs_of_an_inbound_sms_carry_the_request_id_and_never_the_number_or_the_text(
    app, client, session, clock, caplog
):
    clock.move_to(utc("2026-03-01T12:10Z"))
    make_participant(session, phone=PHONE, now=utc("2026-02-20T00:00Z"))
    session.commit()
    caplog.set_level(logging.DEBUG)
    caplog.handler.addFilter(RequestIdFilter())
    bodies = ["1", "my knee is swollen and red after the jab, Zhang Wei", "疼痛 右腿肿胀 张伟"]

    for n, body in enumerate(bodies):
        params = {
            "MessageSid": f"SM{n:032d}",
            "AccountSid": "AC" + "0" * 32,
            "From": PHONE,
            "To": "+861088325555",
            "Body": body,
        }
        response = _signed_post(client, "/sms/inbound", params, headers={"X-Request-Id": f"req-{n}"})
        assert response.status_code == 200
    refused = client.post(
        "/sms/inbound",
        data={"MessageSid": "SMbad", "From": PHONE, "Body": bodies[1]},
        headers={"X-Twilio-Signature": "bad"},
    )
    assert refused.status_code == 403  # a refused webhook logs too

    lines = [fmt.format(record) for record in caplog.records for fmt in (JsonFormatter(), TextFormatter())]
    written = "\n".join(lines)
    assert any(
        json.loads(line).get("request_id") == "req-1" and json.loads(line).get("path") == "/sms/inbound"
        for line in lines
        if line.startswith("{")
    )
    for secret in (PHONE, PHONE[1:], PHONE[3:], "Zhang Wei", "swollen", "张伟", "肿胀"):
        assert secret not in written, f"{secret!r} reached the logs"


def test_the_last_net_masks_phone_numbers_and_sql_parameters():
    error = (
        "(psycopg.errors.UniqueViolation) duplicate key\n[SQL: INSERT INTO inboundmessage (body) VALUES (%(body)s)]\n"
        "[parameters: {'body': 'my knee hurts', 'from_hash': 'abc'}]\n(Background on this error at: https://sqlalche.me/e/20/gkpj)"
    )
    scrubbed = redact(f"sent to +86 138 1234 5678 and +8613812345678: {error}")
    assert "1234" not in scrubbed and "my knee" not in scrubbed
    assert "[parameters: redacted]" in scrubbed and "[SQL: INSERT INTO inboundmessage" in scrubbed


def test_json_logging_writes_one_parseable_line_with_the_chosen_fields(capsys):
    root = logging.getLogger()
    saved = root.handlers[:], root.level, getattr(root, "_trial_configured", False)
    root._trial_configured = False
    try:
        configure_logging("json")
        logging.getLogger("backend.runtime.jobs").info(
            "job %s: %s", "plan_messages", "planned 3 new", extra={"job": "plan_messages"}
        )
        logging.getLogger("twilio.http_client").info("Headers: To : +8613812345678")  # the SDK's chatter is silenced
    finally:
        root.handlers[:], root.level = saved[0], saved[1]
        root._trial_configured = saved[2]
    lines = [line for line in capsys.readouterr().err.splitlines() if line.strip()]
    assert len(lines) == 1
    entry = json.loads(lines[0])
    assert entry["msg"] == "job plan_messages: planned 3 new" and entry["job"] == "plan_messages"
    assert entry["level"] == "INFO" and entry["request_id"] == "-" and entry["ts"].endswith("Z")
