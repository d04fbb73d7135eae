"""The central store: SQLite (WAL) through sqlite-utils, with versioned schema migrations.

``PRAGMA user_version`` holds the schema version; :data:`MIGRATIONS` are applied in order, so an
older file is brought forward on start-up and a newer one is refused. sqlite-utils commits each
statement itself, so every migration step is idempotent (``if_not_exists``): a start-up killed
half-way through a migration simply runs it again.
Several processes may open the same file (ingest workers, the API); writers wait on each other
through ``busy_timeout``.
"""

from __future__ import annotations

import secrets
import sqlite3
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Final

import sqlite_utils
from sqlite_utils.db import Table

from edge_agent.settings_source import ConfigError

BUSY_TIMEOUT_MS = 10_000
# The epoch under which readings numbered without one are filed: those of agents of the previous
# release, and every row stored before schema version 5. Never a wire name, so no agent can claim
# it (edge_agent.wire refuses an empty epoch).
LEGACY_EPOCH: Final = ""


class StoreError(ConfigError):
    """The store file cannot be used (unreadable, or from a newer release)."""


def _v1(db: sqlite_utils.Database) -> None:
    Table(db, "events").create(
        {
            "id": int,
            "agent": str,
            "seq": int,
            "session": int,
            "class": str,
            "device": str,
            "kind": str,
            "time": str,
            "received_at": str,
            "body": str,
        },
        pk="id",
        if_not_exists=True,
        not_null={
            "agent",
            "seq",
            "session",
            "class",
            "device",
            "kind",
            "time",
            "received_at",
            "body",
        },
    )
    Table(db, "events").create_index(
        ["agent", "seq"], unique=True, index_name="events_agent_seq", if_not_exists=True
    )
    Table(db, "quarantine").create(
        {
            "id": int,
            "received_at": str,
            "topic": str,
            "reason": str,
            "detail": str,
            "size": int,
            "payload": bytes,
        },
        pk="id",
        if_not_exists=True,
        not_null={"received_at", "topic", "reason", "detail", "size", "payload"},
    )
    Table(db, "agents").create(
        {
            "agent": str,
            "station": str,
            "online": int,
            "session": int,
            "connection": int,
            "status_time": str,
            "status_reason": str,
            "first_seen": str,
            "last_seen": str,
            "last_seq": int,
            "received": int,
        },
        pk="agent",
        if_not_exists=True,
        not_null={"online", "session", "connection", "last_seq", "received"},
        defaults={"online": 0, "session": 0, "connection": 0, "last_seq": 0, "received": 0},
    )
    Table(db, "tokens").create(
        {
            "id": int,
            "name": str,
            "role": str,
            "station": str,
            "hash": str,
            "created_at": str,
            "revoked_at": str,
        },
        pk="id",
        if_not_exists=True,
        not_null={"name", "role", "hash", "created_at"},
    )
    Table(db, "tokens").create_index(
        ["hash"], unique=True, index_name="tokens_hash", if_not_exists=True
    )

    Table(db, "commands").create(
        {
            "id": str,
            "agent": str,
            "name": str,
            "args": str,
            "created_at": str,
            "expires_at": str,
            "requested_by": str,
            "status": str,
            "result": str,
            "error": str,
            "acked_at": str,
        },
        pk="id",
        if_not_exists=True,
        not_null={"agent", "name", "args", "created_at", "expires_at", "requested_by", "status"},
    )


def _v2(db: sqlite_utils.Database) -> None:
    # The latest of each kind of reading per device, kept by ingest for the API; "state" is a
    # JSON object {kind: {"seq", "time", "body"}}.
    Table(db, "devices").create(
        {
            "agent": str,
            "device": str,
            "class": str,
            "online": int,
            "last_seen": str,
            "state": str,
            "updated_at": str,
        },
        pk=("agent", "device"),
        if_not_exists=True,
        not_null={"agent", "device", "state", "updated_at"},
    )


