"""Generated days for the allocation benchmark and tests: rooms and bookings from a fixed seed.

The arrival pattern follows a district's working day: stations send most units in a morning
peak after the night's arrests are processed, with a second, smaller wave after lunch and a
thin spread through the day.

- 55 % of bookings arrive around 09:30 (normal, sigma 60 min): the morning peak;
- 25 % around 14:30 (normal, sigma 60 min);
- 20 % uniformly between 08:00 and 20:00;
- arrivals are clipped to 07:00-21:00 and booked in random order, not in arrival order (a
  station books when it decides to bring someone, often hours ahead, sometimes minutes).

A booking brings 1-4 persons (mostly 1-2): suspects (55 %), witnesses (30 %), victims (15 %);
8 % minors (guardian there 0-40 min after arrival), 25 % women, 3 % intoxicated; sessions of
45-120 minutes for suspects, 20-60 for witnesses and victims. Suspects of
one booking are co-suspects of its case. Persons were brought in (到案) 20-120 minutes before
arrival, and one in five suspects under a 12 h or longer limit 2-5 hours earlier (held
overnight).
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import UTC, date, datetime

from scheduling.model import (
    Booking,
    LegalBasis,
    Minute,
    Person,
    PersonRole,
    PlanRoom,
    Sex,
    to_minute,
)
from scheduling.rooms import Equipment, RoomType

CASE_TYPES = (
    "theft",
    "fraud",
    "assault",
    "traffic",
    "drugs",
    "public_order",
    "robbery",
    "homicide",
    "rape",
    "kidnapping",
)
_CASE_WEIGHTS = (25, 15, 15, 10, 10, 12, 6, 2, 3, 2)


@dataclass(frozen=True, slots=True)
class Day:
    rooms: list[PlanRoom]
    bookings: list[Booking]  # in booking order
    day_start: Minute


def generate_rooms(count: int, rng: random.Random) -> list[PlanRoom]:
    """A centre with ``count`` rooms: about half interrogation, 30 % inquiry, 15 % waiting (six
    places each), the rest minors' and one-stop rooms; at least one of each kind."""
    waiting = max(1, round(count * 0.15))
    minors = max(1, round(count * 0.05))
    one_stop = max(1, round(count * 0.02))
    inquiry = max(1, round(count * 0.30))
    interrogation = max(1, count - waiting - minors - one_stop - inquiry)
    rooms: list[PlanRoom] = []

    def add(kind: RoomType, n: int, capacity: int) -> None:
        for index in range(n):
            equipment = (
                {Equipment.RECORDING}
                if kind in (RoomType.INTERROGATION, RoomType.ONE_STOP, RoomType.MINORS)
                or rng.random() < 0.5
                else set()
            )
            if kind is not RoomType.WAITING and rng.random() < 0.25:
                equipment.add(Equipment.INTERPRETER)
            if kind is RoomType.INTERROGATION and rng.random() < 0.3:
                equipment.add(Equipment.ONE_WAY_GLASS)
            if kind is RoomType.WAITING:
                equipment = set()
            rooms.append(
                PlanRoom(f"{kind.value}-{index + 1}", kind, capacity, frozenset(equipment))
            )

    add(RoomType.INTERROGATION, interrogation, 1)
    add(RoomType.INQUIRY, inquiry, 1)
    add(RoomType.WAITING, waiting, 6)
    add(RoomType.MINORS, minors, 1)
    add(RoomType.ONE_STOP, one_stop, 1)
    return rooms[:count] if len(rooms) > count else rooms


def _arrival(rng: random.Random, day_start: Minute) -> Minute:
    pick = rng.random()
    if pick < 0.55:
        minute = rng.gauss(9.5 * 60, 60)
    elif pick < 0.80:
        minute = rng.gauss(14.5 * 60, 60)
    else:
        minute = rng.uniform(8 * 60, 20 * 60)
    return day_start + int(min(max(minute, 7 * 60), 21 * 60))


def generate_day(persons: int, rooms: int, seed: int, day: date = date(2026, 3, 2)) -> Day:
    rng = random.Random(seed)
    # Clock times of the generated day are taken as UTC: the plan only compares them.
    day_start = to_minute(datetime(day.year, day.month, day.day, tzinfo=UTC))
    plan_rooms = generate_rooms(rooms, rng)
    bookings: list[Booking] = []
    remaining = persons
    number = 0
    while remaining > 0:
        number += 1
        size = min(remaining, rng.choices((1, 2, 3, 4), (50, 30, 13, 7))[0])
        remaining -= size
        arrival = _arrival(rng, day_start)
        case_type = rng.choices(CASE_TYPES, _CASE_WEIGHTS)[0]
        serious = case_type in ("robbery", "homicide", "rape", "kidnapping")
        members: list[Person] = []
        for index in range(size):
            role = rng.choices(
                (PersonRole.SUSPECT, PersonRole.WITNESS, PersonRole.VICTIM), (55, 30, 15)
            )[0]
            minor = rng.random() < 0.08
            suspect = role is PersonRole.SUSPECT
            brought_in = arrival - rng.randint(20, 120)
            if suspect:
                basis = (
                    LegalBasis.CRIMINAL_SUMMONS_SERIOUS
                    if serious
                    else rng.choice(
                        (
                            LegalBasis.CRIMINAL_SUMMONS,
                            LegalBasis.ADMINISTRATIVE,
                            LegalBasis.CONTINUED_QUESTIONING,
                        )
                    )
                )
                if basis is not LegalBasis.ADMINISTRATIVE and rng.random() < 0.2:
                    brought_in -= rng.randint(120, 300)  # held overnight
            else:
                basis = LegalBasis.VOLUNTARY
            members.append(
                Person(
                    id=f"p{index + 1}",
                    role=role,
                    minor=minor,
                    sex=Sex.FEMALE if rng.random() < 0.25 else Sex.MALE,
                    brought_in_at=brought_in,
                    legal_basis=basis,
                    co_suspect_group="g1" if suspect else None,
                    sexual_abuse_victim=minor and role is PersonRole.VICTIM and case_type == "rape",
                    intoxicated=suspect and rng.random() < 0.03,
                    guardian_at=arrival + rng.randint(0, 40) if minor else None,
                    session_minutes=rng.choice((45, 60, 90, 120))
                    if suspect
                    else rng.choice((20, 30, 45, 60)),
                )
            )
        bookings.append(
            Booking(
                id=f"b{number:04d}",
                station=f"station-{rng.randint(1, 12)}",
                case_id=f"case-{seed}-{number}",
                case_type=case_type,
                officers=rng.choice((2, 2, 4, 4, 6)) if size > 1 else 2,
                expected_arrival=arrival,
                session_minutes=60,
                persons=tuple(members),
                recording=serious or rng.random() < 0.2,
                interpreter=rng.random() < 0.05,
                female_staff=rng.random() < 0.7,
                walk_in=False,
            )
        )
    rng.shuffle(bookings)
    return Day(plan_rooms, bookings, day_start)
