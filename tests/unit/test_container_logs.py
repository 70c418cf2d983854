"""The json-file container log: record encoding, line splitting, tail and follow."""

from __future__ import annotations

import json

from donkey.logs import container as logs


def test_format_time_is_rfc3339_utc_nanoseconds():
    assert logs.format_time(1_700_000_000_123_456_789) == "2023-11-14T22:13:20.123456789Z"
    assert logs.format_time(0) == "1970-01-01T00:00:00.000000000Z"


def test_encode_record_docker_keys():
    line = logs.encode_record(b"hello\n", "stdout", 1_700_000_000_000_000_001)
    assert line.endswith(b"\n")
    assert json.loads(line) == {"log": "hello\n", "stream": "stdout",
                                "time": "2023-11-14T22:13:20.000000001Z"}


def test_encode_record_invalid_utf8_replaced():
    record = json.loads(logs.encode_record(b"bad \xff byte\n", "stderr", 0))
    assert record["log"] == "bad \ufffd byte\n"


def test_encode_record_keeps_unicode_and_controls():
    record = json.loads(logs.encode_record("é\t\"q\"\r\n".encode(), "stdout", 0))
    assert record["log"] == "é\t\"q\"\r\n"


def test_splitter_keeps_partial_line_until_newline():
    splitter = logs.LineSplitter("stdout")
    assert splitter.feed(b"one\ntw") == [b"one\n"]
    assert splitter.feed(b"o\nthree") == [b"two\n"]
    assert splitter.feed(b"") == []
    assert splitter.flush() == [b"three"]
    assert splitter.flush() == []


def test_splitter_long_line_is_one_record():
    splitter = logs.LineSplitter("stdout")
    text = b"x" * 40000
    lines = []
    for start in range(0, len(text), 4096):
        lines += splitter.feed(text[start:start + 4096])
    lines += splitter.feed(b"\n")
    assert lines == [text + b"\n"]


def test_splitter_cuts_past_maximum():
    splitter = logs.LineSplitter("stdout", max_bytes=10)
    assert splitter.feed(b"a" * 25) == [b"a" * 10, b"a" * 10]
    assert splitter.feed(b"\n") == [b"aaaaa\n"]


def test_writer_and_reader_round_trip(tmp_path):
    path = str(tmp_path / "c-json.log")
    writer = logs.LogWriter.open(path)
    writer.write_lines([b"a\n", b"b\n"], "stdout")
    writer.write_lines([b"oops\n"], "stderr")
    writer.write_lines([b"partial"], "stdout")
    writer.close()

    records, offset = logs.read_records(path)
    assert [(record["log"], record["stream"]) for record in records] == [
        ("a\n", "stdout"), ("b\n", "stdout"), ("oops\n", "stderr"), ("partial", "stdout")]
    with open(path, "rb") as stream:
        assert offset == len(stream.read())


def test_read_records_tail(tmp_path):
    path = str(tmp_path / "c-json.log")
    writer = logs.LogWriter.open(path)
    writer.write_lines([f"{index}\n".encode() for index in range(10)], "stdout")
    writer.close()

    assert [record["log"] for record in logs.read_records(path, tail=3)[0]] == \
        ["7\n", "8\n", "9\n"]
    assert logs.read_records(path, tail=0)[0] == []
    assert len(logs.read_records(path, tail=100)[0]) == 10


def test_read_records_skips_unfinished_and_damaged_lines(tmp_path):
    path = tmp_path / "c-json.log"
    good = logs.encode_record(b"ok\n", "stdout", 0)
    path.write_bytes(good + b"not json\n" + good[:10])
    records, offset = logs.read_records(str(path))
    assert [record["log"] for record in records] == ["ok\n"]
    assert offset == len(good) + len(b"not json\n")


def test_read_records_missing_file(tmp_path):
    assert logs.read_records(str(tmp_path / "absent.log")) == ([], 0)


def test_follow_reads_until_stopped(tmp_path):
    path = str(tmp_path / "c-json.log")
    writer = logs.LogWriter.open(path)
    writer.write_lines([b"first\n"], "stdout")
    _, offset = logs.read_records(path)

    calls = []

    def is_running() -> bool:
        calls.append(1)
        if len(calls) == 2:
            # Written while the follower sleeps, then the container "exits".
            writer.write_lines([b"second\n"], "stdout")
            return True
        if len(calls) == 3:
            writer.write_lines([b"last\n"], "stderr")
            return False
        return True

    followed = list(logs.follow_records(path, offset, is_running, poll_interval=0))
    writer.close()
    assert [(record["log"], record["stream"]) for record in followed] == [
        ("second\n", "stdout"), ("last\n", "stderr")]


def test_follow_waits_for_file_to_appear(tmp_path):
    path = str(tmp_path / "c-json.log")
    calls = []

    def is_running() -> bool:
        calls.append(1)
        if len(calls) == 2:
            writer = logs.LogWriter.open(path)
            writer.write_lines([b"late\n"], "stdout")
            writer.close()
        return len(calls) < 3

    followed = list(logs.follow_records(path, 0, is_running, poll_interval=0))
    assert [record["log"] for record in followed] == ["late\n"]


def test_follow_missing_file_after_exit_ends(tmp_path):
    assert list(logs.follow_records(str(tmp_path / "gone.log"), 0, lambda: False)) == []
