"""The event cursor file: atomic replacement, and what an unreadable file means."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from devices.cabinet.cursor import EventCursor


def test_save_and_load(tmp_path: Path) -> None:
    cursor = EventCursor(tmp_path / "state", "cab-1", 3)
    assert cursor.load() is None
    cursor.save(65535)
    assert EventCursor(tmp_path / "state", "cab-1", 3).load() == 65535
    cursor.save(0)
    assert EventCursor(tmp_path / "state", "cab-1", 3).load() == 0
    assert [p.name for p in (tmp_path / "state").iterdir()] == ["cabinet-cab-1-3.cursor.json"]


def test_boards_and_devices_have_their_own_files(tmp_path: Path) -> None:
    EventCursor(tmp_path, "cab-1", 1).save(5)
    EventCursor(tmp_path, "cab-1", 2).save(6)
    assert EventCursor(tmp_path, "cab-1", 1).load() == 5
    assert EventCursor(tmp_path, "../../etc/x", 1).path.parent == tmp_path


@pytest.mark.parametrize(
    "content",
    [
        b"",
        b"{",
        b"[]",
        b'{"version": 1}',
        b'{"version": 2, "last_seq": 4}',
        b'{"version": 1, "last_seq": 70000}',
        b'{"version": 1, "last_seq": true}',
        b'{"version": 1, "last_seq": "4"}',
        b"\xff\xfe",
    ],
)
def test_an_unreadable_file_starts_over(
    tmp_path: Path, content: bytes, caplog: pytest.LogCaptureFixture
) -> None:
    cursor = EventCursor(tmp_path, "cab", 1)
    cursor.path.write_bytes(content)
    assert cursor.load() is None
    assert "unreadable event cursor" in caplog.text
    cursor.save(9)
    assert json.loads(cursor.path.read_text()) == {"version": 1, "last_seq": 9}
