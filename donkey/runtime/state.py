"""The container state store: one directory per container under the state root.

`<root>/<id>/state.json` contains the configuration and the runtime state. Writes go to a
temporary file that is renamed into place, so a reader never sees half a file. Creating a
container takes an exclusive flock on `<root>/.lock` and records the name in `.names`, so
two containers never get one name (see StateStore).
"""

from __future__ import annotations

import fcntl
import os
import time

from donkey import jsontext
from donkey.config.container import ContainerConfig
from donkey.errors import Conflict, DonkeyError, NotFound
from donkey.record import Record
from donkey.runtime.paths import remove_tree

CREATED = "created"
RUNNING = "running"
PAUSED = "paused"
EXITED = "exited"

# Docker's exit code for a container whose exit status was never recorded.
UNKNOWN_EXIT_CODE = 255


class ContainerState(Record):
    FIELDS = ("config", "status", "created", "pid", "pid_start_time", "started_at",
              "finished_at", "exit_code", "oom_killed", "memory_peak", "cgroup_paths",
              "data_dir", "monitor_pid", "monitor_start_time", "log_path", "init",
              "restart_policy", "restart_count", "error", "creator_pid", "creator_start_time")

    def __init__(
        self,
        config: ContainerConfig,
        status: str = CREATED,
        created: float | None = None,
        pid: int = 0,
        pid_start_time: int = 0,
        started_at: float = 0.0,
        finished_at: float = 0.0,
        exit_code: int | None = None,
        oom_killed: bool = False,
        memory_peak: int | None = None,
        cgroup_paths: dict[str, str] | None = None,
        data_dir: str = "",
        monitor_pid: int = 0,
        monitor_start_time: int = 0,
        log_path: str = "",
        init: bool = False,
        restart_policy: str = "no",
        restart_count: int = 0,
        error: str = "",
        creator_pid: int = 0,
        creator_start_time: int = 0,
    ) -> None:
        self.config = config
        self.status = status
        self.created = time.time() if created is None else created
        self.pid = pid
        self.pid_start_time = pid_start_time
        self.started_at = started_at
        self.finished_at = finished_at
        self.exit_code = exit_code
        self.oom_killed = oom_killed
        self.memory_peak = memory_peak
        self.cgroup_paths = {} if cgroup_paths is None else cgroup_paths
        self.data_dir = data_dir
        # The monitor process of a detached container, identified like the init process.
        self.monitor_pid = monitor_pid
        self.monitor_start_time = monitor_start_time
        self.log_path = log_path
        self.init = init
        self.restart_policy = restart_policy
        self.restart_count = restart_count
        self.error = error
        # The donkey process that created the container, identified like the init.
        self.creator_pid = creator_pid
        self.creator_start_time = creator_start_time

    @property
    def id(self) -> str:
        return self.config.id

    @property
    def name(self) -> str:
        return self.config.name

    def to_dict(self) -> dict:
        data = super().to_dict()
        del data["config"]
        data["cgroup_paths"] = dict(self.cgroup_paths)
        data["config"] = self.config.to_dict()
        return data

    @classmethod
    def from_dict(cls, data: dict) -> ContainerState:
        data = dict(data)
        config = ContainerConfig.from_dict(data.pop("config"))
        return cls(config=config, **data)

    def is_alive(self) -> bool:
        """Tell whether the recorded init process still runs: same pid and same start time."""
        if not self.pid:
            return False
        return process_start_time(self.pid) == self.pid_start_time

    def monitor_is_alive(self) -> bool:
        if not self.monitor_pid:
            return False
        return process_start_time(self.monitor_pid) == self.monitor_start_time

    def is_abandoned(self) -> bool:
        """Tell whether no process will ever record this container's exit.

        True when the init and its monitor are gone, or when the container never got an
        init because the donkey that created it was killed before the fork.
        """
        if self.pid:
            return not self.is_alive() and not self.monitor_is_alive()
        if self.status != CREATED or not self.creator_pid or self.monitor_is_alive():
            return False
        return process_start_time(self.creator_pid) != self.creator_start_time

    def observed_status(self) -> str:
        """Return the status as the processes show it, not only as the last save recorded it.

        A container recorded as running whose init and monitor are both gone (kill -9 of
        the monitor, then of the init) is exited, with an exit code that was never recorded.
        """
        if self.status in (RUNNING, PAUSED) and not self.is_alive():
            if not self.monitor_is_alive():
                return EXITED
        return self.status

    def observed_exit_code(self) -> int | None:
        if self.observed_status() == EXITED and self.status != EXITED:
            return UNKNOWN_EXIT_CODE
        return self.exit_code


