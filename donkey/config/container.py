"""The container configuration built from CLI flags and the image, and its checks.

Everything here is plain Python over strings, so unit tests drive it without root.
"""

from __future__ import annotations

import os

from donkey.errors import InvalidArgument, NotFound
from donkey.record import Record

DEFAULT_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

# Character sets rather than regular expressions: importing re costs about 5 ms, a sixth
# of a container start.
_ALPHANUMERIC = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789")
# Docker's rule for container names: [a-zA-Z0-9][a-zA-Z0-9_.-]+
_NAME_CHARS = _ALPHANUMERIC | frozenset("_.-")
# RFC 1123 host name label, as sethostname in a container should see it:
# [a-zA-Z0-9][a-zA-Z0-9.-]{0,62}
_HOSTNAME_CHARS = _ALPHANUMERIC | frozenset(".-")


class BindMount(Record):
    FIELDS = ("source", "destination", "readonly")

    def __init__(self, source: str, destination: str, readonly: bool = False) -> None:
        self.source = source
        self.destination = destination
        self.readonly = readonly


class ContainerConfig(Record):
    FIELDS = ("id", "name", "image", "rootfs", "command", "env", "hostname", "workdir", "tty",
              "interactive", "mounts", "auto_remove", "storage_driver", "resources")

    def __init__(
        self,
        id: str,
        name: str,
        image: str | None,
        rootfs: str,
        command: list[str],
        env: list[str],
        hostname: str,
        workdir: str = "/",
        tty: bool = False,
        interactive: bool = False,
        mounts: list[BindMount] | None = None,
        auto_remove: bool = False,
        storage_driver: str = "overlay",
        resources: dict | None = None,
    ) -> None:
        self.id = id
        self.name = name
        self.image = image
        self.rootfs = rootfs
        self.command = command
        self.env = env
        self.hostname = hostname
        self.workdir = workdir
        self.tty = tty
        self.interactive = interactive
        self.mounts = [] if mounts is None else mounts
        self.auto_remove = auto_remove
        self.storage_driver = storage_driver
        self.resources = {} if resources is None else resources

    def to_dict(self) -> dict:
        data = super().to_dict()
        data["command"] = list(self.command)
        data["env"] = list(self.env)
        data["mounts"] = [mount.to_dict() for mount in self.mounts]
        data["resources"] = dict(self.resources)
        return data

    @classmethod
    def from_dict(cls, data: dict) -> ContainerConfig:
        data = dict(data)
        data["mounts"] = [BindMount(**mount) for mount in data.get("mounts", [])]
        return cls(**data)


def validate_name(name: str) -> str:
    # 255: the name is also a file name in the state root's name index.
    if (not 2 <= len(name) <= 255 or name[0] not in _ALPHANUMERIC
            or not _NAME_CHARS.issuperset(name)):
        raise InvalidArgument(
            f"invalid container name {name!r}: use 2 to 255 letters, digits, '_', '.' and "
            "'-', starting with a letter or digit",
            value=name,
        )
    return name


def validate_hostname(hostname: str) -> str:
    if (not 1 <= len(hostname) <= 63 or hostname[0] not in _ALPHANUMERIC
            or not _HOSTNAME_CHARS.issuperset(hostname) or ".." in hostname):
        raise InvalidArgument(
            f"invalid hostname {hostname!r}: use at most 63 letters, digits, '-' and '.'",
            value=hostname,
        )
    return hostname


def parse_env_assignment(
    item: str, host_env: dict[str, str], origin: str = "-e"
) -> tuple[str, str] | None:
    """Parse KEY=VALUE, or a bare KEY that takes the caller's value as Docker does.

    Returns None for a bare KEY that the caller's environment does not set.
    """
    key, sep, value = item.partition("=")
    if not key or any(char.isspace() for char in key):
        raise InvalidArgument(
            f"invalid environment variable {item!r} in {origin}: use KEY=VALUE "
            "with a non-empty KEY and no spaces in it",
            value=item,
        )
    if sep:
        return key, value
    if key in host_env:
        return key, host_env[key]
    return None


