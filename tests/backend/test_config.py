"""Settings: safe embedded defaults, and production refuses default or missing secrets by name."""

from __future__ import annotations

import re
from dataclasses import fields
from pathlib import Path

import pytest

from backend.config import ConfigError, Settings, load_settings

GOOD = {
    "APP_ENV": "production",
    "SECRET_KEY": "s" * 40,
    "PHONE_ENCRYPTION_KEY": "k" * 44,
    "PHONE_HASH_KEY": "h" * 40,
    "DATABASE_URL": "postgresql://db/trial",
}


@pytest.mark.parametrize("name", ["SECRET_KEY", "PHONE_ENCRYPTION_KEY", "PHONE_HASH_KEY"])
@pytest.mark.parametrize("value", [None, "", "change-me", "dev"])
def test_production_refuses_missing_or_default_secret_and_names_it(name, value):
    env = dict(GOOD)
    if value is None:
        env.pop(name)
    else:
        env[name] = value
    with pytest.raises(ConfigError, match=name):
        load_settings(environ=env)


def test_production_needs_a_database_and_twilio_token():
    with pytest.raises(ConfigError, match="DATABASE_URL"):
        load_settings(environ={k: v for k, v in GOOD.items() if k != "DATABASE_URL"})
    with pytest.raises(ConfigError, match="TWILIO_AUTH_TOKEN"):
        load_settings(environ={**GOOD, "SMS_BACKEND": "twilio"})


def test_production_with_real_secrets_starts_with_secure_cookies():
    settings = load_settings(environ=GOOD)
    assert settings.is_production and settings.SESSION_COOKIE_SECURE


def test_development_generates_a_key_file_once(tmp_path):
    first = load_settings(environ={"INSTANCE_DIR": str(tmp_path)})
    second = load_settings(environ={"INSTANCE_DIR": str(tmp_path)})
    assert first.SECRET_KEY == second.SECRET_KEY and len(first.SECRET_KEY) >= 32
    assert (tmp_path / "keys.json").stat().st_mode & 0o777 == 0o600
    assert first.DATABASE_URL.startswith("sqlite:///") and first.SMS_BACKEND == "console"


def test_bad_values_are_named():
    with pytest.raises(ConfigError, match="APP_ENV"):
        load_settings(environ={"APP_ENV": "staging"})
    with pytest.raises(ConfigError, match="SEND_RATE_PER_SECOND"):
        load_settings(environ={"APP_ENV": "test", "SEND_RATE_PER_SECOND": "fast"})


def _readme_settings_rows() -> list[tuple[list[str], list[str]]]:
    """(names, defaults) of each row of README.md's Settings table, as the backticked words of its first two cells."""
    text = (Path(__file__).resolve().parents[2] / "README.md").read_text()
    section = text.split("\n## Settings\n", 1)[1].split("\n## ", 1)[0]
    rows = []
    for line in section.splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if line.startswith("|") and len(cells) >= 3 and cells[0] != "variable" and not set(cells[0]) <= set("- "):
            rows.append(
                (
                    re.findall(r"`([A-Z0-9_]+)`", cells[0]),
                    re.findall(r"`([^`]*)`", cells[1]) if re.fullmatch(r"`[^`]*`(, `[^`]*`)*", cells[1]) else [],
                )
            )
    return rows


def test_every_setting_is_in_the_readme_table_with_its_default():
    rows = _readme_settings_rows()
    listed = {name for names, _ in rows for name in names}
    settings = Settings()
    names = [f.name for f in fields(Settings) if f.name != "extra"]
    assert not set(names) - listed, "settings missing from README.md's Settings table"
    assert not listed - set(names), "README.md lists settings that Settings does not have"
    for row_names, defaults in rows:
        if len(defaults) != len(row_names):
            continue  # a described default ('generated', '`true` in production'), not a value
        for name, shown in zip(row_names, defaults):
            value = getattr(settings, name)
            if isinstance(value, bool):
                assert shown == str(value).lower(), name
            elif isinstance(value, (int, float)):
                assert float(shown) == value, name


def test_the_environment_sets_the_scheduler_digest_and_send_rate_settings_with_their_types():
    settings = load_settings(
        environ={
            "APP_ENV": "test",
            "DIGEST_LOCAL_HOUR": "7",
            "DISPATCH_POLL_SECONDS": "0.5",
            "SCHEDULER_RUNS_DISPATCH": "false",
            "SEND_RATE_KEY": "site-b:send-rate",
        }
    )
    assert (settings.DIGEST_LOCAL_HOUR, settings.DISPATCH_POLL_SECONDS) == (7, 0.5)
    assert settings.SCHEDULER_RUNS_DISPATCH is False and settings.SEND_RATE_KEY == "site-b:send-rate"
    assert type(settings.DIGEST_LOCAL_HOUR) is int and type(settings.DISPATCH_POLL_SECONDS) is float
    with pytest.raises(ConfigError, match="DIGEST_LOCAL_HOUR"):
        load_settings(environ={"APP_ENV": "test", "DIGEST_LOCAL_HOUR": "eight"})


def test_the_dispatcher_takes_its_numbers_from_settings_only():
    from backend.runtime.jobs import dispatch_config
    from notifications.dispatch import DispatchConfig

    with pytest.raises(TypeError):
        DispatchConfig()  # no defaults of its own to drift from Settings'
    settings = load_settings(environ={"APP_ENV": "test"})
    config = dispatch_config(settings)
    assert (config.batch_size, config.max_attempts, config.concurrency) == (200, 5, 32)
    assert config.sending_stale_after.total_seconds() == settings.SENDING_STALE_AFTER_SECONDS
    changed = dispatch_config(load_settings(environ={"APP_ENV": "test", "DISPATCH_BATCH_SIZE": "7"}))
    assert changed.batch_size == 7


def test_the_migrations_may_not_name_another_database_than_the_app():
    same = load_settings(
        environ={
            "APP_ENV": "test",
            "DATABASE_URL": "postgresql://trial_app:pw@db:5432/trial",
            "MIGRATION_DATABASE_URL": "postgresql://trial_owner:secret@db:5432/trial",
        }
    )
    assert same.MIGRATION_DATABASE_URL.startswith("postgresql://trial_owner")
    with pytest.raises(ConfigError, match="MIGRATION_DATABASE_URL .* name different databases") as refused:
        load_settings(
            environ={
                "APP_ENV": "test",
                "DATABASE_URL": "postgresql://trial_app:pw@db:5432/trial",
                "MIGRATION_DATABASE_URL": "postgresql://trial_owner:secret@db:5432/trial_old",
            }
        )
    assert "secret" not in str(refused.value)
