"""Unit conversions between Docker's resource flags and cgroup v1/v2 files.

Everything here is pure arithmetic so that unit tests cover it without a kernel.
"""

from __future__ import annotations

import math

CPU_PERIOD_DEFAULT = 100_000  # microseconds, the kernel's and Docker's default CFS period
MAX_SHARES = 262_144
MIN_SHARES = 2
MAX_WEIGHT = 10_000
V1_BLKIO_WEIGHT_RANGE = (10, 1000)
V2_IO_WEIGHT_RANGE = (1, 10_000)

# v1 files take -1 as "no limit"; cgroup2 files take the word "max".
V1_UNLIMITED = "-1"
V2_UNLIMITED = "max"


def shares_to_weight(shares: int) -> int | None:
    """Convert v1 cpu.shares to v2 cpu.weight, or return None for 0 (unset).

    The curve is the quadratic in log2(shares) through (2, 1), (1024, 100) and
    (262144, 10000), rounded up, as in runc 1.3.2 and later. The older linear formula
    gave 39 for the default 1024 shares.
    """
    if shares == 0:
        return None
    shares = min(max(shares, MIN_SHARES), MAX_SHARES)
    exponent_base2 = math.log2(shares)
    exponent = (exponent_base2 * exponent_base2 + 125 * exponent_base2) / 612.0 - 7.0 / 34.0
    return min(max(math.ceil(10**exponent), 1), MAX_WEIGHT)


def cpus_to_quota(cpus: float, period: int = CPU_PERIOD_DEFAULT) -> tuple[int, int]:
    """Convert Docker's --cpus (a CPU count, may be fractional) to (quota, period) in us."""
    return round(cpus * period), period


def v2_cpu_max(quota: int | None, period: int | None) -> str:
    """Format cgroup2 cpu.max, "QUOTA PERIOD" where QUOTA is "max" when unset or -1."""
    quota_text = V2_UNLIMITED if quota is None or quota < 0 else str(quota)
    return f"{quota_text} {period or CPU_PERIOD_DEFAULT}"


def blkio_to_io_weight(weight: int) -> int:
    """Map v1 blkio.weight (10-1000) linearly onto cgroup2 io.weight (1-10000)."""
    low, high = V1_BLKIO_WEIGHT_RANGE
    return 1 + (weight - low) * (V2_IO_WEIGHT_RANGE[1] - 1) // (high - low)


def v2_swap_max(memory: int, memory_swap: int) -> str:
    """Return memory.swap.max for Docker's memory+swap total; -1 means unlimited swap."""
    if memory_swap == -1:
        return V2_UNLIMITED
    return str(max(memory_swap - memory, 0))


def v2_memory_value(value: int) -> str:
    return V2_UNLIMITED if value == -1 else str(value)


def v1_memory_writes(
    memory: int, memory_swap: int | None, current_limit: int, swap_accounting: bool
) -> list[tuple[str, str]]:
    """Return (file, value) pairs for v1 memory and memsw limits, in a safe order.

    The kernel rejects any write that would leave memory.memsw.limit_in_bytes below
    memory.limit_in_bytes (EINVAL), so a growing limit writes memsw first and a shrinking
    one writes the memory limit first.
    """
    limit = ("memory.limit_in_bytes", str(memory))
    if memory_swap is None or not swap_accounting:
        return [limit]

    memsw = ("memory.memsw.limit_in_bytes", str(memory_swap))
    growing = memory == -1 or memory >= current_limit
    if memory_swap == -1 or growing:
        return [memsw, limit]
    return [limit, memsw]
