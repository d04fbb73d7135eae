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

Two families of days (``DayFamily``, ``generate``):

- **Overloaded** (``generate_day``): the bookings above, as many persons as asked, whatever the
  rooms can take. The morning wave asks more of the interrogation rooms than they have, the
  waiting rooms overflow at the 10:30 peak, and some persons are impossible by the data
  (``scheduling.possible``: an inquiry with recording where no inquiry room records, a female
  minor suspect brought without female staff). The same seed gives the same day as ever.
- **Feasible by design** (``generate_feasible_day``): the same rooms and the same draws, but a
  booking is kept only if every person in it is possible by the data and the day stays within
  these bounds, so that a good plan places everyone:

  - peak load at most ``PEAK_LOAD`` (0.8) per main room type, and per type and equipment (the
    rooms with recording for those who need it): over every ``LOAD_WINDOW`` (120 minutes), the
    session and cleaning minutes of the persons ready in it, over the minutes of the rooms
    that fit them;
  - waiting places sized to the wave: over every ``WAVE_WINDOW`` (60 minutes), if every
    suspect ready in it had to wait, the waiting rooms they would need (each sex and age
    group apart, co-suspects of one booking each in their own room, H2) are at most the
    waiting rooms there are.

  Drawing stops at the persons asked for, or after 50 draws per person: a small centre
  takes fewer persons than asked (the benchmark prints how many it got).
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import UTC, date, datetime
from enum import StrEnum
from itertools import combinations

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
from scheduling.needs import CannotPlace, Need, need_for
from scheduling.policy import Policy
from scheduling.possible import impossible_persons
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


