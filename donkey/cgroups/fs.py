"""File access to cgroupfs, behind one small class that unit tests replace with a fake.

Every failure becomes a CgroupError that names the file, the value and errno.
"""

from __future__ import annotations

import errno as errno_codes
import os

from donkey.errors import DonkeyError
from donkey.logs.engine import get_logger

log = get_logger("cgroups.fs")

_WRITE_HINTS = {
    errno_codes.EINVAL: "the kernel rejected the value; check its range and format",
    errno_codes.ERANGE: "the value is outside what this host has, such as a CPU or memory "
    "node number it lacks; check it against nproc or /sys/devices/system/node",
    errno_codes.ENOENT: "the kernel has no such file; this limit is unsupported here",
    errno_codes.ENOSPC: "the cgroup's cpuset.cpus or cpuset.mems is empty",
    errno_codes.EBUSY: "the cgroup is in use (a cgroup with processes cannot enable "
    "controllers for its children)",
    errno_codes.EACCES: "run donkey as root",
    errno_codes.EPERM: "run donkey as root",
    errno_codes.EOPNOTSUPP: "the controller does not support this operation here",
}


class CgroupError(DonkeyError):
    """A cgroupfs read, write, mkdir or rmdir failed, or a limit cannot be enforced."""


def error_from_os(action: str, path: str, error: OSError, value: object = None) -> CgroupError:
    hint = _WRITE_HINTS.get(error.errno or 0, "")
    shown = f" {value!r} to" if value is not None else ""
    message = f"cgroup {action} failed:{shown} {path}: {error.strerror or error}"
    if hint:
        message += f" ({hint})"
    return CgroupError(message, path=path, value=value, errno=error.errno)


class CgroupFS:
    """Reads and writes cgroup files; kept apart so tests can record and fake the tree."""

    def read(self, path: str) -> str:
        try:
            with open(path) as handle:
                return handle.read()
        except OSError as error:
            raise error_from_os("read", path, error) from error

    def write(self, path: str, value: str) -> None:
        # No O_CREAT: cgroupfs files exist or the kernel lacks the feature, and creating a
        # regular file would hide that.
        log.debug("cgroup write %r to %s", value, path)
        try:
            descriptor = os.open(path, os.O_WRONLY | os.O_CLOEXEC)
        except OSError as error:
            raise error_from_os("write", path, error, value) from error
        try:
            os.write(descriptor, value.encode())
        except OSError as error:
            raise error_from_os("write", path, error, value) from error
        finally:
            os.close(descriptor)

    def exists(self, path: str) -> bool:
        return os.path.exists(path)

    def listdir(self, path: str) -> list[str]:
        try:
            return sorted(os.listdir(path))
        except OSError as error:
            raise error_from_os("list", path, error) from error

    def subdirectories(self, path: str) -> list[str]:
        try:
            return sorted(entry.name for entry in os.scandir(path) if entry.is_dir())
        except FileNotFoundError:
            return []
        except OSError as error:
            raise error_from_os("list", path, error) from error

    def mkdir(self, path: str) -> bool:
        """Create one cgroup directory; return False when it already existed."""
        try:
            os.mkdir(path, 0o755)
        except FileExistsError:
            return False
        except OSError as error:
            raise error_from_os("mkdir", path, error) from error
        log.debug("cgroup created %s", path)
        return True

    def rmdir(self, path: str) -> None:
        os.rmdir(path)
        log.debug("cgroup removed %s", path)
