"""The bare subscriber of the ingest benchmark: paho-mqtt that only counts messages.

It is the ceiling the central ingest is compared with: the same broker, the same persistent
session drained at QoS 1, with no validation, no store and paho's automatic PUBACK. Run as
``python -m bench.ingest_subscriber --broker URL --client-id ID --expect N``; it prints one JSON
line with the receive times of the first and the last message (``time.perf_counter`` seconds),
the count and the CPU seconds it used in between.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
import threading
import time
from collections.abc import Sequence
from typing import Any

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.reasoncodes import ReasonCode

from edge_agent.broker_url import parse_broker_url
from edge_agent.wire import Channel, subscription

log = logging.getLogger(__name__)

TOPICS = (subscription(Channel.TELEMETRY), subscription(Channel.EVENT))
_CONNECT_TIMEOUT = 10.0


def _client(client_id: str) -> mqtt.Client:
    return mqtt.Client(
        CallbackAPIVersion.VERSION2,
        client_id=client_id,
        clean_session=False,
        protocol=mqtt.MQTTv311,
    )


def create_session(broker: str, client_id: str) -> None:
    """Connect once with a persistent session and subscribe, so that the broker queues for it."""
    url = parse_broker_url(broker)
    granted = threading.Event()
    failed: list[str] = []
    client = _client(client_id)

    def on_connect(
        client: mqtt.Client, _userdata: Any, _flags: Any, reason: ReasonCode, _properties: Any
    ) -> None:
        if reason.is_failure:
            failed.append(f"connect refused: {reason}")
            granted.set()
            return
        client.subscribe([(name, 1) for name in TOPICS])

    def on_subscribe(
        _client: mqtt.Client, _userdata: Any, _mid: int, reasons: list[ReasonCode], _properties: Any
    ) -> None:
        failed.extend(f"subscription refused: {r}" for r in reasons if r.is_failure)
        granted.set()

    client.on_connect = on_connect
    client.on_subscribe = on_subscribe
    client.connect(url.host, url.port, keepalive=30)
    client.loop_start()
    try:
        if not granted.wait(_CONNECT_TIMEOUT):
            raise TimeoutError(f"no SUBACK from {broker} within {_CONNECT_TIMEOUT} s")
        if failed:
            raise RuntimeError("; ".join(failed))
    finally:
        client.disconnect()
        client.loop_stop()


class _Counter:
    """paho callbacks; the network thread is the only writer."""

    def __init__(self, expect: int) -> None:
        self.expect = expect
        self.count = 0
        self.first = 0.0
        self.last = 0.0
        self.cpu_first = 0.0
        self.cpu_last = 0.0
        self.done = threading.Event()
        self.problem: str | None = None

    def on_connect(
        self, _client: mqtt.Client, _userdata: Any, flags: Any, reason: ReasonCode, _properties: Any
    ) -> None:
        if reason.is_failure:
            self.problem = f"connect refused: {reason}"
            self.done.set()
            return
        if not flags.session_present:
            # A fresh session means the broker kept nothing for us: nothing will arrive.
            self.problem = "the broker had no session for this client id"
            self.done.set()

    def on_message(self, _client: mqtt.Client, _userdata: Any, _message: mqtt.MQTTMessage) -> None:
        now = time.perf_counter()
        self.count += 1
        self.last = now
        if self.count == 1:
            self.first = now
            self.cpu_first = time.process_time()
        if self.count == self.expect:
            self.cpu_last = time.process_time()
            self.done.set()


def count_messages(
    broker: str, client_id: str, expect: int, timeout: float, idle: float
) -> dict[str, Any]:
    """Drain the persistent session of ``client_id`` until ``expect`` messages have arrived."""
    url = parse_broker_url(broker)
    counter = _Counter(expect)
    client = _client(client_id)
    client.on_connect = counter.on_connect
    client.on_message = counter.on_message
    client.connect(url.host, url.port, keepalive=30)
    client.loop_start()
    deadline = time.monotonic() + timeout
    started = time.perf_counter()
    try:
        while not counter.done.wait(0.2):
            now = time.perf_counter()
            if time.monotonic() > deadline:
                counter.problem = f"timed out after {timeout} s"
                break
            last_seen = counter.last if counter.count else started
            if now - last_seen > idle:
                counter.problem = f"no message for {idle} s"
                break
    finally:
        client.disconnect()
        client.loop_stop()
    cpu_last = counter.cpu_last if counter.count >= expect else time.process_time()
    return {
        "count": counter.count,
        "first": counter.first,
        "last": counter.last,
        "cpu_seconds": cpu_last - counter.cpu_first if counter.count else 0.0,
        "problem": counter.problem,
    }


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m bench.ingest_subscriber",
        description="Count messages of a persistent MQTT session.",
    )
    parser.add_argument("--broker", required=True, metavar="URL")
    parser.add_argument("--client-id", required=True)
    parser.add_argument("--expect", type=int, required=True, help="stop after this many")
    parser.add_argument("--timeout", type=float, default=600.0, help="overall limit, seconds")
    parser.add_argument(
        "--idle",
        type=float,
        default=30.0,
        help="give up after this long without a message, seconds",
    )
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING)
    result = count_messages(args.broker, args.client_id, args.expect, args.timeout, args.idle)
    print(json.dumps(result), flush=True)
    return 0 if result["problem"] is None else 1


if __name__ == "__main__":
    sys.exit(main())
