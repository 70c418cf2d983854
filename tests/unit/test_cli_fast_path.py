"""The click-free parser of `donkey run` must agree with the click command it shortcuts."""

from __future__ import annotations

import subprocess
import sys

import click
import pytest

from donkey.cli import main as cli_main
from donkey.cli import run as cli_run

AGREEING = [
    ["busybox", "true"],
    ["--rm", "busybox", "true"],
    ["--rm", "-m", "100m", "--cpu-shares", "512", "busybox", "true"],
    ["--memory=64m", "--memory-swap", "-1", "--memory-reservation", "32m", "sh"],
    ["-ti", "sh"],
    ["-it", "--rm", "sh", "-c", "echo hi"],
    ["-d", "--name", "web", "busybox", "httpd", "-f"],
    ["-e", "A=1", "--env", "B", "--env=C=3", "-e", "A=2", "env"],
    ["--env-file", "/tmp/a", "--env-file=/tmp/b", "env"],
    ["-v", "/srv:/srv:ro", "--volume=/tmp:/tmp", "-w", "/srv", "ls"],
    ["-h", "box", "--hostname=box2", "hostname"],
    ["--name", "first", "--name", "second", "true"],
    ["-c", " 12 ", "--cpus", "1.5", "--cpu-quota", "50000", "--cpu-period", "100000", "true"],
    ["--cpuset-cpus", "0-1", "--cpuset-mems", "0", "--pids-limit", "10", "true"],
    ["--blkio-weight", "500", "true"],
    ["--init", "--restart", "on-failure:3", "-d", "sleep", "1"],
    ["--restart=always", "true"],
    ["--name", "-dash-is-a-value", "true"],
    ["--", "--rm", "true"],
    ["busybox", "--rm", "-d", "--", "x"],
    ["-", "true"],
    [],
]

LEFT_TO_CLICK = [
    ["--help"],
    ["--rootfs", "/tmp", "true"],
    ["-c", "many", "true"],
    ["--cpu-shares=0x10", "true"],
    ["--rm=yes", "true"],
    ["-mx", "true"],
    ["-m=1g", "true"],
    ["-tm", "1g", "true"],
    ["--no-such-flag", "true"],
    ["--name"],
    ["-1", "true"],
]


def click_params(args: list[str]) -> dict:
    context = cli_run.run.make_context("run", list(args), obj=None)
    return dict(context.params)


@pytest.mark.parametrize("args", AGREEING, ids=" ".join)
def test_fast_parse_matches_click(args):
    fast = cli_main.parse_run_fast(["run", *args])
    assert fast is not None, f"fast path declined {args}"
    assert fast == click_params(args)


@pytest.mark.parametrize("args", LEFT_TO_CLICK, ids=" ".join)
def test_fast_parse_declines_unusual_input(args):
    assert cli_main.parse_run_fast(["run", *args]) is None


@pytest.mark.parametrize("args", [["--debug", "run", "true"], ["rm", "x"], ["--help"], []])
def test_fast_parse_declines_other_commands(args):
    assert cli_main.parse_run_fast(args) is None


GLOBALS_AGREEING = [
    [],
    ["--root", "/tmp/state"],
    ["--root=/tmp/state", "--debug"],
    ["--data-root", "/d", "--cgroup-parent", "p/q", "--storage-driver", "vfs"],
    ["--log", "/tmp/donkey.log", "--log-format", "json", "--log-level", "info"],
    ["--log-level=error", "--log-level", "debug"],
]

GLOBALS_LEFT_TO_CLICK = [
    ["--help"], ["--version"], ["--log-level", "loud"], ["--storage-driver=zfs"],
    ["--debug=yes"], ["--bogus"], ["--", "run"], ["--root", "--debug"],
]


def click_group_params(args: list[str], monkeypatch) -> dict:
    for variable in ("DONKEY_ROOT", "DONKEY_DATA_ROOT", "DONKEY_CGROUP_PARENT",
                     "DONKEY_STORAGE_DRIVER"):
        monkeypatch.delenv(variable, raising=False)
    context = cli_main.cli.make_context("donkey", [*args, "run", "true"])
    return dict(context.params)


@pytest.mark.parametrize("args", GLOBALS_AGREEING, ids=" ".join)
def test_fast_globals_match_click(args, monkeypatch):
    expected = click_group_params(args, monkeypatch)
    parsed = cli_main.parse_globals_fast([*args, "run", "true"])
    assert parsed is not None, f"fast path declined {args}"
    options, rest = parsed
    assert options == expected
    assert rest == ["run", "true"]


@pytest.mark.parametrize("args", GLOBALS_LEFT_TO_CLICK, ids=" ".join)
def test_fast_globals_decline_unusual_input(args):
    assert cli_main.parse_globals_fast([*args, "run", "true"]) is None


def test_fast_globals_decline_missing_value():
    assert cli_main.parse_globals_fast(["--root"]) is None


def test_fast_globals_read_environment(monkeypatch):
    monkeypatch.setenv("DONKEY_ROOT", "/env/root")
    monkeypatch.setenv("DONKEY_STORAGE_DRIVER", "vfs")
    options, _ = cli_main.parse_globals_fast(["run", "true"])
    assert options["root"] == "/env/root"
    assert options["storage_driver"] == "vfs"
    monkeypatch.setenv("DONKEY_STORAGE_DRIVER", "zfs")
    assert cli_main.parse_globals_fast(["run", "true"]) is None


def test_fast_global_options_exist_in_click():
    # The defaults are compared by test_fast_globals_match_click with no options given.
    options = {name: parameter for parameter in cli_main.cli.params for name in parameter.opts}
    for flag, (name, variable, _, accepted) in cli_main.FAST_GLOBAL_OPTIONS.items():
        parameter = options.get(flag)
        assert parameter is not None, f"{flag} is not a global option"
        assert parameter.name == name, flag
        assert parameter.envvar == variable, flag
        choices = getattr(parameter.type, "choices", None)
        assert (tuple(choices) if choices else None) == accepted, flag


def test_fast_parse_declines_bad_storage_driver(monkeypatch):
    monkeypatch.setenv("DONKEY_STORAGE_DRIVER", "zfs")
    assert cli_main.parse_run_fast(["run", "true"]) is None


def test_fast_options_exist_in_click():
    options = {}
    for parameter in cli_run.run.params:
        for name in parameter.opts:
            options[name] = parameter
    for flag, (name, kind) in cli_main.FAST_RUN_OPTIONS.items():
        parameter = options.get(flag)
        assert parameter is not None, f"{flag} is not an option of donkey run"
        assert parameter.name == name, flag
        assert parameter.is_flag == (kind == "flag"), flag
        assert parameter.multiple == (kind == "multiple"), flag
        is_int = isinstance(parameter.type, click.types.IntParamType)
        assert is_int == (kind == "int"), flag


def test_fast_path_imports_no_click():
    script = (
        "import sys\n"
        "from donkey.cli import main\n"
        "assert main.parse_run_fast(['run', '--rm', 'busybox', 'true']) is not None\n"
        "import donkey.cli.run\n"
        "print('click' in sys.modules)\n"
    )
    output = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                            check=True).stdout
    assert output.strip() == "False"
