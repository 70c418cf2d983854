"""The host probe against /proc captures from 5.10, 6.1, 6.12 (v1, hybrid, v2) and this VM."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from donkey.hal import probe, procfs

FIXTURES = Path(__file__).parent / "fixtures" / "procfs"


def read(directory: Path, name: str, default: str = "") -> str:
    path = directory / name
    return path.read_text() if path.exists() else default


def listings(directory: Path) -> dict[str, list[str]]:
    """Rebuild the probe's file listings from the captures: v1 root or a cgroup2 child."""
    result = {}
    memory_v1 = read(directory, "ls-sys-fs-cgroup-memory")
    memory_v2 = read(directory, "fixture/cgroup2/ls")
    mountinfo = read(directory, "mountinfo")
    if " /sys/fs/cgroup/memory " in mountinfo:
        result["memory"] = memory_v1.split()
    elif "memory" in read(directory, "cgroup2/cgroup.controllers").split():
        result["memory"] = memory_v2.split()
    return result


def load(name: str, *, mountinfo: str = "mountinfo", ns: str = "ls-l-proc-self-ns"):
    directory = FIXTURES / name
    return probe.host_info_from(
        release=read(directory, "uname-r"),
        mountinfo=read(directory, mountinfo),
        proc_cgroups=read(directory, "proc-cgroups"),
        filesystems=read(directory, "filesystems"),
        namespaces=procfs.parse_namespace_listing(read(directory, ns)),
        status=read(directory, "status", "Seccomp:\t0\nSeccomp_filters:\t0\n"),
        cgroup2_controllers=read(directory, "cgroup2/cgroup.controllers"),
        listings=listings(directory),
    )


# name, layout, memory (version, mountpoint) or None, cpu mountpoint, swap accounting
LAYOUTS = [
    ("5.10-v1", "v1", ("v1", "/sys/fs/cgroup/memory"), "/sys/fs/cgroup/cpu", True),
    ("5.10-hybrid", "hybrid", ("v1", "/sys/fs/cgroup/memory"),
     "/sys/fs/cgroup/cpu,cpuacct", True),
    ("5.10-v2", "v2", ("v2", "/sys/fs/cgroup"), "/sys/fs/cgroup", True),
    ("6.1-v1", "v1", ("v1", "/sys/fs/cgroup/memory"), "/sys/fs/cgroup/cpu", True),
    ("6.1-hybrid", "hybrid", ("v1", "/sys/fs/cgroup/memory"),
     "/sys/fs/cgroup/cpu,cpuacct", True),
    ("6.1-v2", "v2", ("v2", "/sys/fs/cgroup"), "/sys/fs/cgroup", True),
    ("6.12-v1", "v1", None, "/sys/fs/cgroup/cpu", None),
    ("6.12-hybrid", "hybrid", ("v2", "/sys/fs/cgroup/unified"),
     "/sys/fs/cgroup/cpu,cpuacct", True),
    ("6.12-v2", "v2", ("v2", "/sys/fs/cgroup"), "/sys/fs/cgroup", True),
    ("host-6.18-hybrid", "hybrid", ("v1", "/sys/fs/cgroup/memory"), "/sys/fs/cgroup/cpu", True),
]


@pytest.mark.parametrize("name, layout, memory, cpu, swap", LAYOUTS)
def test_probe_fixture_layout(name, layout, memory, cpu, swap):
    info = load(name)

    assert info.cgroup_layout == layout
    if memory is None:
        assert "memory" not in info.controllers
    else:
        assert (info.controllers["memory"].version, info.controllers["memory"].mountpoint) == memory
    assert info.controllers["cpu"].mountpoint == cpu
    assert info.swap_accounting is swap
    assert info.cgroup_ns_nested is False


@pytest.mark.parametrize("name", [row[0] for row in LAYOUTS])
def test_probe_fixture_kernel_and_extras(name):
    info = load(name)
    release = read(FIXTURES / name, "uname-r").strip()

    assert info.kernel_release == release
    assert info.kernel_version == tuple(int(x) for x in release.split(".")[:2])
    assert info.overlay == "overlay"
    assert "cgroup" in info.namespaces
    assert "time" in info.namespaces
    assert info.seccomp is True
    json.dumps(info.to_dict())


def test_probe_612_v1_reports_missing_memory_and_cpuset():
    info = load("6.12-v1")

    assert "cpuset" not in info.controllers
    memory_items = [item for item in info.missing if "memory controller" in item]
    assert len(memory_items) == 1
    assert memory_items[0].startswith("no v1 memory controller")
    assert "listed as enabled in /proc/cgroups" in memory_items[0]
    assert "-m/--memory" in memory_items[0]
    assert any(item.startswith("no v1 cpuset controller") for item in info.missing)


