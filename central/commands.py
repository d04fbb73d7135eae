"""Command dispatch: centre -> agent, recorded in the store, answered by the agent's ack.

A command is written to the ``commands`` table before it is published, so every command that
could have reached an agent is on record with who asked for it; the ingest path fills in the
outcome when the ack arrives. Agents never execute a command after its expiry, nor twice.
"""

from __future__ import annotations

import json
import sqlite3
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from central.store import connect
from edge_agent.wire import Channel, Command, format_time, topic


@dataclass(frozen=True, slots=True)
class CommandRecord:
    id: str
    agent: str
    name: str
    status: str
    result: dict[str, Any] | None
    error: str | None


class CommandDispatcher:
    def __init__(self, db: Path, publish: Callable[[str, bytes], None]) -> None:
        self._db = db
        self._publish = publish

    def send(
        self,
        agent: str,
        name: str,
        args: Mapping[str, Any],
        *,
        ttl: timedelta,
        requested_by: str,
        now: datetime | None = None,
        on_record: Callable[[sqlite3.Connection, Command], None] | None = None,
    ) -> Command:
        """Record the command, then publish it; ``on_record`` writes in the same transaction
        as the record (the audit row of who asked)."""
        moment = now if now is not None else datetime.now(UTC)
        command = Command(id=uuid.uuid4().hex, name=name, expires=moment + ttl, args=dict(args))
        conn = connect(self._db)
        try:
            conn.execute("BEGIN IMMEDIATE")
            conn.execute(
                "INSERT INTO commands (id, agent, name, args, created_at, expires_at, "
                "requested_by, status) VALUES (?, ?, ?, ?, ?, ?, ?, 'sent')",
                (
                    command.id,
                    agent,
                    name,
                    json.dumps(command.args),
                    format_time(moment),
                    format_time(command.expires),
                    requested_by,
                ),
            )
            if on_record is not None:
                on_record(conn, command)
            conn.execute("COMMIT")
        finally:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            conn.close()
        self._publish(topic(agent, Channel.COMMAND), command.encode())
        return command

    def outcome(self, command_id: str) -> CommandRecord | None:
        conn = connect(self._db, readonly=True)
        try:
            row = conn.execute(
                "SELECT id, agent, name, status, result, error FROM commands WHERE id = ?",
                (command_id,),
            ).fetchone()
        finally:
            conn.close()
        if row is None:
            return None
        return CommandRecord(
            id=row[0],
            agent=row[1],
            name=row[2],
            status=row[3],
            result=json.loads(row[4]) if row[4] else None,
            error=row[5],
        )
