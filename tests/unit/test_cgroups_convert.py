"""Unit conversions between Docker flags and cgroup files, and Resources validation."""

from __future__ import annotations

import pytest

from donkey.cgroups import Resources, convert
from donkey.errors import InvalidArgument


@pytest.mark.parametrize("shares, weight", [
    (2, 1), (1024, 100), (262144, 10000), (512, 59), (1, 1), (10**9, 10000),
])
def test_shares_to_weight_fit_points(shares, weight):
    assert convert.shares_to_weight(shares) == weight


def test_shares_zero_means_unset():
    assert convert.shares_to_weight(0) is None


def test_shares_to_weight_is_monotonic():
    weights = [convert.shares_to_weight(s) for s in range(2, 262145, 997)]

    assert weights == sorted(weights)


@pytest.mark.parametrize("cpus, quota", [(1.5, 150000), (0.5, 50000), (2, 200000), (0.01, 1000)])
def test_cpus_to_quota(cpus, quota):
    assert convert.cpus_to_quota(cpus) == (quota, 100000)


def test_v2_cpu_max_formats():
    assert convert.v2_cpu_max(150000, 100000) == "150000 100000"
    assert convert.v2_cpu_max(None, 50000) == "max 50000"
    assert convert.v2_cpu_max(-1, None) == "max 100000"


@pytest.mark.parametrize("v1, v2", [(10, 1), (1000, 10000), (500, 4950), (100, 910)])
def test_blkio_to_io_weight(v1, v2):
    assert convert.blkio_to_io_weight(v1) == v2


def test_v2_swap_max_is_swap_only():
    assert convert.v2_swap_max(100, 300) == "200"
    assert convert.v2_swap_max(100, 100) == "0"
    assert convert.v2_swap_max(100, -1) == "max"


def test_v2_memory_unlimited():
    assert convert.v2_memory_value(-1) == "max"
    assert convert.v2_memory_value(4096) == "4096"


def test_v1_memory_writes_shrinking_limit_first():
    writes = convert.v1_memory_writes(100, 200, current_limit=1000, swap_accounting=True)

    assert writes == [("memory.limit_in_bytes", "100"), ("memory.memsw.limit_in_bytes", "200")]


def test_v1_memory_writes_growing_memsw_first():
    writes = convert.v1_memory_writes(1000, 2000, current_limit=100, swap_accounting=True)

    assert writes == [("memory.memsw.limit_in_bytes", "2000"), ("memory.limit_in_bytes", "1000")]


def test_v1_memory_writes_unlimited_swap_first():
    writes = convert.v1_memory_writes(100, -1, current_limit=1000, swap_accounting=True)

    assert writes[0] == ("memory.memsw.limit_in_bytes", "-1")


def test_v1_memory_writes_keep_memsw_at_least_limit_each_step():
    for memory, swap, current in [(100, 200, 1000), (1000, 2000, 100), (500, 500, 500)]:
        limit, memsw = current, max(current, 10**12)
        if current == 100:
            memsw = 150  # an earlier, tighter memsw limit
        for name, value in convert.v1_memory_writes(memory, swap, current, True):
            if name == "memory.limit_in_bytes":
                limit = int(value)
            else:
                memsw = int(value)
            assert memsw >= limit


def test_v1_memory_writes_without_swap_accounting():
    writes = convert.v1_memory_writes(100, 200, current_limit=1000, swap_accounting=False)

    assert writes == [("memory.limit_in_bytes", "100")]


def test_resources_is_empty():
    assert Resources().is_empty()
    assert not Resources(pids_limit=5).is_empty()
    assert not Resources(cpu_shares=0).is_empty()


@pytest.mark.parametrize("resources, fragment", [
    (Resources(memory=1024), "minimum is 6MiB"),
    (Resources(memory_swap=200 << 20), "needs -m/--memory"),
    (Resources(memory=200 << 20, memory_swap=100 << 20), "at least the memory limit"),
    (Resources(cpus=1.0, cpu_quota=50000), "conflicting options"),
    (Resources(cpus=0), "--cpus 0"),
    (Resources(cpu_shares=-5), "--cpu-shares -5"),
    (Resources(cpu_period=10), "--cpu-period 10"),
    (Resources(cpu_quota=10), "--cpu-quota 10"),
    (Resources(cpuset_cpus="0-a"), "--cpuset-cpus '0-a'"),
    (Resources(cpuset_mems="x"), "--cpuset-mems 'x'"),
    (Resources(blkio_weight=5), "--blkio-weight 5"),
    (Resources(memory_reservation=-1), "--memory-reservation -1"),
])
def test_resources_validate_rejects(resources, fragment):
    with pytest.raises(InvalidArgument, match=fragment.replace("-", r"\-").replace("(", r"\(")):
        resources.validate()


def test_resources_validate_accepts_docker_values():
    Resources(memory=100 << 20, memory_swap=-1, cpu_shares=0, cpu_quota=-1,
              cpuset_cpus="0-3,5", cpuset_mems="0", blkio_weight=0, pids_limit=-1).validate()