def test_probe_612_hybrid_puts_memory_and_cpuset_on_cgroup2():
    info = load("6.12-hybrid")

    assert info.controllers["cpuset"].version == "v2"
    assert info.controllers["pids"].version == "v1"
    assert info.cgroup2_mountpoint == "/sys/fs/cgroup/unified"
    assert info.cgroup2_controllers == ("cpuset", "memory")
    assert not any("memory" in item for item in info.missing)


def test_probe_hybrid_without_cgroup2_controllers():
    info = load("6.1-hybrid")

    assert info.cgroup2_controllers == ()
    assert all(c.version == "v1" for c in info.controllers.values())


def test_probe_comounted_cpu_cpuacct_share_mount():
    info = load("5.10-hybrid")

    assert info.controllers["cpu"].mountpoint == info.controllers["cpuacct"].mountpoint
    assert info.controllers["net_prio"].mountpoint == "/sys/fs/cgroup/net_cls,net_prio"
    assert "systemd" not in info.controllers
    assert "name=systemd" not in info.controllers


def test_probe_host_fixture_separate_cpu_and_hugetlb_on_cgroup2():
    info = load("host-6.18-hybrid")

    assert info.controllers["cpuacct"].mountpoint == "/sys/fs/cgroup/cpuacct"
    assert info.controllers["hugetlb"].version == "v2"
    assert info.cgroup2_controllers == ("hugetlb",)
    assert info.missing == ()


def test_probe_v2_has_no_freezer_missing_item():
    info = load("6.12-v2")

    assert info.missing == ()
    assert "freezer" not in info.controllers


@pytest.mark.parametrize("name", ["5.10-v1", "5.10-hybrid", "5.10-v2", "6.1-hybrid",
                                  "6.12-hybrid", "6.12-v2"])
def test_probe_nested_namespace_roots(name):
    info = load(name, mountinfo="nested/mountinfo", ns="nested/ls-l-proc-self-ns")
    flat = load(name)

    assert info.cgroup_ns_nested is True
    assert info.cgroup_layout == flat.cgroup_layout
    assert {k: v.mountpoint for k, v in info.controllers.items()} == {
        k: v.mountpoint for k, v in flat.controllers.items()
    }
    assert all(c.root == "/../.." for c in info.controllers.values())


def test_probe_nested_ns_at_parent_and_remounted():
    at_parent = load("6.12-hybrid", mountinfo="nested/ns-at-parent/mountinfo")
    remounted = load("6.12-hybrid", mountinfo="nested/remounted/mountinfo")

    assert at_parent.cgroup_ns_nested is True
    assert at_parent.controllers["memory"].root == "/.."
    assert remounted.cgroup_ns_nested is False
    assert remounted.controllers["memory"].root == "/"


def test_probe_no_swap_accounting_is_missing_item():
    directory = FIXTURES / "5.10-v1"
    files = [f for f in read(directory, "ls-sys-fs-cgroup-memory").split() if "memsw" not in f]
    info = probe.host_info_from(
        release="5.10.0", mountinfo=read(directory, "mountinfo"),
        proc_cgroups=read(directory, "proc-cgroups"), filesystems="nodev\toverlayfs\n",
        namespaces=["ipc", "mnt", "net", "pid", "user", "uts"], status="",
        listings={"memory": files, "blkio": ["blkio.weight"]},
    )

    assert info.swap_accounting is False
    assert any(item.startswith("no swap accounting") for item in info.missing)
    assert info.overlay == "overlayfs"
    assert info.seccomp is False
    assert any("no seccomp" in item for item in info.missing)
    assert any(item.startswith("no cgroup namespace") for item in info.missing)
    assert any(item.startswith("no time namespace") for item in info.missing)
    assert info.blkio_weight_file == "blkio.weight"


def test_probe_no_overlay_and_no_blkio_weight():
    directory = FIXTURES / "6.1-v1"
    info = probe.host_info_from(
        release="6.1.0", mountinfo=read(directory, "mountinfo"),
        proc_cgroups=read(directory, "proc-cgroups"), filesystems="nodev\ttmpfs\n",
        namespaces=["cgroup", "time"], status="Seccomp:\t0\n",
        listings={"blkio": ["blkio.throttle.read_bps_device"]},
    )

    assert info.overlay is None
    assert info.blkio_weight_file is None
    assert any("--blkio-weight is unavailable" in item for item in info.missing)
    assert any("overlay" in item for item in info.missing)


