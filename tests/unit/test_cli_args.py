"""CLI parsing and the pieces of run that need no root."""

from __future__ import annotations

import errno
import json

from donkey.cli.main import rewrite_legacy_flags
from donkey.image.builder import is_static_elf
from donkey.logs import engine as engine_logs
from donkey.runtime.spawn import exit_code_from_status


def test_legacy_cpushare_rewritten():
    assert rewrite_legacy_flags(["run", "-ti", "-m", "100m", "-cpushare", "512", "sh"]) == [
        "run", "-ti", "-m", "100m", "--cpu-shares", "512", "sh"]
    assert rewrite_legacy_flags(["run", "-cpushare=512"]) == ["run", "--cpu-shares=512"]


def test_legacy_flag_after_double_dash_kept():
    args = ["run", "busybox", "--", "prog", "-cpushare"]
    assert rewrite_legacy_flags(args) == args


def test_exit_code_from_status():
    assert exit_code_from_status(3 << 8) == 3
    assert exit_code_from_status(9) == 137
    assert exit_code_from_status(15) == 143


def test_static_elf_detection(tmp_path):
    assert not is_static_elf("/bin/ls")
    script = tmp_path / "script"
    script.write_text("#!/bin/sh\n")
    assert not is_static_elf(str(script))


def test_json_log_records(tmp_path):
    path = tmp_path / "log"
    engine_logs.configure("info", "json", str(path))
    engine_logs.get_logger("test").info("hello %s", "world")
    engine_logs.get_logger("test").debug("hidden")
    engine_logs.shutdown()
    records = [json.loads(line) for line in path.read_text().splitlines()]
    assert len(records) == 1
    assert records[0]["level"] == "info"
    assert records[0]["msg"] == "hello world"
    assert records[0]["time"][4] == "-"
    assert records[0]["time"][-3] == ":"


def test_os_error_without_file_name_reads_cleanly():
    from donkey.cli.main import _describe_os_error

    full = _describe_os_error(OSError(errno.ENOSPC, "No space left on device"))
    assert full == ("No space left on device: free space on the filesystem of --root (state) "
                    "or --data-root (images and layers)")
    denied = _describe_os_error(PermissionError(errno.EACCES, "Permission denied", "/x"))
    assert denied.startswith("Permission denied: /x: check the path and its permissions")
