"""Settings: safe embedded defaults, and production refuses default or missing secrets by name."""

from __future__ import annotations

import pytest

from backend.config import ConfigError, load_settings

GOOD = {"APP_ENV": "production", "SECRET_KEY": "s" * 40, "PHONE_ENCRYPTION_KEY": "k" * 44, "PHONE_HASH_KEY": "h" * 40,
        "DATABASE_URL": "postgresql://db/trial"}


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
