"""Capabilities: a container's root keeps Docker's default set and nothing more."""

from __future__ import annotations

from donkey.errors import SyscallError
from donkey.hal import syscalls as sc

# Docker's default capability set (moby oci/caps/defaults.go), as kernel numbers.
DEFAULT_CAPABILITIES = {
    "CAP_CHOWN": 0,
    "CAP_DAC_OVERRIDE": 1,
    "CAP_FOWNER": 3,
    "CAP_FSETID": 4,
    "CAP_KILL": 5,
    "CAP_SETGID": 6,
    "CAP_SETUID": 7,
    "CAP_SETPCAP": 8,
    "CAP_NET_BIND_SERVICE": 10,
    "CAP_NET_RAW": 13,
    "CAP_SYS_CHROOT": 18,
    "CAP_MKNOD": 27,
    "CAP_AUDIT_WRITE": 29,
    "CAP_SETFCAP": 31,
}


def _last_capability() -> int:
    try:
        # Bytes, not text: after pivot_root no codec module can be imported.
        with open("/proc/sys/kernel/cap_last_cap", "rb") as stream:
            return int(stream.read())
    except OSError:
        return 40


def drop_capabilities(keep: set[int] | None = None) -> None:
    """Drop every capability outside keep from the bounding set and the thread's sets.

    Must run before pivot_root's /proc is gone or after a fresh /proc is mounted, because
    the highest capability number comes from /proc/sys/kernel/cap_last_cap.
    """
    if keep is None:
        keep = set(DEFAULT_CAPABILITIES.values())
    for capability in range(_last_capability() + 1):
        if capability in keep:
            continue
        try:
            sc.prctl(sc.PR_CAPBSET_DROP, capability)
        except SyscallError as error:
            # EINVAL: the kernel does not know this capability; nothing to drop.
            if error.errno != 22:
                raise

    mask = 0
    for capability in keep:
        mask |= 1 << capability
    sc.capset(mask, mask, mask)
