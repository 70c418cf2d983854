"""cgroup back ends on this host's real cgroupfs (root only).

Every test works under a parent named donkey-test-<random> in each hierarchy, so it never
touches the lead's `donkey` parent or any cgroup it did not create, and removes it after.
"""

from __future__ import annotations

import os
import secrets
import shutil
import signal
import subprocess
import time
import uuid

import pytest

from donkey.cgroups import CgroupError, Manager, Resources
from donkey.hal.probe import probe

pytestmark = [
    pytest.mark.root,
    pytest.mark.skipif(os.geteuid() != 0, reason="needs root to create cgroups"),
    pytest.mark.skipif(not os.path.isdir("/sys/fs/cgroup"), reason="no /sys/fs/cgroup"),
]

MIB = 1 << 20


@pytest.fixture(scope="module")
def info():
    host = probe()
    if host.cgroup_layout == "none":
        pytest.skip("no cgroup filesystem is mounted")
    return host


def need(info, *controllers):
    absent = [name for name in controllers if name not in info.controllers]
    if absent:
        pytest.skip(f"this host has no {' '.join(absent)} controller")


def leftovers(manager: Manager) -> list[str]:
    """Return every directory still present under the test parent in any hierarchy."""
    tops = {c.mountpoint for c in manager.v1_controllers.values()}
    if manager.v2_mountpoint:
        tops.add(manager.v2_mountpoint)
    found = []
    for top in tops:
        parent = os.path.join(top, manager.parent)
        if os.path.isdir(parent):
            found += [os.path.join(parent, name) for name in os.listdir(parent)
                      if os.path.isdir(os.path.join(parent, name))]
    return found


@pytest.fixture
def manager(info):
    manager = Manager(f"donkey-test-{secrets.token_hex(4)}", info)
    yield manager
    try:
        assert leftovers(manager) == []
    finally:
        for path in leftovers(manager):
            name = os.path.basename(path)
            manager.load(name).destroy()
        manager.remove_parent()


@pytest.fixture
def cgroups(manager):
    created = []

    def create(resources: Resources | None = None):
        cgroup = manager.create(f"c{len(created)}-{uuid.uuid4().hex[:6]}")
        created.append(cgroup)
        warnings = cgroup.apply(resources) if resources else []
        return cgroup, warnings

    yield create
    for cgroup in created:
        try:
            cgroup.kill_all(signal.SIGKILL)
        except CgroupError:
            pass
        cgroup.destroy()


def start_held(argv: list[str]) -> subprocess.Popen:
    """Start argv in a shell that waits for a line on stdin, so it can be placed first."""
    return subprocess.Popen(
        ["sh", "-c", 'read _; exec "$@"', "sh", *argv],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
    )


def release(process: subprocess.Popen) -> None:
    # Only flush: communicate() closes stdin itself and fails on a closed one.
    process.stdin.write(b"go\n")
    process.stdin.flush()


def read(path: str) -> str:
    with open(path) as handle:
        return handle.read().strip()


def test_each_field_lands_in_file(info, cgroups):
    need(info, "memory", "cpu", "cpuset", "pids")
    resources = Resources(memory=100 * MIB, memory_swap=200 * MIB,
                          memory_reservation=50 * MIB, cpu_shares=512, cpus=0.5,
                          cpuset_cpus="0", cpuset_mems="0", pids_limit=10)
    cgroup, _ = cgroups(resources)

    paths = cgroup.paths
    if info.controllers["memory"].version == "v1":
        assert read(f"{paths['memory']}/memory.limit_in_bytes") == str(100 * MIB)
        assert read(f"{paths['memory']}/memory.soft_limit_in_bytes") == str(50 * MIB)
        if info.swap_accounting:
            assert read(f"{paths['memory']}/memory.memsw.limit_in_bytes") == str(200 * MIB)
        assert read(f"{paths['memory']}/memory.kmem.limit_in_bytes") != str(100 * MIB)
    else:
        assert read(f"{paths['memory']}/memory.max") == str(100 * MIB)
        assert read(f"{paths['memory']}/memory.low") == str(50 * MIB)
    if info.controllers["cpu"].version == "v1":
        assert read(f"{paths['cpu']}/cpu.shares") == "512"
        assert read(f"{paths['cpu']}/cpu.cfs_quota_us") == "50000"
        assert read(f"{paths['cpu']}/cpu.cfs_period_us") == "100000"
    else:
        assert read(f"{paths['cpu']}/cpu.weight") == "59"
        assert read(f"{paths['cpu']}/cpu.max") == "50000 100000"
    assert read(f"{paths['cpuset']}/cpuset.cpus") == "0"
    assert read(f"{paths['cpuset']}/cpuset.mems") == "0"
    assert read(f"{paths['pids']}/pids.max") == "10"


