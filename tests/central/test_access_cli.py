"""The token and audit commands as a user runs them (``python -m edge_agent.command_line`` as a
child), against a real central: a revoked or expired token is answered 401, and ``audit verify``
names the row an attacker with the file edited or deleted."""

from __future__ import annotations

import dataclasses
import json
import sqlite3
from datetime import UTC, datetime, timedelta
from pathlib import Path

from central import audit
from tests.conftest import Deployment
from tests.support import http_get, run_precinct, wait_until


def create(db: Path, *args: str) -> str:
    done = run_precinct("central", "token", "create", "--db", str(db), *args)
    assert done.returncode == 0, done.stderr
    return done.stdout.strip()


def token_rows(db: Path) -> list[dict[str, object]]:
    done = run_precinct("central", "token", "list", "--db", str(db), "--json")
    assert done.returncode == 0, done.stderr
    return [json.loads(line) for line in done.stdout.splitlines()]


def test_tokens_listed_revoked_and_expired(deployment: Deployment) -> None:
    deployment.start_central()
    db = deployment.db
    url = f"{deployment.base}/api/v1/agents"
    lead = create(db, "--role", "admin", "--name", "lead", "--expires-in", "90d")
    # Checked at once: the expiry runs from the moment the command made the token.
    van = create(
        db, "--role", "station", "--station", "s1", "--name", "van 7", "--expires-in", "15s"
    )
    assert http_get(url, van)[0] == 200
    watch = create(db, "--role", "ops", "--name", "watch")
    assert http_get(url, lead)[0] == 200
    assert http_get(url, watch)[0] == 200

    for duration in ("1w", "0d", "12", "3651d"):
        refused = run_precinct(
            *("central", "token", "create", "--db", str(db), "--role", "ops", "--name", "y"),
            *("--expires-in", duration),
        )
        assert refused.returncode == 2, duration
        assert "--expires-in" in refused.stderr

    listing = run_precinct("central", "token", "list", "--db", str(db))
    assert listing.returncode == 0, listing.stderr
    header = listing.stdout.split("\n")[0].split()
    assert header == ["NAME", "ROLE", "STATION", "CREATED", "EXPIRES", "REVOKED"]
    for secret in (lead, van, watch):
        assert secret not in listing.stdout
    assert "pct_" not in listing.stdout
    by_name = {row["name"]: row for row in token_rows(db)}
    assert set(by_name) == {"lead", "van 7", "watch"}
    assert set(by_name["lead"]) == {"id", "name", "role", "station"} | {
        "created_at",
        "expires_at",
        "revoked_at",
    }
    expires = datetime.fromisoformat(str(by_name["lead"]["expires_at"]))
    assert abs(expires - (datetime.now(UTC) + timedelta(days=90))) < timedelta(minutes=5)
    assert by_name["watch"]["expires_at"] is None
    assert by_name["van 7"]["station"] == "s1"

    done = run_precinct("central", "token", "revoke", "--db", str(db), "lead")
    assert done.returncode == 0, done.stderr
    assert http_get(url, lead)[0] == 401
    assert http_get(url, watch)[0] == 200
    again = run_precinct("central", "token", "revoke", "--db", str(db), "lead")
    assert again.returncode == 1
    assert "no unrevoked token" in again.stderr
    assert next(r for r in token_rows(db) if r["name"] == "lead")["revoked_at"] is not None

    wait_until(lambda: http_get(url, van)[0] == 401, 90, "the 15 s token to expire")
    assert http_get(url, watch)[0] == 200

    conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    try:
        logged = [
            (r.action, r.target, r.role, r.source, json.loads(r.detail)) for r in audit.rows(conn)
        ]
    finally:
        conn.close()
    assert [entry[:4] for entry in logged] == [
        ("token.created", "lead", "cli", "cli"),
        ("token.created", "van 7", "cli", "cli"),
        ("token.created", "watch", "cli", "cli"),
        ("token.revoked", "lead", "cli", "cli"),
    ]
    assert logged[1][4]["station"] == "s1"
    assert logged[1][4]["expires_at"] is not None
    verified = run_precinct("central", "audit", "verify", "--db", str(db))
    assert verified.returncode == 0, verified.stdout + verified.stderr
    assert verified.stdout.startswith("audit chain whole: 4 rows")


def _row(conn: sqlite3.Connection, row_id: int) -> audit.AuditRow:
    return next(r for r in audit.rows(conn, after=row_id - 1) if r.id == row_id)


def test_audit_verify_names_the_row_edited_or_deleted(tmp_path: Path) -> None:
    db = tmp_path / "central.sqlite3"
    for n in range(5):
        create(db, "--role", "ops", "--name", f"watch {n}")
    assert run_precinct("central", "audit", "verify", "--db", str(db)).returncode == 0

    # An attacker with the file drops the trigger and edits row 3.
    conn = sqlite3.connect(db, isolation_level=None)
    try:
        original = _row(conn, 3)
        conn.execute("DROP TRIGGER audit_no_update")
        conn.execute("UPDATE audit SET target = 'someone else' WHERE id = 3")
        found = run_precinct("central", "audit", "verify", "--db", str(db))
        assert found.returncode == 1
        assert "row 3 edited" in found.stdout
        assert "first bad row: 3 (edited)" in found.stdout
        assert "audit_no_update" in found.stdout

        # Resealing the edited row does not hide it: row 4 was chained to the original.
        resealed = dataclasses.replace(_row(conn, 3), hash="")
        conn.execute(
            "UPDATE audit SET hash = ? WHERE id = 3",
            (audit.row_hash(resealed),),
        )
        found = run_precinct("central", "audit", "verify", "--db", str(db))
        assert found.returncode == 1
        assert "first bad row: 3 (edited)" in found.stdout

        # Put back, with the trigger: whole again.
        conn.execute(
            "UPDATE audit SET target = ?, hash = ? WHERE id = 3", (original.target, original.hash)
        )
        conn.execute(
            "CREATE TRIGGER audit_no_update BEFORE UPDATE ON audit "
            "BEGIN SELECT RAISE(ABORT, 'the audit log is append-only'); END"
        )
        assert run_precinct("central", "audit", "verify", "--db", str(db)).returncode == 0

        # Now a deletion.
        conn.execute("DROP TRIGGER audit_no_delete")
        conn.execute("DELETE FROM audit WHERE id = 2")
    finally:
        conn.close()
    found = run_precinct("central", "audit", "verify", "--db", str(db))
    assert found.returncode == 1
    assert "row 2 deleted" in found.stdout
    assert "first bad row: 2 (deleted)" in found.stdout

    missing = run_precinct("central", "audit", "verify", "--db", str(tmp_path / "nothing.sqlite3"))
    assert missing.returncode == 2
