"""Sites: creation and their on-call numbers (encrypted at rest like every phone number)."""

from __future__ import annotations

import json

from sqlmodel import Session, select

from schedules.calendar import is_valid_zone
from schedules.changes import Actor, acting
from schedules.errors import Conflict, InvalidInput, NotFound
from schedules.models import Site
from schedules.phones import InvalidPhone, PhoneVault, normalize_e164
from schedules.protocol import SUPPORTED_LANGUAGES


def _numbers(raw: list[str], field: str) -> list[str]:
    try:
        return [normalize_e164(n) for n in raw]
    except InvalidPhone as exc:
        raise InvalidInput(str(exc), field=field) from None


def create_site(
    session: Session,
    *,
    code: str,
    name: str,
    time_zone: str,
    vault: PhoneVault,
    actor: Actor,
    on_call: list[str] = (),
    phone: str = "",
    language: str = "en",
    reason: str = "site created",
) -> Site:
    """Create a site; the time zone must be IANA, on-call numbers E.164, the staff's language a supported one."""
    code = (code or "").strip()
    if not code:
        raise InvalidInput("site code is required", field="code")
    if not is_valid_zone(time_zone):
        raise InvalidInput(f"{time_zone!r} is not an IANA time zone", field="tz")
    if session.exec(select(Site).where(Site.code == code)).first() is not None:
        raise Conflict(f"site {code!r} already exists", field="code")
    if language not in SUPPORTED_LANGUAGES:
        raise InvalidInput(f"language must be one of {', '.join(SUPPORTED_LANGUAGES)}", field="lang")
    site = Site(
        code=code,
        name=name,
        time_zone=time_zone,
        phone=_numbers([phone], "phone")[0] if phone else "",
        language=language,
    )
    set_on_call(site, _numbers(list(on_call), "on_call"), vault)
    with acting(session, actor, reason):
        session.add(site)
    return site


def set_on_call(site: Site, numbers: list[str], vault: PhoneVault) -> None:
    """Store the on-call numbers encrypted as one list."""
    site.on_call_ciphertext = vault.encrypt(json.dumps(numbers)) if numbers else ""


def on_call_numbers(site: Site, vault: PhoneVault) -> list[str]:
    """The site's on-call numbers in E.164."""
    return json.loads(vault.decrypt(site.on_call_ciphertext)) if site.on_call_ciphertext else []


def get_site(session: Session, code: str) -> Site:
    """The site with this code, or NotFound."""
    site = session.exec(select(Site).where(Site.code == code)).first()
    if site is None:
        raise NotFound(f"no site {code!r}", field="site")
    return site
