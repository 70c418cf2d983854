"""Container log files in Docker's json-file format: one JSON object per line.

Each record is {"log": "...\\n", "stream": "stdout" or "stderr", "time": RFC 3339 in UTC
with nanoseconds}. A line is written as one record however long it is, up to
MAX_RECORD_BYTES; a longer line is cut into records whose "log" has no final newline, and
readers join them back by printing the records one after another.

The monitor of every detached container imports this module, so it imports only os, json
and time.
"""

from __future__ import annotations

import json
import os
import time

STDOUT = "stdout"
STDERR = "stderr"

# Past this many bytes without a newline, the pending text is written as a partial
# record, so a container that never prints a newline cannot grow the monitor without limit.
MAX_RECORD_BYTES = 1024 * 1024

_READ_CHUNK = 65536


def format_time(time_ns: int) -> str:
    """Format nanoseconds since the epoch as Docker does: 2024-05-01T10:20:30.123456789Z."""
    seconds, nanoseconds = divmod(time_ns, 1_000_000_000)
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(seconds)) + f".{nanoseconds:09d}Z"


def encode_record(data: bytes, stream: str, time_ns: int) -> bytes:
    """Encode one record; bytes that are not UTF-8 become U+FFFD, as Docker's encoder does."""
    record = {"log": data.decode("utf-8", errors="replace"), "stream": stream,
              "time": format_time(time_ns)}
    return json.dumps(record, ensure_ascii=False).encode("utf-8") + b"\n"


class LineSplitter:
    """Cut one stream's bytes into lines, keeping an unfinished line until its newline."""

    def __init__(self, stream: str, max_bytes: int = MAX_RECORD_BYTES) -> None:
        self.stream = stream
        self.max_bytes = max_bytes
        self.pending = b""

    def feed(self, data: bytes) -> list[bytes]:
        """Return the complete lines (with their newline) now available, in order."""
        self.pending += data
        lines = []
        start = 0
        while True:
            end = self.pending.find(b"\n", start)
            if end < 0:
                break
            lines.append(self.pending[start:end + 1])
            start = end + 1
        self.pending = self.pending[start:]
        while len(self.pending) >= self.max_bytes:
            lines.append(self.pending[:self.max_bytes])
            self.pending = self.pending[self.max_bytes:]
        return lines

    def flush(self) -> list[bytes]:
        """Return the unfinished line, if any, at the end of the stream."""
        rest, self.pending = self.pending, b""
        return [rest] if rest else []


class LogWriter:
    """Append records to a container's log file through an O_APPEND descriptor."""

    def __init__(self, fd: int) -> None:
        self.fd = fd

    @classmethod
    def open(cls, path: str) -> LogWriter:
        flags = os.O_WRONLY | os.O_CREAT | os.O_APPEND | os.O_CLOEXEC
        return cls(os.open(path, flags, 0o640))

    def write_lines(self, lines: list[bytes], stream: str) -> None:
        if not lines:
            return
        now = time.time_ns()
        data = b"".join(encode_record(line, stream, now) for line in lines)
        while data:
            written = os.write(self.fd, data)
            data = data[written:]

    def close(self) -> None:
        os.close(self.fd)


def parse_record(line: bytes) -> dict | None:
    """Decode one line of a log file; None for a line that is not a record."""
    try:
        record = json.loads(line)
    except ValueError:
        return None
    if not isinstance(record, dict) or not isinstance(record.get("log"), str):
        return None
    return record


def read_records(path: str, tail: int | None = None) -> tuple[list[dict], int]:
    """Read the complete records of a log file, or its last `tail` ones.

    Returns the records and the offset just after the last complete line, where a
    follower continues. A missing file has no records.
    """
    try:
        with open(path, "rb") as stream:
            data = stream.read()
    except FileNotFoundError:
        return [], 0

    end = data.rfind(b"\n") + 1
    lines = data[:end].splitlines()
    if tail is not None:
        lines = lines[-tail:] if tail > 0 else []
    records = [record for record in map(parse_record, lines) if record is not None]
    return records, end


def follow_records(path: str, offset: int, is_running, poll_interval: float = 0.1):
    """Yield the records appended after offset until is_running() is false.

    After the container stops, the file is read once more, so the last lines it wrote
    before exiting are not lost.
    """
    pending = b""
    while True:
        running = is_running()
        try:
            with open(path, "rb") as stream:
                stream.seek(offset)
                data = stream.read()
        except FileNotFoundError:
            # Not created yet by a container that is starting, or removed with it.
            if not running:
                return
            data = b""
        offset += len(data)
        pending += data
        end = pending.rfind(b"\n") + 1
        for line in pending[:end].splitlines():
            record = parse_record(line)
            if record is not None:
                yield record
        pending = pending[end:]
        if not running:
            return
        if not data:
            time.sleep(poll_interval)
