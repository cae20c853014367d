"""Who makes a change from the CLI, and why: `--as EMAIL` names a staff account allowed to make it, `--reason` says why.

Shell access to the server is not an identity: a change to the trial's data from the CLI is attributed to the
staff member the operator acts for, checked with the API's role rules (backend/identity/principal.py), and
written to the audit trail as `cli:staff:<id>` with the reason."""

from __future__ import annotations

import os
import sys
from dataclasses import dataclass
from typing import Sequence

import click
from sqlmodel import Session, func, select

from backend.identity.principal import Principal
from backend.identity.staff import normalize_email
from backend.models import Role, Staff
from schedules.changes import Actor
from schedules.models import Site

# Exit statuses: a missing or bad argument (as every CLI error), and an account that may not make this change.
USAGE, REFUSED = 2, 3
REASON_MAX = 500  # as the API's reasons
ADMINS = (Role.ADMIN.value,)


def fail(message: str, code: int = USAGE):
    """Exit non-zero with one sentence on stderr."""
    click.echo(f"Error: {message}", err=True)
    sys.exit(code)


@dataclass(frozen=True)
class CliCaller:
    """The staff member a CLI change is made for (None while the first admin is bootstrapped) and the reason."""

    staff: Principal | None
    email: str
    reason: str

    @property
    def actor(self) -> Actor:
        """The audit actor: the staff account through the CLI, or the OS user who bootstrapped the first admin."""
        if self.staff is None:
            return Actor("cli", f"bootstrap:{os.environ.get('USER', 'operator')}")
        return Actor("cli", f"staff:{self.staff.id}")

    def check_site(self, session: Session, site: Site, doing: str) -> None:
        """Exit REFUSED unless the account works at `site` (admins: every site), as the API scopes staff."""
        if self.staff is not None and not self.staff.can_see_site(site.id):
            own = session.get(Site, self.staff.site_id)
            fail(
                f"--as: {self.email} works at site {own.code if own else '?'}, not {site.code}; {doing} there "
                "needs staff of that site or an admin.",
                REFUSED,
            )


def attribution_options(command):
    """Add --as EMAIL and --reason TEXT to a CLI command that changes the trial's data."""
    command = click.option(
        "--reason", metavar="TEXT", default=None, help="Why: written to the audit trail with the change (required)."
    )(command)
    return click.option(
        "--as",
        "as_email",
        metavar="EMAIL",
        default=None,
        help="The staff account this change is made for (required; active, and allowed to make it).",
    )(command)


def _roles_text(roles: Sequence[str]) -> str:
    names = [f"an {r}" if r[0] in "aeiou" else f"a {r}" for r in roles]
    return names[0] if len(names) == 1 else ", ".join(names[:-1]) + " or " + names[-1]


def caller_for(
    session: Session,
    as_email: str | None,
    reason: str | None,
    *,
    roles: Sequence[str],
    doing: str,
    bootstrap: bool = False,
) -> CliCaller:
    """The checked caller of a change (who, then why), or exit with one sentence: USAGE for a missing --as or
    --reason or an unknown account, REFUSED for a deactivated one or a role that may not do this. With
    `bootstrap`, no --as is needed while no staff account exists at all (creating the first admin)."""
    staff = _staff_named(session, as_email, roles=roles, doing=doing, bootstrap=bootstrap)
    reason = (reason or "").strip()
    if not reason:
        fail(f"--reason: say why you are {doing} (--reason TEXT); it is written to the audit trail with the change.")
    if len(reason) > REASON_MAX:
        fail(f"--reason: at most {REASON_MAX} characters.")
    if staff is None:
        return CliCaller(None, "", reason)
    return CliCaller(Principal("staff", staff.id, staff.role, staff.site_id), staff.email, reason)


def _staff_named(session: Session, as_email: str | None, *, roles: Sequence[str], doing: str, bootstrap: bool):
    """The active staff account --as names, allowed to do this; None for the bootstrap of the first account."""
    if not as_email:
        if bootstrap and session.scalar(select(func.count()).select_from(Staff)) == 0:
            return None
        fail(
            f"--as: name the staff account you are {doing} for (--as EMAIL); "
            "a change from the CLI is recorded as that person's."
        )
    email = normalize_email(as_email)
    staff = session.exec(select(Staff).where(Staff.email == email)).first()
    if staff is None:
        fail(f"--as: there is no staff account {email}.")
    if not staff.active:
        fail(f"--as: the staff account {email} is deactivated.", REFUSED)
    if staff.role not in roles:
        fail(f"--as: {email} is {_roles_text([staff.role])}; {doing} needs {_roles_text(roles)}.", REFUSED)
    return staff
