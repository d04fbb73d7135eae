"""Every example of docs/api-examples.md, run in order against a real central: the status and
the documented answer's keys must hold, and every route of the served OpenAPI needs an example.

The story's stage is real too: a central on Asia/Shanghai, an agent `s1-files` at station s1
with a simulated cabinet `cab-1` on a pty, whose door is forced once (the alarm the examples
acknowledge), and a van of s1 whose GPS is a simulated receiver replaying a drive."""

from __future__ import annotations

import http.client
import json
import re
from collections.abc import Iterator, Mapping
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo

import pytest

from central.auth import Role
from tests.central import doc_examples
from tests.central.doc_examples import Example, ExampleError, Request, curl_request, expand
from tests.central.test_stream import gps_receiver
from tests.conftest import Deployment
from tests.support import ROOT, Child, http_get, wait_until
from tests.test_devices_end_to_end import CabinetSimulator

DOC = ROOT / "docs" / "api-examples.md"
CENTRE_ZONE = ZoneInfo("Asia/Shanghai")
AGENT, CABINET = "s1-files", "cab-1"
VAN_AGENT, VAN_GPS = "s1-van", "van-07-gps"
# Set by the test as "Before you start" sets them in a shell; the rest come from `keep`.
GIVEN = {"PRECINCT", "TOKEN", "ADMIN_TOKEN", "ARRIVAL", "BROUGHT_IN", "DAY"}
# Routes of the OpenAPI that no example can show, each with the reason. None today: the probes,
# the cabinet (on a simulated board) and the endless stream (its first event) are all shown.
NOT_SHOWN: dict[tuple[str, str], str] = {}
METHODS = {"get", "post", "put", "patch", "delete"}


@pytest.fixture
def cabinet_board() -> Iterator[CabinetSimulator]:
    board = CabinetSimulator()
    yield board
    board.close()


def document() -> list[Example]:
    return doc_examples.examples(DOC.read_text())


# --- the document, read without a central -------------------------------------------------


def test_every_example_is_complete_and_uses_only_variables_set_before_it() -> None:
    found = document()
    assert len(found) >= 35
    known = set(GIVEN)
    for example in found:
        unknown = doc_examples.variables_used(example.command) - known
        assert not unknown, f"{example.where()}: ${', $'.join(sorted(unknown))} not set yet"
        if example.answer_kind == "json":
            assert example.answer is not None
            json.loads(example.answer)  # a documented answer is valid JSON
        known |= set(example.keep)
        # Its request can be read (fake values: nothing is sent).
        curl_request(example.command, {**dict.fromkeys(known, "x"), "PRECINCT": "http://h:1"})


def test_a_curl_command_becomes_its_request() -> None:
    variables = {
        "PRECINCT": "http://h:1",
        "TOKEN": "pct_a-b",
        "ARRIVAL": "2026-12-05T10:00:00+08:00",
    }
    assert curl_request('curl -sS "$PRECINCT/healthz"', variables) == Request(
        "GET", "http://h:1/healthz", {}, None
    )
    command = (
        'curl -sS -X PATCH "$PRECINCT/api/v1/rooms/W-1" \\\n'
        '  -H "Authorization: Bearer $TOKEN" -H "Content-Type: application/json" \\\n'
        '  -d \'{"capacity": 6, "note": "$TOKEN"}\''
    )
    request = curl_request(command, variables)
    assert request.method == "PATCH"
    assert request.headers == {
        "Authorization": "Bearer pct_a-b",
        "Content-Type": "application/json",
    }
    # Single quotes keep a $ as it is, as the shell does.
    assert request.body == b'{"capacity": 6, "note": "$TOKEN"}'
    heredoc = 'curl -X POST "$PRECINCT/x" --data-binary @- <<EOF\n{"at": "$ARRIVAL"}\nEOF'
    request = curl_request(heredoc, variables)
    assert request.body == b'{"at": "2026-12-05T10:00:00+08:00"}\n'
    # A body without -X is a POST, as curl sends it.
    assert curl_request('curl "$PRECINCT/x" -d "{\\"c\\": 1}"', variables).method == "POST"
    assert curl_request('curl "$PRECINCT/x" -d "{\\"c\\": 1}"', variables).body == b'{"c": 1}'


