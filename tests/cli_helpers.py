"""The operator CLI as tests drive it: the first admin made as an operator makes it, changes made --as a person."""

from __future__ import annotations

from tests.factories import PROTOCOL_FILE, STRONG_PASSWORD

ADMIN = "admin@example.org"
# What every changing command of the tests carries: the staff account it is done for, and why.
AS_ADMIN = ["--as", ADMIN, "--reason", "set up for the test"]


def as_staff(email: str, reason: str = "set up for the test") -> list[str]:
    """--as EMAIL --reason TEXT."""
    return ["--as", email, "--reason", reason]


def bootstrap_admin(cli) -> None:
    """The very first staff account, an admin, made without --as (there is nobody yet to act for)."""
    made = cli.invoke(
        args=["staff", "create", "--email", ADMIN, "--role", "admin", "--reason", "first admin of the trial"],
        env={"STAFF_PASSWORD": STRONG_PASSWORD},
    )
    assert made.exit_code == 0, made.output


def load_trial(cli, *, on_call: tuple[str, ...] = ()) -> None:
    """The first admin, the shipped protocol and site PKUPH (Asia/Shanghai), all through the CLI."""
    bootstrap_admin(cli)
    loaded = cli.invoke(args=["protocol", "load", str(PROTOCOL_FILE), *AS_ADMIN])
    assert loaded.exit_code == 0, loaded.output
    numbers = [arg for number in on_call for arg in ("--on-call", number)]
    site = ["sites", "create", "--code", "PKUPH", "--name", "PKU People's", "--tz", "Asia/Shanghai", *numbers]
    made = cli.invoke(args=[*site, *AS_ADMIN])
    assert made.exit_code == 0, made.output
