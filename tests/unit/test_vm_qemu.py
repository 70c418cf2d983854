"""Guest processes (vm/qemu.py): the qemu command line and stopping guests by pid."""

import os
import signal
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from vm import qemu  # noqa: E402


class SleepGuest(qemu.Guest):
    """A guest whose "qemu" is a sleep, to test process handling without booting anything."""

    def qemu_command(self) -> list[str]:
        return ["sleep", "300"]


@pytest.fixture(autouse=True)
def fresh_registry():
    qemu._stopping.clear()
    yield
    qemu.stop_all()
    qemu._stopping.clear()


def make_guest(tmp_path, cls=qemu.Guest) -> qemu.Guest:
    kernel_dir = tmp_path / "kernel"
    return cls("trixie-v2", kernel_dir, tmp_path / "root.ext4", "console=ttyS0", tmp_path / "run")


def test_command_forwards_ssh_on_loopback_only(tmp_path):
    guest = make_guest(tmp_path)
    guest.port = 40022
    command = guest.qemu_command()
    netdev = command[command.index("-netdev") + 1]
    assert "restrict=on" in netdev
    assert "hostfwd=tcp:127.0.0.1:40022-:22" in netdev


def test_command_never_writes_the_images(tmp_path):
    guest = make_guest(tmp_path)
    command = guest.qemu_command()
    drives = [command[index + 1] for index, arg in enumerate(command) if arg == "-drive"]
    assert len(drives) == 2
    assert "snapshot=on" in drives[0]
    assert "readonly=on" in drives[1]


def test_command_uses_tcg_and_no_reboot(tmp_path):
    command = make_guest(tmp_path).qemu_command()
    assert command[command.index("-accel") + 1] == "tcg,thread=multi"
    assert "-no-reboot" in command


def test_free_port_not_reused():
    first = qemu.free_port()
    second = qemu.free_port()
    assert first != second
    qemu._reserved_ports.difference_update({first, second})


def test_stop_all_kills_by_pid(tmp_path):
    guest = make_guest(tmp_path, SleepGuest)
    guest.start()
    pid = guest.process.pid
    assert qemu.running_pids() == [pid]

    qemu.stop_all()
    assert qemu.running_pids() == []
    assert guest.process.returncode == -signal.SIGTERM
    with pytest.raises(ProcessLookupError):
        os.kill(pid, 0)


def test_no_start_after_stop_all(tmp_path):
    qemu.stop_all()
    guest = make_guest(tmp_path, SleepGuest)
    with pytest.raises(qemu.GuestError, match="run is stopping"):
        guest.start()
    assert guest.process is None


def test_wait_for_ssh_reports_early_exit(tmp_path):
    class ExitingGuest(qemu.Guest):
        def qemu_command(self) -> list[str]:
            return ["sh", "-c", "echo 'qemu: could not load kernel'; exit 1"]

    guest = make_guest(tmp_path, ExitingGuest)
    guest.start()
    guest.process.wait()
    with pytest.raises(qemu.GuestError, match="qemu exited with 1") as raised:
        guest.wait_for_ssh(tmp_path / "key", timeout=5)
    assert "could not load kernel" in str(raised.value)
