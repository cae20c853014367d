"""The participant app on a phone (390 x 844) in Debian's chromium: a nurse gives a code with its QR link, the
participant activates, reports a dose with its site, goes offline, rates the VAS on the line by dragging and by
keyboard, closes and reopens the app, comes back online, and every report is stored exactly once. A serious
adverse event shows the call screen and pages on-call; Chinese renders; every request the app made is an
operation of /api/openapi.json. Screenshots of each screen go to artifacts/screenshots/app-*.png."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
from sqlmodel import select

from backend.db import get_database
from backend.runtime.demo import DEMO_PASSWORD
from notifications.models import OutboundMessage
from notifications.pages import page_prefix
from schedules.models import AdverseEvent, Alert, Dose, Participant, Site, VasScore
from tests.browser.conftest import chinese_width, require_cjk_font, sign_in
from tests.browser.test_page_checks import _axe_violations
from tests.factories import auth, make_staff_token

pytestmark = pytest.mark.browser

PHONE = {"width": 390, "height": 844}
SCREENS = ("today", "calendar", "vas", "ae", "messages", "settings")
NAV_NAMES = {
    "today": "Today",
    "calendar": "Calendar",
    "vas": "How active",
    "ae": "Side effect",
    "messages": "Messages",
    "settings": "Settings",
}


def _participant(live_app, code: str) -> Participant:
    with get_database(live_app).session() as session:
        return session.exec(select(Participant).where(Participant.study_code == code)).one()


def _nurse_gives_a_code(browser, live_server, participant_id: int) -> str:
    """The nurse signs in, opens the participant page and creates an app code; returns the QR code's address."""
    from playwright.sync_api import expect

    context = browser.new_context(base_url=live_server, viewport={"width": 1280, "height": 900}, locale="en-GB")
    try:
        page = context.new_page()
        sign_in(page, "nurse@demo.local", DEMO_PASSWORD)
        page.wait_for_url(lambda url: "/login" not in url)
        page.goto(f"/participants/{participant_id}")
        page.get_by_role("button", name="Create app code").click()
        expect(page.locator("#app-qr")).to_be_visible()
        assert page.locator("#app-qr").evaluate("img => img.naturalWidth") > 0  # the QR code's SVG drew
        return page.locator("#app-link").inner_text()
    finally:
        context.close()


def _on_this_server(link: str) -> str:
    """The QR code's address (on PUBLIC_BASE_URL) as a path of the live test server."""
    from urllib.parse import urlsplit

    parts = urlsplit(link)
    return f"{parts.path}#{parts.fragment}"


@pytest.fixture
def phone(browser, live_server):
    """A phone-sized browser context, and every API request the app makes in it."""
    context = browser.new_context(
        base_url=live_server, viewport=PHONE, device_scale_factor=2, is_mobile=True, locale="en-GB"
    )
    context.set_default_timeout(10_000)
    requests: list[tuple[str, str]] = []
    errors: list[str] = []
    context.on("request", lambda r: requests.append((r.method, r.url)) if "/api/" in r.url else None)
    context.on("weberror", lambda e: errors.append(str(e.error)))
    try:
        yield context, requests, errors
    finally:
        context.close()


def _open(context, path: str):
    page = context.new_page()
    page.on("console", lambda m: print("console:", m.type, m.text) if m.type in ("error", "warning") else None)
    page.goto(path)
    return page


def _operations(live_server) -> list[tuple[str, re.Pattern]]:
    """Every (method, path pattern) of the OpenAPI document."""
    import json
    import urllib.request

    with urllib.request.urlopen(live_server + "/api/openapi.json") as response:
        document = json.load(response)
    out = []
    for path, item in document["paths"].items():
        pattern = re.compile("^" + re.sub(r"\\\{[^}]+\\\}", "[^/]+", re.escape(path)) + "$")
        out += [(method.upper(), pattern) for method in item if method in ("get", "post", "patch", "put", "delete")]
    return out


def _undocumented(requests, live_server) -> list[str]:
    from urllib.parse import urlsplit

    operations = _operations(live_server)
    missing = []
    for method, url in requests:
        path = urlsplit(url).path
        if path == "/api/openapi.json":
            continue
        if not any(m == method and pattern.match(path) for m, pattern in operations):
            missing.append(f"{method} {path}")
    return missing


