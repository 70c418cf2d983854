"""The throw-away world a benchmark runs in: temporary roots, runc bundles, and cleanup.

Everything lives under one temporary directory and one cgroup parent,
`donkey/bench-<pid>` in each hierarchy, and is removed when the sandbox closes.
"""

from __future__ import annotations

import errno
import itertools
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time

from bench.harness import BenchError, last_line, run_command

CGROUP_ROOT = "/sys/fs/cgroup"
IMAGES_DIR = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "images")


def find_donkey(explicit: str | None = None) -> str:
    """Return the donkey console script next to this interpreter, or on PATH.

    The one next to sys.executable comes first so that a nox or venv run times its own
    install, not a shim (pyenv's shims add about 100 ms of bash to every call).
    """
    if explicit:
        return explicit
    beside = os.path.join(os.path.dirname(sys.executable), "donkey")
    if os.access(beside, os.X_OK):
        return beside
    found = shutil.which("donkey")
    if found is None:
        raise BenchError("the donkey command is not installed: run pip install -e . "
                         "or nox -s bench")
    return found


class Sandbox:
    """Temporary state for donkey and its peers; use it as a context manager."""

    def __init__(self, donkey: str, keep: bool = False) -> None:
        self.donkey = donkey
        self.keep = keep
        self.directory = tempfile.mkdtemp(prefix="donkey-bench-")
        self.cgroup_parent = f"donkey/bench-{os.getpid()}"
        self._ids = itertools.count(1)
        self.runc_root = self._mkdir("runc-root")
        self.bundles = self._mkdir("bundles")
        self.base_config: dict | None = None
        # Hierarchies without the shared `donkey` level yet. runc creates it there too,
        # because it also joins name=systemd and cgroup2, so close() removes it if empty.
        top = self.cgroup_parent.split("/")[0]
        self._new_tops = [os.path.join(hierarchy, top) for hierarchy in _hierarchies()
                          if not os.path.isdir(os.path.join(hierarchy, top))]

        self.env = dict(os.environ)
        self.env.update({
            "DONKEY_ROOT": self._mkdir("state"),
            "DONKEY_DATA_ROOT": self._mkdir("data"),
            "DONKEY_CGROUP_PARENT": self.cgroup_parent,
            # An installed package runs from compiled bytecode. Keep that bytecode in the
            # sandbox, so that a session that sets PYTHONDONTWRITEBYTECODE does not time
            # the compiler and the source tree gets no __pycache__.
            "PYTHONPYCACHEPREFIX": self._mkdir("pycache"),
            # A regular install has no images/ beside the package; use the checkout's.
            "DONKEY_IMAGES_DIR": os.environ.get("DONKEY_IMAGES_DIR") or IMAGES_DIR,
        })
        self.env.pop("PYTHONDONTWRITEBYTECODE", None)

    def __enter__(self) -> Sandbox:
        return self

    def __exit__(self, *exc_info) -> None:
        self.close()

    def _mkdir(self, name: str) -> str:
        path = os.path.join(self.directory, name)
        os.makedirs(path, exist_ok=True)
        return path

    def unique_id(self, prefix: str) -> str:
        return f"{prefix}-{os.getpid()}-{next(self._ids)}"

    def donkey_command(self, *args: str) -> list[str]:
        return [self.donkey, *args]

    def run_donkey(self, *args: str) -> None:
        run_command(self.donkey_command(*args), self.env)

    # runc and crun ------------------------------------------------------------------

    def prepare_bundle_template(self) -> None:
        """Copy donkey's busybox rootfs and write the config `runc spec` makes, adjusted.

        The busybox image is built by the first donkey run, so call this after warm-up.
        """
        image_rootfs = os.path.join(self.env["DONKEY_DATA_ROOT"], "images", "busybox", "rootfs")
        if not os.path.isdir(image_rootfs):
            raise BenchError(f"donkey's busybox image is missing at {image_rootfs}: "
                             "run donkey run busybox true once before the runc bundle")
        self.rootfs = os.path.join(self.directory, "rootfs")
        subprocess.run(["cp", "-a", "-T", image_rootfs, self.rootfs], check=True)

        spec_dir = self._mkdir("spec")
        completed = subprocess.run(["runc", "spec"], cwd=spec_dir, capture_output=True)
        if completed.returncode != 0:
            raise BenchError(f"runc spec failed: {last_line(completed.stderr)}")
        with open(os.path.join(spec_dir, "config.json"), encoding="utf-8") as stream:
            config = json.load(stream)
        config["process"]["args"] = ["true"]
        config["process"]["terminal"] = False
        config["root"]["path"] = self.rootfs
        self.base_config = config

    def bundle(self, container_id: str) -> str:
        """Write a bundle for container_id whose cgroup sits under the sandbox's parent.

        Without cgroupsPath, runc on a v1 host makes its cgroups under the caller's own
        cgroup, which donkey did not create.
        """
        if self.base_config is None:
            self.prepare_bundle_template()
        config = json.loads(json.dumps(self.base_config))
        config["linux"]["cgroupsPath"] = f"/{self.cgroup_parent}/{container_id}"
        path = os.path.join(self.bundles, container_id)
        os.makedirs(path, exist_ok=True)
        with open(os.path.join(path, "config.json"), "w", encoding="utf-8") as stream:
            json.dump(config, stream)
        return path

    def oci_run_command(self, runtime: str, container_id: str) -> list[str]:
        """Return `RUNTIME --root R run --bundle B ID` for a fresh bundle."""
        bundle = self.bundle(container_id)
        return [runtime, "--root", self.runc_root, "run", "--bundle", bundle, container_id]

    # cleanup ------------------------------------------------------------------------

    def close(self) -> None:
        problems = self._remove_donkey_containers()
        problems += self._remove_oci_containers()
        problems += self.remove_cgroups()
        if not self.keep:
            shutil.rmtree(self.directory, ignore_errors=True)
        for problem in problems:
            print(f"bench: cleanup: {problem}", file=sys.stderr)

    def _remove_donkey_containers(self) -> list[str]:
        state_root = self.env["DONKEY_ROOT"]
        try:
            ids = [entry for entry in os.listdir(state_root) if not entry.startswith(".")]
        except FileNotFoundError:
            return []
        if not ids:
            return []
        completed = subprocess.run(self.donkey_command("rm", "-f", *ids), env=self.env,
                                   capture_output=True)
        if completed.returncode != 0:
            return [f"donkey rm -f of {len(ids)} containers failed: "
                    f"{last_line(completed.stderr)}"]
        return []

    def _remove_oci_containers(self) -> list[str]:
        problems = []
        try:
            ids = os.listdir(self.runc_root)
        except FileNotFoundError:
            return []
        for container_id in ids:
            completed = subprocess.run(["runc", "--root", self.runc_root, "delete", "--force",
                                        container_id], capture_output=True)
            if completed.returncode != 0:
                problems.append(f"runc delete --force {container_id} failed: "
                                f"{last_line(completed.stderr)}")
        return problems

    def remove_cgroups(self) -> list[str]:
        """Remove `donkey/bench-<pid>` in every hierarchy, deepest first.

        The shared `donkey` level goes too where the sandbox created it and it is empty.
        Where it existed before, other donkey processes may be using it, so it stays.
        """
        problems = []
        for hierarchy in _hierarchies():
            top = os.path.join(hierarchy, self.cgroup_parent)
            if not os.path.isdir(top):
                continue
            for directory, _, _ in sorted(os.walk(top), key=lambda entry: -len(entry[0])):
                error = _rmdir_when_released(directory)
                if error is not None:
                    problems.append(f"rmdir {directory} failed: {error.strerror}")
        for directory in self._new_tops:
            try:
                os.rmdir(directory)
            except FileNotFoundError:
                pass
            except OSError as error:
                # Another donkey process started using it meanwhile: leave it to that one.
                print(f"bench: keeping {directory}: {error.strerror}", file=sys.stderr)
        return problems

    def leftover_cgroups(self) -> list[str]:
        """List the container cgroups still under the sandbox's parent."""
        leftovers = []
        for hierarchy in _hierarchies():
            top = os.path.join(hierarchy, self.cgroup_parent)
            if os.path.isdir(top):
                leftovers.extend(os.path.join(top, entry) for entry in os.listdir(top)
                                 if os.path.isdir(os.path.join(top, entry)))
        return leftovers


def _hierarchies() -> list[str]:
    """Return the cgroup mount points under /sys/fs/cgroup (v1 ones, cgroup2, or both)."""
    mountpoints = []
    with open("/proc/self/mountinfo", encoding="utf-8") as stream:
        for line in stream:
            fields = line.split()
            separator = fields.index("-")
            fstype = fields[separator + 1]
            mountpoint = fields[4]
            if fstype in ("cgroup", "cgroup2") and mountpoint.startswith(CGROUP_ROOT):
                mountpoints.append(mountpoint)
    return mountpoints


def _rmdir_when_released(directory: str, timeout: float = 2.0) -> OSError | None:
    """Remove a cgroup directory and return None, or the error once timeout has passed.

    rmdir fails with EBUSY while the kernel is still releasing the tasks of a container
    that has just exited, so it is tried again for a while.
    """
    deadline = time.monotonic() + timeout
    while True:
        try:
            os.rmdir(directory)
            return None
        except FileNotFoundError:
            return None
        except OSError as error:
            if error.errno != errno.EBUSY or time.monotonic() > deadline:
                return error
            time.sleep(0.02)
