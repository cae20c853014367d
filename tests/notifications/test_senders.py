"""SMS senders, driven through the real Twilio SDK against the local stand-in."""

import base64
import json
import logging
import re
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from email.utils import parsedate_to_datetime
from pathlib import Path

import pytest

from notifications.senders import (
    ConsoleSmsSender,
    RecordingSmsSender,
    SendResult,
    SmsSendError,
    TwilioSmsSender,
    build_sender,
)
from notifications.twilio_standin import TwilioStandIn

ACCOUNT_SID = "AC" + "0" * 32
AUTH_TOKEN = "not-a-real-token"
FROM = "+15005550006"
SERVICE_SID = "MG" + "1" * 32
PHONE = "+8613812345678"
BODY = "今天是注射日，请在晚上8点前注射。"
CALLBACK = "https://trial.example.org/twilio/status/42"
REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def standin():
    with TwilioStandIn() as server:
        yield server


@pytest.fixture(autouse=True)
def _clean(standin):
    standin.reset()


def twilio_sender(standin, **overrides):
    options = dict(
        account_sid=ACCOUNT_SID, auth_token=AUTH_TOKEN, from_number=FROM, api_base_url=standin.url, timeout_seconds=2.0
    )
    options.update(overrides)
    return TwilioSmsSender(**options)


def post_json(url, payload, headers=None):
    request = urllib.request.Request(
        url,
        data=json.dumps(payload).encode(),
        method="POST",
        headers={"Content-Type": "application/json", **(headers or {})},
    )
    with urllib.request.urlopen(request, timeout=5) as response:
        return response.status, json.loads(response.read())


def get_json(url):
    with urllib.request.urlopen(url, timeout=5) as response:
        return json.loads(response.read())


# -- Twilio sender through the SDK -----------------------------------------------------------


def test_message_reaches_twilio_with_callback_and_validity(standin):
    sender = twilio_sender(standin, validity_period_seconds=3600)

    result = sender.send(to=PHONE, body=BODY, status_callback=CALLBACK)

    [message] = standin.messages
    assert result == SendResult(provider_sid=message["sid"], status="queued")
    assert re.fullmatch(r"SM[0-9a-f]{32}", result.provider_sid)
    assert message["To"] == PHONE
    assert message["From"] == FROM
    assert message["MessagingServiceSid"] is None
    assert message["Body"] == BODY
    assert message["StatusCallback"] == CALLBACK
    assert message["ValidityPeriod"] == "3600"


def test_messaging_service_is_preferred_over_from_number(standin):
    sender = twilio_sender(standin, messaging_service_sid=SERVICE_SID)

    result = sender.send(to=PHONE, body="hello")

    [message] = standin.messages
    assert message["MessagingServiceSid"] == SERVICE_SID
    assert message["From"] is None
    assert message["StatusCallback"] is None and message["ValidityPeriod"] is None
    assert result.provider_sid == message["sid"]
    assert result.status == "accepted"


def test_server_error_is_transient_and_not_retried_by_the_sdk(standin):
    standin.fail_next(status=500)

    with pytest.raises(SmsSendError) as caught:
        twilio_sender(standin).send(to=PHONE, body=BODY)

    assert caught.value.transient
    assert caught.value.http_status == 500
    assert caught.value.code is None
    assert not caught.value.opted_out
    assert standin.requests_seen() == 1
    assert standin.messages == []


def test_rate_limit_is_transient_with_retry_after(standin):
    standin.fail_next(status=429, code=20429, message="Too Many Requests", retry_after=7)

    with pytest.raises(SmsSendError) as caught:
        twilio_sender(standin).send(to=PHONE, body=BODY)

    assert caught.value.transient
    assert caught.value.http_status == 429
    assert caught.value.code == 20429
    assert caught.value.retry_after == 7


def test_unsubscribed_recipient_is_permanent_and_opted_out(standin):
    standin.fail_next(status=400, code=21610, message=f"Attempt to send to unsubscribed recipient {PHONE}")

    with pytest.raises(SmsSendError) as caught:
        twilio_sender(standin).send(to=PHONE, body=BODY)

    error = caught.value
    assert not error.transient
    assert error.opted_out
    assert (error.code, error.http_status, error.retry_after) == (21610, 400, None)
    # Callers log these errors; Twilio's text quotes the number, ours must not.
    assert PHONE[1:] not in str(error) and BODY not in str(error)


def test_provider_that_hangs_past_the_timeout_is_a_transient_error(standin):
    standin.hang_next(3.0)
    sender = twilio_sender(standin, timeout_seconds=0.3)

    started = time.monotonic()
    with pytest.raises(SmsSendError) as caught:
        sender.send(to=PHONE, body=BODY)

    assert time.monotonic() - started < 2.0
    assert caught.value.transient
    assert caught.value.http_status is None
    assert "0.3" in str(caught.value)
    # The provider may still have taken it: a timeout is ambiguous, not a failure.
    assert len(standin.messages) == 1
    assert standin.requests_seen() == 1


