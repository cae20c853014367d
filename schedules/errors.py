"""Domain errors that carry the field they are about, so every edge can name it; they know nothing of HTTP."""

from __future__ import annotations


class DomainError(Exception):
    """Base: a request the domain refuses; `field` names the input at fault (or '')."""

    def __init__(self, message: str, *, field: str = ""):
        super().__init__(message)
        self.message = message
        self.field = field

    def __str__(self) -> str:
        return f"{self.field}: {self.message}" if self.field else self.message


class InvalidInput(DomainError):
    """A value that breaks a domain rule."""


class Conflict(DomainError):
    """A value that collides with existing data (duplicate study code, wrong state)."""


class NotFound(DomainError):
    """Something referred to that does not exist (or is not visible to the caller)."""


class NotPermitted(DomainError):
    """The caller is known but may not do this."""


class SignInRefused(DomainError):
    """Credentials (a code, a token, a password) that do not sign anyone in; `no_longer_allowed` if they once did."""

    def __init__(self, message: str, *, no_longer_allowed: bool = False):
        super().__init__(message)
        self.no_longer_allowed = no_longer_allowed


class TooManyAttempts(DomainError):
    """Refused for now because of what came before (too many wrong tries); worth trying again after `retry_after` s."""

    def __init__(self, message: str, *, retry_after: int):
        super().__init__(message)
        self.retry_after = retry_after
