"""The resource limits of one container, in Docker's units."""

from __future__ import annotations

import os

from donkey.errors import InvalidArgument
from donkey.record import Record

# Docker rejects smaller memory limits: below this the container cannot even start.
MIN_MEMORY = 6 * 1024 * 1024


def _is_cpu_list(value: str) -> bool:
    """Tell whether value is a list such as 0-3,5: numbers or ranges, joined by commas."""
    for item in value.split(","):
        bounds = item.split("-")
        if len(bounds) > 2 or not all(bound.isdigit() and bound.isascii() for bound in bounds):
            return False
    return True


class Resources(Record):
    """Limits in Docker units: bytes, shares, microseconds; None means not set.

    memory_swap is Docker's memory+swap total (-1 = unlimited swap). Docker's CLI defaults it
    to twice the memory limit when only -m is given; that default belongs to the caller.
    """

    FIELDS = ("memory", "memory_swap", "memory_reservation", "cpu_shares", "cpu_quota",
              "cpu_period", "cpus", "cpuset_cpus", "cpuset_mems", "pids_limit", "blkio_weight")

    def __init__(
        self,
        memory: int | None = None,
        memory_swap: int | None = None,
        memory_reservation: int | None = None,
        cpu_shares: int | None = None,
        cpu_quota: int | None = None,
        cpu_period: int | None = None,
        cpus: float | None = None,
        cpuset_cpus: str | None = None,
        cpuset_mems: str | None = None,
        pids_limit: int | None = None,
        blkio_weight: int | None = None,
    ) -> None:
        self.memory = memory
        self.memory_swap = memory_swap
        self.memory_reservation = memory_reservation
        self.cpu_shares = cpu_shares
        self.cpu_quota = cpu_quota
        self.cpu_period = cpu_period
        self.cpus = cpus
        self.cpuset_cpus = cpuset_cpus
        self.cpuset_mems = cpuset_mems
        self.pids_limit = pids_limit
        self.blkio_weight = blkio_weight

    def is_empty(self) -> bool:
        return all(value is None for value in self.values())

    def validate(self) -> None:
        """Raise InvalidArgument for values Docker rejects, before anything is created."""
        if self.memory is not None and self.memory != -1 and self.memory < MIN_MEMORY:
            raise InvalidArgument(
                f"invalid memory limit {self.memory} bytes: the minimum is 6MiB; "
                "raise -m/--memory",
                value=self.memory,
            )
        if self.memory_swap is not None:
            if self.memory is None:
                raise InvalidArgument(
                    f"invalid --memory-swap {self.memory_swap}: it needs -m/--memory as well",
                    value=self.memory_swap,
                )
            if self.memory_swap != -1 and self.memory_swap < self.memory:
                raise InvalidArgument(
                    f"invalid --memory-swap {self.memory_swap}: memory+swap must be at least "
                    f"the memory limit {self.memory}, or -1 for unlimited swap",
                    value=self.memory_swap,
                )
        if self.memory_reservation is not None and self.memory_reservation < 0:
            raise InvalidArgument(
                f"invalid --memory-reservation {self.memory_reservation}: it must be >= 0",
                value=self.memory_reservation,
            )
        if self.cpus is not None and (self.cpu_quota is not None or self.cpu_period is not None):
            raise InvalidArgument(
                "conflicting options: --cpus cannot be combined with --cpu-quota or --cpu-period",
                value=self.cpus,
            )
        if self.cpus is not None and self.cpus <= 0:
            raise InvalidArgument(
                f"invalid --cpus {self.cpus}: it must be greater than 0", value=self.cpus
            )
        available = os.cpu_count() or 1
        if self.cpus is not None and self.cpus > available:
            raise InvalidArgument(
                f"invalid --cpus {self.cpus}: this host has {available} CPUs; "
                f"use a value from 0.01 to {available}",
                value=self.cpus,
            )
        if (self.memory_reservation is not None and self.memory not in (None, -1)
                and self.memory_reservation > self.memory):
            raise InvalidArgument(
                f"invalid --memory-reservation {self.memory_reservation}: it must not exceed "
                f"the memory limit {self.memory}; lower it or raise -m",
                value=self.memory_reservation,
            )
        if self.cpu_shares is not None and self.cpu_shares < 0:
            raise InvalidArgument(
                f"invalid --cpu-shares {self.cpu_shares}: use 2-262144, or 0 for the default",
                value=self.cpu_shares,
            )
        if self.cpu_period is not None and not 1000 <= self.cpu_period <= 1_000_000:
            raise InvalidArgument(
                f"invalid --cpu-period {self.cpu_period}: use 1000-1000000 microseconds",
                value=self.cpu_period,
            )
        if self.cpu_quota is not None and self.cpu_quota != -1 and self.cpu_quota < 1000:
            raise InvalidArgument(
                f"invalid --cpu-quota {self.cpu_quota}: use at least 1000 microseconds, "
                "or -1 for no quota",
                value=self.cpu_quota,
            )
        for name in ("cpuset_cpus", "cpuset_mems"):
            value = getattr(self, name)
            if value is not None and not _is_cpu_list(value):
                flag = "--" + name.replace("_", "-")
                raise InvalidArgument(
                    f"invalid {flag} {value!r}: use a list such as 0-3 or 0,2", value=value
                )
        if self.blkio_weight is not None and self.blkio_weight != 0:
            if not 10 <= self.blkio_weight <= 1000:
                raise InvalidArgument(
                    f"invalid --blkio-weight {self.blkio_weight}: use 10-1000, or 0 for the "
                    "default",
                    value=self.blkio_weight,
                )
