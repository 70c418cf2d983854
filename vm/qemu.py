"""Boot and stop qemu guests; every guest started here is stopped by pid on every exit path."""

from __future__ import annotations

import ctypes
import logging
import os
import signal
import socket
import subprocess
import threading
import time
from pathlib import Path

log = logging.getLogger(__name__)

PR_SET_PDEATHSIG = 1

_running: dict[int, Guest] = {}
_running_lock = threading.Lock()
_reserved_ports: set[int] = set()
# Set by stop_all(): a worker thread that reaches start() after an interrupt must not boot.
_stopping = threading.Event()


class GuestError(RuntimeError):
    """A guest failed to boot or its SSH timed out; the message ends with its console output."""


def _die_with_parent() -> None:
    # Runs in the forked child before exec: if the runner is killed outright (SIGKILL), the
    # kernel sends qemu SIGKILL too, so no guest or port forward outlives its runner. The
    # signal follows the thread that forked, so guests that must outlive a worker thread
    # (--keep) are started from the main thread.
    libc = ctypes.CDLL(None, use_errno=True)
    libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)


def free_port() -> int:
    """Return a loopback TCP port that no other guest of this process has reserved."""
    with _running_lock:
        for _ in range(50):
            with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
                probe.bind(("127.0.0.1", 0))
                port = probe.getsockname()[1]
            if port not in _reserved_ports:
                _reserved_ports.add(port)
                return port
    raise GuestError("no free loopback port for the SSH forward after 50 tries")