def _v3(db: sqlite_utils.Database) -> None:
    Table(db, "rooms").create(
        {
            "id": str,
            "type": str,
            "capacity": int,
            "equipment": str,
            "state": str,
            "created_at": str,
            "updated_at": str,
        },
        pk="id",
        if_not_exists=True,
        not_null={"type", "capacity", "equipment", "state", "created_at", "updated_at"},
    )
    Table(db, "room_history").create(
        {"id": int, "room": str, "before": str, "after": str, "at": str, "by": str, "reason": str},
        pk="id",
        if_not_exists=True,
        not_null={"room", "after", "at", "by"},
    )
    Table(db, "room_history").create_index(
        ["room", "id"], index_name="room_history_room", if_not_exists=True
    )


def _v4(db: sqlite_utils.Database) -> None:
    """Bookings, their persons' progress, the plan, and what the plan told the stations."""
    Table(db, "bookings").create(
        {
            "id": str,
            "code": str,
            "station": str,
            "case_id": str,
            "status": str,
            "walk_in": int,
            "expected_arrival": str,
            "body": str,
            "created_by": str,
            "created_at": str,
            "updated_at": str,
            "eta": str,
            "arrived_at": str,
            "verified_at": str,
            "entered_at": str,
            "closed_at": str,
        },
        pk="id",
        if_not_exists=True,
        not_null={
            "code",
            "station",
            "case_id",
            "status",
            "walk_in",
            "expected_arrival",
            "body",
            "created_by",
            "created_at",
            "updated_at",
        },
    )
    Table(db, "bookings").create_index(
        ["code"], index_name="bookings_code", unique=True, if_not_exists=True
    )
    Table(db, "bookings").create_index(
        ["station", "expected_arrival"], index_name="bookings_station", if_not_exists=True
    )
    Table(db, "booking_persons").create(
        {
            "booking": str,
            "person": str,
            "session_started_at": str,
            "session_ended_at": str,
            "exited_at": str,
            "unassigned_rule": str,
            "unassigned_reason": str,
            "level": str,
        },
        pk=("booking", "person"),
        if_not_exists=True,
    )
    Table(db, "assignments").create(
        {"booking": str, "person": str, "kind": str, "room": str, "start": str, "end": str},
        if_not_exists=True,
        not_null={"booking", "person", "kind", "room", "start", "end"},
    )
    Table(db, "assignments").create_index(
        ["booking", "person"], index_name="assignments_person", if_not_exists=True
    )
    Table(db, "assignments").create_index(
        ["start"], index_name="assignments_start", if_not_exists=True
    )
    Table(db, "plan_events").create(
        {
            "id": int,
            "at": str,
            "kind": str,
            "station": str,
            "booking": str,
            "person": str,
            "body": str,
        },
        pk="id",
        if_not_exists=True,
        not_null={"at", "kind", "body"},
    )
    Table(db, "plan_events").create_index(
        ["station", "id"], index_name="plan_events_station", if_not_exists=True
    )


