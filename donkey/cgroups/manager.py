"""The cgroup manager: where a container's cgroups go on this host, and their creation."""

from __future__ import annotations

import errno as errno_codes
import os

from donkey.cgroups import v1, v2
from donkey.cgroups.cgroup import Cgroup
from donkey.cgroups.check import check_resources
from donkey.cgroups.fs import CgroupError, CgroupFS
from donkey.cgroups.resources import Resources
from donkey.errors import InvalidArgument
from donkey.hal.probe import HostInfo
from donkey.logs.engine import get_logger

log = get_logger("cgroups.manager")

# v1 hierarchies donkey makes a directory in; devices is there for device rules.
V1_CONTROLLERS = ("cpuset", "cpu", "cpuacct", "memory", "pids", "blkio", "freezer", "devices")
# cgroup2 controllers donkey enables for its cgroups when they live on the cgroup2 mount.
V2_CONTROLLERS = ("cpuset", "cpu", "io", "memory", "pids")

_ALPHANUMERIC = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789")
# [A-Za-z0-9][A-Za-z0-9_.-]*, checked without re (about 5 ms to import).
_NAME_CHARS = _ALPHANUMERIC | frozenset("_.-")


def _check_name(kind: str, name: str) -> None:
    if (not name or name[0] not in _ALPHANUMERIC or not _NAME_CHARS.issuperset(name)
            or len(name) > 255):
        raise InvalidArgument(
            f"invalid cgroup {kind} {name!r}: use letters, digits, '_', '.' and '-', "
            "starting with a letter or digit",
            value=name,
        )


class Manager:
    """Creates and finds the cgroups of containers under one parent name in each hierarchy."""

    def __init__(self, parent: str, info: HostInfo, fs: CgroupFS | None = None) -> None:
        for part in parent.split("/"):
            _check_name("parent", part)
        self.parent = parent
        self.info = info
        self.fs = fs or CgroupFS()

        self.v1_controllers = {
            name: controller for name, controller in info.controllers.items()
            if controller.version == "v1" and name in V1_CONTROLLERS
        }
        self.v2_controllers = tuple(
            name for name in V2_CONTROLLERS
            if name in info.controllers and info.controllers[name].version == "v2"
        )
        # A cgroup2 part exists on v2 hosts and on hybrid hosts that put a driven
        # controller only on the cgroup2 mount. Other hybrid hosts use v1 alone.
        self.v2_mountpoint = None
        if info.cgroup2_mountpoint and (info.cgroup_layout == "v2" or self.v2_controllers):
            self.v2_mountpoint = info.cgroup2_mountpoint

    def check(self, resources: Resources) -> None:
        check_resources(self.info, resources)

    def _handle(self, container_id: str) -> Cgroup:
        _check_name("name", container_id)
        v1_paths = {
            name: os.path.join(controller.mountpoint, self.parent, container_id)
            for name, controller in self.v1_controllers.items()
        }
        v2_path = None
        if self.v2_mountpoint is not None:
            v2_path = os.path.join(self.v2_mountpoint, self.parent, container_id)
        return Cgroup(container_id, v1_paths, v2_path, self.v2_controllers, self.info, self.fs)

    def load(self, container_id: str) -> Cgroup:
        """Return a handle on existing cgroups (for removing a stale container); no mkdir."""
        return self._handle(container_id)

    def create(self, container_id: str) -> Cgroup:
        """Create the container's cgroups, with the parent levels they need."""
        cgroup = self._handle(container_id)
        try:
            for attempt in range(_CREATE_ATTEMPTS):
                try:
                    self._create_v1(cgroup)
                    if cgroup.v2_path is not None:
                        self._create_v2(cgroup.v2_path)
                    break
                except CgroupError as error:
                    # Another donkey removed the empty parent between our mkdir of it and
                    # of the level below (remove_parent); make the levels again. A file
                    # of a cgroup being removed gives ENODEV instead of ENOENT.
                    if (error.errno not in (errno_codes.ENOENT, errno_codes.ENODEV)
                            or attempt == _CREATE_ATTEMPTS - 1):
                        raise
                    log.debug("parent of %s vanished while creating it, retrying",
                              container_id)
        except Exception:
            log.debug("create %s failed, removing what was made", container_id)
            try:
                cgroup.destroy()
            except CgroupError as error:
                log.warning("cleanup of %s failed: %s", container_id, error)
            raise
        return cgroup

    def _levels(self, mountpoint: str, container_id: str) -> list[str]:
        levels = []
        current = mountpoint
        for part in [*self.parent.split("/"), container_id]:
            current = os.path.join(current, part)
            levels.append(current)
        return levels

    def _create_v1(self, cgroup: Cgroup) -> None:
        mountpoints = dict.fromkeys(
            controller.mountpoint for controller in self.v1_controllers.values()
        )
        cpuset = self.v1_controllers.get("cpuset")
        for mountpoint in mountpoints:
            for level in self._levels(mountpoint, cgroup.container_id):
                self.fs.mkdir(level)
                if cpuset is not None and mountpoint == cpuset.mountpoint:
                    v1.copy_cpuset(self.fs, level, mountpoint)

    def _create_v2(self, leaf: str) -> None:
        directory = self.v2_mountpoint
        for level in self._levels(self.v2_mountpoint, os.path.basename(leaf)):
            v2.enable_controllers(self.fs, directory, self.v2_controllers)
            self.fs.mkdir(level)
            directory = level

    def remove_parent(self) -> None:
        """Remove the parent levels where they are empty; other containers keep theirs.

        A level that still has a child fails rmdir with EBUSY, so this never removes the
        cgroup of a running container, and create() makes a vanished level again.
        """
        tops = [c.mountpoint for c in self.v1_controllers.values()]
        if self.v2_mountpoint is not None:
            tops.append(self.v2_mountpoint)
        for mountpoint in dict.fromkeys(tops):
            for level in reversed(self._levels(mountpoint, "x")[:-1]):
                try:
                    self.fs.rmdir(level)
                except OSError as error:
                    log.debug("keeping %s: %s", level, error)
                    break


_CREATE_ATTEMPTS = 5


def for_host(parent: str = "donkey", info: HostInfo | None = None) -> Manager:
    """Return the manager for this host's layout (probed once per process when info is None)."""
    if info is None:
        from donkey.hal.probe import host

        info = host()
    if info.cgroup_layout == "none":
        raise CgroupError(
            "no cgroup filesystem is mounted under /sys/fs/cgroup: mount cgroup2 or the v1 "
            "hierarchies, or run without resource limits",
            path="/sys/fs/cgroup",
        )
    return Manager(parent, info)
