"""Engine logs: stderr or a file, as JSON lines or text, never on a container's streams.

The JSON form uses the keys runc writes and containerd parses: level, msg, time.
"""

from __future__ import annotations

import json
import logging
import sys
import time

LOGGER_NAME = "donkey"
LEVELS = ("debug", "info", "warning", "error")


def _timestamp(created: float) -> str:
    # RFC 3339 with the local offset, as logrus prints it ("2026-12-04T20:33:44+00:00").
    local = time.localtime(created)
    offset = time.strftime("%z", local)
    return time.strftime("%Y-%m-%dT%H:%M:%S", local) + offset[:3] + ":" + offset[3:]


class JSONFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        entry = {
            "level": record.levelname.lower(),
            "msg": record.getMessage(),
            "time": _timestamp(record.created),
        }
        entry.update(getattr(record, "fields", {}))
        return json.dumps(entry)


class TextFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        fields = getattr(record, "fields", {})
        extra = "".join(f" {key}={value}" for key, value in fields.items())
        level = record.levelname.lower()
        return f"{_timestamp(record.created)} {level} {record.getMessage()}{extra}"


def configure(level: str = "warning", log_format: str = "text", path: str | None = None) -> None:
    """Send donkey's log records to stderr, or append them to path."""
    if level not in LEVELS:
        raise ValueError(f"invalid log level {level!r}: use one of {', '.join(LEVELS)}")
    if path:
        handler: logging.Handler = logging.FileHandler(path)
    else:
        handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JSONFormatter() if log_format == "json" else TextFormatter())

    logger = logging.getLogger(LOGGER_NAME)
    logger.handlers[:] = [handler]
    logger.setLevel(level.upper())
    logger.propagate = False


def get_logger(name: str) -> logging.Logger:
    return logging.getLogger(f"{LOGGER_NAME}.{name}")
