"""The host probe: kernel, cgroup layout and controllers, swap accounting, overlay, namespaces.

`probe()` reads the live system. `host_info_from()` makes every decision from plain text and
file listings, so unit tests drive it with captures from other kernels. `host()` caches the
probe for the life of the process.
"""

from __future__ import annotations

import ctypes
import errno as errno_codes
import os

from donkey.hal import procfs
from donkey.logs.engine import get_logger
from donkey.record import FrozenRecord, Record

TYPE_CHECKING = False
if TYPE_CHECKING:
    # For annotations only: collections costs about 1 ms to import on every start.
    from collections.abc import Iterable, Mapping

log = get_logger("hal.probe")

CGROUP2_SUPER_MAGIC = 0x63677270
TMPFS_MAGIC = 0x01021994
CGROUP_SUPER_MAGIC = 0x27E0EB

# The controllers donkey drives, and the options they serve (for the `missing` messages).
DRIVEN_CONTROLLERS = ("memory", "cpu", "cpuacct", "cpuset", "pids", "blkio", "io", "freezer")
_CONTROLLER_FLAGS = {
    "memory": "-m/--memory, --memory-reservation and --memory-swap are unavailable",
    "cpu": "--cpu-shares, --cpus, --cpu-quota and --cpu-period are unavailable",
    "cpuset": "--cpuset-cpus and --cpuset-mems are unavailable",
    "pids": "--pids-limit is unavailable",
    "freezer": "pause and unpause are unavailable",
    "cpuacct": "CPU usage is missing from stats",
}

# v1 controller names a mount's super options may carry, for kernels whose /proc/cgroups
# the probe could not read.
_KNOWN_V1_CONTROLLERS = frozenset(
    "cpuset cpu cpuacct blkio memory devices freezer net_cls perf_event net_prio hugetlb pids "
    "rdma misc debug".split()
)

# cgroup2 has no freezer controller: every non-root cgroup has cgroup.freeze since 5.2.
_V2_FREEZE_SINCE = (5, 2)

_NAMESPACE_SINCE = {"cgroup": "4.6", "time": "5.6"}


class Controller(FrozenRecord):
    """The place a cgroup controller is usable: hierarchy version, mount point and root."""

    FIELDS = ("name", "version", "mountpoint", "root")

    def __init__(self, name: str, version: str, mountpoint: str, root: str) -> None:
        self.name = name
        self.version = version  # "v1" or "v2"
        self.mountpoint = mountpoint
        # The mount's root inside the hierarchy; "/../.." when outside our cgroup namespace.
        self.root = root


class HostInfo(Record):
    """The kernel features of this host that donkey uses, probed once; not changed after."""

    FIELDS = ("kernel_release", "kernel_version", "cgroup_layout", "cgroup_driver",
              "cgroup2_mountpoint", "cgroup2_controllers", "controllers", "swap_accounting",
              "blkio_weight_file", "cgroup_ns_nested", "overlay", "namespaces", "seccomp",
              "missing", "swap_total")

    def __init__(
        self,
        kernel_release: str,
        kernel_version: tuple[int, int],
        cgroup_layout: str,
        cgroup_driver: str,
        cgroup2_mountpoint: str | None,
        cgroup2_controllers: tuple[str, ...],
        controllers: dict[str, Controller],
        swap_accounting: bool | None,
        blkio_weight_file: str | None,
        cgroup_ns_nested: bool,
        overlay: str | None,
        namespaces: tuple[str, ...],
        seccomp: bool,
        missing: tuple[str, ...] = (),
        swap_total: int | None = None,
    ) -> None:
        self.kernel_release = kernel_release
        self.kernel_version = kernel_version
        self.cgroup_layout = cgroup_layout  # "v1", "hybrid", "v2", or "none"
        self.cgroup_driver = cgroup_driver
        self.cgroup2_mountpoint = cgroup2_mountpoint
        self.cgroup2_controllers = cgroup2_controllers
        self.controllers = controllers
        # None: no memory controller, or no directory to look in.
        self.swap_accounting = swap_accounting
        # blkio.weight, blkio.bfq.weight, io.weight or io.bfq.weight.
        self.blkio_weight_file = blkio_weight_file
        # Some cgroup mount root lies outside this process's cgroup namespace.
        self.cgroup_ns_nested = cgroup_ns_nested
        # "overlay" (3.18+), "overlayfs" (Ubuntu's older one) or None.
        self.overlay = overlay
        self.namespaces = namespaces
        self.seccomp = seccomp
        self.missing = missing
        self.swap_total = swap_total  # bytes of swap space (SwapTotal in /proc/meminfo)

    def replace(self, **changes) -> HostInfo:
        """Return a copy with the given fields changed, as dataclasses.replace does."""
        values = self.to_dict_shallow()
        values.update(changes)
        return HostInfo(**values)

    def to_dict_shallow(self) -> dict:
        return {name: getattr(self, name) for name in self.FIELDS}

    def controller(self, name: str) -> Controller | None:
        return self.controllers.get(name)

    def to_dict(self) -> dict:
        data = self.to_dict_shallow()
        data["kernel_version"] = list(self.kernel_version)
        data["controllers"] = {name: controller.to_dict()
                               for name, controller in self.controllers.items()}
        return data


