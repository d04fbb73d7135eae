"""The numbers behind the rules: legal limits, step times, cleaning buffers, soft-rule weights.

All of it is configuration (domain.md: article numbers marked "verify" stay configurable); the
defaults are the figures in domain.md.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType

from scheduling.model import LegalBasis, Person, PersonRole
from scheduling.rooms import RoomType

DEFAULT_LIMIT_HOURS: Mapping[LegalBasis, float] = MappingProxyType(
    {
        LegalBasis.CRIMINAL_SUMMONS: 12,
        LegalBasis.CRIMINAL_SUMMONS_SERIOUS: 24,
        LegalBasis.ADMINISTRATIVE: 8,
        LegalBasis.ADMINISTRATIVE_DETENTION_LIKELY: 24,
        LegalBasis.CONTINUED_QUESTIONING: 24,
        LegalBasis.CONTINUED_QUESTIONING_APPROVED: 48,
        LegalBasis.CRIMINAL_DETENTION: 24,
    }
)

DEFAULT_CLEANING_MINUTES: Mapping[RoomType, int] = MappingProxyType(
    {
        RoomType.ONE_STOP: 15,
        RoomType.MINORS: 10,
        RoomType.SOBERING: 30,
    }
)

DEFAULT_SERIOUS_CASE_TYPES = frozenset(
    {
        "homicide",
        "robbery",
        "rape",
        "kidnapping",
        "drug_trafficking",
        "arson",
        "terrorism",
    }
)


@dataclass(frozen=True, slots=True)
class Policy:
    limit_hours: Mapping[LegalBasis, float] = field(default_factory=lambda: DEFAULT_LIMIT_HOURS)
    entry_minutes_booked: int = 10  # pre-filled registration: verify and go in
    entry_minutes_walk_in: int = 30  # registration, search, belongings, information collection
    sobering_minutes: int = 240
    exit_minutes: int = 30  # release or hand-over paperwork after the last session
    cleaning_minutes: Mapping[RoomType, int] = field(
        default_factory=lambda: DEFAULT_CLEANING_MINUTES
    )
    serious_case_types: frozenset[str] = DEFAULT_SERIOUS_CASE_TYPES
    # S1 weights: waiting minutes count this many times for these persons.
    weight_minor: float = 3.0
    weight_suspect: float = 2.0
    weight_red: float = 5.0
    # The improver's other soft rules, each in weighted minutes of waiting (0 switches one off).
    weight_apart: int = 30  # S4: per pair kept apart that overlaps in adjacent rooms
    weight_spare_room: int = 20  # S6: per hour a main room type has no room to spare
    weight_station_fairness: int = 2  # S7: per minute of the worst-served station's mean wait
    weight_same_room: int = 15  # S8: per follow-up session not in the room of the one before

    def limit_minutes(self, basis: LegalBasis) -> int | None:
        hours = self.limit_hours.get(basis)
        return None if hours is None else int(hours * 60)

    def cleaning(self, room_type: RoomType) -> int:
        return self.cleaning_minutes.get(room_type, 0)

    def entry_minutes(self, walk_in: bool) -> int:
        return self.entry_minutes_walk_in if walk_in else self.entry_minutes_booked

    def weight(self, person: Person) -> float:
        weight = 1.0
        if person.minor:
            weight = max(weight, self.weight_minor)
        if person.role is PersonRole.SUSPECT:
            weight = max(weight, self.weight_suspect)
        return weight