def test_cpu_quota_period_and_unlimited(info, cgroups):
    need(info, "cpu", "memory", "pids")
    cgroup, _ = cgroups(Resources(cpu_quota=50000, cpu_period=200000, memory=64 * MIB))
    cgroup.apply(Resources(memory=-1, memory_swap=-1, pids_limit=0))

    if info.controllers["cpu"].version == "v1":
        assert read(f"{cgroup.paths['cpu']}/cpu.cfs_quota_us") == "50000"
        assert read(f"{cgroup.paths['cpu']}/cpu.cfs_period_us") == "200000"
    else:
        assert read(f"{cgroup.paths['cpu']}/cpu.max") == "50000 200000"
    assert read(f"{cgroup.paths['pids']}/pids.max") == "max"
    if info.controllers["memory"].version == "v1":
        unlimited = read(f"{info.controllers['memory'].mountpoint}/memory.limit_in_bytes")
        assert read(f"{cgroup.paths['memory']}/memory.limit_in_bytes") == unlimited


def test_no_swap_space_warning(info, cgroups):
    need(info, "memory")
    if info.swap_total != 0:
        pytest.skip("this host has swap space, so no warning is due")
    _, warnings = cgroups(Resources(memory=100 * MIB, memory_swap=200 * MIB))

    assert len(warnings) == 1
    assert "no swap space" in warnings[0]


def test_swap_accounting_missing_warning(info, manager):
    need(info, "memory")
    if info.controllers["memory"].version != "v1":
        pytest.skip("memory is on cgroup2 here; the v1 memsw path does not apply")

    class HiddenMemsw(type(manager.fs)):
        def exists(self, path):
            return "memory.memsw." not in path and super().exists(path)

    hidden = Manager(manager.parent, info.replace(swap_total=None), HiddenMemsw())
    cgroup = hidden.create("noswap")
    try:
        warnings = cgroup.apply(Resources(memory=100 * MIB, memory_swap=200 * MIB))
        assert "swap accounting is unavailable" in warnings[0]
        assert read(f"{cgroup.paths['memory']}/memory.limit_in_bytes") == str(100 * MIB)
    finally:
        cgroup.destroy()


def test_blkio_weight_without_weight_file_rejected(info, manager):
    need(info, "blkio")
    if info.blkio_weight_file:
        pytest.skip(f"this host has {info.blkio_weight_file}")

    with pytest.raises(CgroupError, match="--blkio-weight 500"):
        manager.check(Resources(blkio_weight=500))
    assert leftovers(manager) == []


def test_add_process_shows_in_cgroup_procs(cgroups):
    cgroup, _ = cgroups()
    sleeper = subprocess.Popen(["sleep", "30"])
    try:
        cgroup.add_process(sleeper.pid)

        for directory in cgroup.directories():
            assert str(sleeper.pid) in read(f"{directory}/cgroup.procs").split()
        assert cgroup.pids() == [sleeper.pid]
    finally:
        sleeper.kill()
        sleeper.wait()


def run_stress(cgroup, megabytes: int, seconds: int):
    process = start_held(["stress", "--vm", "1", "--vm-bytes", f"{megabytes}M",
                          "--timeout", str(seconds)])
    cgroup.add_process(process.pid)
    event_fd = cgroup.watch_oom()
    release(process)
    _, stderr = process.communicate(timeout=seconds + 30)
    return process.returncode, stderr.decode(), event_fd


@pytest.mark.skipif(shutil.which("stress") is None, reason="stress missing: apt-get install stress")
def test_stress_over_limit_is_oom_killed(info, cgroups):
    need(info, "memory")
    cgroup, _ = cgroups(Resources(memory=100 * MIB, memory_swap=100 * MIB))

    code, stderr, event_fd = run_stress(cgroup, 200, 20)

    assert code != 0
    assert "signal 9" in stderr
    assert cgroup.oom_kill_count() >= 1
    if event_fd is not None:
        assert os.eventfd_read(event_fd) >= 1


@pytest.mark.skipif(shutil.which("stress") is None, reason="stress missing: apt-get install stress")
def test_stress_under_limit_completes(info, cgroups):
    need(info, "memory")
    cgroup, _ = cgroups(Resources(memory=300 * MIB, memory_swap=300 * MIB))

    code, stderr, _ = run_stress(cgroup, 200, 20)

    assert code == 0, stderr
    assert cgroup.oom_kill_count() == 0
    assert cgroup.memory_peak() >= 150 * MIB