def test_unreachable_provider_is_transient():
    with TwilioStandIn() as doomed:
        url = doomed.url
    sender = TwilioSmsSender(
        account_sid=ACCOUNT_SID, auth_token=AUTH_TOKEN, from_number=FROM, api_base_url=url, timeout_seconds=1.0
    )

    with pytest.raises(SmsSendError) as caught:
        sender.send(to=PHONE, body=BODY)

    assert caught.value.transient
    assert caught.value.http_status is None


def test_sender_recovers_after_scripted_failures(standin):
    standin.fail_next(status=503, count=2)
    sender = twilio_sender(standin)

    outcomes = []
    for _ in range(3):
        try:
            outcomes.append(sender.send(to=PHONE, body=BODY).status)
        except SmsSendError as error:
            outcomes.append(error.http_status)

    assert outcomes == [503, 503, "queued"]
    assert standin.requests_seen() == 3


def test_one_sender_shared_by_threads_returns_each_message_its_own_sid(standin):
    standin.set_latency(10)
    sender = twilio_sender(standin)
    results: dict[str, SendResult] = {}
    lock = threading.Lock()

    def work(worker: int) -> None:
        for i in range(8):
            body = f"reminder {worker}-{i}"
            result = sender.send(to=PHONE, body=body)
            with lock:
                results[body] = result

    threads = [threading.Thread(target=work, args=(n,)) for n in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=20)

    recorded = {m["Body"]: m["sid"] for m in standin.messages}
    assert len(results) == len(recorded) == 64
    assert {body: r.provider_sid for body, r in results.items()} == recorded


# -- stand-in surface ------------------------------------------------------------------------


def test_standin_refuses_requests_without_basic_auth(standin):
    url = f"{standin.url}/2010-04-01/Accounts/{ACCOUNT_SID}/Messages.json"
    request = urllib.request.Request(url, data=b"To=%2B1555&From=%2B1666&Body=hi", method="POST")

    with pytest.raises(urllib.error.HTTPError) as caught:
        urllib.request.urlopen(request, timeout=5)

    assert caught.value.code == 401
    assert json.loads(caught.value.read())["code"] == 20003
    assert standin.messages == []


def test_standin_answers_like_twilio_message_resource(standin):
    url = f"{standin.url}/2010-04-01/Accounts/{ACCOUNT_SID}/Messages.json"
    auth = base64.b64encode(f"{ACCOUNT_SID}:{AUTH_TOKEN}".encode()).decode()
    request = urllib.request.Request(
        url,
        data=b"To=%2B15551234567&From=%2B15005550006&Body=" + b"x" * 200,
        method="POST",
        headers={"Authorization": f"Basic {auth}"},
    )

    with urllib.request.urlopen(request, timeout=5) as response:
        status, payload = response.status, json.loads(response.read())

    assert status == 201
    assert payload["status"] == "queued" and payload["error_code"] is None
    assert payload["account_sid"] == ACCOUNT_SID
    assert payload["num_segments"] == "2"
    assert parsedate_to_datetime(payload["date_created"]).tzinfo is not None


def test_control_endpoints_steer_the_standin_from_outside(standin):
    assert post_json(f"{standin.url}/_standin/control", {"fail_next": {"status": 400, "code": 21610}})[0] == 200
    sender = twilio_sender(standin)

    with pytest.raises(SmsSendError) as caught:
        sender.send(to=PHONE, body="first")
    sender.send(to=PHONE, body="second")

    assert caught.value.opted_out
    assert [m["Body"] for m in get_json(f"{standin.url}/_standin/messages")] == ["second"]

    post_json(f"{standin.url}/_standin/control", {"reset": True})
    assert get_json(f"{standin.url}/_standin/messages") == []
    assert standin.requests_seen() == 0


def test_messages_endpoint_returns_those_since_an_index(standin):
    sender = twilio_sender(standin)
    for body in ("one", "two", "three"):
        sender.send(to=PHONE, body=body)

    assert [m["Body"] for m in get_json(f"{standin.url}/_standin/messages")] == ["one", "two", "three"]
    assert [m["Body"] for m in get_json(f"{standin.url}/_standin/messages?since=1")] == ["two", "three"]
    assert get_json(f"{standin.url}/_standin/messages?since=3") == []
    assert get_json(f"{standin.url}/_standin/messages?since=99") == []
    assert all(m["received_at"] for m in get_json(f"{standin.url}/_standin/messages?since=0"))


@pytest.mark.parametrize("since", ["-1", "abc", "1.5", ""])
def test_messages_endpoint_refuses_a_bad_since(standin, since):
    with pytest.raises(urllib.error.HTTPError) as caught:
        get_json(f"{standin.url}/_standin/messages?since={since}")

    assert caught.value.code == 400
    assert "since must be a whole number" in json.loads(caught.value.read())["error"]


