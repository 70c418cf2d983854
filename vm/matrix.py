"""The kernels and cgroup layouts of the matrix, and which test selection each combination runs."""

from __future__ import annotations

import dataclasses

# Debian suites whose kernels the mirror serves, oldest first, with the kernel series each ships.
KERNELS: dict[str, str] = {
    "bullseye": "5.10",
    "bookworm": "6.1",
    "trixie": "6.12",
}
LAYOUTS: tuple[str, ...] = ("v1", "hybrid", "v2")

# The combination that runs the whole suite when several are selected: pure v2 is the layout
# the development host (hybrid) cannot give, and trixie is the newest kernel.
DEFAULT_FULL = ("trixie", "v2")


@dataclasses.dataclass(frozen=True)
class Combination:
    """One VM of the matrix: a kernel, a cgroup layout and the pytest selection to run."""

    kernel: str
    layout: str
    smoke_only: bool

    @property
    def name(self) -> str:
        return f"{self.kernel}-{self.layout}"

    @property
    def selection(self) -> str:
        return "smoke" if self.smoke_only else "full"


def parse_choice(value: str, allowed: tuple[str, ...], option: str) -> list[str]:
    """Parse a comma-separated `--kernel`/`--cgroup` value; `all` selects every allowed value."""
    if value == "all":
        return list(allowed)

    chosen = [item.strip() for item in value.split(",") if item.strip()]
    for item in chosen:
        if item not in allowed:
            raise ValueError(
                f"invalid {option} value {item!r}: expected one of {', '.join(allowed)} or all"
            )
    if not chosen:
        raise ValueError(f"empty {option} value: expected one of {', '.join(allowed)} or all")
    return chosen


def plan(
    kernels: list[str],
    layouts: list[str],
    *,
    smoke: bool = False,
    full: bool = False,
    keyword: str | None = None,
    full_on: tuple[str, str] = DEFAULT_FULL,
) -> list[Combination]:
    """Return the combinations to boot, in order, with each one's test selection.

    A single combination, a `-k` expression or `full` runs the whole suite everywhere; `smoke`
    runs the smoke subset everywhere. Otherwise `full_on` runs the whole suite (when selected)
    and every other combination runs the smoke subset.
    """
    pairs = [(kernel, layout) for kernel in kernels for layout in layouts]

    combinations = []
    for kernel, layout in pairs:
        if smoke:
            smoke_only = True
        elif full or keyword or len(pairs) == 1:
            smoke_only = False
        else:
            smoke_only = (kernel, layout) != full_on
        combinations.append(Combination(kernel, layout, smoke_only))
    return combinations


def kernel_command_line(layout: str) -> str:
    """Return the guest kernel command line for a cgroup layout."""
    arguments = ["console=ttyS0", "panic=-1", "quiet", "loglevel=4", f"donkey.cgroup={layout}"]
    if layout == "v2":
        # Without this every v1 controller stays bindable, which no real v2 host allows.
        arguments.append("cgroup_no_v1=all")
    return " ".join(arguments)
