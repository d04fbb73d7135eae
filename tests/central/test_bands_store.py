"""Bindings over a real store file under random steps: never a band on two people nor two bands
on one person, every refusal names the holder, and the history names who wore what when."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from central import audit, bands
from central.store import connect, migrate
from edge_agent.wire import format_time

T0 = datetime(2026, 12, 5, 9, 0, tzinfo=ZoneInfo("Asia/Shanghai"))
DESK = audit.Actor("desk", "centre", "127.0.0.1")
BOOKINGS = ("bk-00000000000a", "bk-00000000000b")
PERSONS = ("S1", "S2", "W1")
BANDS = ("band-1", "band-2", "band-3")


def _store(path: Path) -> None:
    migrate(path)
    conn = connect(path)
    for booking, station in zip(BOOKINGS, ("s1", "s2"), strict=True):
        conn.execute(
            "INSERT INTO bookings (id, code, station, case_id, status, walk_in, "
            "expected_arrival, body, created_by, created_at, updated_at) VALUES "
            "(?, ?, ?, 'C', 'in_area', 0, ?, '{}', 't', ?, ?)",
            (booking, booking[-8:], station, format_time(T0), format_time(T0), format_time(T0)),
        )
        for person in PERSONS:
            conn.execute(
                "INSERT INTO booking_persons (booking, person) VALUES (?, ?)", (booking, person)
            )
    conn.close()


@contextmanager
def _write(path: Path) -> Iterator[sqlite3.Connection]:
    conn = connect(path)
    conn.execute("BEGIN IMMEDIATE")
    try:
        yield conn
        conn.execute("COMMIT")
    finally:
        if conn.in_transaction:
            conn.execute("ROLLBACK")
        conn.close()


steps = st.lists(
    st.tuples(
        st.sampled_from(["bind", "unbind", "exit"]),
        st.sampled_from(BOOKINGS),
        st.sampled_from(PERSONS),
        st.sampled_from(BANDS),
    ),
    max_size=25,
)


@settings(max_examples=60, deadline=None)
@given(steps)
def test_random_steps_keep_one_band_per_person_and_one_person_per_band(
    tmp_path_factory: pytest.TempPathFactory, sequence: list[tuple[str, str, str, str]]
) -> None:
    path = tmp_path_factory.mktemp("bands") / "central.sqlite3"
    _store(path)
    worn: dict[tuple[str, str], str] = {}  # the model: (booking, person) -> band
    exited: set[tuple[str, str]] = set()
    moment = T0
    for action, booking, person, band in sequence:
        moment += timedelta(seconds=1)
        key = (booking, person)
        if action == "bind":
            holder = next((k for k, b in worn.items() if b == band), None)
            refusal: bands.BindingConflictError | None = None
            with _write(path) as conn:
                try:
                    _binding, new = bands.bind(conn, booking, person, band, DESK, moment)
                except bands.BindingConflictError as exc:
                    refusal = exc
            if refusal is not None:
                assert (
                    key in exited
                    or (key in worn and worn[key] != band)
                    or (holder is not None and holder != key)
                )
                if refusal.holder is not None:
                    named = (refusal.holder["booking"], refusal.holder["person"])
                    assert worn[named] == refusal.holder["band"]
                continue
            assert key not in exited
            assert new == (key not in worn)
            assert holder in (None, key)
            worn[key] = band
        elif action == "unbind":
            with _write(path) as conn:
                try:
                    ended = bands.unbind(conn, booking, person, DESK, moment)
                except bands.BookingNotFoundError:
                    assert key not in worn
                    continue
            assert ended.band == worn.pop(key)
        else:
            with _write(path) as conn:
                for statement, args in bands.release_statements(
                    booking, person, moment, bands.EXITED
                ):
                    conn.execute(statement, args)
                conn.execute(
                    "UPDATE booking_persons SET exited_at = ? WHERE booking = ? AND person = ?",
                    (format_time(moment), booking, person),
                )
            worn.pop(key, None)
            exited.add(key)
    conn = sqlite3.connect(path)
    try:
        open_rows = conn.execute(
            "SELECT booking, person, band FROM band_bindings WHERE unbound_at IS NULL"
        ).fetchall()
    finally:
        conn.close()
    assert {(b, p): band for b, p, band in open_rows} == worn
    assert len(open_rows) == len(worn)


def test_the_history_names_who_wore_the_band_at_a_time(tmp_path: Path) -> None:
    path = tmp_path / "central.sqlite3"
    _store(path)
    with _write(path) as conn:
        bands.bind(conn, BOOKINGS[0], "S1", "band-1", DESK, T0)
    with _write(path) as conn:
        bands.unbind(conn, BOOKINGS[0], "S1", DESK, T0 + timedelta(minutes=10))
    with _write(path) as conn:
        bands.bind(conn, BOOKINGS[1], "S2", "band-1", DESK, T0 + timedelta(minutes=20))
    conn = connect(path)
    try:

        def wearer(minutes: int) -> tuple[str, str] | None:
            found = bands.worn_at(conn, "band-1", format_time(T0 + timedelta(minutes=minutes)))
            return None if found is None else (found.booking, found.person)

        assert wearer(-1) is None
        assert wearer(5) == (BOOKINGS[0], "S1")
        assert wearer(15) is None
        assert wearer(25) == (BOOKINGS[1], "S2")
    finally:
        conn.close()
