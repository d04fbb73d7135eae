"""``GET /api/v1/stream``: the feed (``central/feed.py``) as Server-Sent Events.

Each event's ``id`` is its feed id and its ``event`` its kind. A client that sends
``Last-Event-ID`` (browsers do on reconnecting) goes on after that id without losing any; a
first ``hello`` event carries the position a new client starts from, so that it has an id to
resume from even if nothing happens. A client whose id is older than the retained feed gets
``resync``: reload what it shows, then go on from that event's id.

Ids are handed out inside the writers' transactions and SQLite has one writer at a time, so
once an id is visible every lower id is too: reading "after my last id" never skips a row that
commits later.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated

import anyio
from fastapi import APIRouter, Header, HTTPException, Request, status
from sse_starlette import EventSourceResponse, ServerSentEvent
from starlette.types import Receive, Scope, Send

from central import feed
from central.api.deps import PrincipalDep, SettingsDep
from central.api.gate import SESSION_STATE, keep_alive
from central.auth import Principal
from central.feed_watch import READ_DEADLINE_SECONDS, FeedWatch
from central.settings import CentralSettings
from central.store import connect
from central.web import sessions
from central.web.sessions import WebSession

router = APIRouter(prefix="/api/v1", tags=["stream"])

READ_LIMIT = 500
# A client that does not take a chunk within this time is dropped: it resumes by its last id.
SEND_TIMEOUT_SECONDS = 30.0
# sse-starlette sees the server stopping and sets the stream's shutdown event; the stream ends
# its answer within this time or is cancelled.
SHUTDOWN_GRACE_SECONDS = 1.0
# A stream opened with a session cookie looks at its session this often (see _SessionCheck).
SESSION_CHECK_SECONDS = 5.0

LastEventId = Annotated[
    str | None,
    Header(
        alias="Last-Event-ID",
        max_length=19,
        pattern=r"^[0-9]{1,19}$",
        description="Resume after this feed id (sent by browsers when they reconnect).",
    ),
]

_STREAM_RESPONSES: dict[int | str, dict[str, object]] = {
    200: {
        "description": "Server-Sent Events, endless: `hello` or `resync` first, then one event "
        "per feed row (`id` the feed id, `event` the kind, `data` JSON), heartbeats between.",
        "content": {"text/event-stream": {"schema": {"type": "string"}}},
    },
}


def _read(db: Path, cursor: int, principal: Principal) -> tuple[list[feed.FeedEvent], int, bool]:
    """Events after ``cursor`` for ``principal``; the new cursor; whether rows were lost."""
    conn = connect(db, readonly=True)
    try:
        # One read transaction: the newest id and the rows come from the same snapshot.
        conn.execute("BEGIN")
        where = feed.position(conn, cursor)
        if where.lost:
            return [], where.latest, True
        events = feed.after(conn, cursor, principal, READ_LIMIT)
        # Rows of other stations (or not for this role) are skipped over, not re-read.
        moved = events[-1].id if len(events) == READ_LIMIT else max(where.latest, cursor)
        return events, moved, False
    finally:
        conn.close()


def _start(db: Path, resume: int | None) -> tuple[int, bool]:
    """Where a new stream starts, and whether the client must reload first."""
    conn = connect(db, readonly=True)
    try:
        if resume is None:
            return feed.latest(conn), False
        where = feed.position(conn, resume)
        return (where.latest, True) if where.lost else (resume, False)
    finally:
        conn.close()


def encode(item: feed.FeedEvent) -> bytes:
    """One feed event as Server-Sent Events bytes (the same for every stream that sends it)."""
    data = {"id": item.id, "at": item.at, "kind": item.kind, "station": item.station}
    data["body"] = item.body
    return ServerSentEvent(
        data=json.dumps(data, separators=(",", ":"), ensure_ascii=False),
        id=str(item.id),
        event=item.kind,
    ).encode()


def _resync(position: int) -> ServerSentEvent:
    body = {"after": position, "reason": "older events are no longer kept: reload"}
    return ServerSentEvent(data=json.dumps(body), id=str(position), event="resync")


class _SessionCheck:
    """A stream opened with a page's session cookie lasts only as long as the session: it ends
    within :data:`SESSION_CHECK_SECONDS` of a sign-out, the user disabled, or the session's
    end. An open stream is a page in use, so each check also keeps the session alive."""

    def __init__(self, settings: CentralSettings, session: WebSession, secret: str) -> None:
        self.settings = settings
        self.session = session
        self.secret = secret
        self.checked = time.monotonic()

    def _live(self) -> WebSession | None:
        conn = connect(self.settings.db, readonly=True)
        try:
            return sessions.find(conn, self.secret, datetime.now(UTC))
        finally:
            conn.close()

    async def live(self) -> bool:
        if time.monotonic() - self.checked < SESSION_CHECK_SECONDS:
            return True
        self.checked = time.monotonic()
        found = await asyncio.wait_for(asyncio.to_thread(self._live), READ_DEADLINE_SECONDS)
        if found is None or found.id != self.session.id:
            return False
        await keep_alive(self.settings.db, self.settings.session_rules(), found, datetime.now(UTC))
        return True


async def _events(
    settings: CentralSettings,
    watch: FeedWatch,
    principal: Principal,
    start: int,
    lost: bool,
    shutdown: anyio.Event,
    session: _SessionCheck | None = None,
) -> AsyncIterator[ServerSentEvent | bytes]:
    if lost:
        yield _resync(start)
    else:
        yield ServerSentEvent(data=json.dumps({"after": start}), id=str(start), event="hello")
    cursor = start
    # One waiter for the whole stream, not one per wake-up; this generator owns it and ends
    # it however the stream ends (client gone, error, shutdown).
    stopping = asyncio.ensure_future(shutdown.wait())
    try:
        while True:
            await watch.wait(cursor, settings.stream_ping_interval, stopping)
            if shutdown.is_set():
                # The central is stopping: end the answer properly; the client resumes
                # elsewhere or later by its last id.
                return
            if session is not None and not await session.live():
                return  # the browser's reconnect is answered 401: it signs in again
            if watch.latest <= cursor:
                continue
            served = watch.recent(cursor, principal)
            if served is not None:
                events, cursor, lost = served, watch.latest, False
            else:
                events, cursor, lost = await asyncio.wait_for(
                    asyncio.to_thread(_read, settings.db, cursor, principal),
                    READ_DEADLINE_SECONDS,
                )
            if lost:
                yield _resync(cursor)
            if events:
                # Everything new in one chunk: one send per stream per poll, not per event.
                yield b"".join(watch.encoded(item) for item in events)
    finally:
        stopping.cancel()


class _Slots:
    """Open streams per token, so that one client cannot hold every connection."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.open: dict[tuple[str, str, str | None], int] = {}

    def take(self, principal: Principal) -> tuple[str, str, str | None]:
        key = (principal.role.value, principal.name, principal.station)
        if self.open.get(key, 0) >= self.limit:
            raise HTTPException(
                status.HTTP_429_TOO_MANY_REQUESTS,
                f"this token already holds {self.limit} open streams (stream_max_per_token)",
                headers={"Retry-After": "5"},
            )
        self.open[key] = self.open.get(key, 0) + 1
        return key

    def give_back(self, key: tuple[str, str, str | None]) -> None:
        left = self.open.get(key, 0) - 1
        if left > 0:
            self.open[key] = left
        else:
            self.open.pop(key, None)


