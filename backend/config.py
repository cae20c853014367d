"""One settings object, read from the environment once at start-up."""

from __future__ import annotations

import base64
import json
import os
import secrets
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, Mapping, MutableMapping

if TYPE_CHECKING:
    from flask import Flask

ENVIRONMENTS = ("development", "test", "production")
# Values a careless deploy could leave in place; production refuses every one of them.
_DEFAULT_SECRET_MARKERS = ("", "dev", "change-me", "changeme", "secret", "test")
_SECRET_NAMES = ("SECRET_KEY", "PHONE_ENCRYPTION_KEY", "PHONE_HASH_KEY")


class ConfigError(RuntimeError):
    """Settings that the app refuses to start with; the message names the setting."""


def _bool(value: str) -> bool:
    return value.strip().lower() in {"1", "true", "yes", "on"}


@dataclass(frozen=True)
class Settings:
    """Every setting the app reads, with its embedded-default value (see README)."""

    APP_ENV: str = "development"
    INSTANCE_DIR: str = "instance"
    DATABASE_URL: str = ""
    # PostgreSQL: the owner role `db upgrade` connects as; every other process uses DATABASE_URL (the runtime role).
    MIGRATION_DATABASE_URL: str = ""
    SECRET_KEY: str = ""
    PHONE_ENCRYPTION_KEY: str = ""
    PHONE_HASH_KEY: str = ""
    PUBLIC_BASE_URL: str = "http://127.0.0.1:5000"
    PROXY_FIX_HOPS: int = 0
    SMS_BACKEND: str = "console"
    TWILIO_ACCOUNT_SID: str = ""
    TWILIO_AUTH_TOKEN: str = ""
    TWILIO_FROM_NUMBER: str = ""
    TWILIO_MESSAGING_SERVICE_SID: str = ""
    TWILIO_API_BASE_URL: str = ""
    TWILIO_VALIDITY_PERIOD: int = 7200
    TWILIO_TIMEOUT: float = 10.0
    VALIDATE_TWILIO_SIGNATURE: bool = True
    # Who answers STOP / START / HELP: "twilio" (its opt-out handling replies; we stay silent) or "us".
    SMS_KEYWORD_REPLIES: str = "twilio"
    SEND_RATE_PER_SECOND: float = 10.0
    SEND_RATE_KEY: str = "trial:send-rate"
    DISPATCH_BATCH_SIZE: int = 200
    DISPATCH_MAX_ATTEMPTS: int = 5
    DISPATCH_CONCURRENCY: int = 32
    DISPATCH_POLL_SECONDS: float = 5.0
    SENDING_STALE_AFTER_SECONDS: int = 300
    SCHEDULER_RUNS_DISPATCH: bool = True
    DIGEST_LOCAL_HOUR: int = 8
    DIGEST_WHEN_EMPTY: bool = False
    STAFF_TOKEN_TTL_HOURS: int = 12
    # Wrong passwords for one staff email (any address) within STAFF_LOCKOUT_MINUTES that lock it as long.
    STAFF_LOCKOUT_ATTEMPTS: int = 10
    STAFF_LOCKOUT_MINUTES: int = 15
    RATELIMIT_STORAGE_URI: str = "memory://"
    SCHEDULER_LOCK_FILE: str = ""
    SCHEDULER_LOCK_CHECK_SECONDS: int = 15
    DEFAULT_PROTOCOL: str = "protocols/NCT04237987.toml"
    SESSION_COOKIE_SECURE: bool = False
    LOG_FORMAT: str = "text"
    extra: Mapping[str, Any] = field(default_factory=dict)

    @property
    def is_production(self) -> bool:
        """True outside development and tests."""
        return self.APP_ENV == "production"

    def as_flask_config(self) -> dict[str, Any]:
        """The settings as Flask config keys, plus Flask's own derived ones."""
        values = {f.name: getattr(self, f.name) for f in fields(self) if f.name != "extra"}
        values.update(self.extra)
        values["SQLALCHEMY_DATABASE_URI"] = self.DATABASE_URL
        values["SESSION_COOKIE_HTTPONLY"] = True
        values["SESSION_COOKIE_SAMESITE"] = "Lax"
        values["TESTING"] = self.APP_ENV == "test"
        return values


def settings_of(app: "Flask") -> Settings:
    """The app's Settings: the one place code reads a setting from (not app.config.get with a default of its own)."""
    return app.config["SETTINGS"]


def replace_settings(config: MutableMapping[str, Any], **changes: Any) -> Settings:
    """Change some settings of a built app (tests): the Settings object and its Flask config mirror stay in step."""
    settings = replace(config["SETTINGS"], **changes)
    config["SETTINGS"] = settings
    config.update(changes)
    return settings


def _coerce(name: str, raw: str, default: Any) -> Any:
    if isinstance(default, bool):
        return _bool(raw)
    try:
        if isinstance(default, int):
            return int(raw)
        if isinstance(default, float):
            return float(raw)
    except ValueError:
        raise ConfigError(f"{name} must be a number, got {raw!r}.") from None
    return raw