def _v5(db: sqlite_utils.Database) -> None:
    """Readings keyed on (agent, epoch, seq), counts per epoch, and the agents' own events.

    An agent whose disk was wiped numbers from 1 again under a new epoch (see
    ``edge_agent/outbox.py``); keyed on (agent, seq) alone its new readings were duplicates. Rows
    and counts from before are kept under the legacy epoch ``""`` (:data:`LEGACY_EPOCH`), which
    is also where readings of agents of the previous release (no epoch on the wire) go.

    Unlike the steps before, this one runs in one transaction (it moves counts between tables),
    and each statement is also safe to run again after a kill between the commit and the version.
    """
    conn = db.conn
    conn.execute("BEGIN IMMEDIATE")
    try:
        if "epoch" not in {c.name for c in Table(db, "events").columns}:
            conn.execute("ALTER TABLE events ADD COLUMN epoch TEXT NOT NULL DEFAULT ''")
        conn.execute(
            "CREATE UNIQUE INDEX IF NOT EXISTS events_agent_epoch_seq ON events (agent, epoch, seq)"
        )
        conn.execute("DROP INDEX IF EXISTS events_agent_seq")
        # replaced_at: when a newer epoch of the agent became current; a status of an epoch that
        # was once current and then replaced is stale.
        conn.execute(
            "CREATE TABLE IF NOT EXISTS agent_epochs ("
            "agent TEXT NOT NULL, epoch TEXT NOT NULL, first_seq INTEGER NOT NULL, "
            "last_seq INTEGER NOT NULL, received INTEGER NOT NULL, first_seen TEXT NOT NULL, "
            "last_seen TEXT, replaced_at TEXT, PRIMARY KEY (agent, epoch))"
        )
        agent_columns = {c.name for c in Table(db, "agents").columns}
        if "epoch" not in agent_columns:
            # NULL: no epoch seen yet (an agent row made by a status of the previous release
            # gets the legacy epoch below).
            conn.execute("ALTER TABLE agents ADD COLUMN epoch TEXT")
        if "last_seq" in agent_columns:
            conn.execute(
                "INSERT OR IGNORE INTO agent_epochs "
                "(agent, epoch, first_seq, last_seq, received, first_seen, last_seen) "
                "SELECT agent, ?, 1, last_seq, received, coalesce(first_seen, ''), last_seen "
                "FROM agents",
                (LEGACY_EPOCH,),
            )
            conn.execute("UPDATE agents SET epoch = ? WHERE epoch IS NULL", (LEGACY_EPOCH,))
            # The counts live per epoch now; two copies would drift apart.
            conn.execute("ALTER TABLE agents DROP COLUMN last_seq")
            conn.execute("ALTER TABLE agents DROP COLUMN received")
        # What happened to an agent, in order (id), for alarms: "agent_reset" so far, at most
        # once per (agent, kind, epoch) however many ingest processes see it.
        conn.execute(
            "CREATE TABLE IF NOT EXISTS agent_events ("
            "id INTEGER PRIMARY KEY AUTOINCREMENT, at TEXT NOT NULL, agent TEXT NOT NULL, "
            "kind TEXT NOT NULL, epoch TEXT NOT NULL, old_epoch TEXT, body TEXT NOT NULL)"
        )
        conn.execute(
            "CREATE UNIQUE INDEX IF NOT EXISTS agent_events_once "
            "ON agent_events (agent, kind, epoch)"
        )
        conn.execute("COMMIT")
    except BaseException:
        conn.execute("ROLLBACK")
        raise


def _v6(db: sqlite_utils.Database) -> None:
    """Token expiry, and the hash-chained audit log (see ``central/audit.py``)."""
    if "expires_at" not in Table(db, "tokens").columns_dict:
        db.execute("ALTER TABLE tokens ADD COLUMN expires_at TEXT")
    Table(db, "audit").create(
        {
            "id": int,
            "at": str,
            "actor": str,
            "role": str,
            "source": str,
            "action": str,
            "target": str,
            "detail": str,
            "prev_hash": str,
            "hash": str,
        },
        pk="id",
        if_not_exists=True,
        not_null={
            "at",
            "actor",
            "role",
            "source",
            "action",
            "target",
            "detail",
            "prev_hash",
            "hash",
        },
    )
    Table(db, "audit").create_index(["at"], index_name="audit_at", if_not_exists=True)
    Table(db, "audit").create_index(["action", "id"], index_name="audit_action", if_not_exists=True)
    # Append-only for the application; someone holding the file can drop these, and the hash
    # chain then shows what was edited or deleted.
    for verb in ("UPDATE", "DELETE"):
        db.execute(
            f"CREATE TRIGGER IF NOT EXISTS audit_no_{verb.lower()} BEFORE {verb} ON audit "
            "BEGIN SELECT RAISE(ABORT, 'the audit log is append-only'); END"
        )


