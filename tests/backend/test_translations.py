"""The nurse pages in zh-CN and en: every marked string translated, the compiled catalogue current, and each
staff member reading their own language (their choice, else their site's)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from babel.messages.extract import extract_from_dir
from babel.messages.pofile import read_po
from babel.support import Translations
from sqlmodel import select

from backend.identity.staff import create_staff
from backend.models import AuditEntry, Staff
from backend.web.i18n import BABEL_LOCALES, TRANSLATIONS
from tests.backend.test_pages import sign_in
from tests.factories import STRONG_PASSWORD, make_site

ROOT = Path(__file__).resolve().parents[2]
CATALOGUE = TRANSLATIONS / BABEL_LOCALES["zh-CN"] / "LC_MESSAGES" / "messages.po"
METHODS = [("backend/web/**.py", "python"), ("backend/web/templates/**.html", "jinja2")]
KEYWORDS = {"_": None, "gettext": None, "ngettext": (1, 2), "_l": None, "lazy_gettext": None}


def _marked() -> set[str]:
    """Every msgid the code marks for translation (as `make translations` extracts them)."""
    found = set()
    for _, _, message, _, _ in extract_from_dir(ROOT, method_map=METHODS, keywords=KEYWORDS):
        found.add(message[0] if isinstance(message, tuple) else message)
    return found


def test_every_marked_string_has_a_chinese_translation():
    catalogue = read_po(CATALOGUE.open("rb"))
    translated = {
        (m.id[0] if isinstance(m.id, tuple) else m.id): m
        for m in catalogue
        if m.id and not m.fuzzy and all(m.string if isinstance(m.string, tuple) else [m.string])
    }
    missing = sorted(_marked() - set(translated))
    assert not missing, f"untranslated (run `make translations` and translate in {CATALOGUE.name}): {missing}"


def test_the_compiled_catalogue_is_the_current_one():
    catalogue = read_po(CATALOGUE.open("rb"))
    compiled = Translations.load(str(TRANSLATIONS), [BABEL_LOCALES["zh-CN"]])
    for message in catalogue:
        if not message.id:
            continue
        if isinstance(message.id, tuple):
            assert compiled.ngettext(*message.id, 1) == message.string[0], message.id
        else:
            assert compiled.gettext(message.id) == message.string, f"{message.id!r}: run `make translations`"


@pytest.fixture
def staff(session):
    beijing = make_site(session, code="PKUPH")
    beijing.language = "zh-CN"
    berlin = make_site(session, code="BERLIN", time_zone="Europe/Berlin")
    create_staff(session, email="li@example.org", password=STRONG_PASSWORD, role="nurse", site=beijing)
    create_staff(session, email="anna@example.org", password=STRONG_PASSWORD, role="nurse", site=berlin)
    session.commit()


def _nav(html: str) -> list[str]:
    nav = re.search(r'<nav aria-label="[^"]+">(.*?)</nav>', html, re.S).group(1)
    return [re.sub(r"<[^>]+>", "", link).strip() for link in re.findall(r"<a [^>]*>.*?</a>", nav)]


def test_a_beijing_nurse_reads_chinese_and_a_berlin_nurse_english(app, staff):
    li, anna = app.test_client(), app.test_client()
    sign_in(li, "li@example.org")
    sign_in(anna, "anna@example.org")
    page = li.get("/alerts").text
    assert '<html lang="zh-CN">' in page
    assert _nav(page)[:3] == ["受试者", "提醒队列", "研究报告"]
    assert _nav(anna.get("/alerts").text)[:3] == ["Participants", "Alert queue", "Study report"]


def test_the_language_switch_is_kept_on_the_account_and_audited(app, session, staff):
    li = app.test_client()
    sign_in(li, "li@example.org")
    page = li.get("/alerts").text
    token = re.search(r'name="language-csrf_token" type="hidden" value="([^"]+)"', page).group(1)
    answer = li.post(
        "/language", data={"language-csrf_token": token, "language-language": "en", "language-next": "/alerts"}
    )
    assert answer.status_code == 303 and answer.headers["Location"] == "/alerts"
    assert _nav(li.get("/alerts").text)[0] == "Participants"
    again = app.test_client()  # another browser, the same account
    sign_in(again, "li@example.org")
    assert _nav(again.get("/alerts").text)[0] == "Participants"
    session.expire_all()
    account = session.exec(select(Staff).where(Staff.email == "li@example.org")).one()
    change = session.exec(select(AuditEntry).where(AuditEntry.entity == "staff", AuditEntry.field == "language")).one()
    assert (account.language, change.new_value, change.reason) == ("en", "en", "pages in en")


def test_the_login_page_follows_the_browser_until_someone_chooses(client, staff):
    assert "登录" in client.get("/login", headers={"Accept-Language": "zh-CN,zh;q=0.9"}).text
    assert "<h1>Sign in</h1>" in client.get("/login", headers={"Accept-Language": "en-GB"}).text
    assert "<h1>Sign in</h1>" in client.get("/login?lang=en", headers={"Accept-Language": "zh-CN"}).text
    # The choice stays for the session.
    assert "<h1>Sign in</h1>" in client.get("/login", headers={"Accept-Language": "zh-CN"}).text


def test_a_wrong_password_is_told_in_the_readers_language(client, staff):
    client.get("/login?lang=zh-CN")
    answer = sign_in(client, "li@example.org", password="wrong-password-123")
    assert answer.status_code == 401 and "电子邮箱或密码错误。" in answer.text
