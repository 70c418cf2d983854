"""The engine's locations for state, layers and cgroups, and the removal of a container."""

from __future__ import annotations

import _signal  # signal without its enum wrappers, which cost about 4 ms to import
import os
import time

from donkey.errors import Conflict, DonkeyError
from donkey.logs.engine import get_logger
from donkey.record import Record
from donkey.runtime.paths import remove_tree
from donkey.runtime.state import EXITED, PAUSED, ContainerState, StateStore

log = get_logger("engine")

DEFAULT_ROOT = "/run/donkey"
DEFAULT_DATA_ROOT = "/var/lib/donkey"
DEFAULT_CGROUP_PARENT = "donkey"


class Engine(Record):
    FIELDS = ("root", "data_root", "cgroup_parent", "storage_driver")

    def __init__(self, root: str = DEFAULT_ROOT, data_root: str = DEFAULT_DATA_ROOT,
                 cgroup_parent: str = DEFAULT_CGROUP_PARENT,
                 storage_driver: str | None = None) -> None:
        self.root = root
        self.data_root = data_root
        self.cgroup_parent = cgroup_parent
        self.storage_driver = storage_driver

    # Both stores are made on first use and kept. Plain properties rather than
    # functools.cached_property: functools costs about 1.5 ms to import.
    @property
    def states(self) -> StateStore:
        store = self.__dict__.get("_states")
        if store is None:
            store = self.__dict__["_states"] = StateStore(self.root)
        return store

    @property
    def images(self):
        store = self.__dict__.get("_images")
        if store is None:
            from donkey.image.store import ImageStore

            store = self.__dict__["_images"] = ImageStore(self.data_root)
        return store

    def layer_dir(self, container_id: str) -> str:
        return os.path.join(self.data_root, "containers", container_id)

    def log_path(self, container_id: str) -> str:
        """Return the container's JSON-lines log file, kept beside its layer as Docker does."""
        return os.path.join(self.layer_dir(container_id), f"{container_id}-json.log")

    def pick_storage_driver(self) -> str:
        """Return overlay where the kernel has it, else vfs (a copied rootfs)."""
        if self.storage_driver:
            return self.storage_driver
        if _filesystem_available("overlay"):
            return "overlay"
        # Stock Debian kernels build overlay as a module that nothing has loaded yet, and
        # /proc/filesystems lists only loaded ones: load it once, then look again.
        module_dir = f"/lib/modules/{os.uname().release}/kernel/fs/overlayfs"
        if os.path.isdir(module_dir):
            import subprocess

            result = subprocess.run(["modprobe", "overlay"], capture_output=True, text=True)
            if result.returncode != 0:
                log.warning("modprobe overlay failed (%s); copying the rootfs instead",
                            result.stderr.strip())
            elif _filesystem_available("overlay"):
                return "overlay"
        return "vfs"

    def cgroup_manager(self):
        """Return the host's cgroup manager, or None when this build has no cgroup support."""
        try:
            from donkey.cgroups import for_host
        except ImportError:
            return None
        return for_host(parent=self.cgroup_parent)

    def remove(self, state: ContainerState, force: bool = False) -> None:
        """Remove a container: its process (with force), cgroup, layer and state directory."""
        if force and state.restart_policy != "no" and state.monitor_is_alive():
            from donkey.runtime.monitor import STOPPED_BY_USER

            # Keeps the monitor from starting the container again while it is removed.
            state.error = STOPPED_BY_USER
            self.states.save(state)
        if state.is_alive():
            if not force:
                raise Conflict(
                    f"cannot remove container {state.name}: it is running; stop it first "
                    f"or use donkey rm -f {state.name}",
                    value=state.name,
                )
            if state.status == PAUSED:
                self.thaw(state)
            kill_and_wait(state)
        if state.monitor_pid and state.monitor_pid != os.getpid():
            # The monitor records the exit into the state directory; removing the directory
            # under it could leave a half-written file behind.
            wait_for_monitor(state)

        self.destroy_cgroup(state)
        remove_tree(self.layer_dir(state.id))
        self.states.remove(state.id, state.name)
        log.info("removed container %s", state.id)

    def thaw(self, state: ContainerState) -> None:
        """Thaw a paused container: a frozen process does not act on SIGKILL until thawed."""
        manager = self.cgroup_manager()
        if manager is None:
            return
        try:
            manager.load(state.id).thaw()
        except DonkeyError as error:
            log.warning("thawing container %s failed: %s", state.id, error)

    def destroy_cgroup(self, state: ContainerState) -> None:
        manager = self.cgroup_manager()
        if manager is None:
            return
        try:
            manager.load(state.id).destroy()
        except DonkeyError as error:
            log.warning("removing the cgroup of container %s failed: %s", state.id, error)
        self.remove_empty_cgroup_parent(manager)

    def remove_empty_cgroup_parent(self, manager=None) -> None:
        """Remove the cgroup parent once its last container is gone, so none is left behind."""
        manager = manager or self.cgroup_manager()
        if manager is None:
            return
        try:
            manager.remove_parent()
        except (DonkeyError, OSError) as error:
            log.debug("keeping the cgroup parent %s: %s", self.cgroup_parent, error)

    def collect_garbage(self) -> None:
        """Remove --rm containers whose process is gone, such as after kill -9 of donkey."""
        for container_id in self.states.auto_remove_ids():
            try:
                state = self.states.load(container_id)
            except DonkeyError:
                # Being removed, or removed by a donkey that was killed halfway.
                self.states.forget_auto_remove(container_id)
                continue
            if state.is_abandoned():
                log.info("removing leftover --rm container %s", state.id)
                try:
                    self.remove(state)
                except DonkeyError as error:
                    log.warning("removing leftover container %s failed: %s", state.id, error)


