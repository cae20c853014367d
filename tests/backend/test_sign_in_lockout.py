"""The timed lockout of staff sign-in: wrong passwords for one email are counted whatever the address, by
pages and API together; past the limit even the right password is refused (429) until the lock ends."""

from __future__ import annotations

import re
import threading

import pytest

from backend.identity.staff import create_staff
from tests.conftest import utc
from tests.factories import STRONG_PASSWORD, make_site

EMAIL = "nurse@example.org"
WRONG = "not-the-password-at-all"
LOCKED = "too many wrong passwords for this account: sign-in is locked for 15 more minutes, whatever the password"


@pytest.fixture
def nurse(session, clock):
    clock.move_to(utc("2026-03-06T06:00Z"))
    create_staff(session, email=EMAIL, password=STRONG_PASSWORD, role="nurse", site=make_site(session))
    session.commit()


def api_sign_in(client, password: str, *, address: str = "198.51.100.1", email: str = EMAIL):
    return client.post(
        "/api/v1/auth/token", json={"email": email, "password": password}, environ_base={"REMOTE_ADDR": address}
    )


def page_sign_in(client, password: str, *, address: str = "198.51.100.1"):
    page = client.get("/login")
    token = re.search(r'name="csrf_token" type="hidden" value="([^"]+)"', page.text).group(1)
    return client.post(
        "/login",
        data={"csrf_token": token, "email": EMAIL, "password": password},
        environ_base={"REMOTE_ADDR": address},
    )


def test_forty_wrong_passwords_from_four_addresses_lock_the_account_and_the_right_one_is_refused(client, nurse):
    answers = [api_sign_in(client, WRONG, address=f"198.51.100.{1 + i % 4}").status_code for i in range(40)]
    assert answers[:10] == [401] * 10 and set(answers[10:]) == {429}
    refused = api_sign_in(client, STRONG_PASSWORD, address="203.0.113.9")
    assert refused.status_code == 429
    assert refused.get_json()["message"].startswith(LOCKED)
    assert refused.headers["Retry-After"] == "900"
    assert "token" not in refused.get_json()


def test_the_lock_ends_on_time_however_many_tries_came_during_it(client, nurse, clock):
    for i in range(10):
        api_sign_in(client, WRONG, address=f"198.51.100.{i}")
    clock.shift(14 * 60)
    for i in range(5):
        assert api_sign_in(client, WRONG, address=f"192.0.2.{i}").status_code == 429  # not counted, not longer
    locked = api_sign_in(client, STRONG_PASSWORD, address="203.0.113.9")
    assert locked.status_code == 429 and "locked for 1 more minute," in locked.get_json()["message"]
    clock.shift(60)
    signed_in = api_sign_in(client, STRONG_PASSWORD, address="203.0.113.9")
    assert signed_in.status_code == 201 and signed_in.get_json()["token"]


def test_only_failures_within_the_window_count_and_a_right_password_clears_them(client, nurse, clock):
    for _ in range(9):
        assert api_sign_in(client, WRONG).status_code == 401
    clock.shift(15 * 60 + 1)  # the nine are older than the window now
    for _ in range(9):
        assert api_sign_in(client, WRONG, address="198.51.100.2").status_code == 401
    assert api_sign_in(client, STRONG_PASSWORD, address="198.51.100.3").status_code == 201
    for _ in range(9):
        assert api_sign_in(client, WRONG, address="198.51.100.4").status_code == 401
    assert api_sign_in(client, STRONG_PASSWORD, address="198.51.100.5").status_code == 201


def test_pages_and_api_share_one_count_and_one_lock(client, nurse):
    for i in range(5):
        assert page_sign_in(client, WRONG, address=f"198.51.100.{i}").status_code == 401
        assert api_sign_in(client, WRONG, address=f"192.0.2.{i}").status_code == 401
    page = page_sign_in(client, STRONG_PASSWORD, address="203.0.113.9")
    assert page.status_code == 429
    assert "sign-in is locked for 15 more minutes, whatever the password" in page.text
    assert client.get("/").status_code == 303  # not signed in
    assert api_sign_in(client, STRONG_PASSWORD, address="203.0.113.10").status_code == 429


def test_an_unknown_email_is_locked_alike_so_a_lock_reveals_no_account(client, nurse):
    for i in range(10):
        assert api_sign_in(client, WRONG, address=f"198.51.100.{i}", email="nobody@example.org").status_code == 401
        api_sign_in(client, WRONG, address=f"192.0.2.{i}")
    unknown = api_sign_in(client, WRONG, address="203.0.113.1", email="nobody@example.org")
    known = api_sign_in(client, WRONG, address="203.0.113.2")
    assert unknown.status_code == known.status_code == 429
    assert unknown.get_json() == known.get_json()
    # The email is counted in its normal form: capitals are no way around the lock.
    assert api_sign_in(client, STRONG_PASSWORD, address="203.0.113.3", email="Nurse@Example.ORG").status_code == 429


def test_wrong_passwords_arriving_together_are_all_counted(tmp_path):
    """Against a real, committed database: six failures at once, the first for the email among them, count six."""
    from backend.db import Database
    from backend.identity.lockout import LockoutPolicy, record_failure
    from backend.models import SignInLock
    from tests.conftest import fresh_database_url, migrate_database

    workers, key, now = 6, "d" * 64, utc("2026-03-06T06:00Z")
    policy = LockoutPolicy(attempts=100, minutes=15)
    with fresh_database_url(tmp_path) as url:
        migrate_database(url, tmp_path)
        database = Database(url)
        barrier = threading.Barrier(workers)

        def fail():
            barrier.wait()
            with database.session() as session:
                record_failure(session, key, now=now, policy=policy)

        threads = [threading.Thread(target=fail) for _ in range(workers)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=60)
        with database.session() as session:
            assert session.get(SignInLock, key).failures == workers
        database.engine.dispose()
