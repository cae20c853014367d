"""The dose calendar at a secret URL: valid iCalendar, one event per dose, nothing that names the drug."""

from __future__ import annotations

from icalendar import Calendar

from tests.backend.app_fixtures import signed_in, trial  # noqa: F401  (fixture)
from tests.conftest import utc
from tests.factories import auth


def _feed_path(url: str) -> str:
    return url.split("trial.example.org", 1)[1]


def test_calendar_feed_parses_and_has_one_event_per_dose(client, trial):
    tokens = signed_in(client, trial, trial.a)
    created = client.post("/api/v1/me/calendar-token", headers=auth(tokens["access_token"]))
    assert created.status_code == 201
    url = created.get_json()["url"]
    assert url.startswith("https://trial.example.org/api/v1/calendar/") and url.endswith(".ics")
    assert created.get_json()["webcal_url"] == "webcal://" + url.split("://", 1)[1]

    feed = client.get(_feed_path(url))  # no Authorization: the phone's calendar app knows only the URL
    assert feed.status_code == 200 and feed.mimetype == "text/calendar"
    calendar = Calendar.from_ical(feed.data)
    events = list(calendar.walk("VEVENT"))
    assert len(events) == 46
    first = events[0]
    assert first.decoded("dtstart") == utc("2026-03-01T12:00Z")
    assert "12:00" in str(first.get("description")) and "Asia/Shanghai" in str(first.get("description"))
    assert len({str(e.get("uid")) for e in events}) == 46
    text = feed.data.decode().lower()
    for word in ("il-2", "il2", "interleukin", "ciclosporin", "myositis", "nct04237987"):
        assert word not in text


def test_cancelled_doses_leave_the_calendar(client, trial, clock):
    tokens = signed_in(client, trial, trial.a)
    url = client.post("/api/v1/me/calendar-token", headers=auth(tokens["access_token"])).get_json()["url"]
    clock.move_to(utc("2026-03-04T05:00Z"))  # doses 1 and 2 are past; the rest are cancelled by withdrawal
    client.post(
        f"/api/v1/participants/{trial.a.id}/withdraw", json={"reason": "consent withdrawn"}, headers=auth(trial.nurse)
    )
    events = list(Calendar.from_ical(client.get(_feed_path(url)).data).walk("VEVENT"))
    assert len(events) == 2


def test_a_new_address_replaces_the_old_and_delete_turns_it_off(client, trial):
    tokens = signed_in(client, trial, trial.a)
    headers = auth(tokens["access_token"])
    old = client.post("/api/v1/me/calendar-token", headers=headers).get_json()["url"]
    new = client.post("/api/v1/me/calendar-token", headers=headers).get_json()["url"]
    assert client.get(_feed_path(old)).status_code == 404
    assert client.get(_feed_path(new)).status_code == 200
    assert client.delete("/api/v1/me/calendar-token", headers=headers).status_code == 204
    gone = client.get(_feed_path(new))
    assert gone.status_code == 404 and gone.get_json()["code"] == 404
    assert client.get("/api/v1/calendar/not-a-real-secret.ics").status_code == 404


def test_feed_language_follows_the_participant(client, trial):
    tokens = signed_in(client, trial, trial.b)
    headers = auth(tokens["access_token"])
    client.patch("/api/v1/me", json={"language": "en"}, headers=headers)
    url = client.post("/api/v1/me/calendar-token", headers=headers).get_json()["url"]
    event = Calendar.from_ical(client.get(_feed_path(url)).data).walk("VEVENT")[0]
    assert str(event.get("summary")) == "Injection (dose 1)"


def test_the_feed_secret_never_reaches_the_log(client, trial, caplog):
    tokens = signed_in(client, trial, trial.a)
    url = client.post("/api/v1/me/calendar-token", headers=auth(tokens["access_token"])).get_json()["url"]
    secret = url.rsplit("/", 1)[1].removesuffix(".ics")
    with caplog.at_level("INFO", logger="backend.access"):
        assert client.get(_feed_path(url)).status_code == 200
    assert caplog.records and secret not in caplog.text
