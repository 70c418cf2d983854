"""Writers for cgroup v1 interface files, one function per controller.

Each takes the controller's directory for the container and returns warnings.
"""

from __future__ import annotations

import os

from donkey.cgroups import convert
from donkey.cgroups.fs import CgroupFS
from donkey.cgroups.resources import Resources


def apply_memory(fs: CgroupFS, directory: str, resources: Resources,
                 swap_accounting: bool | None) -> list[str]:
    # memory.kmem.* is never written: on 3.x kernels a kmem limit broke slab allocation.
    warnings = []
    if resources.memory_reservation is not None:
        fs.write(os.path.join(directory, "memory.soft_limit_in_bytes"),
                 str(resources.memory_reservation))

    if resources.memory is None:
        return warnings
    has_memsw = fs.exists(os.path.join(directory, "memory.memsw.limit_in_bytes"))
    if resources.memory_swap is not None and not has_memsw:
        warnings.append(
            f"swap accounting is unavailable ({directory} has no memory.memsw.limit_in_bytes): "
            f"--memory-swap {resources.memory_swap} is ignored and only the memory limit "
            f"{resources.memory} applies"
        )
    current = int(fs.read(os.path.join(directory, "memory.limit_in_bytes")).strip() or 0)
    for name, value in convert.v1_memory_writes(
        resources.memory, resources.memory_swap, current, has_memsw
    ):
        fs.write(os.path.join(directory, name), value)
    return warnings


def apply_cpu(fs: CgroupFS, directory: str, resources: Resources) -> list[str]:
    if resources.cpu_shares:
        fs.write(os.path.join(directory, "cpu.shares"), str(resources.cpu_shares))

    quota, period = resources.cpu_quota, resources.cpu_period
    if resources.cpus is not None:
        quota, period = convert.cpus_to_quota(resources.cpus)
    # The period goes first: a quota is checked against the period already in place.
    if period is not None:
        fs.write(os.path.join(directory, "cpu.cfs_period_us"), str(period))
    if quota is not None:
        fs.write(os.path.join(directory, "cpu.cfs_quota_us"), str(quota))
    return []


def apply_blkio(fs: CgroupFS, directory: str, resources: Resources,
                weight_file: str | None) -> list[str]:
    if not resources.blkio_weight:
        return []
    name = weight_file or "blkio.weight"
    fs.write(os.path.join(directory, name), str(resources.blkio_weight))
    return []


def copy_cpuset(fs: CgroupFS, directory: str, mount_root: str) -> None:
    """Fill an empty cpuset.cpus and cpuset.mems from the nearest non-empty ancestor.

    A new v1 cpuset starts with both files empty, and adding a task to it fails with ENOSPC.
    """
    for name in ("cpuset.cpus", "cpuset.mems"):
        path = os.path.join(directory, name)
        if fs.read(path).strip():
            continue
        ancestor = os.path.dirname(directory)
        value = ""
        while True:
            value = fs.read(os.path.join(ancestor, name)).strip()
            if value or ancestor == mount_root or len(ancestor) <= len(mount_root):
                break
            ancestor = os.path.dirname(ancestor)
        fs.write(path, value)
