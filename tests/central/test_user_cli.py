"""The user commands as a user runs them (``python -m edge_agent.command_line`` as a child):
passwords from a file or typed at a terminal (a pseudo-terminal here), stored only as Argon2id
hashes, refused when short, and every change in the audit log without a password in it."""

from __future__ import annotations

import json
import os
import select
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

from argon2 import PasswordHasher

from central import audit
from central.store import connect
from tests.support import ROOT, run_precinct

PASSWORD = "correct horse battery"


def password_file(tmp_path: Path, text: str, name: str = "pw") -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


def user_rows(db: Path) -> list[dict[str, object]]:
    done = run_precinct("central", "user", "list", "--db", str(db), "--json")
    assert done.returncode == 0, done.stderr
    return [json.loads(line) for line in done.stdout.splitlines()]


def test_users_created_listed_and_disabled(tmp_path: Path) -> None:
    db = tmp_path / "central.sqlite3"
    secret = password_file(tmp_path, PASSWORD + "\n")
    done = run_precinct(
        *("central", "user", "create", "--db", str(db), "--name", "zhang.wei"),
        *("--role", "station", "--station", "s1", "--password-file", str(secret)),
    )
    assert done.returncode == 0, done.stderr
    assert "zhang.wei" in done.stdout
    assert PASSWORD not in done.stdout + done.stderr
    done = run_precinct(
        *("central", "user", "create", "--db", str(db), "--name", "desk"),
        *("--role", "centre", "--password-file", str(secret)),
    )
    assert done.returncode == 0, done.stderr

    listing = run_precinct("central", "user", "list", "--db", str(db))
    assert listing.returncode == 0, listing.stderr
    lines = listing.stdout.splitlines()
    assert lines[0].split() == ["NAME", "ROLE", "STATION", "CREATED", "DISABLED"]
    assert lines[1].split()[:3] == ["zhang.wei", "station", "s1"]
    assert lines[2].split()[:3] == ["desk", "centre", "-"]
    rows = user_rows(db)
    assert [r["name"] for r in rows] == ["zhang.wei", "desk"]
    assert set(rows[0]) == {"id", "name", "role", "station", "created_at", "disabled_at"}
    assert all(r["disabled_at"] is None for r in rows)

    conn = sqlite3.connect(db)
    try:
        stored = conn.execute("SELECT password_hash FROM users WHERE name = 'desk'").fetchone()[0]
    finally:
        conn.close()
    assert stored.startswith("$argon2id$")
    assert PasswordHasher().verify(stored, PASSWORD)
    assert "$argon2" not in listing.stdout

    again = run_precinct(
        *("central", "user", "create", "--db", str(db), "--name", "desk"),
        *("--role", "ops", "--password-file", str(secret)),
    )
    assert again.returncode == 2
    assert "exists already" in again.stderr

    done = run_precinct("central", "user", "disable", "--db", str(db), "desk")
    assert done.returncode == 0, done.stderr
    assert next(r for r in user_rows(db) if r["name"] == "desk")["disabled_at"] is not None
    again = run_precinct("central", "user", "disable", "--db", str(db), "desk")
    assert again.returncode == 1
    assert "no enabled user" in again.stderr

    conn = connect(db, readonly=True)
    try:
        logged = [(r.action, r.target, r.actor, r.role, r.detail) for r in audit.rows(conn)]
    finally:
        conn.close()
    assert [(a, t) for a, t, *_ in logged] == [
        ("user.created", "zhang.wei"),
        ("user.created", "desk"),
        ("user.disabled", "desk"),
    ]
    assert json.loads(logged[0][4]) == {"role": "station", "station": "s1"}
    assert json.loads(logged[2][4]) == {"sessions_ended": 0}
    assert all(role == "cli" for *_, role, _ in logged)
    assert not any(PASSWORD in str(row) for row in logged)


