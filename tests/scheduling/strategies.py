"""Hypothesis strategies for rooms, persons and bookings, dense enough to make rules bind."""

from __future__ import annotations

from hypothesis import strategies as st

from scheduling.model import Booking, LegalBasis, Person, PersonRole, PlanRoom, Sex
from scheduling.rooms import Equipment, RoomType

DAY = 29_000_000  # a minute near 2025-02; the plan only compares minutes
QUESTIONING = (RoomType.INTERROGATION, RoomType.INQUIRY, RoomType.MINORS, RoomType.ONE_STOP)


@st.composite
def rooms(draw: st.DrawFn) -> list[PlanRoom]:
    found: list[PlanRoom] = []
    kinds = draw(
        st.lists(
            st.sampled_from((*QUESTIONING, RoomType.WAITING, RoomType.WAITING)),
            min_size=1,
            max_size=10,
        )
    )
    for index, kind in enumerate(kinds):
        equipment = set(draw(st.sets(st.sampled_from(list(Equipment)), max_size=2)))
        if kind in (RoomType.INTERROGATION, RoomType.ONE_STOP):
            equipment.add(Equipment.RECORDING)
        found.append(
            PlanRoom(
                f"{kind.value}-{index}",
                kind,
                draw(st.integers(1, 3)) if kind is RoomType.WAITING else 1,
                frozenset(equipment),
                draw(st.sampled_from((True, True, True, False))),
            )
        )
    return found


@st.composite
def persons(draw: st.DrawFn, arrival: int, count: int) -> tuple[Person, ...]:
    found = []
    for index in range(count):
        role = draw(st.sampled_from(list(PersonRole)))
        minor = draw(st.booleans())
        basis = draw(st.sampled_from(list(LegalBasis)))
        found.append(
            Person(
                id=f"p{index}",
                role=role,
                minor=minor,
                sex=draw(st.sampled_from(list(Sex))),
                brought_in_at=arrival - draw(st.integers(0, 600)),
                legal_basis=basis,
                co_suspect_group=draw(st.sampled_from((None, "g1", "g2"))),
                sexual_abuse_victim=draw(st.booleans()),
                intoxicated=draw(st.booleans()),
                guardian_at=draw(st.none() | st.integers(arrival - 30, arrival + 120)),
                session_minutes=draw(st.none() | st.integers(15, 240)),
            )
        )
    return tuple(found)


@st.composite
def bookings(draw: st.DrawFn, count_max: int = 12) -> list[Booking]:
    found = []
    cases = [f"case-{n}" for n in range(3)]
    for number in range(draw(st.integers(1, count_max))):
        arrival = DAY + draw(st.integers(0, 12 * 60))
        size = draw(st.integers(1, 4))
        found.append(
            Booking(
                id=f"b{number}",
                station=draw(st.sampled_from(("s1", "s2"))),
                case_id=draw(st.sampled_from(cases)),
                case_type=draw(st.sampled_from(("theft", "homicide", "fraud"))),
                officers=draw(st.integers(0, 8)),
                expected_arrival=arrival,
                session_minutes=draw(st.integers(15, 180)),
                persons=draw(persons(arrival, size)),
                recording=draw(st.booleans()),
                interpreter=draw(st.booleans()),
                female_staff=draw(st.booleans()),
                walk_in=draw(st.booleans()),
            )
        )
    return found
