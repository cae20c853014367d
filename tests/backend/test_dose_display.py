"""The participant page after a hold and resume: no struck-through old cadence on the calendar, dose numbers
that count the participant's own doses (not "Dose 47"), and each reported dose with when it was taken and
when it was reported."""

from __future__ import annotations

import re

from schedules.models import Dose, Participant
from schedules.queries import doses_of
from tests.backend.test_pages import csrf, fresh, sign_in, world
from tests.conftest import utc


def _post(client, pid, action, **data):
    token = csrf(client)
    response = client.post(
        f"/participants/{pid}/{action}",
        data={f"{action}-csrf_token": token, **{f"{action}-{k}": v for k, v in data.items()}},
    )
    assert response.status_code == 303, response.text
    return client.get(response.headers["Location"]).text


def test_after_hold_and_resume_the_calendar_shows_the_current_plan_numbered_from_one(client, world, session):
    sign_in(client, "nurse-a@example.org")
    pid = world["a1"]  # first dose 1 March; 1, 3 and 5 March missed
    _post(client, pid, "hold", effective="2026-03-07", reason="raised liver enzymes")
    page = _post(client, pid, "resume", resume_date="2026-03-10", reason="enzymes normal")

    doses = doses_of(session, pid)
    cancelled = [d for d in doses if d.state == "cancelled"]
    restarted = next(d for d in doses if d.local_date.isoformat() == "2026-03-10")
    assert cancelled and restarted.seq > 40  # the row's seq keeps counting every dose ever planned
    assert "dose-cancelled" not in page and ">Cancelled<" not in page
    # 1, 3 and 5 March are doses 1-3; 7 and 9 March are held (no number); 10 March is dose 4.
    assert 'title="Dose 4: planned, not yet reported"' in page
    assert f"Dose {restarted.seq}" not in page
    numbers = [int(n) for n in re.findall(r'title="Dose (\d+):', page)]
    active = [d for d in doses if d.state not in ("cancelled", "held")]
    assert sorted(numbers) == list(range(1, len(active) + 1))


def test_a_reported_dose_shows_when_it_was_taken_and_when_it_was_reported(client, world, session):
    sign_in(client, "nurse-a@example.org")
    participant = fresh(session, Participant, world["a1"])
    dose = next(d for d in doses_of(session, participant.id) if d.local_date.isoformat() == "2026-03-05")
    page = _post(
        client,
        participant.id,
        "dose",
        dose=str(dose.id),
        taken="yes",
        taken_at="2026-03-05T21:15",
        reason="phoned in: took it last night",
    )
    assert "Dose 3 (2026-03-05) recorded: taken on time" in page
    row = page[page.index('<tr data-dose="2026-03-05">') :].split("</tr>")[0]
    assert "Dose 3" in row and "taken on time" in row
    assert "2026-03-05 21:15 (Asia/Shanghai)" in row  # taken, as the nurse entered it
    assert "2026-03-06 14:00 (Asia/Shanghai)" in row and "by staff" in row  # reported
    assert fresh(session, Dose, dose.id).state == "taken"
