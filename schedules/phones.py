"""Phone numbers as personal data: E.164 validation, encryption at rest, keyed lookup hash."""

from __future__ import annotations

import base64
import hashlib
import hmac

import phonenumbers
from cryptography.fernet import Fernet, InvalidToken, MultiFernet


class InvalidPhone(ValueError):
    """A phone number that is not a valid E.164 mobile number."""


def normalize_e164(raw: str) -> str:
    """Return the E.164 form of `raw` (which must start with +country code) or raise InvalidPhone."""
    text = (raw or "").strip()
    if not text.startswith("+"):
        raise InvalidPhone("phone must be in E.164 form, starting with + and the country code")
    try:
        number = phonenumbers.parse(text, None)
    except phonenumbers.NumberParseException as exc:
        raise InvalidPhone(f"phone is not a number: {exc}") from None
    if not phonenumbers.is_valid_number(number):
        raise InvalidPhone("phone is not a valid number for its country")
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)


def region_of(e164: str) -> str | None:
    """The ISO 3166 region of a number (CN, US, ...), or None when the number does not say."""
    try:
        return phonenumbers.region_code_for_number(phonenumbers.parse(e164, None))
    except phonenumbers.NumberParseException:
        return None


def mask_e164(e164: str) -> str:
    """Country code and last four digits (+86…5678): enough to tell colleagues' phones apart, not to dial one."""
    try:
        country = f"+{phonenumbers.parse(e164, None).country_code}"
    except phonenumbers.NumberParseException:
        country = ""
    return f"{country}\u2026{e164[-4:]}"


class PhoneVault:
    """Encrypts phone numbers (Fernet, rotatable) and derives a keyed hash for lookups."""

    def __init__(self, *, encryption_keys: list[str], hash_key: str):
        if not encryption_keys:
            raise ValueError("at least one phone encryption key is required")
        self._fernet = MultiFernet([Fernet(_as_fernet_key(k)) for k in encryption_keys])
        self._hash_key = hash_key.encode()

    def encrypt(self, e164: str) -> str:
        """Ciphertext of an E.164 number, safe to store."""
        return self._fernet.encrypt(e164.encode()).decode()

    def decrypt(self, token: str) -> str:
        """The E.164 number behind a ciphertext; ValueError if the key does not match."""
        try:
            return self._fernet.decrypt(token.encode()).decode()
        except InvalidToken:
            raise ValueError("phone ciphertext does not match the configured key") from None

    def lookup_hash(self, e164: str) -> str:
        """Keyed hash (HMAC-SHA256) of an E.164 number: equal numbers give equal hashes, nothing else leaks."""
        return hmac.new(self._hash_key, e164.encode(), hashlib.sha256).hexdigest()


def _as_fernet_key(key: str) -> bytes:
    """Accept a Fernet key, or any other string, stretched to one deterministically."""
    raw = key.encode()
    try:
        if len(base64.urlsafe_b64decode(raw)) == 32:
            return raw
    except (ValueError, TypeError):
        pass
    return base64.urlsafe_b64encode(hashlib.sha256(raw).digest())