def test_control_endpoint_sets_latency_and_hangs(standin):
    post_json(f"{standin.url}/_standin/control", {"latency_ms": 150})
    sender = twilio_sender(standin, timeout_seconds=0.5)

    started = time.monotonic()
    sender.send(to=PHONE, body=BODY)
    assert time.monotonic() - started >= 0.15

    post_json(f"{standin.url}/_standin/control", {"hang_next": {"seconds": 2.0}})
    with pytest.raises(SmsSendError) as caught:
        sender.send(to=PHONE, body=BODY)
    assert caught.value.transient


def test_standin_runs_as_a_separate_process():
    process = subprocess.Popen(
        [sys.executable, "-m", "notifications.twilio_standin", "--port", "0"],
        cwd=REPO,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        url = process.stdout.readline().strip().rsplit(" ", 1)[-1]
        assert url.startswith("http://127.0.0.1:")
        post_json(f"{url}/_standin/control", {"fail_next": {"status": 500}})
        sender = TwilioSmsSender(
            account_sid=ACCOUNT_SID, auth_token=AUTH_TOKEN, from_number=FROM, api_base_url=url, timeout_seconds=2
        )

        with pytest.raises(SmsSendError):
            sender.send(to=PHONE, body="one")
        sender.send(to=PHONE, body="two")

        assert [m["Body"] for m in get_json(f"{url}/_standin/messages")] == ["two"]
        assert get_json(f"{url}/_standin/stats") == {"requests_seen": 2, "messages": 1}
    finally:
        process.terminate()
        process.wait(timeout=5)


# -- console and recording senders -----------------------------------------------------------


def test_console_sender_logs_neither_number_nor_body(caplog):
    caplog.set_level(logging.DEBUG)

    result = ConsoleSmsSender().send(to=PHONE, body=BODY, status_callback=CALLBACK)

    assert re.fullmatch(r"CONSOLE[0-9a-f]{32}", result.provider_sid)
    assert result.status == "sent"
    [record] = [r for r in caplog.records if r.name == "notifications.sms"]
    text = record.getMessage()
    assert result.provider_sid in text
    assert BODY not in text
    # Apart from the SID, the only digits allowed are the body length.
    assert re.findall(r"\d+", text.replace(result.provider_sid, "")) == [str(len(BODY))]


def test_recording_sender_records_and_fails_on_request():
    sender = RecordingSmsSender()
    sender.fail_next(SmsSendError("down", http_status=503, transient=True), count=2)

    for _ in range(2):
        with pytest.raises(SmsSendError):
            sender.send(to=PHONE, body=BODY)
    result = sender.send(to=PHONE, body=BODY, status_callback=CALLBACK)

    assert sender.sent == [(PHONE, BODY, CALLBACK)]
    assert sender.attempts == 3
    assert result.status == "queued"


# -- build_sender ----------------------------------------------------------------------------

TWILIO_SETTINGS = {
    "SMS_BACKEND": "twilio",
    "TWILIO_ACCOUNT_SID": ACCOUNT_SID,
    "TWILIO_AUTH_TOKEN": AUTH_TOKEN,
    "TWILIO_FROM_NUMBER": FROM,
}


def test_build_sender_picks_the_configured_backend(standin):
    assert build_sender({}).name == "console"
    assert build_sender({"SMS_BACKEND": "recording"}).name == "recording"
    sender = build_sender(
        {**TWILIO_SETTINGS, "TWILIO_API_BASE_URL": standin.url, "TWILIO_VALIDITY_PERIOD": "600", "TWILIO_TIMEOUT": "3"}
    )

    assert isinstance(sender, TwilioSmsSender)
    sender.send(to=PHONE, body=BODY)
    assert standin.messages[0]["ValidityPeriod"] == "600"


@pytest.mark.parametrize(
    ("change", "mentions"),
    [
        ({"SMS_BACKEND": "carrier-pigeon"}, "SMS_BACKEND"),
        ({"TWILIO_AUTH_TOKEN": ""}, "TWILIO_AUTH_TOKEN"),
        ({"TWILIO_ACCOUNT_SID": None}, "TWILIO_ACCOUNT_SID"),
        ({"TWILIO_FROM_NUMBER": ""}, "TWILIO_MESSAGING_SERVICE_SID"),
        ({"TWILIO_VALIDITY_PERIOD": "an hour"}, "TWILIO_VALIDITY_PERIOD"),
        ({"TWILIO_TIMEOUT": "0"}, "timeout"),
    ],
)
def test_build_sender_explains_bad_settings(change, mentions):
    with pytest.raises(ValueError, match=mentions):
        build_sender({**TWILIO_SETTINGS, **change})
