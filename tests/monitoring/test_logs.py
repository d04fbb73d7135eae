"""The one log format: text and JSON lines, times in UTC, uvicorn's loggers through one handler."""

from __future__ import annotations

import io
import json
import logging
import re
import sys
from collections.abc import Iterator
from datetime import datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from monitoring.logs import UVICORN_LOGGERS, JsonFormatter, TextFormatter, formatter, setup_logging


def _record(message: str, *args: object, **extra: object) -> logging.LogRecord:
    record = logging.LogRecord("central.ingest", logging.WARNING, __file__, 1, message, args, None)
    record.__dict__.update(extra)
    return record


@pytest.fixture
def restored_logging() -> Iterator[None]:
    """setup_logging changes the process's loggers: put them back for the other tests."""
    root = logging.getLogger()
    saved = (list(root.handlers), root.level)
    saved_uvicorn = {
        name: (list(logging.getLogger(name).handlers), logging.getLogger(name).propagate)
        for name in UVICORN_LOGGERS
    }
    yield
    root.handlers[:] = saved[0]
    root.setLevel(saved[1])
    for name, (handlers, propagate) in saved_uvicorn.items():
        logging.getLogger(name).handlers[:] = handlers
        logging.getLogger(name).propagate = propagate


def test_a_json_line_has_time_in_utc_level_logger_and_message() -> None:
    record = _record("broker %s unreachable", "mqtt://127.0.0.1:1883")
    record.created = 1_764_900_000.25  # 2025-12-05T02:00:00.250Z
    entry = json.loads(JsonFormatter().format(record))
    assert entry == {
        "time": "2025-12-05T02:00:00.250+00:00",
        "level": "WARNING",
        "logger": "central.ingest",
        "message": "broker mqtt://127.0.0.1:1883 unreachable",
    }
    assert datetime.fromisoformat(entry["time"]).utcoffset() == timedelta(0)


def test_a_json_line_carries_the_exception_text_and_extra_fields() -> None:
    try:
        int("bad payload")
    except ValueError:
        record = logging.LogRecord(
            "edge_agent.uplink", logging.ERROR, __file__, 1, "failed", (), sys.exc_info()
        )
    record.__dict__.update({"status": 200, "who": "token:ops", "color_message": "\x1b[36m"})
    entry = json.loads(JsonFormatter().format(record))
    assert entry["exception"].startswith("Traceback")
    assert "invalid literal for int()" in entry["exception"]
    assert (entry["status"], entry["who"]) == (200, "token:ops")
    assert "color_message" not in entry  # uvicorn's copy with terminal colours


def test_a_text_line_starts_with_the_time_in_utc() -> None:
    record = _record("connected")
    record.created = 1_764_900_000.25
    record.msecs = 250.0
    line = TextFormatter().format(record)
    assert line == "2025-12-05T02:00:00.250Z WARNING central.ingest: connected"


def test_an_unknown_format_is_refused() -> None:
    with pytest.raises(ValueError, match="log_format"):
        formatter("xml")


@given(st.text(), st.text())
def test_any_message_is_one_json_line_that_reads_back(message: str, argument: str) -> None:
    line = JsonFormatter().format(_record("%s: " + message.replace("%", "%%"), argument))
    assert "\n" not in line
    assert "\r" not in line
    assert json.loads(line)["message"] == f"{argument}: {message}"


@pytest.mark.usefixtures("restored_logging")
@pytest.mark.parametrize("log_format", ["text", "json"])
def test_uvicorns_loggers_go_through_the_one_handler(log_format: str) -> None:
    # What uvicorn's own dictConfig leaves behind, without log_config=None.
    logging.getLogger("uvicorn.error").addHandler(logging.StreamHandler(io.StringIO()))
    logging.getLogger("uvicorn.access").propagate = False
    out = io.StringIO()
    setup_logging("info", log_format, stream=out)
    setup_logging("info", log_format, stream=out)  # a second call replaces, not adds
    logging.getLogger("uvicorn.error").info("Started server process [%d]", 42)
    logging.getLogger("central.app").info("store ready")
    logging.getLogger("central.app").debug("not shown at info")
    lines = out.getvalue().splitlines()
    assert len(lines) == 2
    if log_format == "json":
        assert [json.loads(line)["logger"] for line in lines] == ["uvicorn.error", "central.app"]
    else:
        pattern = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z INFO (\S+): ")
        assert [pattern.match(line) is not None for line in lines] == [True, True]
        assert "Started server process [42]" in lines[0]
