"""The audit log's chain: written in the change's transaction, append-only, and any edit or
deletion found at the row where it happened."""

from __future__ import annotations

import dataclasses
import sqlite3
import threading
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from central import audit
from central.audit import GENESIS, Actor, AuditRecord, AuditRow, row_hash, verify
from central.store import connect, migrate

ACTOR = Actor(name="duty", role="centre", source="10.0.0.7")


def _chain(count: int) -> list[AuditRow]:
    rows: list[AuditRow] = []
    prev = GENESIS
    for i in range(1, count + 1):
        unsealed = AuditRow(
            id=i,
            at=f"2026-12-01T08:{i % 60:02d}:00.000000Z",
            actor="duty",
            role="centre",
            source="10.0.0.7",
            action="room.changed",
            target=f"I-{i}",
            detail=audit.canonical_detail({"state": ["in_service", "cleaning"]}),
            prev_hash=prev,
            hash="",
        )
        row = dataclasses.replace(unsealed, hash=row_hash(unsealed))
        rows.append(row)
        prev = row.hash
    return rows


def test_a_whole_chain_verifies_and_reports_its_head() -> None:
    rows = _chain(5)
    verdict = verify(rows)
    assert verdict.broken is None
    assert (verdict.rows, verdict.head_id, verdict.head_hash) == (5, 5, rows[-1].hash)
    assert verify([]).broken is None
    assert verify([]).head_hash == GENESIS


def test_the_canonical_form_is_fixed() -> None:
    # A reader in another language recomputes this from the documented form alone.
    row = _chain(1)[0]
    assert row.prev_hash == "0" * 64
    assert row.hash == row_hash(row)
    assert len(row.hash) == 64
    changed = dataclasses.replace(row, detail='{"state":["in_service","out_of_order"]}')
    assert row_hash(changed) != row.hash


FIELDS = ("at", "actor", "role", "source", "action", "target", "detail", "prev_hash")


@given(
    count=st.integers(min_value=2, max_value=12),
    data=st.data(),
    rehash=st.booleans(),
)
def test_an_edited_row_is_named(count: int, data: st.DataObject, rehash: bool) -> None:
    rows = _chain(count)
    # An edit with a rewritten hash shows only at the next row: never the newest row then.
    index = data.draw(st.integers(min_value=0, max_value=count - (2 if rehash else 1)))
    field = data.draw(st.sampled_from(FIELDS))
    value = data.draw(
        st.text(min_size=1, max_size=20).filter(lambda v: v != getattr(rows[index], field))
    )
    changes: dict[str, Any] = {field: value}
    edited = dataclasses.replace(rows[index], **changes)
    if rehash:
        edited = dataclasses.replace(edited, hash=row_hash(edited))
    rows[index] = edited
    verdict = verify(rows)
    assert verdict.broken is not None
    assert verdict.broken.kind == "edited"
    assert verdict.broken.row == index + 1


@given(count=st.integers(min_value=2, max_value=12), data=st.data())
def test_a_deleted_row_is_named(count: int, data: st.DataObject) -> None:
    rows = _chain(count)
    first = data.draw(st.integers(min_value=0, max_value=count - 2))
    last = data.draw(st.integers(min_value=first, max_value=count - 2))
    del rows[first : last + 1]
    verdict = verify(rows)
    assert verdict.broken is not None
    assert verdict.broken.kind == "deleted"
    assert verdict.broken.row == first + 1


def test_the_newest_rows_deleted_show_only_against_a_kept_head() -> None:
    rows = _chain(4)
    kept_head = verify(rows).head_hash
    verdict = verify(rows[:3])
    assert verdict.broken is None
    assert verdict.head_hash != kept_head


def _store(tmp_path: Path) -> Path:
    db = tmp_path / "c.sqlite3"
    migrate(db)
    return db


def test_a_row_is_written_only_inside_a_transaction(tmp_path: Path) -> None:
    conn = connect(_store(tmp_path))
    try:
        with pytest.raises(RuntimeError, match="inside the transaction"):
            audit.append(conn, ACTOR, AuditRecord("room.changed", "I-1", {}))
        conn.execute("BEGIN IMMEDIATE")
        with pytest.raises(ValueError, match="characters long"):
            audit.append(conn, ACTOR, AuditRecord("room.changed", "I-1", {"x": "y" * 2000}))
        conn.execute("ROLLBACK")
    finally:
        conn.close()


def test_a_rolled_back_change_leaves_no_row(tmp_path: Path) -> None:
    db = _store(tmp_path)
    conn = connect(db)
    try:
        conn.execute("BEGIN IMMEDIATE")
        audit.append(conn, ACTOR, AuditRecord("room.changed", "I-1", {}))
        conn.execute("ROLLBACK")
        assert conn.execute("SELECT count(*) FROM audit").fetchone()[0] == 0
        row = audit.record(db, ACTOR, AuditRecord("room.changed", "I-1", {}))
        assert (row.id, row.prev_hash) == (1, GENESIS)
    finally:
        conn.close()


def test_the_application_cannot_update_or_delete_a_row(tmp_path: Path) -> None:
    db = _store(tmp_path)
    audit.record(db, ACTOR, AuditRecord("room.changed", "I-1", {"state": ["a", "b"]}))
    conn = connect(db)
    try:
        with pytest.raises(sqlite3.DatabaseError, match="append-only"):
            conn.execute("UPDATE audit SET actor = 'nobody'")
        with pytest.raises(sqlite3.DatabaseError, match="append-only"):
            conn.execute("DELETE FROM audit")
        assert audit.missing_triggers(conn) == []
        conn.execute("DROP TRIGGER audit_no_delete")
        assert audit.missing_triggers(conn) == ["audit_no_delete"]
    finally:
        conn.close()


def test_several_writers_at_once_keep_one_chain(tmp_path: Path) -> None:
    db = _store(tmp_path)
    writers, each = 4, 40
    errors: list[BaseException] = []

    def write(n: int) -> None:
        try:
            for i in range(each):
                audit.record(
                    db,
                    Actor(f"w{n}", "centre", "127.0.0.1"),
                    AuditRecord("room.changed", str(i), {}),
                )
        except BaseException as exc:  # noqa: BLE001 - handed to the test thread
            errors.append(exc)

    threads = [threading.Thread(target=write, args=(n,)) for n in range(writers)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert errors == []
    conn = connect(db, readonly=True)
    try:
        verdict = verify(audit.rows(conn))
    finally:
        conn.close()
    assert verdict.broken is None
    assert verdict.rows == writers * each