def test_pids_limit_stops_fork_loop(info, cgroups):
    need(info, "pids")
    cgroup, _ = cgroups(Resources(pids_limit=10))
    loop = start_held(["sh", "-c", "for i in $(seq 30); do sleep 3 & done; wait"])
    cgroup.add_process(loop.pid)
    release(loop)
    time.sleep(1)

    count = len(cgroup.pids())
    _, stderr = loop.communicate(timeout=30)
    print(f"pids.max 10: {count} processes seen")
    assert count <= 10
    assert count >= 5
    assert "fork" in stderr.decode().lower() or "resource" in stderr.decode().lower()
    events = read(f"{cgroup.paths['pids']}/pids.events")
    assert int(events.split()[-1]) >= 1


def cpu_usage(cgroup) -> int:
    return cgroup.cpu_usage_usec()


def test_cpu_shares_split_one_cpu(info, cgroups):
    need(info, "cpu", "cpuset")
    if "cpuacct" not in info.controllers and info.cgroup_layout != "v2":
        pytest.skip("no cpuacct controller to measure usage")
    light, _ = cgroups(Resources(cpu_shares=512, cpuset_cpus="0", cpuset_mems="0"))
    heavy, _ = cgroups(Resources(cpu_shares=1024, cpuset_cpus="0", cpuset_mems="0"))
    loops = []
    try:
        for cgroup in (light, heavy):
            loop = start_held(["sh", "-c", "while :; do :; done"])
            cgroup.add_process(loop.pid)
            release(loop)
            loops.append(loop)
        time.sleep(0.5)
        before = (cpu_usage(light), cpu_usage(heavy))
        time.sleep(3)
        after = (cpu_usage(light), cpu_usage(heavy))
    finally:
        for loop in loops:
            loop.kill()
            loop.communicate()

    light_used, heavy_used = after[0] - before[0], after[1] - before[1]
    ratio = heavy_used / max(light_used, 1)
    print(f"cpu shares 1024:512 used {heavy_used}us:{light_used}us, ratio {ratio:.2f}")
    assert 1.5 <= ratio <= 2.7, f"heavy {heavy_used}us, light {light_used}us"


def test_freeze_thaw_and_kill_all(info, cgroups):
    cgroup, _ = cgroups()
    if not cgroup.can_freeze():
        pytest.skip("no freezer on this host")
    sleeper = subprocess.Popen(["sleep", "30"])
    cgroup.add_process(sleeper.pid)

    cgroup.freeze()
    if "freezer" in cgroup.v1_paths:
        assert read(f"{cgroup.v1_paths['freezer']}/freezer.state") == "FROZEN"
    else:
        assert "frozen 1" in read(f"{cgroup.v2_path}/cgroup.events")
    cgroup.thaw()
    cgroup.kill_all(signal.SIGTERM)

    assert sleeper.wait(timeout=5) == -signal.SIGTERM
    assert cgroup.pids() == []


def test_cgroup2_part_on_real_mount(info, manager):
    """Drive the cgroup2 code on the real cgroup2 mount, with no controllers to enable."""
    if info.cgroup2_mountpoint is None:
        pytest.skip("no cgroup2 mount")
    v2_only = info.replace(cgroup_layout="v2", controllers={})
    v2_manager = Manager(manager.parent, v2_only)
    cgroup = v2_manager.create("v2part")
    sleeper = subprocess.Popen(["sleep", "30"])
    try:
        assert cgroup.paths == {"cgroup2": os.path.join(info.cgroup2_mountpoint,
                                                        manager.parent, "v2part")}
        cgroup.add_process(sleeper.pid)
        assert cgroup.pids() == [sleeper.pid]
        cgroup.freeze()
        assert "frozen 1" in read(f"{cgroup.v2_path}/cgroup.events")
        cgroup.thaw()
        cgroup.kill_all(signal.SIGKILL)
        assert sleeper.wait(timeout=5) == -signal.SIGKILL
    finally:
        sleeper.kill()
        sleeper.wait()
        cgroup.destroy()
        v2_manager.remove_parent()
    assert not os.path.exists(cgroup.v2_path)


def test_hundred_create_destroy_cycles(info, manager):
    for index in range(100):
        cgroup = manager.create(f"cycle{index}")
        cgroup.apply(Resources(pids_limit=5))
        cgroup.destroy()

    assert leftovers(manager) == []


def test_destroy_after_process_exit(cgroups):
    cgroup, _ = cgroups()
    process = start_held(["true"])
    cgroup.add_process(process.pid)
    release(process)
    process.communicate(timeout=10)
    cgroup.destroy()
    cgroup.destroy()

    assert all(not os.path.exists(path) for path in cgroup.directories())
