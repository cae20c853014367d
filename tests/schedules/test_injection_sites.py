"""Injection-site rotation: the suggestion is a site never used, else the least recently used one."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

from hypothesis import given
from hypothesis import strategies as st

from schedules.injection_sites import last_used, suggest_site
from schedules.protocol import DEFAULT_INJECTION_SITE_LABELS

SITES = tuple(DEFAULT_INJECTION_SITE_LABELS)
START = datetime(2026, 3, 1, 12, tzinfo=timezone.utc)

history_items = st.tuples(
    st.sampled_from(SITES + ("elbow",)),  # a site the protocol does not list is ignored
    st.integers(min_value=0, max_value=200).map(lambda hours: START + timedelta(hours=hours)),
)
site_lists = st.lists(st.sampled_from(SITES), min_size=1, max_size=6, unique=True)


def test_every_other_day_rotation_walks_all_six_sites_before_repeating_one():
    history: list[tuple[str, datetime]] = []
    chosen = []
    for dose in range(12):
        site = suggest_site(history, SITES)
        chosen.append(site)
        history.append((site, START + timedelta(days=2 * dose)))
    assert chosen[:6] == list(SITES) and chosen[6:] == list(SITES)


def test_the_site_used_longest_ago_comes_next():
    history = [
        ("abdomen_left", START + timedelta(days=8)),
        ("abdomen_right", START + timedelta(days=2)),
        ("thigh_left", START + timedelta(days=6)),
    ]
    assert suggest_site(history, ("abdomen_left", "abdomen_right", "thigh_left")) == "abdomen_right"


@given(st.lists(history_items, max_size=30), site_lists)
def test_suggestion_is_never_more_recent_than_any_other_site(history, sites):
    suggested = suggest_site(history, sites)
    latest = last_used(history, sites)
    assert suggested in sites
    if latest[suggested] is not None:
        # Only when every site has been used; then nothing was used longer ago.
        assert all(at is not None and latest[suggested] <= at for at in latest.values())


@given(st.lists(history_items, max_size=30), site_lists)
def test_suggestion_does_not_depend_on_the_order_history_comes_in(history, sites):
    assert suggest_site(history, sites) == suggest_site(list(reversed(history)), sites)


@given(st.lists(history_items, min_size=1, max_size=30), site_lists)
def test_the_site_just_used_is_not_suggested_while_another_exists(history, sites):
    now = START + timedelta(days=30)
    just_used = suggest_site(history, sites)
    after = [*history, (just_used, now)]
    if len(sites) > 1:
        assert suggest_site(after, sites) != just_used
