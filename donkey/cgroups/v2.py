"""Writers for cgroup2 interface files, and the subtree_control handling of ancestors."""

from __future__ import annotations

import os

from donkey.cgroups import convert
from donkey.cgroups.fs import CgroupError, CgroupFS
from donkey.cgroups.resources import Resources
from donkey.hal import procfs


def enable_controllers(fs: CgroupFS, directory: str, controllers: tuple[str, ...]) -> None:
    """Enable controllers for the children of directory, writing only the ones not yet on.

    cgroup2 lets a cgroup use a controller only when its parent lists it in
    cgroup.subtree_control, so every ancestor of a leaf needs this, and the leaf does not.
    The mount root is the one cgroup outside donkey's parent that this may write, and only
    when a needed controller is not enabled there yet.
    """
    control = os.path.join(directory, "cgroup.subtree_control")
    enabled = procfs.parse_controller_list(fs.read(control))
    wanted = [name for name in controllers if name not in enabled]
    if not wanted:
        return
    available = procfs.parse_controller_list(fs.read(os.path.join(directory, "cgroup.controllers")))
    absent = [name for name in wanted if name not in available]
    if absent:
        raise CgroupError(
            f"cgroup2 controller {' '.join(absent)} is not available in {directory} "
            f"(cgroup.controllers: {' '.join(available) or 'empty'}); enable it in the parent "
            "cgroup or run without the limits that need it",
            path=control,
            value=" ".join(absent),
        )
    fs.write(control, " ".join("+" + name for name in wanted))


def apply_memory(fs: CgroupFS, directory: str, resources: Resources) -> list[str]:
    warnings = []
    if resources.memory_reservation is not None:
        fs.write(os.path.join(directory, "memory.low"), str(resources.memory_reservation))

    if resources.memory is None:
        return warnings
    swap_file = os.path.join(directory, "memory.swap.max")
    if resources.memory_swap is not None and not fs.exists(swap_file):
        warnings.append(
            f"swap accounting is unavailable ({directory} has no memory.swap.max): "
            f"--memory-swap {resources.memory_swap} is ignored and only the memory limit "
            f"{resources.memory} applies"
        )
    elif resources.memory_swap is not None:
        fs.write(swap_file, convert.v2_swap_max(resources.memory, resources.memory_swap))
    fs.write(os.path.join(directory, "memory.max"), convert.v2_memory_value(resources.memory))
    return warnings


def apply_cpu(fs: CgroupFS, directory: str, resources: Resources) -> list[str]:
    if resources.cpu_shares:
        weight = convert.shares_to_weight(resources.cpu_shares)
        fs.write(os.path.join(directory, "cpu.weight"), str(weight))

    quota, period = resources.cpu_quota, resources.cpu_period
    if resources.cpus is not None:
        quota, period = convert.cpus_to_quota(resources.cpus)
    if quota is not None or period is not None:
        fs.write(os.path.join(directory, "cpu.max"), convert.v2_cpu_max(quota, period))
    return []


def apply_io(fs: CgroupFS, directory: str, resources: Resources) -> list[str]:
    if not resources.blkio_weight:
        return []
    weight = str(convert.blkio_to_io_weight(resources.blkio_weight))
    for name in ("io.weight", "io.bfq.weight"):
        path = os.path.join(directory, name)
        if fs.exists(path):
            fs.write(path, weight)
            return []
    raise CgroupError(
        f"cannot set --blkio-weight {resources.blkio_weight}: {directory} has neither io.weight "
        "nor io.bfq.weight (the block device scheduler offers no weights); drop --blkio-weight",
        path=os.path.join(directory, "io.weight"),
        value=resources.blkio_weight,
    )
