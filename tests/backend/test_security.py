"""Passwords and tokens: argon2id, a real policy, random tokens stored only as hashes."""

from __future__ import annotations

import pytest

from backend.identity.security import (
    WeakPassword,
    check_password_policy,
    hash_password,
    new_token,
    token_digest,
    verify_password,
)


@pytest.mark.parametrize("password", ["short-1A", "password1234", "qwertyuiop123", "123456789012"])
def test_weak_passwords_are_refused(password):
    with pytest.raises(WeakPassword):
        check_password_policy(password)


def test_good_passphrase_is_accepted_and_hashed_with_argon2id():
    check_password_policy("violet-Harbour-kettle-93")
    stored = hash_password("violet-Harbour-kettle-93")
    assert stored.startswith("$argon2id$v=19$m=19456,t=2,p=1$")
    assert verify_password(stored, "violet-Harbour-kettle-93")
    assert not verify_password(stored, "violet-harbour-kettle-93")
    assert not verify_password("not-a-hash", "anything")


def test_tokens_are_at_least_128_bits_and_stored_as_sha256():
    token = new_token()
    assert len(token) >= 43  # 32 random bytes, url-safe base64
    assert token_digest(token) != token and len(token_digest(token)) == 64
    assert new_token() != token