def parse_env_file(path: str, host_env: dict[str, str]) -> list[tuple[str, str]]:
    """Read Docker's env-file format: KEY=VALUE lines, '#' comments and blank lines."""
    try:
        with open(path, encoding="utf-8") as stream:
            lines = stream.read().splitlines()
    except FileNotFoundError:
        raise NotFound(f"env file {path} not found: check the path given to --env-file",
                       path=path) from None
    except IsADirectoryError:
        raise InvalidArgument(f"env file {path} is a directory: give --env-file a file of "
                              "KEY=VALUE lines", path=path) from None
    except UnicodeDecodeError as error:
        raise InvalidArgument(f"env file {path} is not UTF-8 text (byte {error.start}): "
                              "save it as UTF-8", path=path) from None
    except OSError as error:
        raise InvalidArgument(f"cannot read env file {path}: {error.strerror}",
                              path=path) from None

    pairs = []
    for number, line in enumerate(lines, start=1):
        stripped = line.lstrip()
        if not stripped or stripped.startswith("#"):
            continue
        pair = parse_env_assignment(stripped, host_env, origin=f"{path} line {number}")
        if pair is not None:
            pairs.append(pair)
    return pairs


def build_env(
    image_env: list[str],
    user_pairs: list[tuple[str, str]],
    hostname: str,
    tty: bool,
) -> list[str]:
    """Build the container's environment; nothing comes from the caller's environment.

    Precedence, lowest first: the defaults (PATH, HOSTNAME, TERM with a tty), the image's
    Env, then -e and --env-file. HOME is filled in at start from the image's /etc/passwd
    when neither the image nor the user sets it.
    """
    env: dict[str, str] = {"PATH": DEFAULT_PATH, "HOSTNAME": hostname}
    if tty:
        env["TERM"] = "xterm"
    for item in image_env:
        key, _, value = item.partition("=")
        env[key] = value
    for key, value in user_pairs:
        env[key] = value
    return [f"{key}={value}" for key, value in env.items()]


def parse_volume(spec: str) -> BindMount:
    """Parse -v SRC:DST[:ro|rw] with an absolute host SRC that must exist."""
    parts = spec.split(":")
    if len(parts) not in (2, 3) or not parts[0] or not parts[1]:
        raise InvalidArgument(
            f"invalid volume {spec!r}: use -v /host/path:/container/path[:ro]", value=spec
        )
    source, destination = parts[0], parts[1]
    mode = parts[2] if len(parts) == 3 else "rw"
    if mode not in ("ro", "rw"):
        raise InvalidArgument(
            f"invalid volume mode {mode!r} in {spec!r}: use ro or rw", value=spec
        )
    if not source.startswith("/"):
        raise InvalidArgument(
            f"invalid volume source {source!r} in {spec!r}: named volumes are not "
            'supported, give an absolute host path such as "$PWD"',
            value=spec,
        )
    if not destination.startswith("/"):
        raise InvalidArgument(
            f"invalid volume destination {destination!r} in {spec!r}: "
            "the container path must be absolute",
            value=spec,
        )
    target = os.path.normpath(destination)
    if target == "/" or target == "/proc" or target.startswith("/proc/"):
        raise InvalidArgument(
            f"invalid volume destination {destination!r} in {spec!r}: a bind mount cannot "
            "replace the container's / or /proc; pick another container path",
            value=spec,
        )
    if not os.path.exists(source):
        raise NotFound(
            f"bind source path {source} does not exist: create it first or fix -v {spec}",
            path=source,
        )
    return BindMount(os.path.realpath(source), os.path.normpath(destination), mode == "ro")


def validate_workdir(workdir: str) -> str:
    if not workdir.startswith("/"):
        raise InvalidArgument(
            f"invalid working directory {workdir!r}: -w needs an absolute path", value=workdir
        )
    return os.path.normpath(workdir)
