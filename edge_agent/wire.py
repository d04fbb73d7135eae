"""The wire contract between edge agents and the centre.

Every topic string and every field name of a message on the broker is defined here, once; the
agent and the central service both import this module. The format is documented for people in
``docs/protocol.md``.

Topics live under a versioned prefix with the agent id as its own level, so that a broker ACL
such as ``pattern write precinct/v1/%u/#`` confines an agent to its own subtree::

    precinct/v1/<agent>/status       birth (retained) and offline / last will (retained)
    precinct/v1/<agent>/event        data, class "event": never dropped
    precinct/v1/<agent>/telemetry    data, class "telemetry": may be thinned, every drop counted
    precinct/v1/<agent>/cmd          commands, centre -> agent
    precinct/v1/<agent>/ack          command results, agent -> centre
    precinct/v1/<agent>/health       the agent's own health (outbox, disk, certificate), periodic

Decoding raises :class:`WireError` (with a short machine-readable ``reason``) and nothing else.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any, Final

VERSION: Final = 1
PREFIX: Final = f"precinct/v{VERSION}"
# Larger payloads are refused unread; the biggest legitimate body (an inventory) is a few KiB.
MAX_PAYLOAD_BYTES: Final = 64 * 1024
MAX_NAME_LENGTH: Final = 64

# Device availability travels as an event of this kind, body {"online": bool, "class": str}.
AVAILABILITY_KIND: Final = "availability"
# A van's GPS position travels as telemetry of this kind, body {"lat", "lon", "speed_mps",
# "course", "mode"} and optionally "hdop", "eph" (``devices.gps.fix.Fix.body``); its time is the
# fix time.
FIX_KIND: Final = "fix"
# The centre asks an agent to publish sequence numbers ``first..last`` of its epoch again.
REPLAY_COMMAND: Final = "replay"

_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.:-]{0,63}")


class MessageClass(StrEnum):
    EVENT = "event"
    TELEMETRY = "telemetry"


class Channel(StrEnum):
    """The last topic level: what kind of message travels on it."""

    STATUS = "status"
    EVENT = "event"
    TELEMETRY = "telemetry"
    COMMAND = "cmd"
    ACK = "ack"
    HEALTH = "health"


class WireError(ValueError):
    """A message that does not follow the contract; ``reason`` is a stable short label."""

    def __init__(self, reason: str, detail: str) -> None:
        super().__init__(f"{reason}: {detail}")
        self.reason = reason
        self.detail = detail


def is_valid_name(name: str) -> bool:
    """Agent, device and kind names: short, printable, no topic wildcards or separators."""
    return _NAME.fullmatch(name) is not None


def topic(agent: str, channel: Channel) -> str:
    if not is_valid_name(agent):
        raise WireError("bad_agent", f"agent id {agent!r} is not a valid name")
    return f"{PREFIX}/{agent}/{channel.value}"


def subscription(channel: Channel, share_group: str | None = None) -> str:
    """The filter that matches ``channel`` for every agent, optionally as a shared subscription."""
    pattern = f"{PREFIX}/+/{channel.value}"
    return f"$share/{share_group}/{pattern}" if share_group else pattern


def parse_topic(topic_name: str) -> tuple[str, Channel]:
    parts = topic_name.split("/")
    if len(parts) != 4 or f"{parts[0]}/{parts[1]}" != PREFIX:
        raise WireError("bad_topic", f"topic {topic_name[:200]!r} is not under {PREFIX}/<agent>/")
    agent, last = parts[2], parts[3]
    if not is_valid_name(agent):
        raise WireError("bad_topic", f"topic agent {agent[:80]!r} is not a valid name")
    try:
        return agent, Channel(last)
    except ValueError:
        raise WireError("bad_topic", f"unknown channel {last[:80]!r}") from None


def format_time(moment: datetime) -> str:
    """UTC, microseconds, ``Z`` suffix: sortable as text."""
    if moment.tzinfo is None:
        raise ValueError("naive datetime: the wire carries aware UTC times only")
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def parse_time(text: object, field: str) -> datetime:
    if not isinstance(text, str) or len(text) > 40:
        raise WireError("bad_field", f"{field} must be an ISO 8601 string")
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise WireError("bad_field", f"{field} {text!r} is not ISO 8601") from None
    if moment.tzinfo is None:
        raise WireError("bad_field", f"{field} {text!r} has no time zone")
    return moment.astimezone(UTC)


@dataclass(frozen=True, slots=True)
class Envelope:
    """One data message: a reading or an event, stamped when it entered the agent's outbox.

    ``epoch`` names the outbox that numbered it (a random id made with the outbox file), so that
    a wiped agent, which numbers from 1 again, never repeats an ``(agent, epoch, seq)``. It is
    ``None`` only for messages of an agent from before epochs (the field is absent on the wire).
    """

    agent: str
    epoch: str | None
    session: int
    seq: int
    time: datetime
    device: str
    kind: str
    cls: MessageClass
    body: dict[str, Any]

    def encode(self) -> bytes:
        return encode_envelope(
            self.agent,
            self.epoch,
            self.session,
            self.seq,
            format_time(self.time),
            self.device,
            self.kind,
            self.cls,
            json.dumps(self.body, separators=(",", ":")),
        )


def encode_envelope(
    agent: str,
    epoch: str | None,
    session: int,
    seq: int,
    time_text: str,
    device: str,
    kind: str,
    cls: MessageClass,
    body_json: str,
) -> bytes:
    """Build the payload from parts; the outbox keeps the body already serialised.

    ``epoch=None`` leaves the field out, as an agent from before epochs did.
    """
    fields = {
        "v": VERSION,
        "agent": agent,
        "session": session,
        "seq": seq,
        "time": time_text,
        "device": device,
        "kind": kind,
        "class": cls.value,
    }
    if epoch is not None:
        fields["epoch"] = epoch
    head = json.dumps(fields, separators=(",", ":"))
    return f'{head[:-1]},"body":{body_json}}}'.encode()


def _load_object(payload: bytes) -> dict[str, Any]:
    if len(payload) > MAX_PAYLOAD_BYTES:
        raise WireError("oversized", f"{len(payload)} bytes > {MAX_PAYLOAD_BYTES}")
    try:
        value = _DECODER.decode(payload.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError, RecursionError) as exc:
        raise WireError("bad_json", str(exc)[:200]) from None
    if not isinstance(value, dict):
        raise WireError("bad_json", "payload is not a JSON object")
    version = value.get("v")
    if version != VERSION or isinstance(version, bool):
        raise WireError("bad_version", f"version {str(version)[:20]!r}, expected {VERSION}")
    return value


def _refuse_constant(name: str) -> float:
    raise json.JSONDecodeError(f"{name} is not allowed", name, 0)


# Non-finite numbers are not JSON; refusing them keeps the store and the API strictly JSON.
# One decoder for all messages: json.loads with arguments builds a new one per call.
_DECODER = json.JSONDecoder(parse_constant=_refuse_constant)


def _int_field(value: dict[str, Any], field: str, minimum: int) -> int:
    item = value.get(field)
    if not isinstance(item, int) or isinstance(item, bool) or not minimum <= item < 2**63:
        raise WireError("bad_field", f"{field} must be an integer >= {minimum}")
    return item


def _name_field(value: dict[str, Any], field: str) -> str:
    item = value.get(field)
    if not isinstance(item, str) or not is_valid_name(item):
        raise WireError("bad_field", f"{field} must be a name of 1-{MAX_NAME_LENGTH} characters")
    return item


def _epoch_field(value: dict[str, Any]) -> str | None:
    # Absent: an agent of the previous release. Present, it must be a name: the empty string is
    # how the centre files the numbers of such agents, so no agent can claim it.
    if "epoch" not in value:
        return None
    return _name_field(value, "epoch")


def decode_envelope(payload: bytes, topic_agent: str, topic_class: MessageClass) -> Envelope:
    """Validate a data message received on ``precinct/v1/<topic_agent>/<topic_class>``."""
    value = _load_object(payload)
    missing = [
        f
        for f in ("agent", "session", "seq", "time", "device", "kind", "class", "body")
        if f not in value
    ]
    if missing:
        raise WireError("missing_field", ", ".join(missing))
    agent = _name_field(value, "agent")
    if agent != topic_agent:
        # Under MQTT 3.1.1 an ACL denial is silent, so the payload's claim is checked here too.
        raise WireError("agent_mismatch", f"payload agent {agent!r} on topic of {topic_agent!r}")
    if value["class"] != topic_class.value:
        raise WireError("class_mismatch", f"class {str(value['class'])[:20]!r} on {topic_class}")
    body = value["body"]
    if not isinstance(body, dict):
        raise WireError("bad_field", "body must be a JSON object")
    return Envelope(
        agent=agent,
        epoch=_epoch_field(value),
        session=_int_field(value, "session", 0),
        seq=_int_field(value, "seq", 1),
        time=parse_time(value["time"], "time"),
        device=_name_field(value, "device"),
        kind=_name_field(value, "kind"),
        cls=topic_class,
        body=body,
    )


# An outbox's oldest message older than this (a century) is a broken clock, not a backlog.
MAX_HEALTH_AGE_SECONDS: Final = 100 * 365 * 86400.0


@dataclass(frozen=True, slots=True)
class Health:
    """What an agent says about itself: its outbox, its disk and its certificate.

    ``report`` counts the agent's reports within one ``session`` (from 1 at each start), so
    that the centre keeps the newest whatever order they arrive in; ``time`` is when the agent
    took it. ``certificate_expires`` is ``None`` for an agent without a client certificate.
    """

    report: int
    time: datetime
    outbox_depth: int
    outbox_oldest_age_seconds: float
    disk_full: bool
    certificate_expires: datetime | None = None

    def fields(self) -> dict[str, Any]:
        value: dict[str, Any] = {
            "report": self.report,
            "time": format_time(self.time),
            "outbox_depth": self.outbox_depth,
            "outbox_oldest_age_seconds": self.outbox_oldest_age_seconds,
            "disk_full": self.disk_full,
        }
        if self.certificate_expires is not None:
            value["certificate_expires"] = format_time(self.certificate_expires)
        return value


def decode_health_fields(value: dict[str, Any]) -> Health:
    """The health fields of a health message or of a birth's ``health`` object."""
    age = value.get("outbox_oldest_age_seconds")
    if (
        not isinstance(age, int | float)
        or isinstance(age, bool)
        or not 0 <= age <= MAX_HEALTH_AGE_SECONDS
    ):
        raise WireError("bad_field", "outbox_oldest_age_seconds must be a number of seconds >= 0")
    disk_full = value.get("disk_full")
    if not isinstance(disk_full, bool):
        raise WireError("bad_field", "disk_full must be true or false")
    expires = value.get("certificate_expires")
    return Health(
        report=_int_field(value, "report", 1),
        time=parse_time(value.get("time"), "time"),
        outbox_depth=_int_field(value, "outbox_depth", 0),
        outbox_oldest_age_seconds=float(age),
        disk_full=disk_full,
        certificate_expires=(
            None if expires is None else parse_time(expires, "certificate_expires")
        ),
    )


