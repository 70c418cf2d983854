"""Decide, before anything is created, whether this host can enforce a set of limits."""

from __future__ import annotations

from donkey.cgroups.fs import CgroupError
from donkey.cgroups.resources import Resources
from donkey.hal.probe import HostInfo

# Each Resources field, the controller it needs, and the Docker flag that sets it.
_FIELD_NEEDS = (
    ("memory", "memory", "-m/--memory"),
    ("memory_swap", "memory", "--memory-swap"),
    ("memory_reservation", "memory", "--memory-reservation"),
    ("cpu_shares", "cpu", "--cpu-shares"),
    ("cpu_quota", "cpu", "--cpu-quota"),
    ("cpu_period", "cpu", "--cpu-period"),
    ("cpus", "cpu", "--cpus"),
    ("cpuset_cpus", "cpuset", "--cpuset-cpus"),
    ("cpuset_mems", "cpuset", "--cpuset-mems"),
    ("pids_limit", "pids", "--pids-limit"),
)


def check_resources(info: HostInfo, resources: Resources) -> None:
    """Raise InvalidArgument or CgroupError when a requested limit cannot be enforced."""
    resources.validate()

    for field, controller, flag in _FIELD_NEEDS:
        value = getattr(resources, field)
        if value is None or (field == "cpu_shares" and value == 0):
            continue
        if controller not in info.controllers:
            layout = info.cgroup_layout
            raise CgroupError(
                f"cannot enforce {flag} {value}: this {layout} cgroup host has no usable "
                f"{controller} controller (see `donkey info`); drop {flag} or use a kernel "
                f"with the {controller} controller",
                value=value,
            )

    if resources.blkio_weight:
        _check_blkio(info, resources.blkio_weight)


def _check_blkio(info: HostInfo, weight: int) -> None:
    blkio = info.controllers.get("blkio")
    io = info.controllers.get("io")
    if blkio is None and io is None:
        raise CgroupError(
            f"cannot enforce --blkio-weight {weight}: this host has no blkio or io controller; "
            "drop --blkio-weight",
            value=weight,
        )
    # The probe lists a v1 hierarchy's root, which has the weight file when the scheduler
    # supports weights. A cgroup2 root has no io.weight, so cgroup2 is checked on apply.
    if blkio is not None and info.blkio_weight_file is None:
        raise CgroupError(
            f"cannot enforce --blkio-weight {weight}: {blkio.mountpoint} has no blkio.weight "
            "or blkio.bfq.weight (the block device scheduler offers no weights; BFQ does); "
            "drop --blkio-weight",
            path=blkio.mountpoint,
            value=weight,
        )