def statfs_magic(path: str) -> int | None:
    """Return the f_type of statfs(2) on path, or None when path does not exist."""
    # struct statfs on 64-bit Linux starts with `long f_type`; 256 bytes covers the rest.
    buffer = ctypes.create_string_buffer(256)
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.statfs(os.fsencode(path), buffer) != 0:
        err = ctypes.get_errno()
        if err in (errno_codes.ENOENT, errno_codes.ENOTDIR):
            return None
        raise OSError(err, os.strerror(err), path)
    return ctypes.c_long.from_buffer(buffer).value & 0xFFFFFFFF


def magic_from_mountinfo(mounts: Iterable[procfs.Mount], path: str) -> int | None:
    """Return the filesystem magic of the top mount at exactly path, judged by its fstype."""
    magic = None
    for mount in mounts:
        if mount.mountpoint == path:
            magic = {"cgroup2": CGROUP2_SUPER_MAGIC, "tmpfs": TMPFS_MAGIC,
                     "cgroup": CGROUP_SUPER_MAGIC}.get(mount.fstype, 0)
    return magic


def layout_from_magic(root_magic: int | None, unified_magic: int | None) -> str:
    """Classify the cgroup layout from the magic of /sys/fs/cgroup and of its unified/."""
    if root_magic == CGROUP2_SUPER_MAGIC:
        return "v2"
    if root_magic == TMPFS_MAGIC:
        return "hybrid" if unified_magic == CGROUP2_SUPER_MAGIC else "v1"
    if root_magic == CGROUP_SUPER_MAGIC:
        return "v1"
    return "none"


def _pick_mount(candidates: list[procfs.Mount], sys_fs_cgroup: str) -> procfs.Mount:
    # Prefer the conventional place, then a mount of the hierarchy's own root.
    def rank(mount: procfs.Mount) -> tuple[int, int]:
        under = mount.mountpoint == sys_fs_cgroup or mount.mountpoint.startswith(
            sys_fs_cgroup + "/"
        )
        return (0 if under else 1, 0 if mount.root == "/" else 1)

    return sorted(candidates, key=rank)[0]


def find_controllers(
    mounts: list[procfs.Mount],
    layout: str,
    known_controllers: Iterable[str],
    cgroup2_controllers: Iterable[str],
    sys_fs_cgroup: str = "/sys/fs/cgroup",
) -> tuple[dict[str, Controller], procfs.Mount | None]:
    """Locate every usable controller; return them with the chosen cgroup2 mount.

    A v1 controller counts only where a `cgroup` mount carries it in its super options,
    because /proc/cgroups lists controllers the kernel cannot mount as v1 (6.12 memory).
    Hybrid hosts use v1 wherever it exists and cgroup2 for the rest.
    """
    known = set(known_controllers) | _KNOWN_V1_CONTROLLERS
    v1_mounts: dict[str, list[procfs.Mount]] = {}
    cgroup2_mounts = []
    for mount in mounts:
        if mount.fstype == "cgroup" and layout in ("v1", "hybrid"):
            for option in mount.super_options:
                if option in known:
                    v1_mounts.setdefault(option, []).append(mount)
        elif mount.fstype == "cgroup2":
            cgroup2_mounts.append(mount)

    controllers = {}
    for name, candidates in v1_mounts.items():
        chosen = _pick_mount(candidates, sys_fs_cgroup)
        controllers[name] = Controller(name, "v1", chosen.mountpoint, chosen.root)

    cgroup2 = _pick_mount(cgroup2_mounts, sys_fs_cgroup) if cgroup2_mounts else None
    if cgroup2 is not None and layout in ("v2", "hybrid"):
        for name in cgroup2_controllers:
            if name not in controllers:
                controllers[name] = Controller(name, "v2", cgroup2.mountpoint, cgroup2.root)
    return controllers, cgroup2