class _StreamResponse(EventSourceResponse):
    """Gives the token's slot back however the stream ends (client gone, shutdown, error)."""

    def __init__(
        self,
        content: AsyncIterator[ServerSentEvent | bytes],
        shutdown: anyio.Event,
        slots: _Slots,
        key: tuple[str, str, str | None],
        ping: float,
    ) -> None:
        super().__init__(
            content,
            ping=ping,
            send_timeout=SEND_TIMEOUT_SECONDS,
            shutdown_event=shutdown,
            shutdown_grace_period=SHUTDOWN_GRACE_SECONDS,
        )
        self._slots = slots
        self._key = key

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        try:
            await super().__call__(scope, receive, send)
        finally:
            self._slots.give_back(self._key)


def stream_slots(settings: CentralSettings) -> _Slots:
    """The counts of one application (``create_app`` keeps them in ``app.state``)."""
    return _Slots(settings.stream_max_per_token)


@router.get(
    "/stream",
    response_class=EventSourceResponse,
    response_model=None,
    responses=_STREAM_RESPONSES,
)
async def stream(
    request: Request,
    settings: SettingsDep,
    principal: PrincipalDep,
    last_event_id: LastEventId = None,
) -> EventSourceResponse:
    """What changes, as it happens: a station token gets its own station's events, ops the
    health events (agent and device availability), admin and centre everything."""
    watch: FeedWatch = request.app.state.feed_watch
    resume = None if last_event_id is None else int(last_event_id)
    start, lost = await asyncio.wait_for(
        asyncio.to_thread(_start, settings.db, resume), READ_DEADLINE_SECONDS
    )
    slots: _Slots = request.app.state.stream_slots
    key = slots.take(principal)
    shutdown = anyio.Event()
    web_session = getattr(request.state, SESSION_STATE, None)
    secret = request.cookies.get(sessions.COOKIE)
    check = (
        _SessionCheck(settings, web_session, secret)
        if isinstance(web_session, WebSession) and secret
        else None
    )
    return _StreamResponse(
        _events(settings, watch, principal, start, lost, shutdown, check),
        shutdown,
        slots,
        key,
        settings.stream_ping_interval,
    )
