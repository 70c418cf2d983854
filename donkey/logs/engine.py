"""Engine logs: stderr or a file, as JSON lines or text, never on a container's streams.

The JSON form uses the keys runc writes and containerd parses: level, msg, time.

This is a small logger rather than the standard logging package: importing logging (with
traceback, threading, string and weakref) cost about 5 ms on every `donkey run`, and the
engine needs one destination, a few levels and %-style messages. Until configure() runs,
warnings and errors go to stderr as bare messages, as logging's last-resort handler did.
"""

from __future__ import annotations

import sys
import time

from donkey import jsontext

LOGGER_NAME = "donkey"
LEVELS = ("debug", "info", "warning", "error")

DEBUG = 10
INFO = 20
WARNING = 30
ERROR = 40
CRITICAL = 50

# Level names as configure() and the child's channel messages spell them, with the
# aliases logging accepted.
LEVEL_VALUES = {"debug": DEBUG, "info": INFO, "warning": WARNING, "warn": WARNING,
                "error": ERROR, "critical": CRITICAL, "fatal": CRITICAL}
_LEVEL_NAMES = {DEBUG: "debug", INFO: "info", WARNING: "warning", ERROR: "error",
                CRITICAL: "critical"}


def _timestamp(created: float) -> str:
    # RFC 3339 with the local offset, as logrus prints it ("2026-12-04T20:33:44+00:00").
    local = time.localtime(created)
    offset = time.strftime("%z", local)
    return time.strftime("%Y-%m-%dT%H:%M:%S", local) + offset[:3] + ":" + offset[3:]


class LogRecord:
    """One engine log entry: its level, its %-style message and arguments, and its time."""

    def __init__(self, name: str, level: int, msg: str, args: tuple,
                 fields: dict | None = None) -> None:
        self.name = name
        self.levelno = level
        self.levelname = _LEVEL_NAMES.get(level, f"level {level}").upper()
        self.msg = msg
        self.args = args
        self.created = time.time()
        self.fields = fields or {}

    def getMessage(self) -> str:  # noqa: N802 - the name logging's records use
        return self.msg % self.args if self.args else str(self.msg)


class JSONFormatter:
    def format(self, record: LogRecord) -> str:
        entry = {
            "level": record.levelname.lower(),
            "msg": record.getMessage(),
            "time": _timestamp(record.created),
        }
        entry.update(record.fields)
        return jsontext.dumps(entry)


class TextFormatter:
    def format(self, record: LogRecord) -> str:
        extra = "".join(f" {key}={value}" for key, value in record.fields.items())
        level = record.levelname.lower()
        return f"{_timestamp(record.created)} {level} {record.getMessage()}{extra}"


class _BareFormatter:
    def format(self, record: LogRecord) -> str:
        return record.getMessage()


class Handler:
    """Writes each formatted record to a stream as one line, and flushes it at once."""

    def __init__(self, stream, formatter, path: str | None = None) -> None:
        self.stream = stream
        self.formatter = formatter
        # Set for a --log file, which this handler opened and closes.
        self.path = path

    def emit(self, record: LogRecord) -> None:
        try:
            if self.stream is None:
                # Closed by shutdown(): reopen the file, as logging's FileHandler does.
                self.stream = open(self.path, "a", encoding="utf-8")
            self.stream.write(self.formatter.format(record) + "\n")
            self.stream.flush()
        except (OSError, ValueError) as error:
            # A full disk or a closed stderr must not fail the container operation.
            self._report_failure(error)

    def _report_failure(self, error: Exception) -> None:
        if self.path is None:
            # stderr itself failed: there is nowhere left to report it.
            return
        try:
            sys.stderr.write(f"donkey: writing the engine log {self.path} failed: {error}; "
                             "check the --log path and free space\n")
        except (OSError, ValueError):
            pass

    def flush(self) -> None:
        try:
            if self.stream is not None:
                self.stream.flush()
        except (OSError, ValueError):
            pass

    def close(self) -> None:
        self.flush()
        if self.path is not None and self.stream is not None:
            stream, self.stream = self.stream, None
            try:
                stream.close()
            except OSError as error:
                # close() writes what the failed flush left in the buffer.
                self._report_failure(error)


class _Config:
    """The process-wide destination and level that every Logger writes through."""

    def __init__(self) -> None:
        self.level = WARNING
        self.handler: Handler | None = None

    def current_handler(self) -> Handler:
        if self.handler is None:
            # Looked up on each use, so that a replaced sys.stderr (pytest's capture) is used.
            return Handler(sys.stderr, _BareFormatter())
        return self.handler


_config = _Config()


class Logger:
    """The logging.Logger methods that donkey calls, writing through configure()'s handler."""

    def __init__(self, name: str) -> None:
        self.name = name

    def log(self, level: int, msg: str, *args) -> None:
        if level >= _config.level:
            _config.current_handler().emit(LogRecord(self.name, level, msg, args))

    def debug(self, msg: str, *args) -> None:
        self.log(DEBUG, msg, *args)

    def info(self, msg: str, *args) -> None:
        self.log(INFO, msg, *args)

    def warning(self, msg: str, *args) -> None:
        self.log(WARNING, msg, *args)

    def error(self, msg: str, *args) -> None:
        self.log(ERROR, msg, *args)

    def exception(self, msg: str, *args) -> None:
        # At error level, without the traceback: the JSON and text forms keep one line per
        # record. The formatters written for logging left the traceback out as well.
        self.log(ERROR, msg, *args)


def configure(level: str = "warning", log_format: str = "text", path: str | None = None) -> None:
    """Send donkey's log records to stderr, or append them to path."""
    if level not in LEVELS:
        raise ValueError(f"invalid log level {level!r}: use one of {', '.join(LEVELS)}")
    formatter = JSONFormatter() if log_format == "json" else TextFormatter()
    if path:
        handler = Handler(open(path, "a", encoding="utf-8"), formatter, path)
    else:
        handler = Handler(sys.stderr, formatter)

    if _config.handler is not None:
        _config.handler.close()
    _config.handler = handler
    _config.level = LEVEL_VALUES[level]


def level_name() -> str:
    """Return the configured level as configure() takes it ("warning" before configure)."""
    for name in LEVELS:
        if _config.level <= LEVEL_VALUES[name]:
            return name
    return "error"


def writes_to_file() -> bool:
    """Tell whether engine logs go to a --log file rather than to stderr."""
    return _config.handler is not None and _config.handler.path is not None


def shutdown() -> None:
    """Flush the engine logs and close a --log file (a later record opens it again)."""
    if _config.handler is not None:
        _config.handler.close()


def get_logger(name: str) -> Logger:
    return Logger(f"{LOGGER_NAME}.{name}")