def _embedded_keys(instance: Path, database_url: str) -> dict[str, str]:
    """Keys for the embedded default, generated once into instance/keys.json (mode 600).

    Never generated for a database that already holds encrypted data: new keys would not open it."""
    path = instance / "keys.json"
    if path.exists():
        return json.loads(path.read_text())
    from backend.key_check import holds_encrypted_data

    if holds_encrypted_data(database_url):
        raise ConfigError(
            f"{path} is missing, and the database ({_shown(database_url)}) already holds phone numbers encrypted "
            "with the keys that were in it; new keys would not open them, so none are generated. Restore that "
            f"file from where it was saved with this database's backup (to {path}, mode 600), or set SECRET_KEY, "
            "PHONE_ENCRYPTION_KEY and PHONE_HASH_KEY in the environment to the keys saved with the database."
        )
    instance.mkdir(parents=True, exist_ok=True)
    keys = {
        "SECRET_KEY": secrets.token_urlsafe(32),
        "PHONE_ENCRYPTION_KEY": base64.urlsafe_b64encode(secrets.token_bytes(32)).decode(),
        "PHONE_HASH_KEY": secrets.token_urlsafe(32),
    }
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as handle:
        json.dump(keys, handle)
    return keys


def _shown(url: str) -> str:
    """A database URL fit for a message: a SQLite file's path, or the URL without its password."""
    from sqlalchemy.engine import make_url

    parsed = make_url(url)
    return (parsed.database or url) if parsed.get_backend_name() == "sqlite" else parsed.render_as_string()


def _refuse_another_database(database_url: str, migration_url: str) -> None:
    """The owner migrates the database the app uses, never another one (a typo would leave the app's unmigrated)."""
    from sqlalchemy.engine import make_url

    if migration_url and make_url(migration_url).database != make_url(database_url).database:
        raise ConfigError(
            f"MIGRATION_DATABASE_URL ({_shown(migration_url)}) and DATABASE_URL ({_shown(database_url)}) name "
            "different databases; the migrations must run on the database the app uses."
        )


# Fixed keys for the test environment: reproducible and never valid anywhere else.
_TEST_KEYS = {
    "SECRET_KEY": "test-secret-key-not-for-production",
    "PHONE_ENCRYPTION_KEY": base64.urlsafe_b64encode(b"t" * 32).decode(),
    "PHONE_HASH_KEY": "test-phone-hash-key",
}


# Never both: a keyword answered twice is one message too many for the participant and for the carrier.
KEYWORD_REPLIERS = ("twilio", "us")


def load_settings(environ: Mapping[str, str] | None = None, **overrides: Any) -> Settings:
    """Build Settings from the environment; refuse unsafe production values with a named reason."""
    env = dict(os.environ if environ is None else environ)
    env.update({k: str(v) for k, v in overrides.items() if not isinstance(v, (dict, list))})
    defaults = Settings()
    values: dict[str, Any] = {}
    for f in fields(Settings):
        if f.name == "extra":
            continue
        if f.name in env:
            values[f.name] = _coerce(f.name, env[f.name], getattr(defaults, f.name))
    app_env = values.get("APP_ENV", defaults.APP_ENV)
    if app_env not in ENVIRONMENTS:
        raise ConfigError(f"APP_ENV must be one of {', '.join(ENVIRONMENTS)}, got {app_env!r}.")
    keyword_replies = values.get("SMS_KEYWORD_REPLIES", defaults.SMS_KEYWORD_REPLIES)
    if keyword_replies not in KEYWORD_REPLIERS:
        raise ConfigError(f"SMS_KEYWORD_REPLIES must be one of {', '.join(KEYWORD_REPLIERS)}, got {keyword_replies!r}.")
    for name in ("STAFF_LOCKOUT_ATTEMPTS", "STAFF_LOCKOUT_MINUTES"):
        if values.get(name, getattr(defaults, name)) < 1:
            raise ConfigError(f"{name} must be at least 1, got {values[name]}.")
    instance = Path(values.get("INSTANCE_DIR", defaults.INSTANCE_DIR)).resolve()
    values["INSTANCE_DIR"] = str(instance)
    if app_env == "production":
        for name in _SECRET_NAMES:
            if (
                values.get(name, "").strip().lower() in _DEFAULT_SECRET_MARKERS
                or values.get(name) in _TEST_KEYS.values()
            ):
                raise ConfigError(
                    f"{name} is missing or a default value; set it in the environment before starting in production."
                )
        if not values.get("DATABASE_URL"):
            raise ConfigError("DATABASE_URL is missing; production needs an explicit database (PostgreSQL).")
        if values.get("SMS_BACKEND", "console") == "twilio" and not values.get("TWILIO_AUTH_TOKEN"):
            raise ConfigError("TWILIO_AUTH_TOKEN is missing; it is needed to send and to check webhook signatures.")
        values.setdefault("SESSION_COOKIE_SECURE", True)
    else:
        values.setdefault("DATABASE_URL", f"sqlite:///{instance / 'trial_companion.db'}")
        generated = _TEST_KEYS if app_env == "test" else None
        for name in _SECRET_NAMES:
            if not values.get(name):
                generated = generated or _embedded_keys(instance, values["DATABASE_URL"])
                values[name] = generated[name]
    if not values.get("DATABASE_URL"):
        values["DATABASE_URL"] = f"sqlite:///{instance / 'trial_companion.db'}"
    _refuse_another_database(values["DATABASE_URL"], values.get("MIGRATION_DATABASE_URL", ""))
    if not values.get("SCHEDULER_LOCK_FILE"):
        values["SCHEDULER_LOCK_FILE"] = str(instance / "scheduler.lock")
    extra = {k: v for k, v in overrides.items() if isinstance(v, (dict, list))}
    return Settings(**values, extra=extra)