@dataclass(frozen=True, slots=True)
class HealthReport:
    """A periodic health message, or the health a birth carries, with whose it is."""

    agent: str
    epoch: str | None
    session: int
    health: Health

    def encode(self) -> bytes:
        value: dict[str, Any] = {"v": VERSION, "agent": self.agent, "session": self.session}
        if self.epoch is not None:
            value["epoch"] = self.epoch
        value |= self.health.fields()
        return json.dumps(value, separators=(",", ":")).encode()


def decode_health(payload: bytes, topic_agent: str) -> HealthReport:
    """Validate a health message received on ``precinct/v1/<topic_agent>/health``."""
    value = _load_object(payload)
    agent = _name_field(value, "agent")
    if agent != topic_agent:
        raise WireError("agent_mismatch", f"payload agent {agent!r} on topic of {topic_agent!r}")
    return HealthReport(
        agent=agent,
        epoch=_epoch_field(value),
        session=_int_field(value, "session", 0),
        health=decode_health_fields(value),
    )


@dataclass(frozen=True, slots=True)
class Status:
    """Birth (``online``) or offline notice; retained on the status topic.

    ``session`` counts agent starts and survives restarts; ``connection`` counts connects within
    a session. Together they order status messages within one ``epoch`` (the outbox's identity,
    see :class:`Envelope`), so a stale retained will never overrides a newer birth. A wiped agent
    starts a new epoch at session 1; ``first_seq`` is the first sequence number of its epoch (1,
    or where an outbox from before epochs went on counting), so the centre sees no false gap.
    ``epoch`` and ``first_seq`` are ``None`` only from an agent of the previous release.
    A birth also carries the agent's ``health`` (``None`` in a will, and from an agent of the
    previous release).
    """

    agent: str
    online: bool
    session: int
    connection: int
    time: datetime
    station: str | None = None
    reason: str | None = None
    epoch: str | None = None
    first_seq: int | None = None
    health: Health | None = None

    def health_report(self) -> HealthReport | None:
        if self.health is None:
            return None
        return HealthReport(self.agent, self.epoch, self.session, self.health)

    def encode(self) -> bytes:
        value: dict[str, Any] = {
            "v": VERSION,
            "agent": self.agent,
            "state": "online" if self.online else "offline",
            "session": self.session,
            "connection": self.connection,
            "time": format_time(self.time),
        }
        if self.epoch is not None:
            value["epoch"] = self.epoch
        if self.first_seq is not None:
            value["first_seq"] = self.first_seq
        if self.station is not None:
            value["station"] = self.station
        if self.reason is not None:
            value["reason"] = self.reason
        if self.health is not None:
            value["health"] = self.health.fields()
        return json.dumps(value, separators=(",", ":")).encode()


