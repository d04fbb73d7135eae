"""A small blocking Server-Sent Events client for tests, on http.client (no extra dependency)."""

from __future__ import annotations

import http.client
import json
import time
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit


@dataclass(frozen=True, slots=True)
class Event:
    id: str | None
    event: str
    data: str
    received: float  # time.time() when its last line arrived

    def json(self) -> Any:
        return json.loads(self.data)


class SseClient:
    """One open stream. ``next`` blocks for at most its deadline; heartbeats are skipped.

    A socket timeout leaves the response unreadable, so ``read_timeout`` must exceed the
    central's heartbeat interval (the tests set ``stream_ping_interval`` to 1 s): the
    heartbeats are what lets ``next`` look at its deadline between events."""

    def __init__(
        self,
        url: str,
        token: str | None,
        last_event_id: str | None = None,
        read_timeout: float = 15.0,
        headers: dict[str, str] | None = None,
    ) -> None:
        parts = urlsplit(url)
        self.connection = http.client.HTTPConnection(
            parts.hostname or "127.0.0.1", parts.port, timeout=read_timeout
        )
        sent = {"Accept": "text/event-stream", **(headers or {})}
        if token is not None:
            sent["Authorization"] = f"Bearer {token}"
        if last_event_id is not None:
            sent["Last-Event-ID"] = last_event_id
        self.connection.request(
            "GET", parts.path + (f"?{parts.query}" if parts.query else ""), headers=sent
        )
        self.response = self.connection.getresponse()
        self.status = self.response.status
        self.headers = dict(self.response.getheaders())
        self.pings = 0
        self.ended = False

    def next(self, deadline: float = 20.0) -> Event | None:
        """The next event; None if the stream ended, TimeoutError if none came in time."""
        give_up = time.monotonic() + deadline
        fields: dict[str, str] = {}
        data: list[str] = []
        while time.monotonic() < give_up:
            raw = self.response.readline()
            if not raw:
                self.ended = True
                return None
            line = raw.decode().rstrip("\r\n")
            if line.startswith(":"):
                self.pings += 1
                continue
            if line == "":
                if data or fields:
                    return Event(
                        fields.get("id"),
                        fields.get("event", "message"),
                        "\n".join(data),
                        time.time(),
                    )
                continue
            name, _, value = line.partition(":")
            value = value.removeprefix(" ")
            if name == "data":
                data.append(value)
            else:
                fields[name] = value
        raise TimeoutError(f"no event within {deadline} s")

    def until(self, match: Any, deadline: float = 30.0) -> tuple[Event, list[Event]]:
        """Read until an event for which ``match(event)`` holds; it and every event before."""
        give_up = time.monotonic() + deadline
        seen: list[Event] = []
        while True:
            left = give_up - time.monotonic()
            if left <= 0:
                raise TimeoutError(f"no matching event within {deadline} s: {seen}")
            event = self.next(left)
            if event is None:
                raise AssertionError(f"the stream ended before a matching event: {seen}")
            seen.append(event)
            if match(event):
                return event, seen

    def close(self) -> None:
        self.connection.close()