def _swap_accounting(memory: Controller | None, files: frozenset[str] | None) -> bool | None:
    if memory is None or files is None:
        return None
    wanted = "memory.memsw.limit_in_bytes" if memory.version == "v1" else "memory.swap.max"
    return wanted in files


def _blkio_weight_file(controllers: Mapping[str, Controller],
                       listings: Mapping[str, frozenset[str]]) -> str | None:
    for name, candidates in (("blkio", ("blkio.weight", "blkio.bfq.weight")),
                             ("io", ("io.weight", "io.bfq.weight"))):
        if name in controllers and name in listings:
            for candidate in candidates:
                if candidate in listings[name]:
                    return candidate
    return None


def _missing_items(
    layout: str,
    version: tuple[int, int],
    controllers: Mapping[str, Controller],
    subsystems: Mapping[str, procfs.SubsystemState],
    swap_accounting: bool | None,
    blkio_weight_file: str | None,
    blkio_known: bool,
    overlay: str | None,
    namespaces: Iterable[str],
    seccomp: bool,
) -> list[str]:
    missing = []
    if layout == "none":
        missing.append("no cgroup filesystem is mounted: no resource limits, pause or stats")

    for name, consequence in _CONTROLLER_FLAGS.items():
        if name in controllers:
            continue
        if name == "freezer" and layout == "v2" and version >= _V2_FREEZE_SINCE:
            continue
        if name == "cpuacct" and layout == "v2":
            continue  # cgroup2 reports usage in cpu.stat
        where = {"v1": "v1 ", "v2": "cgroup2 "}.get(layout, "")
        listed = ""
        if layout != "v2" and name in subsystems and subsystems[name].enabled:
            listed = " (listed as enabled in /proc/cgroups, but no v1 hierarchy carries it)"
        missing.append(f"no {where}{name} controller{listed}: {consequence}")

    if "memory" in controllers and swap_accounting is False:
        missing.append(
            "no swap accounting: --memory-swap is ignored with a warning and only the memory "
            "limit applies (boot with swapaccount=1 to enable it)"
        )
    if ("blkio" in controllers or "io" in controllers) and blkio_known and not blkio_weight_file:
        missing.append(
            "no block I/O weight file (needs the BFQ scheduler or io.weight): "
            "--blkio-weight is unavailable"
        )
    if overlay is None:
        missing.append(
            "no overlay filesystem in /proc/filesystems (try `modprobe overlay`): "
            "images are copied instead of layered"
        )
    for name, since in _NAMESPACE_SINCE.items():
        if name not in namespaces:
            missing.append(f"no {name} namespace (Linux {since}+): containers share the host's")
    if not seccomp:
        missing.append("no seccomp: system call filters in OCI configs cannot be applied")
    return missing


def host_info_from(
    *,
    release: str,
    mountinfo: str,
    proc_cgroups: str,
    filesystems: str,
    namespaces: Iterable[str],
    status: str,
    root_magic: int | None = None,
    unified_magic: int | None = None,
    cgroup2_controllers: str = "",
    listings: Mapping[str, Iterable[str]] | None = None,
    sys_fs_cgroup: str = "/sys/fs/cgroup",
    meminfo: str = "",
) -> HostInfo:
    """Build HostInfo from file contents.

    root_magic and unified_magic are the statfs magics of sys_fs_cgroup and its unified/;
    when None they are judged from mountinfo. listings maps a controller to the file names
    of one of its cgroup directories: the hierarchy root on v1, a non-root cgroup with the
    controller enabled on cgroup2. A controller without a listing is assumed to have every file.
    """
    mounts = procfs.parse_mountinfo(mountinfo)
    if root_magic is None:
        root_magic = magic_from_mountinfo(mounts, sys_fs_cgroup)
    if unified_magic is None:
        unified_magic = magic_from_mountinfo(mounts, sys_fs_cgroup + "/unified")
    layout = layout_from_magic(root_magic, unified_magic)

    subsystems = procfs.parse_proc_cgroups(proc_cgroups)
    v2_names = procfs.parse_controller_list(cgroup2_controllers)
    controllers, cgroup2 = find_controllers(mounts, layout, subsystems, v2_names, sys_fs_cgroup)
    cgroup_mounts = [mount for mount in mounts if mount.fstype in ("cgroup", "cgroup2")]
    nested = any(mount.root.startswith("/..") for mount in cgroup_mounts)

    file_sets = {name: frozenset(files) for name, files in (listings or {}).items()}
    swap = _swap_accounting(controllers.get("memory"), file_sets.get("memory"))
    blkio_file = _blkio_weight_file(controllers, file_sets)
    blkio_known = any(name in file_sets for name in ("blkio", "io") if name in controllers)

    fs_names = procfs.parse_filesystems(filesystems)
    overlay = next((name for name in ("overlay", "overlayfs") if name in fs_names), None)
    seccomp = procfs.parse_seccomp_mode(status) is not None
    ns_names = tuple(sorted(namespaces))
    version = procfs.parse_kernel_version(release)

    missing = _missing_items(layout, version, controllers, subsystems, swap, blkio_file,
                             blkio_known, overlay, ns_names, seccomp)
    in_use = cgroup2 is not None and layout in ("v2", "hybrid")
    return HostInfo(
        kernel_release=release.strip(),
        kernel_version=version,
        cgroup_layout=layout,
        cgroup_driver="cgroupfs",
        cgroup2_mountpoint=cgroup2.mountpoint if in_use else None,
        cgroup2_controllers=v2_names if in_use else (),
        controllers=dict(sorted(controllers.items())),
        swap_accounting=swap,
        blkio_weight_file=blkio_file,
        cgroup_ns_nested=nested,
        overlay=overlay,
        namespaces=ns_names,
        seccomp=seccomp,
        missing=tuple(missing),
        swap_total=procfs.parse_swap_total(meminfo),
    )