def decode_status(payload: bytes, topic_agent: str) -> Status:
    value = _load_object(payload)
    agent = _name_field(value, "agent")
    if agent != topic_agent:
        raise WireError("agent_mismatch", f"payload agent {agent!r} on topic of {topic_agent!r}")
    state = value.get("state")
    if state not in ("online", "offline"):
        raise WireError("bad_field", "state must be online or offline")
    station = value.get("station")
    if station is not None and (not isinstance(station, str) or not is_valid_name(station)):
        raise WireError("bad_field", "station must be a name")
    reason = value.get("reason")
    health = value.get("health")
    if health is not None and not isinstance(health, dict):
        raise WireError("bad_field", "health must be a JSON object")
    return Status(
        agent=agent,
        online=state == "online",
        session=_int_field(value, "session", 0),
        connection=_int_field(value, "connection", 0),
        time=parse_time(value.get("time"), "time"),
        station=station,
        reason=reason[:200] if isinstance(reason, str) else None,
        epoch=_epoch_field(value),
        first_seq=_int_field(value, "first_seq", 1) if "first_seq" in value else None,
        health=None if health is None else decode_health_fields(health),
    )


@dataclass(frozen=True, slots=True)
class Command:
    """A request from the centre; an agent executes it at most once and never after ``expires``."""

    id: str
    name: str
    expires: datetime
    args: dict[str, Any]

    def encode(self) -> bytes:
        return json.dumps(
            {
                "v": VERSION,
                "id": self.id,
                "name": self.name,
                "expires": format_time(self.expires),
                "args": self.args,
            },
            separators=(",", ":"),
        ).encode()


