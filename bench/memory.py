"""Resident memory of the processes that stay beside a detached container.

PSS (proportional set size, from /proc/PID/smaps_rollup) charges each shared page to the
processes sharing it in equal parts, so the interpreter's shared libraries are not
counted in full for every process, and the sums of several processes add up.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import time

from bench.harness import last_line

CONTAINERD_START_TIMEOUT = 15.0
# How long a detached container runs before its neighbours' memory is read.
SETTLE_SECONDS = 1.0


def processes_naming(text: str) -> list[int]:
    """Return the pids of processes whose command line contains text, except this one."""
    found = []
    needle = text.encode()
    for entry in os.listdir("/proc"):
        if not entry.isdigit() or int(entry) == os.getpid():
            continue
        try:
            with open(f"/proc/{entry}/cmdline", "rb") as stream:
                cmdline = stream.read()
        except OSError:
            continue
        if needle in cmdline:
            found.append(int(entry))
    return found


def pss_kib(pid: int) -> int:
    """Return the Pss line of /proc/PID/smaps_rollup in KiB, or 0 if the process is gone."""
    try:
        with open(f"/proc/{pid}/smaps_rollup", encoding="ascii") as stream:
            for line in stream:
                if line.startswith("Pss:"):
                    return int(line.split()[1])
    except (FileNotFoundError, ProcessLookupError):
        return 0
    return 0


def total_pss_mib(pids: list[int]) -> float:
    return sum(pss_kib(pid) for pid in pids) / 1024


def containerd_shim_pss(box) -> tuple[float | None, str]:
    """Run one detached container through a private containerd; return the shim's PSS.

    Returns (MiB, note), or (None, the reason) when containerd cannot be used. runc exits
    once the container starts, so the shim is all that stays beside the container.
    """
    missing = [name for name in ("containerd", "ctr", "containerd-shim-runc-v2", "runc")
               if shutil.which(name) is None]
    if missing:
        return None, (f"{', '.join(missing)} not installed: apt-get install containerd runc")
    if box.base_config is None:
        box.prepare_bundle_template()

    directory = os.path.join(box.directory, "containerd")
    os.makedirs(directory, exist_ok=True)
    socket_path = os.path.join(directory, "containerd.sock")
    config_path = os.path.join(directory, "config.toml")
    with open(config_path, "w", encoding="utf-8") as stream:
        # Private root, state and sockets, and no CRI plugin: nothing else can reach it.
        stream.write(
            "version = 2\n"
            f'root = "{directory}/root"\n'
            f'state = "{directory}/state"\n'
            'disabled_plugins = ["io.containerd.grpc.v1.cri"]\n'
            f'[grpc]\n  address = "{socket_path}"\n'
            f'[ttrpc]\n  address = "{socket_path}.ttrpc"\n'
            f'[debug]\n  address = "{directory}/debug.sock"\n'
        )

    log = open(os.path.join(directory, "containerd.log"), "wb")  # noqa: SIM115 - closed below
    daemon = subprocess.Popen(["containerd", "--config", config_path], stdin=subprocess.DEVNULL,
                              stdout=log, stderr=log)
    ctr = ["ctr", "--address", socket_path]
    container_id = box.unique_id("shim")
    try:
        if not _wait_for_containerd(ctr, daemon):
            return None, (f"containerd did not start within {CONTAINERD_START_TIMEOUT:.0f} s: "
                          f"see {directory}/containerd.log")
        completed = subprocess.run(
            [*ctr, "run", "-d", "--runc-binary", shutil.which("runc"),
             "--cgroup", f"/{box.cgroup_parent}/{container_id}", "--null-io",
             "--env", "PATH=/bin:/usr/bin", "--rootfs", box.rootfs, container_id,
             "/bin/sleep", "300"],
            stdin=subprocess.DEVNULL, capture_output=True, timeout=60)
        if completed.returncode != 0:
            return None, f"ctr run failed: {last_line(completed.stderr)}"
        time.sleep(SETTLE_SECONDS)
        shims = [pid for pid in processes_naming(socket_path)
                 if pid != daemon.pid and _is_shim(pid)]
        return total_pss_mib(shims), f"containerd 1.6 shim: {len(shims)} process(es)"
    finally:
        _remove_ctr_container(ctr, container_id)
        daemon.terminate()
        try:
            daemon.wait(timeout=10)
        except subprocess.TimeoutExpired:
            daemon.kill()
            daemon.wait()
        log.close()


def _is_shim(pid: int) -> bool:
    try:
        return os.path.basename(os.readlink(f"/proc/{pid}/exe")) == "containerd-shim-runc-v2"
    except OSError:
        return False


def _wait_for_containerd(ctr: list[str], daemon: subprocess.Popen) -> bool:
    deadline = time.monotonic() + CONTAINERD_START_TIMEOUT
    while time.monotonic() < deadline:
        if daemon.poll() is not None:
            return False
        if subprocess.run([*ctr, "version"], capture_output=True).returncode == 0:
            return True
        time.sleep(0.1)
    return False


def _remove_ctr_container(ctr: list[str], container_id: str) -> None:
    subprocess.run([*ctr, "task", "kill", "-s", "SIGKILL", container_id], capture_output=True)
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        if subprocess.run([*ctr, "task", "delete", container_id],
                          capture_output=True).returncode == 0:
            break
        # The task is still exiting, or it was never created.
        listed = subprocess.run([*ctr, "task", "ls", "-q"], capture_output=True, text=True)
        if container_id not in listed.stdout.split():
            break
        time.sleep(0.1)
    subprocess.run([*ctr, "container", "rm", container_id], capture_output=True)