def _drag(page, selector: str, start: float, end: float) -> None:
    box = page.locator(selector).bounding_box()
    y = box["y"] + box["height"] / 2
    page.mouse.move(box["x"] + box["width"] * start, y)
    page.mouse.down()
    for step in range(1, 6):
        page.mouse.move(box["x"] + box["width"] * (start + (end - start) * step / 5), y)
    page.mouse.up()


def test_activate_report_go_offline_rate_reopen_and_each_report_is_stored_once(
    browser, live_server, live_app, phone, screenshot_dir
):
    from playwright.sync_api import expect

    context, requests, errors = phone
    participant = _participant(live_app, "P-005")  # IL-2, English, today is a dose day
    link = _nurse_gives_a_code(browser, live_server, participant.id)
    assert "/app/#code=" in link

    page = _open(context, _on_this_server(link))
    expect(page.get_by_role("heading", name="Connect this phone")).to_be_visible()
    assert page.get_by_label("Activation code").input_value() == link.split("#code=")[1]
    page.screenshot(path=screenshot_dir / "app-activate.png")
    page.get_by_role("button", name="Connect").click()

    # Today: the open dose, the body map with the suggested site, and the two answers.
    expect(page.get_by_role("heading", name="Today")).to_be_visible()
    expect(page.get_by_text("Suggested today:")).to_be_visible()
    page.locator("svg.body-map g[data-site='thigh_left']").click()
    expect(page.get_by_role("radio", name=re.compile("Left thigh"))).to_be_checked()
    page.screenshot(path=screenshot_dir / "app-today-site.png", full_page=True)
    page.get_by_role("button", name="I injected").click()
    expect(page.get_by_text("Thank you, your report was sent.")).to_be_visible()
    expect(page.get_by_text("Site: Left thigh.")).to_be_visible()

    # Offline: two VAS marks, one dragged and nudged by keyboard, one by keyboard alone.
    context.set_offline(True)
    page.get_by_role("link", name="How active").click()
    expect(page.get_by_role("heading", name="How active is your disease?")).to_be_visible()
    expect(page.get_by_text("No connection.")).to_be_visible()
    slider = page.get_by_role("slider", name="Disease activity over the past week")
    assert slider.get_attribute("aria-valuetext") == "no mark yet"
    expect(page.get_by_text("Not active", exact=True)).to_be_visible()
    expect(page.get_by_text("Extremely active", exact=True)).to_be_visible()
    width_mm = page.locator(".vas-track").evaluate("el => el.getBoundingClientRect().width / (96 / 25.4)")
    assert 90 <= width_mm <= 100.5  # 100 mm, clamped to the 390 px screen less its margins
    _drag(page, ".vas-track", 0.2, 0.6)
    dragged = float(slider.get_attribute("aria-valuenow"))
    assert 5.5 <= dragged <= 6.5
    for key in ("ArrowRight", "ArrowRight", "ArrowLeft", "PageUp"):
        page.keyboard.press(key)
    first = round(dragged + 1.1, 1)
    assert float(slider.get_attribute("aria-valuenow")) == first
    assert slider.get_attribute("aria-valuetext").startswith(f"{first:.1f} on a line from 0, Not active")
    assert not re.search(r"\d", page.locator(".vas").inner_text())  # no number on the line while rating
    page.screenshot(path=screenshot_dir / "app-vas.png", full_page=True)
    page.get_by_role("button", name="Send").click()
    expect(page.get_by_text(f"Saved on this phone: {first:.1f}.")).to_be_visible()
    expect(page.get_by_text("1 report(s) waiting to send")).to_be_visible()

    page.get_by_role("button", name="Rate again").click()
    slider = page.get_by_role("slider", name="Disease activity over the past week")
    slider.focus()
    for key in ["Home", "PageUp", "PageUp", "PageUp", "PageUp", *["ArrowRight"] * 5]:
        page.keyboard.press(key)
    page.get_by_role("button", name="Send").click()
    expect(page.get_by_text("Saved on this phone: 4.5.")).to_be_visible()
    expect(page.get_by_text("2 report(s) waiting to send")).to_be_visible()

    # The app is closed and opened again, still offline: the reports wait on the phone.
    page.close()
    page = _open(context, "/app/#vas")
    expect(page.get_by_text("2 report(s) waiting to send")).to_be_visible()
    expect(page.get_by_text(f"{first:.1f} — Waiting to send")).to_be_visible()
    with get_database(live_app).session() as session:
        assert (
            session.exec(
                select(VasScore).where(VasScore.participant_id == participant.id, VasScore.source == "app")
            ).all()
            == []
        )

    # Online again: both are sent, once each.
    context.set_offline(False)
    expect(page.locator("#status")).to_be_hidden()
    page.reload()
    expect(page.get_by_role("heading", name="How active is your disease?")).to_be_visible()
    page.wait_for_timeout(500)
    with get_database(live_app).session() as session:
        scores = session.exec(
            select(VasScore)
            .where(VasScore.participant_id == participant.id, VasScore.source == "app")
            .order_by(VasScore.id)
        ).all()
        assert [(float(s.value), s.mode) for s in scores] == [(first, "vas_line"), (4.5, "vas_line")]
        doses = session.exec(
            select(Dose).where(Dose.participant_id == participant.id, Dose.injection_site.is_not(None))
        ).all()
        assert [(d.state, d.injection_site) for d in doses] == [("taken", "thigh_left")]

    # Read back: the history shows what the server recorded.
    expect(page.get_by_text(re.compile(rf"{first:.1f} \(on the line\)"))).to_be_visible()

    for screen in SCREENS:
        page.get_by_role(
            "link",
            name={
                "today": "Today",
                "calendar": "Calendar",
                "vas": "How active",
                "ae": "Side effect",
                "messages": "Messages",
                "settings": "Settings",
            }[screen],
        ).click()
        expect(page.locator("main h1")).to_be_visible()
        page.screenshot(path=screenshot_dir / f"app-{screen}.png", full_page=True)

    assert errors == []
    assert _undocumented(requests, live_server) == []
    assert {m for m, _ in requests} >= {"GET", "POST"}