def decode_command(payload: bytes) -> Command:
    value = _load_object(payload)
    args = value.get("args", {})
    if not isinstance(args, dict):
        raise WireError("bad_field", "args must be a JSON object")
    return Command(
        id=_name_field(value, "id"),
        name=_name_field(value, "name"),
        expires=parse_time(value.get("expires"), "expires"),
        args=args,
    )


@dataclass(frozen=True, slots=True)
class ReplayArgs:
    """The arguments of ``replay``: publish ``first..last`` of ``epoch`` again.

    An agent refuses a replay for an epoch that is not its own (a wiped agent cannot send what
    the old disk held). ``epoch`` is ``None`` only from a centre of the previous release.
    """

    epoch: str | None
    first: int
    last: int

    def to_args(self) -> dict[str, Any]:
        args: dict[str, Any] = {"first": self.first, "last": self.last}
        if self.epoch is not None:
            args["epoch"] = self.epoch
        return args


def decode_replay_args(args: dict[str, Any]) -> ReplayArgs:
    first = _int_field(args, "first", 1)
    last = _int_field(args, "last", 1)
    if first > last:
        raise WireError("bad_field", "replay needs first <= last")
    return ReplayArgs(epoch=_epoch_field(args), first=first, last=last)


@dataclass(frozen=True, slots=True)
class Ack:
    """The result of one command: ``ok`` with an optional result, or an error text."""

    id: str
    ok: bool
    time: datetime
    result: dict[str, Any] | None = None
    error: str | None = None

    def encode(self) -> bytes:
        value: dict[str, Any] = {
            "v": VERSION,
            "id": self.id,
            "ok": self.ok,
            "time": format_time(self.time),
        }
        if self.result is not None:
            value["result"] = self.result
        if self.error is not None:
            value["error"] = self.error
        return json.dumps(value, separators=(",", ":")).encode()


def decode_ack(payload: bytes) -> Ack:
    value = _load_object(payload)
    ok = value.get("ok")
    if not isinstance(ok, bool):
        raise WireError("bad_field", "ok must be true or false")
    result = value.get("result")
    error = value.get("error")
    if result is not None and not isinstance(result, dict):
        raise WireError("bad_field", "result must be a JSON object")
    return Ack(
        id=_name_field(value, "id"),
        ok=ok,
        time=parse_time(value.get("time"), "time"),
        result=result,
        error=str(error)[:500] if error is not None else None,
    )
