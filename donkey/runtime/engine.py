"""Where an engine keeps its state, layers and cgroups, and how a container is removed."""

from __future__ import annotations

import os
import shutil
import signal
import time
from dataclasses import dataclass
from functools import cached_property

from donkey.errors import Conflict, DonkeyError
from donkey.logs.engine import get_logger
from donkey.runtime.state import ContainerState, StateStore

log = get_logger("engine")

DEFAULT_ROOT = "/run/donkey"
DEFAULT_DATA_ROOT = "/var/lib/donkey"
DEFAULT_CGROUP_PARENT = "donkey"


@dataclass
class Engine:
    root: str = DEFAULT_ROOT
    data_root: str = DEFAULT_DATA_ROOT
    cgroup_parent: str = DEFAULT_CGROUP_PARENT
    storage_driver: str | None = None

    @cached_property
    def states(self) -> StateStore:
        return StateStore(self.root)

    @cached_property
    def images(self):
        from donkey.image.store import ImageStore

        return ImageStore(self.data_root)

    def layer_dir(self, container_id: str) -> str:
        return os.path.join(self.data_root, "containers", container_id)

    def pick_storage_driver(self) -> str:
        """Return overlay where the kernel has it, else vfs (a copied rootfs)."""
        if self.storage_driver:
            return self.storage_driver
        try:
            with open("/proc/filesystems", encoding="ascii") as stream:
                filesystems = stream.read().split()
        except OSError:
            filesystems = []
        # NOTE: an overlay module that is not loaded yet is missing from /proc/filesystems,
        # so such a host falls back to copying the rootfs.
        return "overlay" if "overlay" in filesystems else "vfs"

    def cgroup_manager(self):
        """Return the host's cgroup manager, or None when this build has no cgroup support."""
        try:
            from donkey.cgroups import for_host
        except ImportError:
            return None
        return for_host(parent=self.cgroup_parent)

    def remove(self, state: ContainerState, force: bool = False) -> None:
        """Remove a container: its process (with force), cgroup, layer and state directory."""
        if state.is_alive():
            if not force:
                raise Conflict(
                    f"cannot remove container {state.name}: it is running; stop it first "
                    f"or use donkey rm -f {state.name}",
                    value=state.name,
                )
            kill_and_wait(state)

        self.destroy_cgroup(state)
        shutil.rmtree(self.layer_dir(state.id), ignore_errors=True)
        self.states.remove(state.id)
        log.info("removed container %s", state.id)

    def destroy_cgroup(self, state: ContainerState) -> None:
        manager = self.cgroup_manager()
        if manager is None:
            return
        try:
            manager.load(state.id).destroy()
        except DonkeyError as error:
            log.warning("removing the cgroup of container %s failed: %s", state.id, error)

    def collect_garbage(self) -> None:
        """Remove --rm containers whose process is gone, such as after kill -9 of donkey."""
        for state in self.states.list():
            if state.config.auto_remove and not state.is_alive() and state.pid:
                log.info("removing leftover --rm container %s", state.id)
                try:
                    self.remove(state)
                except DonkeyError as error:
                    log.warning("removing leftover container %s failed: %s", state.id, error)


def kill_and_wait(state: ContainerState, timeout: float = 10.0) -> None:
    """SIGKILL the container's init, which takes its whole PID namespace down, and wait."""
    try:
        os.kill(state.pid, signal.SIGKILL)
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
