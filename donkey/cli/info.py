"""`donkey info`: what this host's kernel offers, like `docker info`."""

from __future__ import annotations

import click


def _yes_no(value: bool | None) -> str:
    return {True: "yes", False: "no", None: "unknown"}[value]


def _swap_space(total: int | None) -> str:
    if total is None:
        return "unknown"
    return "none" if total == 0 else f"{total / (1 << 20):.0f} MiB"


def format_info(info) -> str:
    """Render a HostInfo as indented text."""
    lines = [
        f"Kernel Version: {info.kernel_release}",
        f"Cgroup Version: {info.cgroup_layout}"
        + (" (driven as v1; controllers found only on cgroup2 use cgroup2)"
           if info.cgroup_layout == "hybrid" else ""),
        f"Cgroup Driver: {info.cgroup_driver}",
    ]
    if info.cgroup2_mountpoint:
        controllers = " ".join(info.cgroup2_controllers) or "none"
        lines.append(f"Cgroup2 Mount: {info.cgroup2_mountpoint} (controllers: {controllers})")
    if info.cgroup_ns_nested:
        lines.append("Cgroup Namespace: nested (cgroup mount roots lie outside this namespace)")

    lines.append("Controllers:")
    for name, controller in info.controllers.items():
        root = "" if controller.root == "/" else f" (root {controller.root})"
        lines.append(f"  {name}: {controller.version} at {controller.mountpoint}{root}")

    lines += [
        f"Swap Accounting: {_yes_no(info.swap_accounting)}",
        f"Swap Space: {_swap_space(info.swap_total)}",
        f"Block I/O Weight: {info.blkio_weight_file or 'no'}",
        f"Overlay: {info.overlay or 'no'}",
        f"Namespaces: {' '.join(info.namespaces)}",
        f"Seccomp: {_yes_no(info.seccomp)}",
    ]
    if info.missing:
        lines.append("Missing:")
        lines += [f"  {item}" for item in info.missing]
    return "\n".join(lines)


@click.command()
@click.option("--json", "as_json", is_flag=True, help="Print the probe result as JSON.")
def info(as_json: bool) -> None:
    """Show the kernel features donkey found on this host and what is missing."""
    from donkey.hal.probe import host

    host_info = host()
    if as_json:
        import json

        click.echo(json.dumps(host_info.to_dict(), indent=2, sort_keys=True))
    else:
        click.echo(format_info(host_info))