def _read(path: str, default: str = "") -> str:
    try:
        with open(path) as handle:
            return handle.read()
    except OSError as error:
        log.debug("probe: cannot read %s: %s", path, error)
        return default


def _listdir(path: str) -> frozenset[str] | None:
    try:
        return frozenset(os.listdir(path))
    except OSError as error:
        log.debug("probe: cannot list %s: %s", path, error)
        return None


def _v2_sample_dir(mountpoint: str, controller: str) -> str | None:
    """Find a non-root cgroup with `controller` enabled; the root lacks most interface files."""
    try:
        children = sorted(entry.path for entry in os.scandir(mountpoint) if entry.is_dir())
    except OSError:
        return None
    for child in children:
        if controller in _read(os.path.join(child, "cgroup.controllers")).split():
            return child
    return None


def _listings(controllers: Mapping[str, Controller]) -> dict[str, frozenset[str]]:
    listings = {}
    for name in ("memory", "blkio", "io"):
        controller = controllers.get(name)
        if controller is None:
            continue
        directory = controller.mountpoint
        if controller.version == "v2":
            directory = _v2_sample_dir(controller.mountpoint, name)
        files = _listdir(directory) if directory else None
        if files is not None:
            listings[name] = files
    return listings


def probe(proc: str = "/proc", sys_fs_cgroup: str = "/sys/fs/cgroup") -> HostInfo:
    """Probe the running kernel through proc and sys_fs_cgroup."""
    mountinfo = _read(os.path.join(proc, "self/mountinfo"))
    mounts = procfs.parse_mountinfo(mountinfo)
    root_magic = statfs_magic(sys_fs_cgroup)
    unified_magic = statfs_magic(os.path.join(sys_fs_cgroup, "unified"))
    layout = layout_from_magic(root_magic, unified_magic)

    cgroup2_text = ""
    cgroup2_mounts = [mount for mount in mounts if mount.fstype == "cgroup2"]
    if cgroup2_mounts:
        cgroup2 = _pick_mount(cgroup2_mounts, sys_fs_cgroup)
        cgroup2_text = _read(os.path.join(cgroup2.mountpoint, "cgroup.controllers"))

    subsystems = procfs.parse_proc_cgroups(_read(os.path.join(proc, "cgroups")))
    controllers, _ = find_controllers(
        mounts, layout, subsystems, procfs.parse_controller_list(cgroup2_text), sys_fs_cgroup
    )
    namespaces = _listdir(os.path.join(proc, "self/ns")) or frozenset()

    info = host_info_from(
        release=_read(os.path.join(proc, "sys/kernel/osrelease")) or os.uname().release,
        mountinfo=mountinfo,
        proc_cgroups=_read(os.path.join(proc, "cgroups")),
        filesystems=_read(os.path.join(proc, "filesystems")),
        namespaces=namespaces,
        status=_read(os.path.join(proc, "self/status")),
        root_magic=root_magic,
        unified_magic=unified_magic,
        cgroup2_controllers=cgroup2_text,
        listings=_listings(controllers),
        sys_fs_cgroup=sys_fs_cgroup,
        meminfo=_read(os.path.join(proc, "meminfo")),
    )
    log.debug("probe: layout %s, controllers %s", info.cgroup_layout, sorted(info.controllers))
    return info


_host: HostInfo | None = None


def host() -> HostInfo:
    """Return the probe of this host, made on the first call."""
    global _host
    if _host is None:
        _host = probe()
    return _host
