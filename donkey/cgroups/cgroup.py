"""A handle on one container's cgroups: v1 directories, a cgroup2 directory, or both.

Hybrid hosts are driven as v1, except that a controller found only on the cgroup2 mount
(memory and cpuset on Debian's 6.12) lives in the cgroup2 part of the same handle.
"""

from __future__ import annotations

import _signal  # signal without its enum wrappers, which cost about 4 ms to import
import errno as errno_codes
import os
import time

from donkey.cgroups import v1, v2
from donkey.cgroups.check import check_resources
from donkey.cgroups.fs import CgroupError, CgroupFS, error_from_os
from donkey.cgroups.resources import Resources
from donkey.hal.probe import HostInfo
from donkey.logs.engine import get_logger

log = get_logger("cgroups.cgroup")

CGROUP2_KEY = "cgroup2"  # the key of the cgroup2 directory in Cgroup.paths
_RMDIR_TIMEOUT = 1.0
_FREEZE_TIMEOUT = 2.0


class Cgroup:
    """One container's cgroups; `paths` maps each controller (and "cgroup2") to a directory."""

    def __init__(
        self,
        container_id: str,
        v1_paths: dict[str, str],
        v2_path: str | None,
        v2_controllers: tuple[str, ...],
        info: HostInfo,
        fs: CgroupFS,
    ) -> None:
        self.container_id = container_id
        self.v1_paths = dict(v1_paths)
        self.v2_path = v2_path
        self.v2_controllers = v2_controllers
        self.info = info
        self.fs = fs
        self._oom_fds: tuple[int, int] | None = None

        self.paths = dict(v1_paths)
        if v2_path is not None:
            for name in v2_controllers:
                self.paths[name] = v2_path
            self.paths[CGROUP2_KEY] = v2_path

    def __repr__(self) -> str:
        return f"Cgroup({self.container_id!r}, {self.paths!r})"

    def directories(self) -> list[str]:
        """Return each distinct directory once; co-mounted controllers share one."""
        unique = list(dict.fromkeys(self.v1_paths.values()))
        if self.v2_path is not None:
            unique.append(self.v2_path)
        return unique

    def _dir(self, controller: str) -> tuple[str, str] | None:
        if controller in self.v1_paths:
            return "v1", self.v1_paths[controller]
        if self.v2_path is not None and controller in self.v2_controllers:
            return "v2", self.v2_path
        return None

    def _file(self, controller: str, v1_name: str, v2_name: str) -> str | None:
        where = self._dir(controller)
        if where is None:
            return None
        version, directory = where
        return os.path.join(directory, v1_name if version == "v1" else v2_name)

    def apply(self, resources: Resources) -> list[str]:
        """Write the limits into the interface files; return warnings for the user."""
        check_resources(self.info, resources)
        warnings: list[str] = []

        if any(value is not None for value in (
            resources.memory, resources.memory_swap, resources.memory_reservation
        )):
            version, directory = self._dir("memory")
            warnings += _no_swap_warning(self.info, resources)
            if version == "v1":
                warnings += v1.apply_memory(self.fs, directory, resources,
                                            self.info.swap_accounting)
            else:
                warnings += v2.apply_memory(self.fs, directory, resources)

        if any(value is not None for value in (
            resources.cpu_shares, resources.cpu_quota, resources.cpu_period, resources.cpus
        )):
            version, directory = self._dir("cpu")
            apply_cpu = v1.apply_cpu if version == "v1" else v2.apply_cpu
            warnings += apply_cpu(self.fs, directory, resources)

        for field, name in ((resources.cpuset_cpus, "cpuset.cpus"),
                            (resources.cpuset_mems, "cpuset.mems")):
            if field is not None:
                _, directory = self._dir("cpuset")
                self.fs.write(os.path.join(directory, name), field)

        if resources.pids_limit is not None:
            _, directory = self._dir("pids")
            limit = str(resources.pids_limit) if resources.pids_limit > 0 else "max"
            self.fs.write(os.path.join(directory, "pids.max"), limit)

        if resources.blkio_weight:
            if self._dir("blkio") is not None:
                _, directory = self._dir("blkio")
                warnings += v1.apply_blkio(self.fs, directory, resources,
                                           self.info.blkio_weight_file)
            else:
                _, directory = self._dir("io")
                warnings += v2.apply_io(self.fs, directory, resources)
        return warnings

    def add_process(self, pid: int, v1: bool = True) -> None:
        """Move process pid into every directory, or with v1=False into the cgroup2 one only."""
        # cpuset first: the other hierarchies accept any task, so a cpuset failure
        # (ENOSPC, empty set) is reported before the task is half placed.
        ordered = self._ordered_v1_directories() if v1 else []
        if self.v2_path is not None:
            ordered.append(self.v2_path)
        for directory in ordered:
            self.fs.write(os.path.join(directory, "cgroup.procs"), str(pid))

    def self_join_files(self) -> list[str]:
        """Return the v1 `tasks` files a new single-threaded process writes 0 to, to join.

        Moving a whole process (cgroup.procs) takes the kernel's global threadgroup lock,
        whose writer waits for an RCU grace period: 10 to 15 ms on the benchmark machine,
        about half of a runc start. Writing 0 to a v1 `tasks` file moves only the calling thread
        and skips that lock. For a process with one thread, such as the container's init
        before it execs, the result is the same. cgroup2 has no such file: add_process
        with v1=False moves the process there.
        """
        return [os.path.join(directory, "tasks") for directory in self._ordered_v1_directories()]

    def _ordered_v1_directories(self) -> list[str]:
        unique = list(dict.fromkeys(self.v1_paths.values()))
        cpuset = self.v1_paths.get("cpuset")
        return sorted(unique, key=lambda directory: directory != cpuset)

    def pids(self) -> list[int]:
        found: set[int] = set()
        for directory in self.directories():
            path = os.path.join(directory, "cgroup.procs")
            if not self.fs.exists(path):
                continue
            found.update(int(line) for line in self.fs.read(path).split())
        return sorted(found)

    def watch_oom(self) -> int | None:
        """Register an eventfd for v1 OOM notifications and return it, or None on cgroup2.

        Call it before the container's process starts. Only v1 needs it: 4.13+ kernels count
        kills in memory.oom_control's oom_kill line, 3.13-era kernels have no counter, and
        cgroup2 counts them in memory.events.
        """
        where = self._dir("memory")
        if where is None or where[0] != "v1":
            return None
        if self._oom_fds is not None:
            return self._oom_fds[0]

        directory = where[1]
        control = os.path.join(directory, "memory.oom_control")
        try:
            control_fd = os.open(control, os.O_RDONLY | os.O_CLOEXEC)
        except OSError as error:
            raise error_from_os("open", control, error) from error
        event_fd = os.eventfd(0, os.EFD_CLOEXEC | os.EFD_NONBLOCK)
        try:
            self.fs.write(os.path.join(directory, "cgroup.event_control"),
                          f"{event_fd} {control_fd}")
        except CgroupError:
            os.close(event_fd)
            os.close(control_fd)
            raise
        self._oom_fds = (event_fd, control_fd)
        return event_fd

    def _oom_events(self) -> int:
        if self._oom_fds is None:
            return 0
        try:
            return os.eventfd_read(self._oom_fds[0])
        except BlockingIOError:
            return 0

    def oom_kill_count(self) -> int:
        """Return how many processes the OOM killer killed here; read it before destroy()."""
        where = self._dir("memory")
        if where is None:
            return 0
        version, directory = where
        if version == "v2":
            return _key_value(self.fs.read(os.path.join(directory, "memory.events"))).get(
                "oom_kill", 0
            )

        control = _key_value(self.fs.read(os.path.join(directory, "memory.oom_control")))
        if "oom_kill" in control:
            return control["oom_kill"]
        events = self._oom_events()
        if self._oom_fds is not None:
            return events
        # NOTE: without the oom_kill counter (before 4.13) and without watch_oom(),
        # failcnt > 0 only shows the limit was hit; reclaim may have avoided a kill.
        failcnt = int(self.fs.read(os.path.join(directory, "memory.failcnt")).strip() or 0)
        return 1 if failcnt > 0 else 0

    def memory_peak(self) -> int | None:
        path = self._file("memory", "memory.max_usage_in_bytes", "memory.peak")
        if path is None or not self.fs.exists(path):
            return None
        return int(self.fs.read(path).strip())

    def stats(self) -> dict:
        """Return usage figures: memory bytes, CPU microseconds, process count, OOM kills."""
        result: dict = {"pids": len(self.pids())}
        usage = self._file("memory", "memory.usage_in_bytes", "memory.current")
        if usage is not None and self.fs.exists(usage):
            result["memory_usage"] = int(self.fs.read(usage).strip())
            result["memory_peak"] = self.memory_peak()
            result["oom_kill"] = self.oom_kill_count()
        limit = self._file("memory", "memory.limit_in_bytes", "memory.max")
        if limit is not None and self.fs.exists(limit):
            text = self.fs.read(limit).strip()
            result["memory_limit"] = None if text == "max" else int(text)
        cpu = self.cpu_usage_usec()
        if cpu is not None:
            result["cpu_usage_usec"] = cpu
        return result

    def cpu_usage_usec(self) -> int | None:
        if "cpuacct" in self.v1_paths:
            path = os.path.join(self.v1_paths["cpuacct"], "cpuacct.usage")
            return int(self.fs.read(path).strip()) // 1000
        if self.v2_path is not None:
            path = os.path.join(self.v2_path, "cpu.stat")
            if self.fs.exists(path):
                return _key_value(self.fs.read(path)).get("usage_usec")
        return None

    def _freezer(self) -> tuple[str, str] | None:
        if "freezer" in self.v1_paths:
            return "v1", os.path.join(self.v1_paths["freezer"], "freezer.state")
        if self.v2_path is not None:
            path = os.path.join(self.v2_path, "cgroup.freeze")
            if self.fs.exists(path):
                return "v2", path
        return None

    def can_freeze(self) -> bool:
        return self._freezer() is not None

    def freeze(self) -> None:
        self._set_frozen(True)

    def thaw(self) -> None:
        self._set_frozen(False)

    def _set_frozen(self, frozen: bool) -> None:
        freezer = self._freezer()
        if freezer is None:
            raise CgroupError(
                f"cannot {'freeze' if frozen else 'thaw'} container {self.container_id}: "
                "this host has no v1 freezer and no cgroup.freeze (Linux 5.2+)",
                path=None,
            )
        version, path = freezer
        if version == "v1":
            wanted = "FROZEN" if frozen else "THAWED"
            self._wait_state(lambda: self.fs.read(path).strip() == wanted,
                             lambda: self.fs.write(path, wanted), path, wanted)
        else:
            events = os.path.join(os.path.dirname(path), "cgroup.events")
            wanted = "1" if frozen else "0"
            self._wait_state(
                lambda: str(_key_value(self.fs.read(events)).get("frozen", 0)) == wanted,
                lambda: self.fs.write(path, wanted), path, wanted)

    def _wait_state(self, reached, request, path: str, wanted: str) -> None:
        # v1 may stay FREEZING while a task is busy in the kernel; writing again retries.
        deadline = time.monotonic() + _FREEZE_TIMEOUT
        while True:
            request()
            if reached():
                return
            if time.monotonic() > deadline:
                raise CgroupError(
                    f"timed out after {_FREEZE_TIMEOUT:.0f}s waiting for {path} to become "
                    f"{wanted}; retry, or kill the container",
                    path=path,
                    value=wanted,
                )
            time.sleep(0.01)

    def kill_all(self, sig: int = _signal.SIGKILL) -> None:
        """Send sig to every process; freeze first where possible so no fork escapes."""
        if sig == _signal.SIGKILL and self.v2_path is not None:
            kill_file = os.path.join(self.v2_path, "cgroup.kill")
            if self.fs.exists(kill_file):
                self.fs.write(kill_file, "1")
                return

        frozen = False
        if self.can_freeze():
            try:
                self.freeze()
                frozen = True
            except CgroupError as error:
                log.warning("kill_all: freeze failed, signalling unfrozen: %s", error)
        try:
            for pid in self.pids():
                try:
                    os.kill(pid, sig)
                except ProcessLookupError:
                    pass
        finally:
            if frozen:
                self.thaw()

    def close(self) -> None:
        """Close the OOM notification descriptors, if any."""
        if self._oom_fds is not None:
            for descriptor in self._oom_fds:
                os.close(descriptor)
            self._oom_fds = None

    def destroy(self) -> None:
        """Remove every directory of this cgroup, children first; safe to call twice."""
        self.close()
        for directory in self.directories():
            self._remove_tree(directory)

    def _remove_tree(self, directory: str) -> None:
        for child in self.fs.subdirectories(directory):
            self._remove_tree(os.path.join(directory, child))

        # rmdir returns EBUSY while exiting tasks are still being released.
        deadline = time.monotonic() + _RMDIR_TIMEOUT
        delay = 0.005
        while True:
            try:
                self.fs.rmdir(directory)
                return
            except FileNotFoundError:
                return
            except OSError as error:
                if error.errno != errno_codes.EBUSY or time.monotonic() > deadline:
                    raise error_from_os("rmdir", directory, error) from error
                log.debug("rmdir %s: EBUSY, retrying", directory)
                time.sleep(delay)
                delay = min(delay * 2, 0.1)


def _no_swap_warning(info: HostInfo, resources: Resources) -> list[str]:
    swap = resources.memory_swap
    if info.swap_total != 0 or swap is None or resources.memory is None:
        return []
    if swap != -1 and swap <= resources.memory:
        return []
    return [
        f"the host has no swap space (SwapTotal 0 in /proc/meminfo): --memory-swap {swap} "
        f"is set, but the container cannot use more than the memory limit {resources.memory}"
    ]


def _key_value(text: str) -> dict[str, int]:
    """Parse "key value" lines such as memory.events or memory.oom_control."""
    values = {}
    for line in text.splitlines():
        parts = line.split()
        if len(parts) == 2 and parts[1].lstrip("-").isdigit():
            values[parts[0]] = int(parts[1])
    return values