def _v7(db: sqlite_utils.Database) -> None:
    """Alarms (``central/alarms_store.py``), what each was derived from, and the deriver's cursors.

    ``source`` of ``alarm_sources`` names each stored reading applied to an alarm (``event:`` and
    the agent, epoch and seq; ``agent_event:`` and its id; ``offline:``/``online:`` and the agent
    and its status time): a reading applied twice (a restart before the cursor moved, a cursor
    reset) changes nothing the second time. At most one alarm of a kind is active per subject.
    """
    db.execute(
        "CREATE TABLE IF NOT EXISTS alarms ("
        "id INTEGER PRIMARY KEY AUTOINCREMENT, kind TEXT NOT NULL, severity TEXT NOT NULL, "
        "state TEXT NOT NULL, active INTEGER NOT NULL, subject TEXT NOT NULL, "
        "agent TEXT NOT NULL, epoch TEXT, device TEXT, band TEXT, station TEXT, person TEXT, "
        "booking TEXT, raised_at TEXT NOT NULL, derived_at TEXT NOT NULL, "
        "count INTEGER NOT NULL, last_at TEXT NOT NULL, acked_by TEXT, acked_at TEXT, "
        "ack_note TEXT, cleared_at TEXT, source TEXT NOT NULL, body TEXT NOT NULL)"
    )
    db.execute("CREATE UNIQUE INDEX IF NOT EXISTS alarms_source ON alarms (source)")
    db.execute(
        "CREATE UNIQUE INDEX IF NOT EXISTS alarms_one_active ON alarms (kind, subject) "
        "WHERE active = 1"
    )
    db.execute("CREATE INDEX IF NOT EXISTS alarms_state ON alarms (state, id)")
    db.execute("CREATE INDEX IF NOT EXISTS alarms_station ON alarms (station, id)")
    db.execute(
        "CREATE TABLE IF NOT EXISTS alarm_sources ("
        "source TEXT PRIMARY KEY, alarm INTEGER, effect TEXT NOT NULL) WITHOUT ROWID"
    )
    db.execute(
        "CREATE TABLE IF NOT EXISTS alarm_cursors (name TEXT PRIMARY KEY, last_id INTEGER NOT NULL)"
    )
    # Alarms begin with this release: a store brought forward raises nothing for its history
    # (months of old forced doors are not news). A fresh store starts at 0.
    for table in ("events", "agent_events"):
        start = db.execute(f"SELECT coalesce(max(id), 0) FROM {table}").fetchone()[0]  # noqa: S608
        db.execute(
            "INSERT OR IGNORE INTO alarm_cursors (name, last_id) VALUES (?, ?)", (table, start)
        )


def _v8(db: sqlite_utils.Database) -> None:
    """The feed that ``GET /api/v1/stream`` serves (see ``central/feed.py``).

    Plan events reach it by a trigger, in the transaction that writes them, whichever code path
    writes them (the planning service, the periodic jobs' statement lists). A body that is not
    JSON goes in as text rather than failing the planner's transaction."""
    db.execute(
        "CREATE TABLE IF NOT EXISTS feed ("
        "id INTEGER PRIMARY KEY AUTOINCREMENT, at TEXT NOT NULL, kind TEXT NOT NULL, "
        "station TEXT, audience TEXT NOT NULL, body TEXT NOT NULL)"
    )
    db.execute("CREATE INDEX IF NOT EXISTS feed_at ON feed (at)")
    db.execute("CREATE INDEX IF NOT EXISTS feed_station ON feed (station, id)")
    db.execute(
        "CREATE TRIGGER IF NOT EXISTS feed_plan_events AFTER INSERT ON plan_events BEGIN "
        "INSERT INTO feed (at, kind, station, audience, body) VALUES (NEW.at, NEW.kind, "
        "NEW.station, 'centre', json_object('booking', NEW.booking, 'person', NEW.person, "
        "'plan_event', NEW.id, 'detail', CASE WHEN json_valid(NEW.body) THEN json(NEW.body) "
        "ELSE NEW.body END)); END"
    )


