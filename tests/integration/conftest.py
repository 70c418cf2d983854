"""Fixtures for tests that run real containers on this host's kernel, as root.

Each test gets its own state root; the session shares one data root (so the busybox image
is built once) and one cgroup parent named donkey-test-<random>, removed at the end. After
each test every container is removed with `donkey rm -f` and the test fails if a layer
directory, cgroup or mount of it is left.
"""

from __future__ import annotations

import os
import secrets
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass

import pytest

if os.geteuid() != 0:
    pytest.skip("integration tests need root: they create namespaces, mounts and cgroups",
                allow_module_level=True)

CGROUP_ROOT = "/sys/fs/cgroup"


@dataclass
class Donkey:
    """Runs the donkey CLI with this test's state root and the session's data root."""

    root: str
    data_root: str
    cgroup_parent: str
    env: dict

    def command(self, *args: str) -> list[str]:
        return [sys.executable, "-m", "donkey", *args]

    def __call__(self, *args: str, timeout: float = 60, input: str | None = None,
                 check: bool = False, env: dict | None = None) -> subprocess.CompletedProcess:
        result = subprocess.run(
            self.command(*args), capture_output=True, text=True, timeout=timeout,
            input=input, env=env or self.env, stdin=None if input is not None
            else subprocess.DEVNULL,
        )
        if check and result.returncode != 0:
            raise AssertionError(f"donkey {' '.join(args)} exited {result.returncode}: "
                                 f"{result.stderr}")
        return result

    def popen(self, *args: str, **kwargs) -> subprocess.Popen:
        kwargs.setdefault("stdout", subprocess.PIPE)
        kwargs.setdefault("stderr", subprocess.PIPE)
        kwargs.setdefault("stdin", subprocess.DEVNULL)
        return subprocess.Popen(self.command(*args), env=self.env, text=True, **kwargs)

    def states(self) -> list[str]:
        try:
            return sorted(entry for entry in os.listdir(self.root) if not entry.startswith("."))
        except FileNotFoundError:
            return []

    def layers(self) -> list[str]:
        try:
            return sorted(os.listdir(os.path.join(self.data_root, "containers")))
        except FileNotFoundError:
            return []

    def cgroups(self) -> list[str]:
        return container_cgroups(self.cgroup_parent)

    def state_of(self, container_id: str) -> dict:
        import json

        with open(os.path.join(self.root, container_id, "state.json")) as stream:
            return json.load(stream)

    def wait_for_running(self, timeout: float = 20) -> dict:
        """Return the state of the one container in this root once its command runs."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for container_id in self.states():
                try:
                    state = self.state_of(container_id)
                except (OSError, ValueError):
                    continue
                if state["status"] == "running":
                    return state
            time.sleep(0.02)
        raise AssertionError("no container reached the running state")


def container_cgroups(parent: str) -> list[str]:
    """List the cgroup directories under parent in every hierarchy."""
    found = []
    for hierarchy in _hierarchies():
        base = os.path.join(hierarchy, parent)
        if not os.path.isdir(base):
            continue
        for directory, subdirectories, _ in os.walk(base):
            for name in subdirectories:
                found.append(os.path.join(directory, name))
    return found


def _hierarchies() -> list[str]:
    paths = [CGROUP_ROOT]
    try:
        for entry in sorted(os.listdir(CGROUP_ROOT)):
            path = os.path.join(CGROUP_ROOT, entry)
            if os.path.isdir(path) and not os.path.islink(path):
                paths.append(path)
    except FileNotFoundError:
        pass
    return paths


def donkey_mounts(marker: str) -> list[str]:
    with open("/proc/self/mountinfo") as stream:
        return [line for line in stream if marker in line]


@pytest.fixture(scope="session")
def data_root(tmp_path_factory) -> str:
    return str(tmp_path_factory.mktemp("donkey-data"))


@pytest.fixture(scope="session")
def cgroup_parent():
    parent = f"donkey-test-{secrets.token_hex(4)}"
    yield parent
    # Depth-first removal of what the session left; only under our own parent.
    for hierarchy in _hierarchies():
        base = os.path.join(hierarchy, parent)
        if not os.path.isdir(base):
            continue
        for directory, _, _ in sorted(os.walk(base), key=lambda item: -len(item[0])):
            try:
                os.rmdir(directory)
            except OSError:
                pass


@pytest.fixture
def donkey(tmp_path, data_root, cgroup_parent):
    root = str(tmp_path / "state")
    env = {
        "PATH": os.environ.get("PATH", "/usr/sbin:/usr/bin:/sbin:/bin"),
        "DONKEY_ROOT": root,
        "DONKEY_DATA_ROOT": data_root,
        "DONKEY_CGROUP_PARENT": cgroup_parent,
        "PYTHONPATH": os.pathsep.join(sys.path),
        "LANG": "C.UTF-8",
    }
    if "DONKEY_STORAGE_DRIVER" in os.environ:
        env["DONKEY_STORAGE_DRIVER"] = os.environ["DONKEY_STORAGE_DRIVER"]
    instance = Donkey(root=root, data_root=data_root, cgroup_parent=cgroup_parent, env=env)
    mounts_before = len(donkey_mounts(data_root))
    yield instance

    for container_id in instance.states():
        instance("rm", "-f", container_id)
    assert instance.states() == [], "state directories left after rm -f"
    assert instance.layers() == [], "layer directories left after rm -f"
    assert instance.cgroups() == [], "cgroups left after rm -f"
    assert len(donkey_mounts(data_root)) == mounts_before, "mounts left on the host"


@pytest.fixture(scope="session")
def busybox_rootfs(data_root, cgroup_parent, tmp_path_factory) -> str:
    """A private copy of the busybox image's rootfs, for --rootfs tests to change freely."""
    env = {"PATH": os.environ.get("PATH", ""), "DONKEY_DATA_ROOT": data_root,
           "DONKEY_ROOT": str(tmp_path_factory.mktemp("images-state")),
           "DONKEY_CGROUP_PARENT": cgroup_parent, "PYTHONPATH": os.pathsep.join(sys.path)}
    subprocess.run([sys.executable, "-m", "donkey", "images"], env=env, check=True,
                   capture_output=True)
    subprocess.run([sys.executable, "-m", "donkey", "run", "--rm", "busybox", "true"],
                   env=env, check=True, capture_output=True)
    copy = str(tmp_path_factory.mktemp("rootfs") / "busybox")
    shutil.copytree(os.path.join(data_root, "images", "busybox", "rootfs"), copy,
                    symlinks=True)
    return copy
