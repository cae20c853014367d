"""Passwords (argon2id), random tokens stored hashed, and the password policy."""

from __future__ import annotations

import hashlib
import hmac
import secrets

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

MIN_PASSWORD_LENGTH = 12

# OWASP Password Storage Cheat Sheet: argon2id, m=19 MiB, t=2, p=1.
_hasher = PasswordHasher(time_cost=2, memory_cost=19 * 1024, parallelism=1, hash_len=32, salt_len=16)


class WeakPassword(ValueError):
    """A password the policy refuses; the message says why."""


def check_password_policy(password: str, *, user_inputs: tuple[str, ...] = ()) -> None:
    """Raise WeakPassword if too short or common/guessable (zxcvbn's frequency lists)."""
    if len(password) < MIN_PASSWORD_LENGTH:
        raise WeakPassword(f"password must be at least {MIN_PASSWORD_LENGTH} characters")
    # Imported here: its word lists take ~12 MB, and only password changes need them.
    from zxcvbn import zxcvbn

    result = zxcvbn(password[:100], user_inputs=list(user_inputs))
    common = any(
        m.get("dictionary_name") == "passwords" and m.get("token", "").lower() == password.lower()
        for m in result["sequence"]
    )
    if common or result["score"] < 3:
        raise WeakPassword("password is too common or easy to guess; use a longer phrase")


def hash_password(password: str) -> str:
    """argon2id hash of the password."""
    return _hasher.hash(password)


def verify_password(stored_hash: str, password: str) -> bool:
    """True if password matches; constant-time, never raises on a bad hash."""
    try:
        return _hasher.verify(stored_hash, password)
    except (VerifyMismatchError, VerificationError, InvalidHashError):
        return False


def new_token() -> str:
    """A 256-bit random URL-safe token."""
    return secrets.token_urlsafe(32)


def token_digest(token: str) -> str:
    """SHA-256 of a token: what we store (tokens are random, so no salt or slow hash is needed)."""
    return hashlib.sha256(token.encode()).hexdigest()


def same_digest(a: str, b: str) -> bool:
    """Constant-time comparison of two digests."""
    return hmac.compare_digest(a, b)