def test_a_serious_adverse_event_shows_the_call_screen_and_pages_on_call(
    browser, live_server, live_app, phone, screenshot_dir
):
    from playwright.sync_api import expect

    context, requests, errors = phone
    participant = _participant(live_app, "P-002")
    page = _open(context, _on_this_server(_nurse_gives_a_code(browser, live_server, participant.id)))
    page.get_by_role("button", name="Connect").click()
    expect(page.get_by_role("heading", name="今天")).to_be_visible()  # P-002 reads Chinese
    page.get_by_role("link", name="设置").click()
    page.get_by_label("语言").select_option("en")
    page.get_by_role("button", name="保存").click()
    expect(page.get_by_role("heading", name="Settings")).to_be_visible()
    expect(page.get_by_text("Saved. Your reminders follow the new settings.")).to_be_visible()

    page.get_by_role("link", name="Side effect").click()
    page.get_by_label("What is it?").select_option("fever")
    page.get_by_label("Describe it in your own words").fill("high fever since last night")
    page.get_by_role("radio", name=re.compile("^Severe")).check()
    page.locator("#went_to_hospital-yes").check()
    page.get_by_role("button", name="Send report").click()
    dialog = page.get_by_role("dialog", name="Call your study site now")
    expect(dialog).to_be_visible()
    expect(dialog.get_by_role("link", name="Call the study site: +861088325555")).to_have_attribute(
        "href", "tel:+861088325555"
    )
    expect(dialog.get_by_role("link", name="Call emergency: 120")).to_have_attribute("href", "tel:120")
    page.screenshot(path=screenshot_dir / "app-call-screen.png")
    expect(page.get_by_text("Thank you. A nurse will review your report.")).to_be_attached()
    with get_database(live_app).session() as session:
        ae = session.exec(
            select(AdverseEvent).where(AdverseEvent.participant_id == participant.id, AdverseEvent.source == "app")
        ).one()
        assert ae.suspected_serious and ae.went_to_hospital and ae.term == "fever"
        alert = session.exec(select(Alert).where(Alert.ref_type == "adverse_event", Alert.ref_id == ae.id)).one()
        assert alert.kind == "serious_ae" and alert.deadline_at is not None
        pages = session.exec(
            select(OutboundMessage).where(OutboundMessage.dedupe_key.startswith(page_prefix(ae.id)))
        ).all()
        # The demo site's on-call phone is paged, as for an SMS report.
        assert [(m.purpose, m.participant_id) for m in pages] == [("staff_alert", None)]
    dialog.get_by_role("button", name="I have called / close").click()
    expect(dialog).to_be_hidden()
    assert errors == []
    assert _undocumented(requests, live_server) == []


