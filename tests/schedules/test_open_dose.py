"""Which dose a participant's reply refers to (schedules.queries.pick_open_dose): properties over any set of
recent doses, in whatever order the webhook's first read returns them."""

from datetime import datetime, timedelta, timezone

from hypothesis import given
from hypothesis import strategies as st

from schedules.models import Dose, DoseState
from schedules.queries import MISSED_LOOKBACK, pick_open_dose

NOW = datetime(2026, 3, 3, 12, 0, tzinfo=timezone.utc)
UNREPORTED = {DoseState.SCHEDULED.value, DoseState.MISSED.value, DoseState.SKIPPED.value}
NOT_OPEN_FOR_REPLIES = {DoseState.HELD.value, DoseState.CANCELLED.value}


@st.composite
def recent_doses(draw) -> list[Dose]:
    """Doses as RECENT_DOSE finds them: window opened by now, closed at most 48 h before; distinct openings."""
    opens = draw(st.lists(st.integers(min_value=0, max_value=6 * 24 * 60), unique=True, max_size=6))
    doses = []
    for seq, minutes_before in enumerate(opens):
        opened = NOW - timedelta(minutes=minutes_before)
        latest_close = opened + timedelta(hours=36)
        earliest_close = max(opened + timedelta(minutes=1), NOW - MISSED_LOOKBACK + timedelta(minutes=1))
        if earliest_close > latest_close:
            continue
        span = int((latest_close - earliest_close).total_seconds() // 60)
        closes = earliest_close + timedelta(minutes=draw(st.integers(min_value=0, max_value=span)))
        state = draw(st.sampled_from([s.value for s in DoseState]))
        doses.append(
            Dose(
                id=seq + 1,
                participant_id=1,
                seq=seq + 1,
                local_date=opened.date(),
                due_at=opened,
                window_opens_at=opened,
                window_closes_at=closes,
                state=state,
            )
        )
    return doses


@given(recent_doses(), st.randoms())
def test_the_dose_picked_does_not_depend_on_the_order_the_rows_arrive_in(doses, random):
    shuffled = list(doses)
    random.shuffle(shuffled)
    assert pick_open_dose(shuffled, now=NOW) is pick_open_dose(doses, now=NOW)


@given(recent_doses())
def test_a_reply_goes_to_the_newest_open_window_else_the_newest_unreported_dose_else_nowhere(doses):
    picked = pick_open_dose(doses, now=NOW)
    open_now = [d for d in doses if d.window_closes_at > NOW and d.state not in NOT_OPEN_FOR_REPLIES]
    unreported = [d for d in doses if d.state in UNREPORTED]
    if open_now:
        assert picked is max(open_now, key=lambda d: d.window_opens_at)
    elif unreported:
        assert picked is max(unreported, key=lambda d: d.window_opens_at)
    else:
        assert picked is None


@given(recent_doses())
def test_a_reply_never_lands_on_a_held_or_cancelled_dose(doses):
    picked = pick_open_dose(doses, now=NOW)
    assert picked is None or picked.state not in NOT_OPEN_FOR_REPLIES