@pytest.mark.parametrize(
    "command",
    [
        'curl -sS "$NOWHERE/healthz"',  # a variable never set
        'curl -sS --compressed "$PRECINCT/healthz"',  # an option not understood here
        'curl -sS "$PRECINCT/a"\ncurl -sS "$PRECINCT/b"',  # two commands
        'wget "$PRECINCT/healthz"',
        'curl -sS -d @- "$PRECINCT/x"',  # stdin without a here-document
    ],
)
def test_what_cannot_be_read_is_refused(command: str) -> None:
    with pytest.raises(ExampleError):
        curl_request(command, {"PRECINCT": "http://h:1"})


def test_a_value_the_shell_would_split_is_refused() -> None:
    with pytest.raises(ExampleError, match="split"):
        expand('"$A"', {"A": "two words"})


def test_answers_are_compared_by_their_keys() -> None:
    documented = {"id": "x", "items": [{"a": 1, "b": {"c": 2}}], "empty": []}
    actual = {"id": "y", "items": [{"a": 5, "b": {"c": 0}, "more": 1}], "empty": [1], "z": 0}
    assert doc_examples.missing_keys(documented, actual) == []
    assert doc_examples.missing_keys(documented, {"id": 1, "items": [], "empty": []}) == [
        "items[] (no items)"
    ]
    assert doc_examples.missing_keys(documented, {"items": [{"b": {}}]}) == [
        "id",
        "items[].a",
        "items[].b.c",
        "empty",
    ]


# --- the story, against a real central ----------------------------------------------------


def _operation(method: str, path: str, paths: Mapping[str, Any]) -> str | None:
    """The OpenAPI path template serving ``method path``; where a fixed path and a template
    both match (``/bookings/verify``, ``/bookings/{booking_id}``), the fixed one."""
    matches = []
    for template, operations in paths.items():
        pattern, parameters = re.subn(r"\\\{[^/]+?\\\}", "[^/]+", re.escape(template))
        if method.lower() in operations and re.fullmatch(pattern, path):
            matches.append((parameters, template))
    return min(matches)[1] if matches else None


def _send(request: Request) -> tuple[int, str, str]:
    """Status, media type and text of the answer; of an event stream, up to its first event."""
    url = urlsplit(request.url)
    connection = http.client.HTTPConnection(url.hostname or "", url.port, timeout=30)
    try:
        target = url.path + (f"?{url.query}" if url.query else "")
        connection.request(request.method, target, request.body, dict(request.headers))
        response = connection.getresponse()
        media = (response.getheader("Content-Type") or "").split(";")[0]
        if media != "text/event-stream":
            return response.status, media, response.read().decode()
        lines: list[str] = []
        # The stream never ends: read up to the blank line closing the first event.
        while (line := response.readline().decode()) and (line.strip() or not lines):
            if line.strip() and not line.startswith(":"):
                lines.append(line.rstrip("\r\n"))
        return response.status, media, "\n".join(lines)
    finally:
        connection.close()


def _check_answer(example: Example, media: str, text: str) -> Any:
    """The answer as JSON (for `keep`), after checking it against the documented one."""
    where = example.where()
    if media == "text/event-stream":
        assert example.answer is not None, where
        event, data = doc_examples.first_event(example.answer)
        got_event, got_data = doc_examples.first_event(text)
        assert got_event == event, (where, text)
        assert doc_examples.missing_keys(json.loads(data), json.loads(got_data)) == [], where
        return None
    if example.answer_kind == "text":
        assert example.answer is not None
        for line in example.answer.splitlines():
            assert line.rsplit(" ", 1)[0] in text, (where, line)
        return None
    answer = json.loads(text)
    if example.answer is not None:
        missing = doc_examples.missing_keys(json.loads(example.answer), answer)
        assert missing == [], f"{where}: the answer lacks {missing}: {text[:2000]}"
    return answer


def _arrival(now: datetime) -> datetime:
    """About an hour from now, as "Before you start" says; an hour later if that is in the
    centre's last hour of the day, so that the arrival's sessions start on $DAY."""
    arrival = (now + timedelta(hours=1)).astimezone(CENTRE_ZONE)
    return arrival + timedelta(hours=1) if arrival.hour == 23 else arrival