def test_a_phone_signed_out_by_a_nurse_asks_for_a_new_code(browser, live_server, live_app, phone):
    from playwright.sync_api import expect

    context, requests, errors = phone
    participant = _participant(live_app, "P-001")
    page = _open(context, _on_this_server(_nurse_gives_a_code(browser, live_server, participant.id)))
    page.get_by_role("button", name="Connect").click()  # the phone's language until the app knows theirs
    expect(page.get_by_role("heading", name="今天")).to_be_visible()
    with get_database(live_app).session() as session:
        site = session.exec(select(Site).where(Site.code == "PKUPH")).one()
        nurse = make_staff_token(session, role="nurse", site=site, email="revoker@demo.local", ttl=timedelta(days=1))
        session.commit()
    revoked = live_app.test_client().post(
        f"/api/v1/participants/{participant.id}/devices/revoke", json={"reason": "phone lost"}, headers=auth(nurse)
    )
    assert revoked.status_code == 200 and revoked.get_json()["devices_revoked"] >= 1
    page.reload()
    expect(page.get_by_text("本手机已退出登录。请向您的护士索取新的激活码。")).to_be_visible()
    expect(page.get_by_role("heading", name="连接本手机")).to_be_visible()
    assert errors == []
    assert _undocumented(requests, live_server) == []


def test_every_screen_in_both_languages_has_no_axe_violation(browser, live_server, live_app, phone):
    from playwright.sync_api import expect

    context, _, _ = phone
    participant = _participant(live_app, "P-003")  # English, missed doses, an adverse event
    page = _open(context, "/app/")
    expect(page.get_by_role("heading", name="Connect this phone")).to_be_visible()
    violations = {"activate": _axe_violations(page)}
    page.goto(_on_this_server(_nurse_gives_a_code(browser, live_server, participant.id)))
    page.get_by_role("button", name="Connect").click()
    expect(page.get_by_role("heading", name="Today")).to_be_visible()
    for language, names in (("en", ("Settings", "Language", "Save")), ("zh-CN", ("设置", "语言", "保存"))):
        for screen in SCREENS:
            page.goto(f"/app/#{screen}")
            expect(page.locator(f"main[data-screen='{screen}'] h1")).to_be_visible()
            violations[f"{language} {screen}"] = _axe_violations(page)
        page.goto("/app/#settings")
        page.get_by_label(names[1]).select_option("zh-CN" if language == "en" else "en")
        page.get_by_role("button", name=names[2]).click()
        expect(page.locator("main[data-screen='settings'] .notice")).to_be_visible()
    page.goto("/app/#today")
    expect(page.locator("main[data-screen='today'] h1")).to_be_visible()
    page.evaluate("() => window.trialCompanion.showCall()")
    violations["call screen"] = _axe_violations(page)
    assert {name: found for name, found in violations.items() if found} == {}


def test_chinese_renders_as_glyphs_on_the_vas_screen(browser, live_server, live_app, phone):
    from playwright.sync_api import expect

    require_cjk_font()
    context, _, _ = phone
    participant = _participant(live_app, "P-004")  # Chinese, control arm: no doses, the VAS all the same
    page = _open(context, _on_this_server(_nurse_gives_a_code(browser, live_server, participant.id)))
    page.get_by_role("button", name="Connect").click()
    expect(page.get_by_role("heading", name="今天")).to_be_visible()
    expect(page.get_by_text("您的研究计划中没有注射安排。")).to_be_visible()
    page.get_by_role("link", name="病情活动").click()
    expect(page.locator("main[data-screen='vas'] h1")).to_have_text("您的疾病活动程度如何？")
    assert page.evaluate("document.documentElement.lang") == "zh-CN"
    found = chinese_width(page)
    assert found, "no Chinese text on the VAS screen"
    assert abs(found["chinese"] - 4 * found["em"]) < 2, f"{found}: 4 Chinese characters are not 4 em wide"
    assert abs(found["chinese"] - found["tofu"]) > 4, f"{found}: Chinese text is as wide as missing glyphs"
