"""The guest booted with the cgroup layout, tools and install the matrix asked for."""

import importlib.util
import os
import shutil

import pytest

pytestmark = pytest.mark.smoke


def cgroup_mounts() -> dict[str, str]:
    """Return {mount point: filesystem type} for /sys/fs/cgroup and everything under it."""
    mounts = {}
    with open("/proc/self/mountinfo") as stream:
        for line in stream:
            fields = line.split()
            separator = fields.index("-")
            mount_point, filesystem = fields[4], fields[separator + 1]
            if mount_point.startswith("/sys/fs/cgroup"):
                mounts[mount_point] = filesystem
    return mounts


def test_cgroup_root_filesystem(requested_layout):
    expected = "cgroup2" if requested_layout == "v2" else "tmpfs"
    assert cgroup_mounts().get("/sys/fs/cgroup") == expected


def test_cgroup2_mount_point(requested_layout):
    cgroup2 = [path for path, kind in cgroup_mounts().items() if kind == "cgroup2"]
    expected = {"v1": [], "hybrid": ["/sys/fs/cgroup/unified"], "v2": ["/sys/fs/cgroup"]}
    assert cgroup2 == expected[requested_layout]


def test_v1_hierarchies_present(requested_layout):
    v1 = [path for path, kind in cgroup_mounts().items() if kind == "cgroup"]
    if requested_layout == "v2":
        assert v1 == []
    else:
        assert "/sys/fs/cgroup/pids" in v1


def test_v2_root_delegates_controllers(requested_layout):
    if requested_layout != "v2":
        pytest.skip("only the pure v2 layout enables controllers in the root")
    with open("/sys/fs/cgroup/cgroup.subtree_control") as stream:
        enabled = stream.read().split()
    for controller in ("memory", "cpu", "pids"):
        assert controller in enabled


def test_tools_for_the_suite(requested_layout):
    for tool in ("stress", "busybox", "ip", "unshare"):
        assert shutil.which(tool), f"{tool} missing from the guest image"


def test_donkey_installed_from_checkout(requested_layout):
    spec = importlib.util.find_spec("donkey")
    assert spec is not None
    assert "site-packages" in (spec.origin or "")
    assert os.geteuid() == 0
