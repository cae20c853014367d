"""Every nurse page, checked in Debian's chromium at a desktop (1366 x 900) and a phone (390 x 844) size:
axe-core finds no accessibility violation, the phone page is no wider than the screen, and Chinese text
renders with real glyphs. axe-core comes from PyPI's axe-playwright-python (its bundled axe.min.js), never
from the internet at test time; it is injected through Playwright, so the pages' CSP stays as it is."""

from __future__ import annotations

import pytest
from sqlmodel import select

from backend.db import get_database
from backend.runtime.demo import DEMO_PASSWORD
from schedules.models import AdverseEvent, Participant
from tests.browser.conftest import chinese_width, require_cjk_font, sign_in

pytestmark = pytest.mark.browser

DESKTOP = {"width": 1366, "height": 900}
PHONE = {"width": 390, "height": 844}
TABLET = {"width": 768, "height": 1024}
SIZES = {"desktop": DESKTOP, "phone": PHONE, "tablet": TABLET}

# (name, who looks, what the path is made of): the participants are the demo's own (backend/runtime/demo.py):
# P-001 takes every dose, P-003 missed most and reported an adverse event, P-004 is in the control arm.
PAGES = [
    ("login", None, "/login"),
    ("dashboard", "nurse", "/"),
    ("dashboard-masked", "assessor", "/"),
    ("participant-adherent", "nurse", "participant:P-001"),
    ("participant-missed", "nurse", "participant:P-003"),
    ("participant-control", "nurse", "participant:P-004"),
    ("participant-masked", "assessor", "participant:P-003"),
    ("alerts", "nurse", "/alerts"),
    ("adverse-event", "nurse", "adverse-event:P-003"),
    ("simulator", "nurse", "/simulator"),
    ("report", "nurse", "/report"),
    ("deviations", "nurse", "/deviations"),
    ("not-found", "nurse", "/no-such-page"),
    # The same pages as the Beijing site's nurse reads them, in Chinese (hushi@demo.local has the site's language).
    ("dashboard-zh", "hushi", "/"),
    ("participant-adherent-zh", "hushi", "participant:P-001"),
    ("participant-missed-zh", "hushi", "participant:P-003"),
    ("participant-control-zh", "hushi", "participant:P-004"),
    ("alerts-zh", "hushi", "/alerts"),
    ("adverse-event-zh", "hushi", "adverse-event:P-003"),
    ("simulator-zh", "hushi", "/simulator"),
    ("report-zh", "hushi", "/report"),
    ("deviations-zh", "hushi", "/deviations"),
    ("not-found-zh", "hushi", "/no-such-page"),
]


@pytest.fixture(scope="module")
def paths(live_app) -> dict[str, str]:
    """Each page's path on the seeded demo trial."""
    with get_database(live_app).session() as session:
        ids = {p.study_code: p.id for p in session.exec(select(Participant))}
        ae = session.exec(select(AdverseEvent).where(AdverseEvent.participant_id == ids["P-003"])).first()
    out = {}
    for name, _, path in PAGES:
        kind, _, code = path.partition(":")
        out[name] = {"participant": f"/participants/{ids.get(code)}", "adverse-event": f"/adverse-events/{ae.id}"}.get(
            kind, path
        )
    return out


@pytest.fixture(scope="module")
def tabs(browser, live_server):
    """One page per role (signed in once for the whole module), reused by every check."""
    contexts, tabs = [], {}
    for role in (None, "nurse", "assessor", "hushi"):
        context = browser.new_context(base_url=live_server, viewport=DESKTOP, locale="en-GB")
        context.set_default_timeout(10_000)
        page = context.new_page()
        if role:
            sign_in(page, f"{role}@demo.local", DEMO_PASSWORD)
            page.wait_for_url(lambda url: "/login" not in url)
        contexts.append(context)
        tabs[role] = page
    yield tabs
    for context in contexts:
        context.close()


def _axe_violations(page) -> list[str]:
    from axe_playwright_python.sync_playwright import Axe

    results = Axe().run(page, options={"resultTypes": ["violations"]})
    return [
        f"{v['id']} ({v['impact']}): {v['help']} at {', '.join(str(n['target']) for n in v['nodes'][:5])}"
        for v in results.response["violations"]
    ]


@pytest.mark.parametrize("size", SIZES)
@pytest.mark.parametrize(("name", "role"), [(name, role) for name, role, _ in PAGES])
def test_every_nurse_page_has_no_axe_violation_and_fits_a_phone_and_a_tablet(
    tabs, paths, screenshot_dir, name, role, size
):
    page = tabs[role]
    page.set_viewport_size(SIZES[size])
    response = page.goto(paths[name])
    assert response.status == (404 if name.startswith("not-found") else 200)
    page.screenshot(path=screenshot_dir / f"check-{name}-{size}.png", full_page=True)
    assert _axe_violations(page) == []
    if size != "desktop":
        widths = page.evaluate("() => [document.documentElement.scrollWidth, window.innerWidth]")
        assert widths[0] <= widths[1], f"{name} is {widths[0]} px wide on a {widths[1]} px screen"


def test_chinese_text_renders_as_glyphs_not_boxes(tabs):
    require_cjk_font()
    page = tabs["nurse"]
    page.set_viewport_size(DESKTOP)
    # The simulator opens on P-001 and shows its planned reminders in Chinese (zh-CN, the demo's language for P-001).
    page.goto("/simulator")
    # Four Chinese characters of the page measured in place, beside as many code points that no font has
    # (tofu) in the same element: without a CJK font both are the same .notdef boxes; with one, each
    # Chinese glyph is a full em wide.
    found = chinese_width(page)
    assert found, "no Chinese text on the simulator page for P-001"
    assert abs(found["chinese"] - 4 * found["em"]) < 2, f"{found}: 4 Chinese characters are not 4 em wide"
    assert abs(found["chinese"] - found["tofu"]) > 4, f"{found}: Chinese text is as wide as missing glyphs"