def _v9(db: sqlite_utils.Database) -> None:
    """Which wristband each person wears (``central/bands.py``), kept as a history.

    A binding ends (``unbound_at``) at the person's exit or when someone takes the band off; the
    rows stay, so an alarm from a band is named after whoever wore it at the reading's time. At
    most one open binding per band and per person. ``room`` is where the scanners last placed
    the band (None: nowhere), kept so that a change of room is told to the stream once."""
    db.execute(
        "CREATE TABLE IF NOT EXISTS band_bindings ("
        "id INTEGER PRIMARY KEY AUTOINCREMENT, band TEXT NOT NULL, booking TEXT NOT NULL, "
        "person TEXT NOT NULL, station TEXT NOT NULL, bound_at TEXT NOT NULL, "
        "bound_by TEXT NOT NULL, unbound_at TEXT, unbound_by TEXT, unbound_reason TEXT, "
        "room TEXT, room_at TEXT)"
    )
    db.execute(
        "CREATE UNIQUE INDEX IF NOT EXISTS band_bindings_band ON band_bindings (band) "
        "WHERE unbound_at IS NULL"
    )
    db.execute(
        "CREATE UNIQUE INDEX IF NOT EXISTS band_bindings_person ON band_bindings "
        "(booking, person) WHERE unbound_at IS NULL"
    )
    db.execute("CREATE INDEX IF NOT EXISTS band_bindings_history ON band_bindings (band, bound_at)")
    # A band is one device heard by several agents (one row each): looked up by device alone.
    db.execute("CREATE INDEX IF NOT EXISTS devices_device ON devices (device)")


def _v10(db: sqlite_utils.Database) -> None:
    """Alarms from the plan: the deriver's cursor over ``plan_events``, and an index for the
    periodic check, which looks up the violations it recorded lately (by kind and time).

    A store brought forward raises nothing for its history (old red clocks and late vans are
    over); a fresh one starts at 0. Safe to run twice."""
    start = db.execute("SELECT coalesce(max(id), 0) FROM plan_events").fetchone()[0]
    db.execute(
        "INSERT OR IGNORE INTO alarm_cursors (name, last_id) VALUES ('plan_events', ?)", (start,)
    )
    db.execute("CREATE INDEX IF NOT EXISTS plan_events_kind ON plan_events (kind, at)")


def _v11(db: sqlite_utils.Database) -> None:
    """People who sign in to the pages (``central/users.py``) and their sessions
    (``central/web/sessions.py``).

    A user is never deleted, only disabled, so that the audit log's names keep meaning someone.
    A session's ``id`` is the SHA-256 of the cookie's secret (the secret itself is never
    stored); it ends at ``expires_at`` (absolute), at ``idle_expires_at`` (moved on as the
    session is used), or when revoked (sign-out, the user disabled)."""
    db.execute(
        "CREATE TABLE IF NOT EXISTS users ("
        "id INTEGER PRIMARY KEY AUTOINCREMENT, name TEXT NOT NULL UNIQUE, role TEXT NOT NULL, "
        "station TEXT, password_hash TEXT NOT NULL, created_at TEXT NOT NULL, disabled_at TEXT)"
    )
    db.execute(
        "CREATE TABLE IF NOT EXISTS web_sessions ("
        "id TEXT PRIMARY KEY, user INTEGER NOT NULL REFERENCES users (id), "
        "created_at TEXT NOT NULL, last_seen_at TEXT NOT NULL, csrf_token TEXT NOT NULL, "
        "idle_expires_at TEXT NOT NULL, expires_at TEXT NOT NULL, revoked_at TEXT, "
        "source TEXT NOT NULL) WITHOUT ROWID"
    )
    db.execute(
        "CREATE INDEX IF NOT EXISTS web_sessions_user ON web_sessions (user) "
        "WHERE revoked_at IS NULL"
    )
    db.execute("CREATE INDEX IF NOT EXISTS web_sessions_expires ON web_sessions (expires_at)")


def _v12(db: sqlite_utils.Database) -> None:
    """The store's own id, made once at random: the default MQTT client id of the central that
    uses it (:func:`central_client_id`). Two centrals on two stores never share a broker
    session; a central restarted on its store resumes its own."""
    db.execute("CREATE TABLE IF NOT EXISTS store_identity (id TEXT NOT NULL)")
    if db.execute("SELECT COUNT(*) FROM store_identity").fetchone()[0] == 0:
        db.execute("INSERT INTO store_identity (id) VALUES (?)", [secrets.token_hex(6)])


