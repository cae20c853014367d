"""Tables of the participant app: activation codes, device tokens, idempotency records."""

from __future__ import annotations
