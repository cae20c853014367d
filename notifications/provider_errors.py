"""What Twilio's error codes and HTTP answers mean for us: retry, stop messaging, or ask a nurse to fix the number."""

from __future__ import annotations

# Twilio: "Attempt to send to unsubscribed recipient" (the number replied STOP to the carrier).
UNSUBSCRIBED = 21610
# The number itself is wrong or cannot take SMS: a nurse must correct it, so the alert is high priority.
INVALID_NUMBER_CODES = frozenset(
    {21211, 21214, 21217, 21401, 21407, 21408, 21421, 21612, 21614, 30003, 30004, 30005, 30006}
)


def is_unsubscribed(code: int | None) -> bool:
    """True when the provider refuses or fails a message because the recipient unsubscribed."""
    return code == UNSUBSCRIBED


def is_invalid_number(code: int | None) -> bool:
    """True when the code says the phone number is wrong or cannot receive SMS (a contact problem to fix)."""
    return code in INVALID_NUMBER_CODES


def is_retryable_http(status: int) -> bool:
    """True for 429/5xx refusals ('not now'): the provider did not take the message, so a retry cannot duplicate it."""
    return status == 429 or status >= 500