def test_bad_passwords_and_identities_are_refused_with_a_reason(tmp_path: Path) -> None:
    db = tmp_path / "central.sqlite3"
    base = ("central", "user", "create", "--db", str(db))
    cases = [
        (("--name", "a", "--role", "ops", "--password-file", "EMPTY"), "empty"),
        (("--name", "a", "--role", "ops", "--password-file", "SHORT"), "too short"),
        (("--name", "a", "--role", "ops", "--password-file", "LONG"), "too long"),
        (("--name", "a", "--role", "ops", "--password-file", "BINARY"), "not UTF-8"),
        (("--name", "a", "--role", "ops", "--password-file", "MISSING"), "--password-file"),
        (("--name", "a", "--role", "chief", "--password-file", "GOOD"), "unknown role"),
        (("--name", "a", "--role", "station", "--password-file", "GOOD"), "--station"),
        (("--name", "a b", "--role", "ops", "--password-file", "GOOD"), "letters, digits"),
        (("--name", "a", "--role", "ops", "--station", "s1", "--password-file", "GOOD"), "only"),
    ]
    files = {
        "EMPTY": password_file(tmp_path, "", "empty"),
        "SHORT": password_file(tmp_path, "short\n", "short"),
        "LONG": password_file(tmp_path, "x" * 300 + "\n", "long"),
        "GOOD": password_file(tmp_path, PASSWORD, "good"),
        "MISSING": tmp_path / "missing",
    }
    binary = tmp_path / "binary"
    binary.write_bytes(b"\xff\xfe" * 10)
    files["BINARY"] = binary
    for args, reason in cases:
        argv = [str(files[a]) if a in files else a for a in args]
        done = run_precinct(*base, *argv)
        assert done.returncode == 2, (args, done.stderr)
        assert reason in done.stderr, (args, done.stderr)
        assert "Traceback" not in done.stderr
    if db.exists():
        assert user_rows(db) == []


def _read_until(master: int, wanted: bytes, deadline: float = 30.0) -> bytes:
    seen = b""
    give_up = time.monotonic() + deadline
    while wanted not in seen:
        left = give_up - time.monotonic()
        assert left > 0, f"no {wanted!r} in {seen!r}"
        ready, _, _ = select.select([master], [], [], left)
        if ready:
            try:
                chunk = os.read(master, 1024)
            except OSError:  # the child closed the terminal
                break
            if not chunk:
                break
            seen += chunk
    return seen


def _create_at_a_terminal(db: Path, answers: tuple[str, str]) -> tuple[int, bytes]:
    """Run ``user create`` on a pseudo-terminal of its own (a new session: no way to reach the
    terminal of whoever runs the tests), answering both prompts."""
    master, replica = os.openpty()
    process = subprocess.Popen(
        [
            *(sys.executable, "-m", "edge_agent.command_line", "central", "user", "create"),
            *("--db", str(db), "--name", "duty", "--role", "admin"),
        ],
        stdin=replica,
        stdout=replica,
        stderr=replica,
        cwd=ROOT,
        start_new_session=True,
    )
    os.close(replica)
    try:
        shown = _read_until(master, b"Password: ")
        os.write(master, answers[0].encode() + b"\n")
        shown += _read_until(master, b"again: ")
        os.write(master, answers[1].encode() + b"\n")
        shown += _read_until(master, b"\n", 30)
        code = process.wait(60)
        rest = b""
        while select.select([master], [], [], 0.2)[0]:
            try:
                chunk = os.read(master, 1024)
            except OSError:
                break
            if not chunk:
                break
            rest += chunk
        return code, shown + rest
    finally:
        os.close(master)
        if process.poll() is None:
            process.kill()
            process.wait(10)


def test_the_password_is_asked_twice_at_a_terminal_without_echo(tmp_path: Path) -> None:
    db = tmp_path / "central.sqlite3"
    code, shown = _create_at_a_terminal(db, (PASSWORD, PASSWORD + "x"))
    assert code == 2
    assert b"differ" in shown
    code, shown = _create_at_a_terminal(db, (PASSWORD, PASSWORD))
    assert code == 0, shown
    assert b"created user 'duty'" in shown
    # The terminal's echo was off while the password was typed.
    assert PASSWORD.encode() not in shown
    assert [r["name"] for r in user_rows(db)] == ["duty"]
