"""The container's root filesystem, set up by the child in its own mount namespace.

Every mount here happens after unshare(CLONE_NEWNS) and after `/` was made rprivate, so
none of them is visible on the host or outlives the container's mount namespace.
"""

from __future__ import annotations

import os
import stat

from donkey.config.container import BindMount
from donkey.errors import InvalidArgument, SyscallError
from donkey.hal import syscalls as sc
from donkey.runtime.paths import secure_join

# (name, major, minor): the device nodes every OCI runtime provides.
DEVICES = (
    ("null", 1, 3),
    ("zero", 1, 5),
    ("full", 1, 7),
    ("random", 1, 8),
    ("urandom", 1, 9),
    ("tty", 5, 0),
)
DEV_SYMLINKS = (
    ("fd", "/proc/self/fd"),
    ("stdin", "/proc/self/fd/0"),
    ("stdout", "/proc/self/fd/1"),
    ("stderr", "/proc/self/fd/2"),
    ("ptmx", "pts/ptmx"),
)
# The paths Docker hides from a container: kernel memory, keys and debug state.
MASKED_PATHS = (
    "/proc/asound", "/proc/acpi", "/proc/kcore", "/proc/keys", "/proc/latency_stats",
    "/proc/timer_list", "/proc/timer_stats", "/proc/sched_debug", "/proc/scsi",
    "/sys/firmware",
)
READONLY_PATHS = ("/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys", "/proc/sysrq-trigger")


def make_mounts_private() -> None:
    # Without this, mounts made below would propagate to the host's shared mounts.
    sc.mount(None, "/", None, sc.MS_REC | sc.MS_PRIVATE)


def mount_root(storage_driver: str, rootfs: str, layer_dir: str) -> str:
    """Mount the container's root and return its path on the host's side of pivot_root."""
    if storage_driver == "overlay":
        merged = os.path.join(layer_dir, "merged")
        options = (f"lowerdir={rootfs},upperdir={layer_dir}/upper,"
                   f"workdir={layer_dir}/work")
        sc.mount("overlay", merged, "overlay", 0, options)
        return merged

    # A copied rootfs: pivot_root needs the new root to be a mount point, so bind it
    # onto itself.
    copy = os.path.join(layer_dir, "rootfs")
    sc.mount(copy, copy, None, sc.MS_BIND | sc.MS_REC)
    return copy


def _mkdir_inside(root: str, path: str, mode: int = 0o755) -> str:
    target = secure_join(root, path)
    os.makedirs(target, mode=mode, exist_ok=True)
    return target


def mount_proc_and_sys(root: str) -> None:
    proc = _mkdir_inside(root, "/proc", 0o555)
    sc.mount("proc", proc, "proc", sc.MS_NOSUID | sc.MS_NODEV | sc.MS_NOEXEC)

    sys_dir = _mkdir_inside(root, "/sys", 0o555)
    flags = sc.MS_NOSUID | sc.MS_NODEV | sc.MS_NOEXEC | sc.MS_RDONLY
    sc.mount("sysfs", sys_dir, "sysfs", flags)


def mount_dev(root: str) -> None:
    dev = _mkdir_inside(root, "/dev")
    sc.mount("tmpfs", dev, "tmpfs", sc.MS_NOSUID | sc.MS_STRICTATIME, "mode=755,size=65536k")

    old_umask = os.umask(0)
    try:
        for name, major, minor in DEVICES:
            os.mknod(os.path.join(dev, name), 0o666 | stat.S_IFCHR, os.makedev(major, minor))
        for name, target in DEV_SYMLINKS:
            os.symlink(target, os.path.join(dev, name))

        pts = os.path.join(dev, "pts")
        os.mkdir(pts, 0o755)
        # newinstance gives the container its own pty numbering; ptmxmode lets it open ptmx.
        sc.mount("devpts", pts, "devpts", sc.MS_NOSUID | sc.MS_NOEXEC,
                 "newinstance,ptmxmode=0666,mode=0620,gid=5")

        shm = os.path.join(dev, "shm")
        os.mkdir(shm, 0o1777)
        sc.mount("shm", shm, "tmpfs", sc.MS_NOSUID | sc.MS_NODEV | sc.MS_NOEXEC,
                 "mode=1777,size=65536k")

        mqueue = os.path.join(dev, "mqueue")
        os.mkdir(mqueue, 0o755)
        sc.mount("mqueue", mqueue, "mqueue", sc.MS_NOSUID | sc.MS_NODEV | sc.MS_NOEXEC)
    finally:
        os.umask(old_umask)


def bind_mounts(root: str, mounts: list[BindMount]) -> None:
    for mount in mounts:
        # The destination is resolved inside the container root: a symlink in the image
        # must not send the bind mount to a path on the host.
        target = secure_join(root, mount.destination)
        try:
            if os.path.isdir(mount.source):
                os.makedirs(target, exist_ok=True)
            else:
                os.makedirs(os.path.dirname(target), exist_ok=True)
                if not os.path.lexists(target):
                    with open(target, "a"):
                        pass
        except OSError as error:
            raise InvalidArgument(
                f"cannot create the bind target {mount.destination} in the container: "
                f"{error.strerror}; pick a destination outside read-only /sys and /proc, "
                "or one whose type matches the source",
                path=mount.destination, errno=error.errno,
            ) from None
        if os.path.islink(target):
            raise InvalidArgument(f"bind target {mount.destination} resolves to a symbolic "
                                  "link inside the container", path=mount.destination)
        sc.mount(mount.source, target, None, sc.MS_BIND | sc.MS_REC)
        if mount.readonly:
            sc.mount(None, target, None, sc.MS_BIND | sc.MS_REMOUNT | sc.MS_RDONLY | sc.MS_REC)


def mask_paths(root: str) -> None:
    for path in MASKED_PATHS:
        target = secure_join(root, path)
        if os.path.isdir(target):
            sc.mount("tmpfs", target, "tmpfs", sc.MS_RDONLY, "size=0")
        elif os.path.exists(target):
            sc.mount(os.path.join(root, "dev/null"), target, None, sc.MS_BIND)

    for path in READONLY_PATHS:
        target = secure_join(root, path)
        if not os.path.exists(target):
            continue
        sc.mount(target, target, None, sc.MS_BIND | sc.MS_REC)
        sc.mount(None, target, None, sc.MS_BIND | sc.MS_REMOUNT | sc.MS_RDONLY | sc.MS_REC)


def enter_root(root: str) -> None:
    """Make root the process's `/` with pivot_root and drop every host mount.

    pivot_root(".", ".") stacks the old root on top of the new one. Unmounting "." then
    detaches the old root, so the image needs no directory to hold it.
    """
    os.chdir(root)
    sc.pivot_root(".", ".")
    try:
        sc.umount2(".", sc.MNT_DETACH)
    except SyscallError as error:
        raise SyscallError(f"detaching the host root after pivot_root failed: {error}",
                           errno=error.errno) from None
    os.chdir("/")
