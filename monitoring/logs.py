"""One log format for every Precinct process and the libraries it runs (uvicorn included).

``text`` is one line per record, for a terminal or the journal::

    2026-12-05T08:14:59.123Z WARNING edge_agent.uplink: broker mqtt://10.0.0.5:1883 unreachable: …

``json`` is one JSON object per line, for a log shipper: ``time`` (ISO 8601, UTC), ``level``,
``logger``, ``message``, ``exception`` (the traceback, when there is one) and the record's
extra fields (the access log's ``method``, ``path``, ``status``, ``duration_ms``, ``who``).

Both formats carry time in UTC: the centre and its vans may sit in different zones, and a log
merged from several machines must sort by its time column.
"""

from __future__ import annotations

import json
import logging
import sys
import time
from datetime import UTC, datetime
from typing import Any, TextIO

LOG_FORMATS = ("text", "json")
LOG_LEVELS = ("debug", "info", "warning", "error")

# uvicorn installs handlers of its own on these unless told not to; they must go through ours.
UVICORN_LOGGERS = ("uvicorn", "uvicorn.error", "uvicorn.access")

# Attributes every LogRecord has; whatever else a record carries came in through ``extra=``.
# uvicorn's color_message repeats the message with terminal colour codes.
_NOT_FIELDS = frozenset(
    logging.LogRecord("", 0, "", 0, "", None, None).__dict__.keys()
    | {"message", "asctime", "color_message"}
)


class TextFormatter(logging.Formatter):
    """``TIME LEVEL LOGGER: MESSAGE`` with the time in UTC, milliseconds and a ``Z``."""

    def __init__(self) -> None:
        super().__init__("%(asctime)s %(levelname)s %(name)s: %(message)s")

    def formatTime(self, record: logging.LogRecord, datefmt: str | None = None) -> str:  # noqa: N802 - logging's name
        stamp = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created))
        return f"{stamp}.{int(record.msecs):03d}Z"


class JsonFormatter(logging.Formatter):
    """One JSON object per record, on one line (newlines inside values are escaped)."""

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        for key, value in record.__dict__.items():
            if key not in _NOT_FIELDS and not key.startswith("_"):
                entry[key] = value
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        elif record.exc_text:
            entry["exception"] = record.exc_text
        if record.stack_info:
            entry["stack"] = self.formatStack(record.stack_info)
        return json.dumps(entry, ensure_ascii=False, default=str)


def formatter(log_format: str) -> logging.Formatter:
    if log_format == "json":
        return JsonFormatter()
    if log_format == "text":
        return TextFormatter()
    raise ValueError(f"log_format: must be one of {', '.join(LOG_FORMATS)}")


def setup_logging(level: str, log_format: str = "text", stream: TextIO | None = None) -> None:
    """Send every logger, uvicorn's too, through one handler on standard error in ``log_format``.

    Called once at the start of a process, before anything logs; calling it again replaces the
    handler rather than adding a second one."""
    handler = logging.StreamHandler(stream if stream is not None else sys.stderr)
    handler.setFormatter(formatter(log_format))
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(getattr(logging, level.upper(), logging.INFO))
    for name in UVICORN_LOGGERS:
        logger = logging.getLogger(name)
        for old in list(logger.handlers):
            logger.removeHandler(old)
        logger.propagate = True
