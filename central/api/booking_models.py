"""The booking as stations send it, checked field by field, and its conversion to the planning
service's own record (``central/booking_record.py``), which is what the store keeps.

Every field is bounded, far past what a real centre sees, so that no body can make the planner
or the store work without end: at most ``MAX_PERSONS`` (20) persons per booking (a raid brings
a dozen), 1-50 officers, names and ids of 1-64 letters, digits or ``_.:-``, a case type of
1-64 characters of valid Unicode, sessions of 10-480 minutes, and times from 2000 to 2100
(:mod:`central.api.fields`: the bound keeps every conversion and sum away from the limits of
``datetime``). ``needs`` is three flags. Booleans and integers are strict: ``0`` is not
``false`` and ``"5"`` is not ``5``, as the OpenAPI says.
"""

from __future__ import annotations

from typing import Annotated, Self

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    StrictBool,
    StrictInt,
    model_validator,
)

from central.api.fields import Instant, Text
from central.booking_record import BookingChange, BookingRecord, PersonRecord
from central.booking_record import Needs as NeedsRecord
from scheduling.model import Booking, LegalBasis, PersonRole, Sex, from_minute

Name = Annotated[str, Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9][A-Za-z0-9_.:-]*$")]
MAX_PERSONS = 20
MAX_OFFICERS = 50


class Needs(BaseModel):
    model_config = ConfigDict(extra="forbid")

    recording: StrictBool = False
    interpreter: StrictBool = False
    guardian: StrictBool = False  # a guardian or appropriate adult comes with the unit

    def to_record(self) -> NeedsRecord:
        return NeedsRecord(self.recording, self.interpreter, self.guardian)


class PersonIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    id: Name
    role: PersonRole
    minor: StrictBool
    sex: Sex
    brought_in_at: Instant
    legal_basis: LegalBasis
    co_suspect_group: Name | None = None
    sexual_abuse_victim: StrictBool = False
    intoxicated: StrictBool = False
    guardian_at: Instant | None = None
    session_minutes: StrictInt | None = Field(default=None, ge=10, le=8 * 60)


class BookingIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    station: Name | None = None  # a station token books for its own station
    case_id: Name
    case_type: Annotated[Text, Field(min_length=1, max_length=64)]
    officers: StrictInt = Field(ge=1, le=MAX_OFFICERS)
    expected_arrival: Instant
    session_minutes: StrictInt = Field(ge=10, le=8 * 60)
    needs: Needs = Field(default_factory=Needs)
    female_staff: StrictBool = False
    walk_in: StrictBool = False
    waitlist: StrictBool = False  # keep the booking, unplaced, if it cannot be placed now
    van: Name | None = None  # the escort van's GPS device id: its ETA re-plans a late unit
    persons: list[PersonIn] = Field(min_length=1, max_length=MAX_PERSONS)

    @model_validator(mode="after")
    def _consistent(self) -> Self:
        # The record keeps the rules a booking must follow as a whole (each person once, 到案
        # before arrival and within 48 h of it, only suspects in co-suspect groups); its
        # RecordError is a ValueError, which pydantic turns into a 422 like any other.
        self.to_record()
        return self

    @classmethod
    def from_booking(cls, booking: Booking) -> BookingIn:
        """The request that would create ``booking`` (generated days in benchmarks and tests)."""
        return cls(
            station=booking.station,
            case_id=booking.case_id,
            case_type=booking.case_type,
            officers=booking.officers,
            expected_arrival=from_minute(booking.expected_arrival),
            session_minutes=booking.session_minutes,
            needs=Needs(recording=booking.recording, interpreter=booking.interpreter),
            female_staff=booking.female_staff,
            walk_in=booking.walk_in,
            persons=[
                PersonIn(
                    id=p.id,
                    role=p.role,
                    minor=p.minor,
                    sex=p.sex,
                    brought_in_at=from_minute(p.brought_in_at),
                    legal_basis=p.legal_basis,
                    co_suspect_group=p.co_suspect_group,
                    sexual_abuse_victim=p.sexual_abuse_victim,
                    intoxicated=p.intoxicated,
                    guardian_at=None if p.guardian_at is None else from_minute(p.guardian_at),
                    session_minutes=p.session_minutes,
                )
                for p in booking.persons
            ],
        )

    def to_record(self) -> BookingRecord:
        """The planning service's record of this request."""
        return BookingRecord(
            station=self.station,
            case_id=self.case_id,
            case_type=self.case_type,
            officers=self.officers,
            expected_arrival=self.expected_arrival,
            session_minutes=self.session_minutes,
            needs=self.needs.to_record(),
            female_staff=self.female_staff,
            walk_in=self.walk_in,
            waitlist=self.waitlist,
            van=self.van,
            persons=tuple(
                PersonRecord(
                    id=p.id,
                    role=p.role,
                    minor=p.minor,
                    sex=p.sex,
                    brought_in_at=p.brought_in_at,
                    legal_basis=p.legal_basis,
                    co_suspect_group=p.co_suspect_group,
                    sexual_abuse_victim=p.sexual_abuse_victim,
                    intoxicated=p.intoxicated,
                    guardian_at=p.guardian_at,
                    session_minutes=p.session_minutes,
                )
                for p in self.persons
            ),
        )

    @classmethod
    def from_record(cls, record: BookingRecord) -> BookingIn:
        """The request as the station sent it, answered back (``request`` of a booking)."""
        return cls(
            station=record.station,
            case_id=record.case_id,
            case_type=record.case_type,
            officers=record.officers,
            expected_arrival=record.expected_arrival,
            session_minutes=record.session_minutes,
            needs=Needs(
                recording=record.needs.recording,
                interpreter=record.needs.interpreter,
                guardian=record.needs.guardian,
            ),
            female_staff=record.female_staff,
            walk_in=record.walk_in,
            waitlist=record.waitlist,
            van=record.van,
            persons=[
                PersonIn(
                    id=p.id,
                    role=p.role,
                    minor=p.minor,
                    sex=p.sex,
                    brought_in_at=p.brought_in_at,
                    legal_basis=p.legal_basis,
                    co_suspect_group=p.co_suspect_group,
                    sexual_abuse_victim=p.sexual_abuse_victim,
                    intoxicated=p.intoxicated,
                    guardian_at=p.guardian_at,
                    session_minutes=p.session_minutes,
                )
                for p in record.persons
            ],
        )


class BookingPatch(BaseModel):
    """What a station may change on a booking; the persons and their clocks are not here."""

    model_config = ConfigDict(extra="forbid")

    officers: StrictInt | None = Field(default=None, ge=1, le=MAX_OFFICERS)
    expected_arrival: Instant | None = None
    session_minutes: StrictInt | None = Field(default=None, ge=10, le=8 * 60)
    needs: Needs | None = None
    female_staff: StrictBool | None = None

    def to_change(self) -> BookingChange:
        return BookingChange(
            officers=self.officers,
            expected_arrival=self.expected_arrival,
            session_minutes=self.session_minutes,
            needs=None if self.needs is None else self.needs.to_record(),
            female_staff=self.female_staff,
        )


class AssignmentOut(BaseModel):
    booking: str
    person: str
    kind: str
    room: str
    start: str
    end: str


class UnassignedOut(BaseModel):
    person: str
    rule: str
    reason: str


class PersonProgress(BaseModel):
    id: str
    session_started_at: str | None = None
    session_ended_at: str | None = None
    exited_at: str | None = None


class BookingOut(BaseModel):
    id: str
    code: str
    station: str
    case_id: str
    status: str
    walk_in: bool
    expected_arrival: str
    eta: str | None = None  # from the van's GPS, once it runs late
    arrived_at: str | None = None
    verified_at: str | None = None
    entered_at: str | None = None
    assignments: list[AssignmentOut]
    unassigned: list[UnassignedOut]
    persons: list[PersonProgress] = Field(default_factory=list)
    request: BookingIn | None = None