class Guest:
    """One qemu process booting a Debian kernel with the shared root image under TCG."""

    def __init__(
        self,
        name: str,
        kernel_dir: Path,
        image: Path,
        command_line: str,
        run_dir: Path,
        *,
        memory_mib: int = 1024,
        cpus: int = 1,
    ):
        self.name = name
        self.kernel_dir = kernel_dir
        self.image = image
        self.command_line = command_line
        self.run_dir = run_dir
        self.memory_mib = memory_mib
        self.cpus = cpus
        self.port = 0
        self.process: subprocess.Popen | None = None

    @property
    def console_log(self) -> Path:
        return self.run_dir / "console.log"

    def qemu_command(self) -> list[str]:
        # restrict=on cuts the guest off from every network but the forward; the forward
        # listens on 127.0.0.1 only.
        netdev = f"user,id=net0,restrict=on,hostfwd=tcp:127.0.0.1:{self.port}-:22"
        return [
            "qemu-system-x86_64",
            "-M", "pc",
            "-accel", "tcg,thread=multi",
            "-cpu", "max",
            "-smp", str(self.cpus),
            "-m", str(self.memory_mib),
            "-nodefaults",
            "-no-reboot",
            "-display", "none",
            "-monitor", "none",
            "-serial", f"file:{self.console_log}",
            "-kernel", str(self.kernel_dir / "vmlinux"),
            "-initrd", str(self.kernel_dir / "initrd.img"),
            "-append", self.command_line,
            "-drive", f"file={self.image},format=raw,if=virtio,snapshot=on",
            "-drive", f"file={self.kernel_dir / 'modules.ext4'},format=raw,if=virtio,readonly=on",
            "-netdev", netdev,
            "-device", "virtio-net-pci,netdev=net0",
        ]  # fmt: skip

    def start(self) -> None:
        if _stopping.is_set():
            raise GuestError(f"{self.name}: not started because the run is stopping")
        self.run_dir.mkdir(parents=True, exist_ok=True)
        self.port = free_port()
        command = self.qemu_command()
        (self.run_dir / "qemu-command").write_text(" ".join(command) + "\n")

        with open(self.run_dir / "qemu.log", "wb") as output:
            self.process = subprocess.Popen(
                command,
                stdin=subprocess.DEVNULL,
                stdout=output,
                stderr=subprocess.STDOUT,
                preexec_fn=_die_with_parent,
            )
        with _running_lock:
            _running[self.process.pid] = self
        if _stopping.is_set():
            # stop_all() ran between the check above and the registration.
            self.stop()
            raise GuestError(f"{self.name}: stopped at once because the run is stopping")
        log.info(
            "%s: started qemu pid %d, SSH on 127.0.0.1:%d", self.name, self.process.pid, self.port
        )

    def console_tail(self, lines: int = 15) -> str:
        text = ""
        for path in (self.run_dir / "qemu.log", self.console_log):
            if path.is_file():
                text += path.read_text(errors="replace")
        return "\n".join(text.splitlines()[-lines:])

    def wait_for_ssh(self, key: Path, timeout: float) -> float:
        """Wait until sshd in the guest accepts the test key; return the seconds it took."""
        started = time.monotonic()
        deadline = started + timeout
        last_error: Exception | None = None

        while time.monotonic() < deadline:
            if self.process is None or self.process.poll() is not None:
                code = None if self.process is None else self.process.returncode
                raise GuestError(
                    f"{self.name}: qemu exited with {code} before SSH came up; last output:\n"
                    + self.console_tail()
                )
            # Imported here, so that unit tests of everything else need no paramiko.
            import paramiko

            try:
                client = paramiko.SSHClient()
                client.set_missing_host_key_policy(paramiko.AutoAddPolicy())
                client.connect(
                    "127.0.0.1",
                    port=self.port,
                    username="root",
                    key_filename=str(key),
                    timeout=5,
                    banner_timeout=5,
                    auth_timeout=5,
                    allow_agent=False,
                    look_for_keys=False,
                )
                client.close()
                return time.monotonic() - started
            except (OSError, paramiko.SSHException) as error:
                last_error = error
                time.sleep(0.5)

        raise GuestError(
            f"{self.name}: SSH on 127.0.0.1:{self.port} timed out after {timeout:.0f} s "
            f"(last error: {last_error}); raise --boot-timeout or read {self.console_log}:\n"
            + self.console_tail()
        )

    def ssh_command(self, key: Path) -> str:
        return (
            f"ssh -i {key} -p {self.port} -o StrictHostKeyChecking=no "
            "-o UserKnownHostsFile=/dev/null root@127.0.0.1"
        )

    def stop(self) -> None:
        """Stop qemu by pid: SIGTERM, then SIGKILL after 10 s; safe to call twice."""
        process = self.process
        if process is None:
            return
        if process.poll() is None:
            log.info("%s: stopping qemu pid %d", self.name, process.pid)
            process.terminate()
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                log.warning(
                    "%s: qemu pid %d ignored SIGTERM; sending SIGKILL", self.name, process.pid
                )
                process.kill()
                process.wait()
        with _running_lock:
            _running.pop(process.pid, None)
            _reserved_ports.discard(self.port)


def stop_all() -> None:
    """Stop every guest this process started and has not stopped yet, and start no more."""
    _stopping.set()
    with _running_lock:
        guests = list(_running.values())
    for guest in guests:
        try:
            guest.stop()
        except OSError as error:
            log.error("%s: stopping qemu failed: %s", guest.name, error)


def alive_guests() -> list[Guest]:
    """Return the registered guests whose qemu process has not exited."""
    with _running_lock:
        guests = list(_running.values())
    return [guest for guest in guests if guest.process and guest.process.poll() is None]


def running_pids() -> list[int]:
    with _running_lock:
        return list(_running)


class Interrupted(BaseException):
    """Raised in the main thread by SIGTERM or SIGHUP so that `finally` blocks run."""


def install_signal_handlers() -> None:
    """Turn SIGTERM and SIGHUP into Interrupted; SIGINT already raises KeyboardInterrupt."""

    def handler(signum: int, _frame) -> None:
        raise Interrupted(f"received {signal.Signals(signum).name}")

    for signum in (signal.SIGTERM, signal.SIGHUP):
        signal.signal(signum, handler)


def reap_check() -> list[int]:
    """Return pids of guests still alive, for the final no-leftover check."""
    alive = []
    for pid in running_pids():
        try:
            os.kill(pid, 0)
            alive.append(pid)
        except ProcessLookupError:
            pass
    return alive