def _filesystem_available(name: str) -> bool:
    try:
        with open("/proc/filesystems", "rb") as stream:
            return name.encode() in stream.read().split()
    except OSError:
        return False


def kill_and_wait(state: ContainerState, timeout: float = 10.0) -> None:
    """SIGKILL the container's init, which takes its whole PID namespace down, and wait."""
    try:
        os.kill(state.pid, _signal.SIGKILL)
    except ProcessLookupError:
        return
    deadline = time.monotonic() + timeout
    while state.is_alive():
        if time.monotonic() > deadline:
            raise DonkeyError(f"container {state.name} (pid {state.pid}) did not exit "
                              f"{timeout:.0f} s after SIGKILL")
        try:
            # Reaps it when it is our own child; otherwise its parent or init does.
            os.waitpid(state.pid, os.WNOHANG)
        except ChildProcessError:
            pass
        time.sleep(0.01)


def wait_for_monitor(state: ContainerState, timeout: float = 5.0) -> None:
    """Wait for the container's monitor to exit; SIGKILL it when it does not in time."""
    deadline = time.monotonic() + timeout
    while state.monitor_is_alive():
        if time.monotonic() > deadline:
            log.warning("monitor %d of container %s did not exit %.0f s after its container; "
                        "killing it", state.monitor_pid, state.id, timeout)
            try:
                os.kill(state.monitor_pid, _signal.SIGKILL)
            except ProcessLookupError:
                pass
            return
        time.sleep(0.01)


def send_signal(state: ContainerState, signum: int) -> bool:
    """Send signum to the container's init; return False when that process is gone.

    The signal goes through a pidfd opened before the start time is checked, so a pid
    that was reused by another process is never signalled.
    """
    if not state.pid:
        return False
    try:
        pidfd = os.pidfd_open(state.pid)
    except ProcessLookupError:
        return False
    except (AttributeError, OSError):
        # NOTE: kernels before 5.3 have no pidfd, so a pid reused between the check
        # and os.kill could be signalled there.
        pidfd = None
    try:
        if not state.is_alive():
            return False
        if pidfd is None:
            os.kill(state.pid, signum)
        else:
            _signal.pidfd_send_signal(pidfd, signum)
        return True
    except ProcessLookupError:
        return False
    finally:
        if pidfd is not None:
            os.close(pidfd)


def wait_until_dead(state: ContainerState, timeout: float) -> bool:
    """Wait up to timeout seconds for the init to exit; return whether it did."""
    deadline = time.monotonic() + timeout
    while state.is_alive():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.01)
    return True


def stop(engine: Engine, state: ContainerState, timeout: float = 10.0) -> None:
    """Send SIGTERM, then SIGKILL after timeout seconds, and wait for the exit record."""
    if state.status == PAUSED:
        send_signal(state, _signal.SIGTERM)
        engine.thaw(state)
    elif not send_signal(state, _signal.SIGTERM):
        return
    if not wait_until_dead(state, timeout):
        log.info("container %s ignored SIGTERM for %.0f s, sending SIGKILL", state.id, timeout)
        send_signal(state, _signal.SIGKILL)
        if not wait_until_dead(state, 10.0):
            raise DonkeyError(f"container {state.name} (pid {state.pid}) did not exit 10 s "
                              "after SIGKILL: check for a process stuck in the kernel (D "
                              "state) with donkey top")
    wait_for_monitor(state)


def wait_for_exit(engine: Engine, state: ContainerState, poll: float = 0.05) -> ContainerState:
    """Block until the container has exited and its exit is recorded; return that state.

    Raises NotFound when the container is removed meanwhile (such as a --rm container).
    """
    while True:
        current = engine.states.load(state.id)
        if current.observed_status() == EXITED and not current.monitor_is_alive():
            return current
        time.sleep(poll)
