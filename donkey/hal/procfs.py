"""Pure parsers for /proc files: each takes the file's text and returns plain data.

They never open anything, so unit tests feed them captures from other kernels.
"""

from __future__ import annotations

from donkey.record import FrozenRecord

_OCTAL_DIGITS = frozenset("01234567")


class Mount(FrozenRecord):
    """One line of /proc/PID/mountinfo (see proc(5))."""

    FIELDS = ("mount_id", "parent_id", "device", "root", "mountpoint", "options", "fstype",
              "source", "super_options")

    def __init__(self, mount_id: int, parent_id: int, device: str, root: str, mountpoint: str,
                 options: tuple[str, ...], fstype: str, source: str,
                 super_options: tuple[str, ...]) -> None:
        self.mount_id = mount_id
        self.parent_id = parent_id
        self.device = device
        self.root = root
        self.mountpoint = mountpoint
        self.options = options
        self.fstype = fstype
        self.source = source
        self.super_options = super_options


class CgroupMembership(FrozenRecord):
    """One line of /proc/PID/cgroup: hierarchy id, its controllers and the process's path."""

    FIELDS = ("hierarchy_id", "controllers", "path")

    def __init__(self, hierarchy_id: int, controllers: tuple[str, ...], path: str) -> None:
        self.hierarchy_id = hierarchy_id
        self.controllers = controllers
        self.path = path


class SubsystemState(FrozenRecord):
    """One row of /proc/cgroups."""

    FIELDS = ("hierarchy_id", "num_cgroups", "enabled")

    def __init__(self, hierarchy_id: int, num_cgroups: int, enabled: bool) -> None:
        self.hierarchy_id = hierarchy_id
        self.num_cgroups = num_cgroups
        self.enabled = enabled


def _unescape(field: str) -> str:
    # mountinfo escapes space, tab, newline and backslash as three-digit octal.
    if "\\" not in field:
        return field
    first, *pieces = field.split("\\")
    parts = [first]
    for piece in pieces:
        if len(piece) >= 3 and _OCTAL_DIGITS.issuperset(piece[:3]):
            parts.append(chr(int(piece[:3], 8)) + piece[3:])
        else:
            parts.append("\\" + piece)
    return "".join(parts)


def parse_mountinfo(text: str) -> list[Mount]:
    """Parse /proc/PID/mountinfo; the optional fields end at the lone "-" separator."""
    mounts = []
    for line in text.splitlines():
        fields = line.split()
        if not fields:
            continue
        try:
            separator = fields.index("-", 6)
        except ValueError:
            raise ValueError(f"invalid mountinfo line, no '-' separator: {line!r}") from None

        tail = fields[separator + 1 :]
        mounts.append(
            Mount(
                mount_id=int(fields[0]),
                parent_id=int(fields[1]),
                device=fields[2],
                root=_unescape(fields[3]),
                mountpoint=_unescape(fields[4]),
                options=tuple(fields[5].split(",")),
                fstype=tail[0] if tail else "",
                source=_unescape(tail[1]) if len(tail) > 1 else "",
                super_options=tuple(tail[2].split(",")) if len(tail) > 2 else (),
            )
        )
    return mounts


def parse_self_cgroup(text: str) -> list[CgroupMembership]:
    """Parse /proc/PID/cgroup; the cgroup2 line is `0::PATH` with no controllers."""
    memberships = []
    for line in text.splitlines():
        if not line.strip():
            continue
        hierarchy_id, controllers, path = line.split(":", 2)
        names = tuple(name for name in controllers.split(",") if name)
        memberships.append(CgroupMembership(int(hierarchy_id), names, path))
    return memberships


def parse_proc_cgroups(text: str) -> dict[str, SubsystemState]:
    """Parse /proc/cgroups. `enabled` 1 does not mean a v1 hierarchy can use the controller."""
    subsystems = {}
    for line in text.splitlines():
        if not line.strip() or line.startswith("#"):
            continue
        name, hierarchy_id, num_cgroups, enabled = line.split()[:4]
        subsystems[name] = SubsystemState(int(hierarchy_id), int(num_cgroups), enabled == "1")
    return subsystems


def parse_filesystems(text: str) -> set[str]:
    """Return the filesystem type names of /proc/filesystems (the `nodev` column dropped)."""
    names = set()
    for line in text.splitlines():
        fields = line.split()
        if fields:
            names.add(fields[-1])
    return names


def parse_namespace_listing(text: str) -> list[str]:
    """Return namespace names from `ls -l /proc/self/ns` output or from one name per line."""
    names = []
    for line in text.splitlines():
        fields = line.split()
        if not fields or fields[0] == "total":
            continue
        if "->" in fields:
            names.append(fields[fields.index("->") - 1])
        else:
            names.append(fields[-1])
    return sorted(names)


def parse_seccomp_mode(status_text: str) -> int | None:
    """Return the `Seccomp:` mode of /proc/PID/status, or None when the kernel lacks seccomp."""
    for line in status_text.splitlines():
        if line.startswith("Seccomp:"):
            return int(line.split()[1])
    return None


def parse_kernel_version(release: str) -> tuple[int, int]:
    """Return (major, minor) of a release string such as `6.12.118+deb13-amd64`."""
    major, dot, rest = release.lstrip().partition(".")
    minor = rest[:len(rest) - len(rest.lstrip("0123456789"))]
    if not (dot and major.isdigit() and major.isascii() and minor):
        raise ValueError(f"invalid kernel release {release!r}: expected MAJOR.MINOR...")
    return int(major), int(minor)


def parse_controller_list(text: str) -> tuple[str, ...]:
    """Parse cgroup.controllers or cgroup.subtree_control; an empty one is a 0-byte file."""
    return tuple(text.split())


def parse_swap_total(meminfo_text: str) -> int | None:
    """Return SwapTotal of /proc/meminfo in bytes, or None when the line is absent."""
    for line in meminfo_text.splitlines():
        if line.startswith("SwapTotal:"):
            return int(line.split()[1]) * 1024
    return None
