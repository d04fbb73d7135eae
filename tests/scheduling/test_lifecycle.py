"""The booking lifecycle's rules over random step sequences: no step reaches a state the rules
forbid, every refusal names the state that refused and changes nothing, and a closed booking
takes no step at all."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from scheduling import lifecycle
from scheduling.lifecycle import (
    Arrive,
    BookingState,
    BookingStatus,
    Cancel,
    EndSession,
    Enter,
    Exit,
    LifecycleError,
    NoShow,
    PersonState,
    PersonStatus,
    Placed,
    StartSession,
    Step,
    Verify,
)

T0 = datetime(2026, 3, 2, 8, 0, tzinfo=UTC)
PERSONS = ("A", "B", "C")


@st.composite
def bookings(draw: st.DrawFn) -> BookingState:
    count = draw(st.integers(1, len(PERSONS)))
    persons = tuple(
        PersonState(
            person,
            minor=draw(st.booleans()),
            guardian_at=draw(
                st.none() | st.integers(0, 120).map(lambda m: T0 + timedelta(minutes=m))
            ),
        )
        for person in PERSONS[:count]
    )
    status = draw(st.sampled_from([BookingStatus.CONFIRMED, BookingStatus.WAITLISTED]))
    return BookingState("bk-1", status, persons, walk_in=draw(st.booleans()))


# "Z" is no person of any booking: a step naming it must be refused, not crash.
_who = st.sampled_from((*PERSONS, "Z"))
steps: st.SearchStrategy[Step] = st.one_of(
    st.builds(Placed, st.booleans()),
    st.just(Arrive()),
    st.just(Verify()),
    st.just(Enter()),
    st.builds(StartSession, _who),
    st.builds(EndSession, _who),
    st.builds(Exit, _who),
    st.just(Cancel()),
    st.just(NoShow()),
)


def assert_lawful(state: BookingState) -> None:
    """What any reachable state satisfies."""
    status = state.status
    assert (state.closed_at is not None) == status.closed
    if state.verified_at is not None or state.entered_at is not None:
        assert state.arrived_at is not None
    if status.arrived:
        assert state.arrived_at is not None
    if status is BookingStatus.IN_AREA or status is BookingStatus.EXITED:
        assert state.entered_at is not None
    if state.entered_at is not None and not state.walk_in:
        assert state.verified_at is not None
    if status is BookingStatus.NO_SHOW:
        assert state.arrived_at is None
    if status is BookingStatus.CANCELLED:
        assert state.entered_at is None
    assert (status is BookingStatus.EXITED) == all(
        p.status is PersonStatus.EXITED for p in state.persons
    )
    for person in state.persons:
        # The store keeps timestamps only: the status must follow from them.
        assert person.status is lifecycle.person_status(
            state.entered_at is not None,
            person.session_started_at,
            person.session_ended_at,
            person.exited_at,
        )
        if person.session_started_at is not None:
            # H8: a session starts only after entry (time only runs forward in these sequences).
            assert state.entered_at is not None
            assert state.entered_at <= person.session_started_at
            if person.minor and person.guardian_at is not None:
                # H7: a minor's session not before the guardian is there.
                assert person.session_started_at >= person.guardian_at
        if person.session_ended_at is not None:
            assert person.session_started_at is not None
            assert person.session_started_at <= person.session_ended_at
        if person.exited_at is not None and person.session_started_at is not None:
            # Nobody leaves with a session still open.
            assert person.session_ended_at is not None
            assert person.session_ended_at <= person.exited_at


def refusing_state(before: BookingState, step: Step) -> str:
    """The states a refusal of ``step`` may name: the booking's, or the person's."""
    person = getattr(step, "person", None)
    named = {before.status.value}
    if person in {p.id for p in before.persons}:
        named.add(before.person(person).status.value)
    return "|".join(sorted(named))


@settings(max_examples=400, deadline=None)
@given(bookings(), st.lists(st.tuples(steps, st.integers(0, 30)), max_size=25))
def test_no_step_sequence_reaches_an_unlawful_state(
    start: BookingState, sequence: list[tuple[Step, int]]
) -> None:
    state, now = start, T0
    refused: LifecycleError | None
    for step, minutes in sequence:
        now += timedelta(minutes=minutes)
        try:
            after = lifecycle.apply(state, step, now)
        except LifecycleError as exc:
            refused = exc
        else:
            refused = None
        if refused is not None:
            assert refused.state.value in refusing_state(state, step).split("|")
            # Every refusal says which state refused it.
            assert str(refused.state) in refused.message
            continue
        assert_lawful(after)
        if state.status.closed:
            pytest.fail(f"{step} accepted on a {state.status} booking")
        state = after


def walked_in(now: datetime, *persons: PersonState) -> BookingState:
    state = BookingState("bk-1", BookingStatus.CONFIRMED, persons or (PersonState("A"),))
    return lifecycle.enter(lifecycle.verify(state, now), now)


def test_a_session_needs_entry_first() -> None:
    state = lifecycle.verify(BookingState("bk-1", BookingStatus.CONFIRMED, (PersonState("A"),)), T0)
    with pytest.raises(LifecycleError) as refused:
        lifecycle.start_session(state, "A", T0)
    assert refused.value.state is BookingStatus.VERIFIED
    assert "verified" in refused.value.message


def test_a_minors_session_waits_for_the_guardian() -> None:
    guardian = T0 + timedelta(minutes=30)
    state = walked_in(T0, PersonState("M", minor=True, guardian_at=guardian))
    with pytest.raises(LifecycleError) as refused:
        lifecycle.start_session(state, "M", guardian - timedelta(minutes=1))
    assert refused.value.state is PersonStatus.WAITING
    assert "H7" in refused.value.message
    started = lifecycle.start_session(state, "M", guardian)
    assert started.person("M").status is PersonStatus.IN_SESSION


def test_an_exit_during_a_session_ends_it_and_the_last_one_out_closes_the_booking() -> None:
    state = walked_in(T0, PersonState("A"), PersonState("B"))
    state = lifecycle.start_session(state, "A", T0 + timedelta(minutes=5))
    out = T0 + timedelta(minutes=50)
    state = lifecycle.exit_area(state, "A", out)
    assert state.person("A").session_ended_at == out
    assert state.status is BookingStatus.IN_AREA
    state = lifecycle.exit_area(state, "B", out)
    assert (state.status, state.closed_at) == (BookingStatus.EXITED, out)


def test_cancel_is_refused_once_the_unit_is_inside_naming_the_state() -> None:
    with pytest.raises(LifecycleError) as refused:
        lifecycle.close(walked_in(T0), BookingStatus.CANCELLED, T0)
    assert refused.value.state is BookingStatus.IN_AREA
    assert "in_area" in refused.value.message
    arrived = lifecycle.arrive(BookingState("bk-1", BookingStatus.CONFIRMED, ()), T0)
    with pytest.raises(LifecycleError) as not_missing:
        lifecycle.close(arrived, BookingStatus.NO_SHOW, T0)
    assert not_missing.value.state is BookingStatus.ARRIVED
