"""Placing a worn band from its scanners' words: last and strongest, never from a stale or
absent sighting, and never a crash on what the field sends."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from hypothesis import given
from hypothesis import strategies as st

from central.alarm_rules import Effect, presence_effects
from central.presence import PresencePolicy, Sighting, heard_at, not_heard, place, sighting_of

SHANGHAI = ZoneInfo("Asia/Shanghai")
NOW = datetime(2026, 12, 5, 10, 30, tzinfo=SHANGHAI)
POLICY = PresencePolicy(timedelta(seconds=5), 3)


def _seen(agent: str, room: str | None, rssi: float | None, ago: float) -> Sighting:
    return Sighting(agent, agent, room, rssi, NOW - timedelta(seconds=ago), True)


def test_the_strongest_of_the_latest_scanners_places_the_band() -> None:
    corridor = _seen("floor-2", "corridor", -80.0, 1)
    room = _seen("int-2-scanner", "int-2", -55.0, 3)
    old_strong = _seen("int-1-scanner", "int-1", -30.0, 9)  # heard, but two intervals ago
    placed = place([corridor, room, old_strong], NOW, POLICY)
    assert placed == room


def test_nothing_places_a_band_no_scanner_heard_within_the_window() -> None:
    stale = _seen("a", "int-1", -40.0, POLICY.window.total_seconds() + 1)
    absent = Sighting("b", "b", "int-2", -40.0, NOW, False)
    never = Sighting("c", "c", "int-3", None, None, True)
    assert place([stale, absent, never], NOW, POLICY) is None


sightings = st.lists(
    st.builds(
        Sighting,
        agent=st.sampled_from(["a1", "a2", "a3"]),
        scanner=st.none() | st.just("hci0"),
        room=st.none() | st.sampled_from(["int-1", "int-2", "wait-1"]),
        rssi=st.none() | st.floats(min_value=-127, max_value=20),
        last_seen=st.none()
        | st.floats(min_value=0, max_value=60).map(lambda s: NOW - timedelta(seconds=s)),
        present=st.booleans(),
    ),
    max_size=8,
)


@given(sightings)
def test_placement_is_by_a_recent_present_sighting_none_stronger_near_it(
    found: list[Sighting],
) -> None:
    placed = place(found, NOW, POLICY)
    heard = [
        s
        for s in found
        if s.present and s.last_seen is not None and NOW - s.last_seen <= POLICY.window
    ]
    if not heard:
        assert placed is None
        return
    assert placed in heard
    assert placed is not None
    assert placed.last_seen is not None
    latest = max(s.last_seen for s in heard if s.last_seen is not None)
    assert latest - placed.last_seen <= POLICY.interval
    for other in heard:
        assert other.last_seen is not None
        if latest - other.last_seen <= POLICY.interval and other.rssi is not None:
            assert placed.rssi is not None
            assert placed.rssi >= other.rssi


scalars = (
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False)
    | st.text(max_size=12)
    | st.just(NOW.isoformat())
)
bodies = (
    scalars
    | st.lists(scalars, max_size=2)
    | st.dictionaries(
        st.sampled_from(["present", "rssi", "last_seen", "room", "scanner", "bpm", "percent"]),
        scalars,
        max_size=7,
    )
)


@given(
    st.dictionaries(
        st.sampled_from(["presence", "heart_rate", "battery", "custody", "x"]),
        bodies | st.fixed_dictionaries({"time": scalars, "body": bodies}),
        max_size=5,
    )
)
def test_whatever_a_devices_row_holds_is_read_without_raising(state: dict[str, Any]) -> None:
    sighting = sighting_of("a1", state)
    assert sighting is None or sighting.agent == "a1"
    moment = heard_at(state)
    assert moment is None or moment.tzinfo is not None


def test_a_presence_reading_is_read_as_the_agent_reports_it() -> None:
    state = {
        "presence": {
            "seq": 9,
            "time": "2026-12-05T02:30:00.000000Z",
            "body": {
                "present": True,
                "rssi": -61.5,
                "last_seen": "2026-12-05T02:29:58.250000+00:00",
                "adverts": 12,
                "scanner": "hci0",
                "room": "int-2",
            },
        },
        "heart_rate": {"seq": 10, "time": "2026-12-05T02:30:01.000000Z", "body": {"bpm": 71}},
    }
    sighting = sighting_of("floor-2", state)
    assert sighting == Sighting(
        "floor-2", "hci0", "int-2", -61.5, datetime(2026, 12, 5, 10, 29, 58, 250000, SHANGHAI), True
    )
    assert heard_at(state) == datetime(2026, 12, 5, 10, 30, 1, tzinfo=SHANGHAI)


def test_a_band_never_heard_counts_from_when_it_was_put_on() -> None:
    bound = NOW - POLICY.window
    assert not not_heard(None, bound, NOW, POLICY)
    assert not_heard(None, bound, NOW + timedelta(seconds=1), POLICY)
    # Heard before it was put on (on the last person's wrist) counts for nothing.
    assert not_heard(bound - timedelta(hours=1), bound - timedelta(seconds=1), NOW, POLICY)


def test_presence_effects() -> None:
    assert presence_effects(
        placed_room="int-1", heard=True, planned_room="int-2", not_heard=False
    ) == {"person_not_heard": Effect.CLEAR, "wrong_room": Effect.RAISE}
    assert presence_effects(
        placed_room="int-2", heard=True, planned_room="int-2", not_heard=False
    ) == {"person_not_heard": Effect.CLEAR, "wrong_room": Effect.CLEAR}
    # Out of a session, no room is wrong; unheard is unheard.
    assert presence_effects(placed_room=None, heard=False, planned_room=None, not_heard=True) == {
        "person_not_heard": Effect.RAISE,
        "wrong_room": Effect.CLEAR,
    }
    # A scanner that covers no room says nothing about the room.
    assert presence_effects(
        placed_room=None, heard=True, planned_room="int-2", not_heard=False
    ) == {"person_not_heard": Effect.CLEAR}
