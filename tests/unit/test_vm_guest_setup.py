"""The guest's cgroup mounts (vm/guest/donkey-guest-setup), printed in its dry-run mode for
/proc/cgroups contents of real Debian kernels."""

import os
import subprocess
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parents[2] / "vm" / "guest" / "donkey-guest-setup"

# /proc/cgroups of Debian's 5.10 (bullseye): 13 controllers, no misc.
PROC_CGROUPS_5_10 = """\
#subsys_name\thierarchy\tnum_cgroups\tenabled
cpuset\t0\t1\t1
cpu\t0\t1\t1
cpuacct\t0\t1\t1
blkio\t0\t1\t1
memory\t0\t1\t1
devices\t0\t1\t1
freezer\t0\t1\t1
net_cls\t0\t1\t1
perf_event\t0\t1\t1
net_prio\t0\t1\t1
hugetlb\t0\t1\t1
pids\t0\t1\t1
rdma\t0\t1\t1
"""

# A controller the kernel has but disabled (cgroup_disable=memory) must not be mounted.
PROC_CGROUPS_MEMORY_DISABLED = PROC_CGROUPS_5_10.replace("memory\t0\t1\t1", "memory\t0\t1\t0")


def dry_run(tmp_path: Path, proc_cgroups: str, layout: str) -> list[str]:
    path = tmp_path / "cgroups"
    path.write_text(proc_cgroups)
    environment = dict(os.environ, DONKEY_SETUP_DRYRUN="1", PROC_CGROUPS=str(path),
                       CGROUP_ROOT="/sys/fs/cgroup")  # fmt: skip
    result = subprocess.run(["sh", str(SCRIPT), "cgroups", layout], env=environment,
                            capture_output=True, text=True, check=True)  # fmt: skip
    return result.stdout.splitlines()


def v1_mounts(lines: list[str]) -> dict[str, str]:
    """Return {mount point: options} of the printed `mount -t cgroup` commands."""
    mounts = {}
    for line in lines:
        words = line.split()
        if words[:3] == ["mount", "-t", "cgroup"]:
            mounts[words[-1]] = words[4]
    return mounts


def test_v1_one_mount_per_controller(tmp_path):
    lines = dry_run(tmp_path, PROC_CGROUPS_5_10, "v1")
    assert lines[0] == "mount -t tmpfs -o nosuid,nodev,noexec,mode=755 cgroup /sys/fs/cgroup"
    mounts = v1_mounts(lines)
    assert len(mounts) == 13
    assert mounts["/sys/fs/cgroup/cpu"] == "nosuid,nodev,noexec,cpu"
    assert mounts["/sys/fs/cgroup/cpuacct"] == "nosuid,nodev,noexec,cpuacct"
    assert not any("cgroup2" in line for line in lines)


def test_hybrid_comounts_and_unified(tmp_path):
    lines = dry_run(tmp_path, PROC_CGROUPS_5_10, "hybrid")
    assert ("mount -t cgroup2 -o nosuid,nodev,noexec,nsdelegate cgroup2 /sys/fs/cgroup/unified"
            in lines)  # fmt: skip
    mounts = v1_mounts(lines)
    assert mounts["/sys/fs/cgroup/systemd"] == "nosuid,nodev,noexec,none,name=systemd"
    assert mounts["/sys/fs/cgroup/cpu,cpuacct"] == "nosuid,nodev,noexec,cpu,cpuacct"
    assert mounts["/sys/fs/cgroup/net_cls,net_prio"] == "nosuid,nodev,noexec,net_cls,net_prio"
    assert "/sys/fs/cgroup/cpu" not in mounts
    assert "ln -s cpu,cpuacct /sys/fs/cgroup/cpuacct" in lines
    assert "ln -s net_cls,net_prio /sys/fs/cgroup/net_prio" in lines
    # 13 controllers, 4 of them in two co-mounts, plus name=systemd.
    assert len(mounts) == 13 - 4 + 2 + 1


def test_v2_enables_memory_cpu_pids(tmp_path):
    lines = dry_run(tmp_path, PROC_CGROUPS_5_10, "v2")
    assert lines == [
        "mount -t cgroup2 -o nosuid,nodev,noexec,nsdelegate cgroup2 /sys/fs/cgroup",
        "write /sys/fs/cgroup/cgroup.subtree_control +memory",
        "write /sys/fs/cgroup/cgroup.subtree_control +cpu",
        "write /sys/fs/cgroup/cgroup.subtree_control +pids",
    ]


def test_disabled_controller_not_mounted(tmp_path):
    mounts = v1_mounts(dry_run(tmp_path, PROC_CGROUPS_MEMORY_DISABLED, "v1"))
    assert "/sys/fs/cgroup/memory" not in mounts
    assert len(mounts) == 12


@pytest.mark.parametrize("layout", ["", "v3"])
def test_invalid_layout_fails(tmp_path, layout):
    path = tmp_path / "cgroups"
    path.write_text(PROC_CGROUPS_5_10)
    environment = dict(os.environ, DONKEY_SETUP_DRYRUN="1", PROC_CGROUPS=str(path))
    result = subprocess.run(["sh", str(SCRIPT), "cgroups", layout], env=environment,
                            capture_output=True, text=True)  # fmt: skip
    assert result.returncode == 1
    assert "expected v1, hybrid or v2" in result.stderr
    assert result.stdout == ""
