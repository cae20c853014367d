"""How one value of a declared type is written as text (CSV cells, ODM ItemData): ISO 8601, UTC with Z."""

from __future__ import annotations

from datetime import date, datetime, timezone
from decimal import Decimal


def text_of(value) -> str:
    """The value as text; None is empty."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, datetime):
        return value.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, Decimal):
        return format(value.normalize(), "f") if value == value.to_integral() else str(value)
    return str(value)