def process_start_time(pid: int) -> int | None:
    """Return field 22 of /proc/PID/stat (start time in clock ticks), or None if gone."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as stream:
            data = stream.read()
    except (FileNotFoundError, ProcessLookupError):
        return None
    # The command name may contain spaces and parentheses: split after the last ')'.
    fields = data[data.rindex(b")") + 2:].split()
    if fields[0] == b"Z":
        return None
    return int(fields[19])


_own_start: tuple[int, int] = (0, 0)


def own_start_time() -> int:
    """Return this process's start time as process_start_time reads it, once per process."""
    global _own_start
    pid = os.getpid()
    if _own_start[0] != pid:
        # Keyed by pid, so that a forked child does not take its parent's value.
        _own_start = (pid, process_start_time(pid) or 0)
    return _own_start[1]


def new_id() -> str:
    # os.urandom rather than secrets: secrets imports hmac and OpenSSL (about 4 ms a start).
    return os.urandom(32).hex()


_ADJECTIVES = ("brave", "calm", "eager", "gentle", "happy", "jolly", "keen", "lucid",
               "merry", "nimble", "proud", "quiet", "sharp", "stoic", "swift", "witty")
_ANIMALS = ("burro", "colt", "donkey", "foal", "hinny", "jack", "jenny", "mule",
            "onager", "kiang", "zebra", "pony", "ass", "mare", "stallion", "yak")


def _generated_name() -> str:
    first, second, suffix = os.urandom(3)
    return (f"{_ADJECTIVES[first % len(_ADJECTIVES)]}_{_ANIMALS[second % len(_ANIMALS)]}"
            f"_{suffix:02x}")


