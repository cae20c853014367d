"""The on-call digest: wholly in its language (alert kinds by name, no English in a Chinese digest), and none on a
day with nothing to report unless DIGEST_WHEN_EMPTY says so."""

import re

from sqlmodel import select

from backend.config import replace_settings
from backend.runtime.jobs import run_job
from notifications.digest import send_daily_digest
from notifications.models import OutboundMessage, Purpose
from schedules.alerts import open_alert, resolve
from schedules.models import AlertKind
from tests.conftest import utc
from tests.factories import ACTOR, VAULT, make_site

MORNING = utc("2026-03-02T00:30Z")  # 08:30 in Beijing, past DIGEST_LOCAL_HOUR (8)


def _alert(session, site, kind, *, n, at=utc("2026-03-01T10:00Z"), priority="normal"):
    alert, _ = open_alert(
        session,
        participant=None,
        site_id=site.id,
        kind=kind.value,
        dedupe_key=f"test:{kind.value}:{n}",
        summary="test",
        now=at,
        actor=ACTOR,
        priority=priority,
    )
    return alert


def _digests(session):
    rows = session.exec(select(OutboundMessage).where(OutboundMessage.purpose == "digest").order_by(OutboundMessage.id))
    return [row.body for row in rows]


def _open_some(session):
    site = make_site(session)
    _alert(session, site, AlertKind.MISSED_DOSE, n=1)
    _alert(session, site, AlertKind.MISSED_DOSE, n=2)
    _alert(session, site, AlertKind.SERIOUS_AE, n=3, priority="high")
    _alert(session, site, AlertKind.CONTACT_PROBLEM, n=4)
    resolve(session, alert=_alert(session, site, AlertKind.OPTED_OUT, n=5), note="back", actor=ACTOR, now=MORNING)
    return site


def test_a_chinese_digest_names_each_kind_of_alert_in_chinese(session):
    _open_some(session)
    assert send_daily_digest(session, now=MORNING, vault=VAULT, hour=8, language="zh-CN") == 1
    [body] = _digests(session)
    assert (
        body
        == "中心 PKUPH：4 条待处理提醒，其中 1 条高优先级。\n漏注射：2 条\n疑似严重不良事件：1 条\n短信联系问题：1 条"
    )
    assert not re.search(r"[A-Za-z]", body.replace("PKUPH", "")), body  # not one English word beside the site code


def test_an_english_digest_is_wholly_english(session):
    _open_some(session)
    send_daily_digest(session, now=MORNING, vault=VAULT, hour=8, language="en")
    [body] = _digests(session)
    assert body == (
        "Site PKUPH: 4 open alerts, 1 high priority.\nmissed dose: 2\nsuspected serious adverse event: 1\n"
        "contact problem: 1"
    )


def test_every_kind_of_alert_can_be_named_in_both_languages(session):
    site = make_site(session)
    for n, kind in enumerate(AlertKind):
        _alert(session, site, kind, n=n)
    for day, language in ((2, "zh-CN"), (3, "en")):  # one digest a day
        assert send_daily_digest(session, now=utc(f"2026-03-0{day}T00:30Z"), vault=VAULT, hour=8, language=language)
        assert len(_digests(session)[-1].splitlines()) == 1 + len(AlertKind)


def test_nothing_to_report_sends_no_digest_unless_the_setting_asks_for_one(app, session, clock):
    make_site(session)
    session.commit()
    clock.move_to(MORNING)
    assert run_job(app, "send_daily_digest") == "queued 0 digest SMS"
    replace_settings(app.config, DIGEST_WHEN_EMPTY=True)
    assert run_job(app, "send_daily_digest") == "queued 1 digest SMS"
    session.expire_all()
    assert _digests(session) == ["中心 PKUPH：目前没有待处理的提醒。"]


def test_an_alert_opened_after_the_digest_hour_does_not_send_a_digest_that_afternoon(session):
    site = make_site(session)
    assert send_daily_digest(session, now=MORNING, vault=VAULT, hour=8) == 0
    _alert(session, site, AlertKind.UNREADABLE_REPLY, n=1, at=utc("2026-03-02T06:00Z"))  # 14:00 in Beijing
    assert send_daily_digest(session, now=utc("2026-03-02T06:15Z"), vault=VAULT, hour=8) == 0
    # The next morning it is reported.
    assert send_daily_digest(session, now=utc("2026-03-03T00:15Z"), vault=VAULT, hour=8) == 1
    assert _digests(session) == ["中心 PKUPH：1 条待处理提醒，其中 0 条高优先级。\n无法识别的回复：1 条"]
    assert {row.purpose for row in session.exec(select(OutboundMessage))} == {Purpose.DIGEST.value}
