"""The syscall seam: the kernel calls Python 3.11 lacks, through ctypes.

Every function raises SyscallError with the errno, the operation and the path, so callers
never see a bare OSError from here. Nothing else in donkey calls libc directly.
"""

from __future__ import annotations

import ctypes
import os

from donkey.errors import SyscallError

CLONE_NEWNS = 0x00020000
CLONE_NEWCGROUP = 0x02000000
CLONE_NEWUTS = 0x04000000
CLONE_NEWIPC = 0x08000000
CLONE_NEWUSER = 0x10000000
CLONE_NEWPID = 0x20000000
CLONE_NEWNET = 0x40000000

MS_RDONLY = 1
MS_NOSUID = 2
MS_NODEV = 4
MS_NOEXEC = 8
MS_REMOUNT = 32
MS_BIND = 4096
MS_MOVE = 8192
MS_REC = 16384
MS_PRIVATE = 1 << 18
MS_SLAVE = 1 << 19
MS_STRICTATIME = 1 << 24

MNT_DETACH = 2

PR_SET_PDEATHSIG = 1
PR_CAPBSET_DROP = 24
PR_SET_NO_NEW_PRIVS = 38

# pivot_root has no libc wrapper in glibc, so it goes through syscall(2).
_PIVOT_ROOT_NR = {"x86_64": 155, "aarch64": 41, "ppc64le": 203, "s390x": 217}
_CAPSET_NR = {"x86_64": 126, "aarch64": 91, "ppc64le": 184, "s390x": 185}
# The same value as platform.machine(), without importing platform on every start.
_MACHINE = os.uname().machine

_libc = ctypes.CDLL(None, use_errno=True)
_libc.mount.argtypes = [
    ctypes.c_char_p,
    ctypes.c_char_p,
    ctypes.c_char_p,
    ctypes.c_ulong,
    ctypes.c_char_p,
]
_libc.umount2.argtypes = [ctypes.c_char_p, ctypes.c_int]
_libc.unshare.argtypes = [ctypes.c_int]
_libc.setns.argtypes = [ctypes.c_int, ctypes.c_int]
_libc.prctl.argtypes = [ctypes.c_int] + [ctypes.c_ulong] * 4
_libc.syscall.restype = ctypes.c_long


def _encode(value: str | None) -> bytes | None:
    return None if value is None else os.fsencode(value)


def _check(result: int, operation: str, path: str | None = None) -> None:
    if result == 0:
        return
    err = ctypes.get_errno()
    where = f" {path}" if path else ""
    raise SyscallError(f"{operation}{where} failed: {os.strerror(err)}", path=path, errno=err)


def unshare(flags: int) -> None:
    _check(_libc.unshare(flags), f"unshare(0x{flags:x})")


def setns(fd: int, nstype: int = 0) -> None:
    _check(_libc.setns(fd, nstype), f"setns(fd {fd})")


def mount(
    source: str | None,
    target: str,
    fstype: str | None = None,
    flags: int = 0,
    data: str | None = None,
) -> None:
    result = _libc.mount(_encode(source), _encode(target), _encode(fstype), flags, _encode(data))
    _check(result, f"mount {fstype or source or ''} on", target)


def umount2(target: str, flags: int = 0) -> None:
    _check(_libc.umount2(_encode(target), flags), "umount", target)


def pivot_root(new_root: str, put_old: str) -> None:
    number = _PIVOT_ROOT_NR.get(_MACHINE)
    if number is None:
        raise SyscallError(f"pivot_root: unsupported architecture {_MACHINE}")
    result = _libc.syscall(number, _encode(new_root), _encode(put_old))
    _check(result, "pivot_root", new_root)


def prctl(option: int, arg2: int = 0, arg3: int = 0, arg4: int = 0, arg5: int = 0) -> None:
    _check(_libc.prctl(option, arg2, arg3, arg4, arg5), f"prctl({option})")


class _CapHeader(ctypes.Structure):
    _fields_ = [("version", ctypes.c_uint32), ("pid", ctypes.c_int)]


class _CapData(ctypes.Structure):
    _fields_ = [
        ("effective", ctypes.c_uint32),
        ("permitted", ctypes.c_uint32),
        ("inheritable", ctypes.c_uint32),
    ]


_LINUX_CAPABILITY_VERSION_3 = 0x20080522


def capset(effective: int, permitted: int, inheritable: int) -> None:
    """Set the calling thread's capability sets from 64-bit masks."""
    number = _CAPSET_NR.get(_MACHINE)
    if number is None:
        raise SyscallError(f"capset: unsupported architecture {_MACHINE}")
    header = _CapHeader(_LINUX_CAPABILITY_VERSION_3, 0)
    data = (_CapData * 2)()
    for index in (0, 1):
        shift = 32 * index
        data[index].effective = (effective >> shift) & 0xFFFFFFFF
        data[index].permitted = (permitted >> shift) & 0xFFFFFFFF
        data[index].inheritable = (inheritable >> shift) & 0xFFFFFFFF
    result = _libc.syscall(number, ctypes.byref(header), ctypes.byref(data))
    _check(result, "capset")