def _v13(db: sqlite_utils.Database) -> None:
    """Each agent's latest health report (``docs/protocol.md``, *Health*), one row per agent.

    ``epoch``, ``session`` and ``report`` order the reports: a late one never replaces a newer.
    ``taken_at`` is the agent's clock, ``received_at`` the centre's."""
    db.execute(
        "CREATE TABLE IF NOT EXISTS agent_health ("
        "agent TEXT PRIMARY KEY, epoch TEXT NOT NULL, session INTEGER NOT NULL, "
        "report INTEGER NOT NULL, taken_at TEXT NOT NULL, received_at TEXT NOT NULL, "
        "outbox_depth INTEGER NOT NULL, outbox_oldest_age_seconds REAL NOT NULL, "
        "disk_full INTEGER NOT NULL, certificate_expires TEXT) WITHOUT ROWID"
    )


def _v14(db: sqlite_utils.Database) -> None:
    """Each room's adjacent rooms (S4), a JSON list of room ids; existing rooms have none.
    Runs again after a kill before the version was written, so it adds the column only once."""
    if "adjacent_to" not in Table(db, "rooms").columns_dict:
        db.execute("ALTER TABLE rooms ADD COLUMN adjacent_to TEXT NOT NULL DEFAULT '[]'")


MIGRATIONS: tuple[Callable[[sqlite_utils.Database], None], ...] = (
    _v1,
    _v2,
    _v3,
    _v4,
    _v5,
    _v6,
    _v7,
    _v8,
    _v9,
    _v10,
    _v11,
    _v12,
    _v13,
    _v14,
)
SCHEMA_VERSION = len(MIGRATIONS)
# The first schema version with the audit log (``audit verify`` refuses older files).
AUDIT_SCHEMA_VERSION = MIGRATIONS.index(_v6) + 1


@contextmanager
def write_transaction(conn: sqlite3.Connection) -> Iterator[sqlite3.Connection]:
    """``BEGIN IMMEDIATE`` … ``COMMIT`` on ``conn``; any exception rolls it back. The ROLLBACK
    runs only while a transaction is open: a COMMIT that failed (a full disk) may have ended
    it, and a second error would hide the first."""
    conn.execute("BEGIN IMMEDIATE")
    try:
        yield conn
        conn.execute("COMMIT")
    except BaseException:
        if conn.in_transaction:
            conn.execute("ROLLBACK")
        raise


def connect(path: Path, *, readonly: bool = False) -> sqlite3.Connection:
    """A connection with the store's pragmas; ``readonly`` for API queries."""
    if readonly:
        conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True, check_same_thread=False)
    else:
        conn = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    conn.execute(f"PRAGMA busy_timeout={BUSY_TIMEOUT_MS}")
    if not readonly:
        conn.execute("PRAGMA journal_mode=WAL")
        # NORMAL in WAL mode is durable across a killed process; only power loss can roll back
        # the last commits, and those were not yet acknowledged to the broker.
        conn.execute("PRAGMA synchronous=NORMAL")
    return conn


CLIENT_ID_PREFIX = "precinct-central-"


def central_client_id(path: Path) -> str:
    """The default MQTT client id of a central on the (migrated) store at ``path``."""
    conn = connect(path, readonly=True)
    try:
        row = conn.execute("SELECT id FROM store_identity").fetchone()
    finally:
        conn.close()
    if row is None:
        raise StoreError(str(path), None, "the store has no identity: migrate it first")
    return f"{CLIENT_ID_PREFIX}{row[0]}"


def migrate(path: Path) -> int:
    """Bring the file at ``path`` to :data:`SCHEMA_VERSION`; returns the version found."""
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        conn = connect(path)
        found = int(conn.execute("PRAGMA user_version").fetchone()[0])
    except sqlite3.DatabaseError as exc:
        raise StoreError(str(path), None, f"not a usable SQLite file: {exc}") from exc
    try:
        if found > SCHEMA_VERSION:
            raise StoreError(
                str(path),
                None,
                f"schema version {found} is newer than this release ({SCHEMA_VERSION})",
            )
        db = sqlite_utils.Database(conn)
        for version in range(found, SCHEMA_VERSION):
            MIGRATIONS[version](db)
            conn.execute(f"PRAGMA user_version={version + 1}")
        return found
    finally:
        conn.close()