class StateStore:
    """The state directories under one root, with two indexes beside them.

    `.names/<name>` contains the id of the container that has the name, so creating a
    container checks one file rather than reading every state. `.auto-remove/<id>` marks a
    --rm container, so garbage collection looks at those alone. Both are kept under the
    lock; a root made by an older donkey gets them on first use.
    """

    def __init__(self, root: str) -> None:
        self.root = root
        self.names = os.path.join(root, ".names")
        self.auto_remove = os.path.join(root, ".auto-remove")

    def _dir(self, container_id: str) -> str:
        return os.path.join(self.root, container_id)

    def locked(self) -> _Lock:
        """Return a context manager that holds the exclusive lock on the root."""
        return _Lock(self)

    def create(self, state: ContainerState, name: str | None) -> None:
        """Reserve the name and write the first state; raise Conflict if the name is taken."""
        with self.locked():
            if name:
                owner = self._owner(name)
                if owner is not None:
                    raise Conflict(
                        f'container name "{name}" is already in use by container '
                        f"{owner[:12]}: remove it with donkey rm {name} or pick another "
                        "--name",
                        value=name,
                    )
                state.config.name = name
            else:
                state.config.name = _generated_name()
                while self._owner(state.config.name) is not None:
                    state.config.name = _generated_name()
            name_entry = os.path.join(self.names, state.config.name)
            try:
                os.makedirs(self._dir(state.id), mode=0o700)
                _write_file(name_entry, state.id)
                self.save(state)
                if state.config.auto_remove:
                    _write_file(os.path.join(self.auto_remove, state.id), "")
            except BaseException:
                # For example a full disk: free the name again and leave no directory behind.
                remove_tree(self._dir(state.id))
                _remove_file(os.path.join(self.auto_remove, state.id))
                if self._owner_entry(state.config.name) == state.id:
                    _remove_file(name_entry)
                raise

    def _owner(self, name: str) -> str | None:
        """Return the id of the container named name, or None when the name is free."""
        owner = self._owner_entry(name)
        if not owner:
            return None
        if os.path.exists(os.path.join(self._dir(owner), "state.json")):
            return owner
        # The entry's container is gone (donkey was killed during rm), or its creation
        # stopped before the first state was written. Either way the name is free again.
        remove_tree(self._dir(owner))
        return None

    def _build_indexes(self) -> None:
        """Make the missing indexes from the states, as on a root of an older donkey.

        Call it under the lock. Each index appears whole, by a rename, so a reader never
        sees a half-built one.
        """
        states = self.list()
        for index, entries in (
            (self.names, {state.name: state.id for state in states}),
            (self.auto_remove, {state.id: "" for state in states if state.config.auto_remove}),
        ):
            if os.path.isdir(index):
                continue
            building = f"{index}.{os.getpid()}"
            remove_tree(building)
            os.makedirs(building, mode=0o700)
            for entry, text in entries.items():
                _write_file(os.path.join(building, entry), text)
            os.rename(building, index)

    def auto_remove_ids(self) -> list[str]:
        """Return the ids of the --rm containers on record."""
        try:
            return os.listdir(self.auto_remove)
        except FileNotFoundError:
            # A new root, or one of an older donkey: taking the lock builds the index.
            with self.locked():
                pass
            return os.listdir(self.auto_remove)

    def forget_auto_remove(self, container_id: str) -> None:
        """Drop the --rm marker of a container whose state directory is gone."""
        if not os.path.isdir(self._dir(container_id)):
            _remove_file(os.path.join(self.auto_remove, container_id))

    def save(self, state: ContainerState) -> None:
        directory = self._dir(state.id)
        temporary = os.path.join(directory, f".state.json.{os.getpid()}")
        with open(temporary, "w", encoding="utf-8") as stream:
            stream.write(jsontext.dumps(state.to_dict()))
        os.rename(temporary, os.path.join(directory, "state.json"))

    def load(self, container_id: str, decode=jsontext.loads) -> ContainerState:
        path = os.path.join(self._dir(container_id), "state.json")
        try:
            with open(path, "rb") as stream:
                return ContainerState.from_dict(decode(stream.read()))
        except FileNotFoundError:
            raise NotFound(f"no such container: {container_id}", value=container_id) from None
        except (ValueError, TypeError, KeyError) as error:
            raise DonkeyError(f"state file {path} is damaged: {error}", path=path) from None

    def list(self) -> list[ContainerState]:
        try:
            entries = os.listdir(self.root)
        except FileNotFoundError:
            return []
        entries = [entry for entry in entries if not entry.startswith(".")]
        if not entries:
            return []
        # Many documents: json's C parser soon makes up for its import (see jsontext).
        import json

        states = []
        for entry in entries:
            try:
                states.append(self.load(entry, json.loads))
            except DonkeyError:
                # A directory whose state.json is not written yet, or is gone already.
                continue
        return states

    def lookup(self, reference: str) -> ContainerState:
        """Find a container by full id, name, or unique id prefix, as Docker does."""
        if not reference:
            raise NotFound("no such container: empty name or id")
        states = self.list()
        for state in states:
            if state.id == reference or state.name == reference:
                return state
        matches = [state for state in states if state.id.startswith(reference)]
        if len(matches) == 1:
            return matches[0]
        if len(matches) > 1:
            raise Conflict(f"container id prefix {reference} is ambiguous: "
                           f"{len(matches)} containers match, give more characters",
                           value=reference)
        raise NotFound(f"no such container: {reference}", value=reference)

    def remove(self, container_id: str, name: str | None = None) -> None:
        """Remove the container's state directory and its index entries."""
        if name is None:
            try:
                name = self.load(container_id).name
            except DonkeyError:
                pass
        remove_tree(self._dir(container_id))
        _remove_file(os.path.join(self.auto_remove, container_id))
        if name:
            with self.locked():
                if self._owner_entry(name) == container_id:
                    _remove_file(os.path.join(self.names, name))

    def _owner_entry(self, name: str) -> str | None:
        """Return the id written in the name's entry, or None when there is no entry."""
        try:
            with open(os.path.join(self.names, name), encoding="utf-8") as stream:
                return stream.read()
        except FileNotFoundError:
            return None


class _Lock:
    """The exclusive flock on `<root>/.lock`. Entering it also sets up missing indexes."""

    def __init__(self, store: StateStore) -> None:
        self.store = store
        self.fd = -1

    def __enter__(self) -> StateStore:
        os.makedirs(self.store.root, mode=0o711, exist_ok=True)
        self.fd = os.open(os.path.join(self.store.root, ".lock"),
                          os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
        try:
            fcntl.flock(self.fd, fcntl.LOCK_EX)
            if not (os.path.isdir(self.store.names) and os.path.isdir(self.store.auto_remove)):
                self.store._build_indexes()
        except BaseException:
            os.close(self.fd)
            raise
        return self.store

    def __exit__(self, *exc_info) -> None:
        os.close(self.fd)


def _write_file(path: str, text: str) -> None:
    # Only called under the lock, which has made the index directories.
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, 0o600)
    try:
        os.write(fd, text.encode())
    finally:
        os.close(fd)


def _remove_file(path: str) -> None:
    try:
        os.unlink(path)
    except FileNotFoundError:
        pass

