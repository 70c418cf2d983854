"""donkey run -ti: a shell in a pty, driven through pexpect as a person at a terminal."""

from __future__ import annotations

import shlex
import time

import pytest

pexpect = pytest.importorskip("pexpect", reason="pexpect drives the interactive tests")

# busybox ash prints "/ # " and may follow it with a cursor position request.
PROMPT = r"[#$] (\x1b\[6n)?"


def spawn(donkey, command: str, rows: int = 24, columns: int = 80):
    return pexpect.spawn(command, env=donkey.env, encoding="utf-8", timeout=20,
                         dimensions=(rows, columns))


def shell_command(donkey, *args: str) -> str:
    return " ".join(shlex.quote(arg) for arg in donkey.command(*args))


def run_in_shell(child, line: str) -> str:
    """Type line at the container's prompt and return what it printed."""
    marker = f"__done_{time.monotonic_ns()}__"
    child.sendline(f"{line}; echo {marker}")
    child.expect(f"\r\n{marker}\r\n")
    output = child.before
    # Drop the echo of the typed line itself.
    return output.split("\r\n", 1)[1] if "\r\n" in output else ""


def test_shell_is_pid_one_on_a_tty(donkey):
    child = spawn(donkey, shell_command(donkey, "run", "--rm", "-ti", "sh"))
    child.expect(PROMPT)
    assert run_in_shell(child, "echo $$") == "1"
    assert run_in_shell(child, "tty") == "/dev/pts/0"
    assert run_in_shell(child, "echo $TERM") == "xterm"
    child.sendline("exit 5")
    child.expect(pexpect.EOF)
    child.close()
    assert child.exitstatus == 5


def test_window_size_copied_and_follows_resize(donkey):
    child = spawn(donkey, shell_command(donkey, "run", "--rm", "-ti", "busybox", "sh"),
                  rows=31, columns=101)
    child.expect(PROMPT)
    assert run_in_shell(child, "stty size") == "31 101"
    child.setwinsize(42, 123)
    time.sleep(0.3)
    assert run_in_shell(child, "stty size") == "42 123"
    child.sendline("exit")
    child.expect(pexpect.EOF)
    child.close()
    assert child.exitstatus == 0


def test_ctrl_c_interrupts_foreground_command(donkey):
    child = spawn(donkey, shell_command(donkey, "run", "--rm", "-ti", "sh"))
    child.expect(PROMPT)
    child.sendline("sleep 30; echo finished-$?")
    time.sleep(0.5)
    child.sendcontrol("c")
    # The shell survives: the prompt comes back long before 30 s, without "finished-0".
    child.expect(PROMPT, timeout=10)
    assert "finished-0" not in child.before
    assert run_in_shell(child, "echo alive") == "alive"
    child.sendline("exit")
    child.expect(pexpect.EOF)
    child.close()


def test_ctrl_d_ends_the_shell(donkey):
    child = spawn(donkey, shell_command(donkey, "run", "--rm", "-ti", "sh"))
    child.expect(PROMPT)
    child.sendcontrol("d")
    child.expect(pexpect.EOF)
    child.close()
    assert child.exitstatus == 0
    assert donkey.states() == []


def test_terminal_restored_after_exit(donkey):
    # A host shell prints its terminal settings before and after the container runs.
    inner = shell_command(donkey, "run", "--rm", "-ti", "sh", "-c", "exit 3")
    script = f"stty -g; {inner}; echo status=$?; stty -g"
    child = spawn(donkey, f"sh -c {shlex.quote(script)}")
    child.expect(pexpect.EOF)
    child.close()
    lines = [line for line in child.before.split("\r\n") if line]
    assert "status=3" in lines
    settings = [line for line in lines if line.count(":") > 10]
    assert len(settings) == 2
    assert settings[0] == settings[1]


def test_terminal_restored_when_donkey_is_terminated(donkey):
    inner = shell_command(donkey, "run", "--rm", "-ti", "sh")
    script = f"stty -g; {inner} </dev/tty & pid=$!; sleep 3; kill -TERM $pid; wait $pid; " \
             "echo status=$?; stty -g"
    child = spawn(donkey, f"sh -c {shlex.quote(script)}")
    child.expect(pexpect.EOF, timeout=30)
    child.close()
    lines = [line.strip() for line in child.before.replace("\r", "\n").split("\n")]
    settings = [line for line in lines if line.count(":") > 10]
    assert len(settings) == 2
    assert settings[0] == settings[1]
    assert any(line.endswith("status=137") for line in lines), lines