@pytest.mark.parametrize("root, unified, layout", [
    (probe.CGROUP2_SUPER_MAGIC, None, "v2"),
    (probe.TMPFS_MAGIC, probe.CGROUP2_SUPER_MAGIC, "hybrid"),
    (probe.TMPFS_MAGIC, None, "v1"),
    (probe.TMPFS_MAGIC, probe.TMPFS_MAGIC, "v1"),
    (probe.CGROUP_SUPER_MAGIC, None, "v1"),
    (None, None, "none"),
    (0xEF53, None, "none"),
])
def test_layout_from_magic(root, unified, layout):
    assert probe.layout_from_magic(root, unified) == layout


def test_parse_mountinfo_optional_fields_and_escapes():
    text = ("36 35 98:0 /mnt\\040dir /mnt/with\\040space rw,noatime master:1 shared:2 - "
            "ext3 /dev/root rw,errors=continue\n")
    (mount,) = procfs.parse_mountinfo(text)

    assert mount.root == "/mnt dir"
    assert mount.mountpoint == "/mnt/with space"
    assert mount.fstype == "ext3"
    assert mount.source == "/dev/root"
    assert mount.super_options == ("rw", "errors=continue")


def test_parse_controller_list_empty_file():
    assert procfs.parse_controller_list("") == ()
    assert procfs.parse_controller_list("cpu memory pids\n") == ("cpu", "memory", "pids")


def test_parse_proc_cgroups_enabled_without_hierarchy():
    subsystems = procfs.parse_proc_cgroups(read(FIXTURES / "6.12-v1", "proc-cgroups"))

    assert subsystems["memory"].hierarchy_id == 0
    assert subsystems["memory"].enabled is True


def test_parse_self_cgroup_v1_and_v2_lines():
    lines = procfs.parse_self_cgroup("2:cpu,cpuacct:/a\n1:name=systemd:/\n0::/b\n")

    assert lines[0].controllers == ("cpu", "cpuacct")
    assert lines[1].controllers == ("name=systemd",)
    assert lines[2] == procfs.CgroupMembership(0, (), "/b")


def test_parse_seccomp_and_kernel_version():
    assert procfs.parse_seccomp_mode("Name:\tx\nSeccomp:\t2\n") == 2
    assert procfs.parse_seccomp_mode("Name:\tx\n") is None
    assert procfs.parse_kernel_version("3.13.0-170-generic") == (3, 13)
    with pytest.raises(ValueError, match="invalid kernel release"):
        procfs.parse_kernel_version("unknown")


@pytest.mark.skipif(not os.path.isdir("/sys/fs/cgroup"), reason="no /sys/fs/cgroup here")
def test_probe_live_host_matches_mountinfo_judgement():
    live = probe.probe()
    with open("/proc/self/mountinfo") as handle:
        mounts = procfs.parse_mountinfo(handle.read())

    judged = probe.layout_from_magic(
        probe.magic_from_mountinfo(mounts, "/sys/fs/cgroup"),
        probe.magic_from_mountinfo(mounts, "/sys/fs/cgroup/unified"),
    )
    assert live.cgroup_layout == judged
    assert probe.host() is probe.host()


def test_parse_swap_total():
    assert procfs.parse_swap_total("MemTotal: 100 kB\nSwapTotal:       2048 kB\n") == 2 << 20
    assert procfs.parse_swap_total("SwapTotal: 0 kB\n") == 0
    assert procfs.parse_swap_total("") is None


def test_info_text_lists_missing_section():
    from donkey.cli.info import format_info

    text = format_info(load("6.12-v1"))

    assert "Cgroup Version: v1" in text
    assert "  pids: v1 at /sys/fs/cgroup/pids" in text
    assert "Missing:\n  no v1 memory controller" in text


def test_info_text_shows_cgroup2_memory_on_hybrid():
    from donkey.cli.info import format_info

    text = format_info(load("6.12-hybrid"))

    assert "  memory: v2 at /sys/fs/cgroup/unified" in text
    assert "Cgroup2 Mount: /sys/fs/cgroup/unified (controllers: cpuset memory)" in text
    assert "Missing:" not in text


def test_info_json_is_host_info_dict():
    from click.testing import CliRunner

    from donkey.cli.info import info

    result = CliRunner().invoke(info, ["--json"])

    assert result.exit_code == 0
    data = json.loads(result.output)
    assert data == json.loads(json.dumps(probe.host().to_dict()))
    assert data["cgroup_layout"] in ("v1", "hybrid", "v2", "none")