def _stage(deployment: Deployment, board: CabinetSimulator, tmp_path: Path) -> Child:
    """The agent with its cabinet online, and its door forced once: an open alarm; and a van
    of the station whose GPS (a simulated receiver, returned) the centre follows."""
    config = tmp_path / "agent.toml"
    config.write_text(
        f'id = "{AGENT}"\nstation = "s1"\n[[devices]]\nkind = "cabinet"\nid = "{CABINET}"\n'
        f'transport = "{board.port}"\nstate_dir = "{tmp_path / "cabinets"}"\npoll_interval = 0.2\n'
    )
    deployment.start_agent(AGENT, extra=["--config", str(config)])
    admin = deployment.token(Role.ADMIN, name="stage")

    def cabinet_known() -> bool:
        status, devices = http_get(f"{deployment.base}/api/v1/devices?agent={AGENT}", admin)
        return status == 200 and any(
            d["id"] == CABINET and d["online"] and "slot_status" in d["state"] for d in devices
        )

    wait_until(cabinet_known, 20, "the cabinet's state at the centre")
    board.send("force 2")

    def alarm_open() -> bool:
        status, page = http_get(f"{deployment.base}/api/v1/alarms?kind=door_forced", admin)
        return status == 200 and len(page["items"]) == 1

    wait_until(alarm_open, 20, "the forced door's alarm")

    receiver, pty = gps_receiver(deployment, period=1.0)
    van = tmp_path / "van.toml"
    van.write_text(f'[[devices]]\nkind = "gps"\nid = "{VAN_GPS}"\ntransport = "{pty}"\n')
    deployment.start_agent(VAN_AGENT, extra=["--config", str(van)])

    def van_seen() -> bool:
        status, found = http_get(f"{deployment.base}/api/v1/vans", admin)
        return status == 200 and any(v["device"] == VAN_GPS and v["track"] for v in found)

    wait_until(van_seen, 30, "the van's track at the centre")
    return receiver


def test_every_example_runs_against_a_real_central(
    deployment: Deployment, cabinet_board: CabinetSimulator, tmp_path: Path
) -> None:
    deployment.start_central({"PRECINCT_TIMEZONE": "Asia/Shanghai", "PRECINCT_PLAN_INTERVAL": "0"})
    receiver = _stage(deployment, cabinet_board, tmp_path)
    try:
        _run_story(deployment)
    finally:
        receiver.kill()


def _run_story(deployment: Deployment) -> None:
    now = datetime.now(UTC).replace(microsecond=0)
    arrival = _arrival(now)
    variables = {
        "PRECINCT": deployment.base,
        "TOKEN": deployment.token(Role.CENTRE, name="duty"),
        "ADMIN_TOKEN": deployment.token(Role.ADMIN, name="root"),
        "ARRIVAL": arrival.isoformat(),
        "BROUGHT_IN": (now - timedelta(minutes=10)).astimezone(CENTRE_ZONE).isoformat(),
        "DAY": arrival.date().isoformat(),
    }
    status, openapi = http_get(f"{deployment.base}/openapi.json")
    assert status == 200
    paths: dict[str, Any] = openapi["paths"]
    served = {
        (method.upper(), template)
        for template, operations in paths.items()
        for method in operations
        if method in METHODS
    }

    shown: set[tuple[str, str]] = set()
    for example in document():
        request = curl_request(example.command, variables)
        template = _operation(request.method, urlsplit(request.url).path, paths)
        if template is None:
            # A route still being built on another branch: skipped until the central serves
            # it, then run like any other (the mark is only ever an allowance, never a skip of
            # a route that exists).
            assert example.skip_unless_served, f"{example.where()}: no such route is served"
            continue
        shown.add((request.method, template))
        status, media, text = _send(request)
        assert status == example.status, f"{example.where()}: {status} {text[:2000]}"
        answer = _check_answer(example, media, text)
        for name, path in example.keep.items():
            variables[name] = str(doc_examples.at_path(answer, path))

    assert served - shown - NOT_SHOWN.keys() == set(), "routes without an example in the doc"
    assert NOT_SHOWN.keys() <= served, "NOT_SHOWN names a route the central no longer serves"
    assert deployment.central is not None
    assert deployment.central.alive()
