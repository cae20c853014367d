"""The operator CLI: contract names, useful output, one-sentence errors with a non-zero exit."""

from __future__ import annotations

import json

import pytest

from tests.cli_helpers import AS_ADMIN, load_trial
from tests.conftest import utc
from tests.factories import PROTOCOL_FILE, STRONG_PASSWORD


@pytest.fixture
def loaded(cli, clock):
    clock.move_to(utc("2026-02-20T00:00Z"))
    load_trial(cli, on_call=("+8613900000099",))
    return cli


ENROLL = [
    "participants",
    "enroll",
    "--study",
    "NCT04237987",
    "--code",
    "P-9",
    "--arm",
    "il2",
    "--site",
    "PKUPH",
    "--phone",
    "+8613812345678",
    "--tz",
    "Asia/Shanghai",
    "--lang",
    "zh-CN",
    "--reminder-time",
    "20:00",
    "--first-dose",
    "2026-03-01",
    *AS_ADMIN,
]


def test_enroll_and_show_json(loaded):
    result = loaded.invoke(args=ENROLL)
    assert result.exit_code == 0 and "46 dose(s)" in result.output
    shown = loaded.invoke(args=["participants", "show", "P-9", "--json"])
    report = json.loads(shown.output)
    assert report["doses"][0]["due_at"] == "2026-03-01T12:00:00Z" and report["doses"][0]["state"] == "scheduled"
    assert report["adherence"]["counted"] == 0 and report["open_alerts"] == []
    assert "13812345678" not in shown.output


@pytest.mark.parametrize(
    "flag,value,says",
    [
        ("--tz", "Asia/Atlantis", "time_zone"),
        ("--phone", "12345", "phone"),
        ("--arm", "placebo", "arm"),
        ("--first-dose", "March 1st", "--first-dose"),
        ("--site", "NOPE", "site"),
    ],
)
def test_bad_enroll_arguments_exit_nonzero_with_one_sentence(loaded, flag, value, says):
    args = list(ENROLL)
    args[args.index(flag) + 1] = value
    result = loaded.invoke(args=args)
    assert result.exit_code != 0
    lines = [line for line in result.output.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("Error:") and says in lines[0]


def test_bad_protocol_lists_every_problem(cli, tmp_path):
    bad = tmp_path / "bad.toml"
    bad.write_text(
        PROTOCOL_FILE.read_text()
        .replace("interval_days = 2", "interval_days = 0")
        .replace('site_time_zone = "Asia/Shanghai"', 'site_time_zone = "Nowhere/City"')
    )
    result = cli.invoke(args=["protocol", "load", str(bad)])
    assert result.exit_code != 0
    assert "interval_days" in result.output and "site_time_zone" in result.output and "Traceback" not in result.output


def test_staff_create_checks_password_and_site(loaded, monkeypatch):
    weak = loaded.invoke(
        args=["staff", "create", "--email", "a@example.org", "--role", "nurse", "--site", "PKUPH", *AS_ADMIN],
        env={"STAFF_PASSWORD": "password1234"},
    )
    assert weak.exit_code != 0 and "password" in weak.output
    no_site = loaded.invoke(
        args=["staff", "create", "--email", "a@example.org", "--role", "nurse", *AS_ADMIN],
        env={"STAFF_PASSWORD": STRONG_PASSWORD},
    )
    assert no_site.exit_code != 0 and "--site" in no_site.output
    ok = loaded.invoke(
        args=["staff", "create", "--email", "a@example.org", "--role", "nurse", "--site", "PKUPH", *AS_ADMIN],
        env={"STAFF_PASSWORD": STRONG_PASSWORD},
    )
    assert ok.exit_code == 0, ok.output
    dup = loaded.invoke(
        args=["staff", "create", "--email", "A@example.org", "--role", "nurse", "--site", "PKUPH", *AS_ADMIN],
        env={"STAFF_PASSWORD": STRONG_PASSWORD},
    )
    assert dup.exit_code != 0 and "already exists" in dup.output