def _draw_booking(
    rng: random.Random, number: int, remaining: int, seed: int, day_start: Minute
) -> Booking:
    size = min(remaining, rng.choices((1, 2, 3, 4), (50, 30, 13, 7))[0])
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
    return Booking(
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
        booking = _draw_booking(rng, number, remaining, seed, day_start)
        remaining -= len(booking.persons)
        bookings.append(booking)
    rng.shuffle(bookings)
    return Day(plan_rooms, bookings, day_start)


class DayFamily(StrEnum):
    FEASIBLE = "feasible"
    OVERLOADED = "overloaded"


# Feasible by design: what a planned centre is sized for (see the module doc).
PEAK_LOAD = 0.8
LOAD_WINDOW = 120  # minutes: a wave's length, over which the load is counted
WAVE_WINDOW = 60  # minutes: suspects arriving within this may all be waiting at once
_BUCKET = 15
_ATTEMPTS_PER_PERSON = 50


def generate(
    family: DayFamily, persons: int, rooms: int, seed: int, day: date = date(2026, 3, 2)
) -> Day:
    if family is DayFamily.FEASIBLE:
        return generate_feasible_day(persons, rooms, seed, day)
    return generate_day(persons, rooms, seed, day)


def generate_feasible_day(persons: int, rooms: int, seed: int, day: date = date(2026, 3, 2)) -> Day:
    """A day the centre can take (the module doc, "Feasible days"): at most ``persons``,
    fewer when the rooms cannot take that many within the load bound."""
    rng = random.Random(seed)
    day_start = to_minute(datetime(day.year, day.month, day.day, tzinfo=UTC))
    plan_rooms = generate_rooms(rooms, rng)
    load = _Load(plan_rooms, day_start)
    bookings: list[Booking] = []
    remaining = persons
    number = 0
    for _attempt in range(_ATTEMPTS_PER_PERSON * persons):
        if remaining <= 0:
            break
        booking = _draw_booking(rng, number + 1, remaining, seed, day_start)
        if impossible_persons(plan_rooms, booking) or not load.admit(booking):
            continue
        number += 1
        remaining -= len(booking.persons)
        bookings.append(booking)
    rng.shuffle(bookings)
    return Day(plan_rooms, bookings, day_start)


def peak_loads(day: Day, policy: Policy | None = None) -> dict[str, float]:
    """The day's peak load per main room type (``LOAD_WINDOW`` windows, the module doc), and
    under ``"waiting"`` its peak waiting rooms needed by a wave over the rooms there are."""
    load = _Load(day.rooms, day.day_start, policy)
    for booking in day.bookings:
        load.add(booking)
    return load.peaks()


class _Load:
    """Room-minutes asked of each room type and equipment, by the quarter hour the person is
    ready in; and suspects ready per quarter hour by waiting-room class."""

    def __init__(
        self, rooms: list[PlanRoom], day_start: Minute, policy: Policy | None = None
    ) -> None:
        self.policy = policy or Policy()
        self.day_start = day_start
        self.rooms = [room for room in rooms if room.available]
        self.waiting_rooms = sum(1 for r in self.rooms if r.type is RoomType.WAITING)
        self.waiting_capacity = max(
            (r.capacity for r in self.rooms if r.type is RoomType.WAITING), default=1
        )
        self.demand: dict[tuple[RoomType, frozenset[Equipment]], dict[int, int]] = {}
        # quarter hour -> class (sex, minor) -> each booking's suspects of it ready then
        self.suspects: dict[int, dict[tuple[Sex, bool], list[int]]] = {}

    def _needs(self, booking: Booking) -> list[tuple[Person, Need]]:
        """Each person's need; a person no plan could place asks nothing of the rooms."""
        found = []
        for person in booking.persons:
            try:
                found.append((person, need_for(booking, person, self.policy)))
            except CannotPlace:
                continue
        return found

    def _capacity(self, room_type: RoomType, equipment: frozenset[Equipment]) -> int:
        return sum(1 for r in self.rooms if r.type is room_type and equipment <= r.equipment)

    def _items(
        self, booking: Booking
    ) -> list[tuple[tuple[RoomType, frozenset[Equipment]], int, int]]:
        items = []
        for _person, need in self._needs(booking):
            minutes = need.duration + self.policy.cleaning(need.room_type)
            bucket = (need.earliest_start - self.day_start) // _BUCKET
            for size in range(len(need.equipment) + 1):
                for subset in combinations(sorted(need.equipment), size):
                    items.append(((need.room_type, frozenset(subset)), bucket, minutes))
        return items

    def add(self, booking: Booking, sign: int = 1) -> None:
        for key, bucket, minutes in self._items(booking):
            slots = self.demand.setdefault(key, {})
            slots[bucket] = slots.get(bucket, 0) + sign * minutes
        for bucket, cls, together in self._held(booking):
            counts = self.suspects.setdefault(bucket, {}).setdefault(cls, [])
            if sign > 0:
                counts.append(together)
            else:
                counts.remove(together)

    def _held(self, booking: Booking) -> set[tuple[int, tuple[Sex, bool], int]]:
        """(quarter hour, class, the booking's suspects of that class ready then)."""
        found: dict[tuple[int, tuple[Sex, bool]], int] = {}
        for person, need in self._needs(booking):
            if person.role is PersonRole.SUSPECT:
                slot = ((need.holding_from - self.day_start) // _BUCKET, (person.sex, person.minor))
                found[slot] = found.get(slot, 0) + 1
        return {(bucket, cls, count) for (bucket, cls), count in found.items()}

    def admit(self, booking: Booking) -> bool:
        """Add ``booking`` if the day stays within the bounds; say whether it was added."""
        self.add(booking)
        wave = WAVE_WINDOW // _BUCKET
        fits = all(
            self._window_load(key, start) <= PEAK_LOAD
            for key, bucket, _m in self._items(booking)
            for start in range(bucket - LOAD_WINDOW // _BUCKET + 1, bucket + 1)
        ) and all(
            self._wave_rooms(start) <= self.waiting_rooms
            for bucket, _cls, _n in self._held(booking)
            for start in range(bucket - wave + 1, bucket + 1)
        )
        if not fits:
            self.add(booking, -1)
        return fits

    def _window_load(self, key: tuple[RoomType, frozenset[Equipment]], start: int) -> float:
        capacity = self._capacity(*key)
        slots = self.demand.get(key, {})
        asked = sum(slots.get(b, 0) for b in range(start, start + LOAD_WINDOW // _BUCKET))
        return asked / (capacity * LOAD_WINDOW) if capacity else float(asked > 0) * 1e9

    def _wave_rooms(self, start: int) -> int:
        """Waiting rooms the suspects ready within one wave need if all of them wait: each
        class apart (H2), co-suspects of one booking each in their own room."""
        classes: dict[tuple[Sex, bool], list[int]] = {}
        for bucket in range(start, start + WAVE_WINDOW // _BUCKET):
            for cls, counts in self.suspects.get(bucket, {}).items():
                classes.setdefault(cls, []).extend(counts)
        return sum(
            max(-(-sum(counts) // self.waiting_capacity), max(counts, default=0))
            for counts in classes.values()
        )

    def peaks(self) -> dict[str, float]:
        found: dict[str, float] = {}
        for (room_type, equipment), slots in self.demand.items():
            if equipment or not slots:
                continue
            found[room_type.value] = max(
                self._window_load((room_type, equipment), start)
                for start in range(min(slots) - LOAD_WINDOW // _BUCKET + 1, max(slots) + 1)
            )
        if self.suspects and self.waiting_rooms:
            found["waiting"] = (
                max(
                    self._wave_rooms(start)
                    for start in range(
                        min(self.suspects) - WAVE_WINDOW // _BUCKET + 1, max(self.suspects) + 1
                    )
                )
                / self.waiting_rooms
            )
        return found
