"""Engine logs: levels, the text and JSON forms, --log files, and the default before configure."""

from __future__ import annotations

import json

import pytest

from donkey.logs import engine as engine_logs


@pytest.fixture(autouse=True)
def unconfigured(monkeypatch):
    # Each test starts, and leaves the next one, with no handler and the warning level.
    monkeypatch.setattr(engine_logs, "_config", engine_logs._Config())
    yield
    engine_logs.shutdown()


def test_unconfigured_warns_on_stderr(capsys):
    log = engine_logs.get_logger("test")
    log.info("not shown")
    log.warning("disk %s is full", "/var")

    captured = capsys.readouterr()
    assert captured.err == "disk /var is full\n"
    assert captured.out == ""
    assert engine_logs.level_name() == "warning"
    assert not engine_logs.writes_to_file()


def test_text_form_on_stderr(capsys):
    engine_logs.configure("debug", "text")
    engine_logs.get_logger("test").debug("created %s", "x")

    line = capsys.readouterr().err
    timestamp, level, message = line.rstrip("\n").split(" ", 2)
    assert (level, message) == ("debug", "created x")
    assert timestamp[4] == "-"
    assert timestamp[-3] == ":"


def test_json_file_reopened_after_shutdown(tmp_path, capsys):
    path = tmp_path / "engine.log"
    engine_logs.configure("error", "json", str(path))
    log = engine_logs.get_logger("test")
    log.warning("below the level")
    log.error("failed: %s", "100% full")
    engine_logs.shutdown()
    log.exception("after shutdown")

    records = [json.loads(line) for line in path.read_text().splitlines()]
    assert [(record["level"], record["msg"]) for record in records] == [
        ("error", "failed: 100% full"), ("error", "after shutdown")]
    assert set(records[0]) == {"level", "msg", "time"}
    assert engine_logs.writes_to_file()
    assert engine_logs.level_name() == "error"
    assert capsys.readouterr().err == ""


def test_message_without_arguments_kept(capsys):
    engine_logs.configure("info", "text")
    engine_logs.get_logger("test").info("50% done")
    assert capsys.readouterr().err.endswith(" info 50% done\n")


def test_invalid_level_is_rejected():
    with pytest.raises(ValueError, match="invalid log level 'verbose'"):
        engine_logs.configure("verbose")


def test_channel_level_names():
    from donkey.runtime.spawn import _level

    assert [_level(name) for name in ("debug", "WARN", None, "bogus")] == [
        engine_logs.DEBUG, engine_logs.WARNING, engine_logs.INFO, engine_logs.INFO]


def test_failed_log_write_reported_on_stderr(capsys):
    # Every write to /dev/full fails with ENOSPC, as on a full disk.
    engine_logs.configure("info", "text", "/dev/full")
    engine_logs.get_logger("test").info("lost")

    error = capsys.readouterr().err
    assert error.startswith("donkey: writing the engine log /dev/full failed: ")
    assert "No space left on device" in error
