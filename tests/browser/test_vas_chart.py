"""The VAS chart tells the truth about time: answers of 23 Nov, 30 Nov and 2 Dec lie 7 and 2 days apart on
the x axis (not at equal gaps), segments are straight, the y axis is the protocol's 0-10 whatever the
values, and every value is also in the table beside the chart. Drawn under the pages' strict CSP."""

from __future__ import annotations

from datetime import date, datetime, timezone
from decimal import Decimal

import pytest
from sqlmodel import select

from backend.db import get_database
from backend.extensions import get_vault
from backend.operations.symptoms import record_vas
from backend.runtime.demo import DEMO_PASSWORD
from schedules.models import Site, Study
from schedules.participants import enroll_participant
from tests.browser.conftest import sign_in
from tests.factories import ACTOR

pytestmark = pytest.mark.browser

# 20:00 in Shanghai on each day: whole days apart.
ANSWERS = [(date(2026, 11, 23), "4.0"), (date(2026, 11, 30), "6.5"), (date(2026, 12, 2), "5.0")]


@pytest.fixture(scope="module")
def vas_participant(live_app) -> int:
    """A participant of the demo site with three VAS answers at 7 and 2 days' distance."""
    with get_database(live_app).session() as session:
        participant = enroll_participant(
            session,
            study=session.exec(select(Study)).first(),
            site=session.exec(select(Site)).first(),
            study_code="P-VAS",
            arm="il2",
            phone="+8613800000099",
            time_zone="Asia/Shanghai",
            language="en",
            reminder_time="20:00",
            first_dose_date=date(2026, 11, 21),
            sms_consent=True,
            vault=get_vault(live_app),
            actor=ACTOR,
            reason="VAS chart test",
            now=datetime(2026, 11, 20, 4, 0, tzinfo=timezone.utc),
        )
        for day, value in ANSWERS:
            at = datetime(day.year, day.month, day.day, 12, 0, tzinfo=timezone.utc)
            record_vas(session, participant=participant, value=Decimal(value), actor=ACTOR, now=at)
        session.commit()
        return participant.id


def test_vas_points_sit_at_their_real_distances_with_straight_segments_and_a_fixed_scale(
    page, vas_participant, console_errors
):
    from playwright.sync_api import expect

    page.emulate_media(reduced_motion="reduce")  # no animation: the points are where they end up
    sign_in(page, "nurse@demo.local", DEMO_PASSWORD)
    page.wait_for_url(lambda url: "/login" not in url)
    page.goto(f"/participants/{vas_participant}")
    page.wait_for_function("() => window.Chart && Chart.getChart('vas-chart') !== undefined")
    chart = page.evaluate(
        """() => {
            const chart = Chart.getChart('vas-chart');
            const data = chart.getDatasetMeta(0).data;
            return {
                xs: data.map((p) => p.x),
                ysAtTheirValues: data.every((p, i) => Math.abs(p.y - chart.scales.y.getPixelForValue(
                    chart.data.datasets[0].data[i].y)) < 0.5),
                tension: chart.data.datasets[0].tension,
                yMin: chart.scales.y.min,
                yMax: chart.scales.y.max,
                xType: chart.scales.x.type,
            };
        }"""
    )
    first, second, third = chart["xs"]
    assert first < second < third
    assert (second - first) / (third - second) == pytest.approx(7 / 2, rel=0.02)
    assert chart["ysAtTheirValues"]
    assert chart["tension"] == 0
    assert (chart["yMin"], chart["yMax"]) == (0, 10)  # the values are 4 to 6.5: the scale does not follow them
    # The table beside the chart, not hidden behind a disclosure.
    table = page.locator("#vas-table")
    expect(table).to_be_visible()
    for day, value in ANSWERS:
        expect(table).to_contain_text(day.isoformat())
        expect(table).to_contain_text(value.rstrip("0").rstrip("."))
    chart_box = page.locator(".chart-box").bounding_box()
    table_box = table.bounding_box()
    assert table_box["x"] >= chart_box["x"] + chart_box["width"] - 1  # beside it at 1280 px, not below
    assert console_errors == []  # a CSP refusal of a script would show here
