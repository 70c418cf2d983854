"""v1, cgroup2 and hybrid back ends against fake cgroupfs trees in tmp_path."""

from __future__ import annotations

import errno
import os
from pathlib import Path

import pytest

from donkey.cgroups import CgroupError, CgroupFS, Manager, Resources
from donkey.hal.probe import Controller, HostInfo

UNLIMITED = "9223372036854771712"

V1_FILES = {
    "memory": {"memory.limit_in_bytes": UNLIMITED, "memory.memsw.limit_in_bytes": UNLIMITED,
               "memory.soft_limit_in_bytes": UNLIMITED, "memory.kmem.limit_in_bytes": UNLIMITED,
               "memory.oom_control": "oom_kill_disable 0\nunder_oom 0\noom_kill 0\n",
               "memory.failcnt": "0", "memory.max_usage_in_bytes": "0",
               "memory.usage_in_bytes": "0", "cgroup.event_control": ""},
    "cpu": {"cpu.shares": "1024", "cpu.cfs_quota_us": "-1", "cpu.cfs_period_us": "100000"},
    "cpuacct": {"cpuacct.usage": "0"},
    "cpuset": {"cpuset.cpus": "", "cpuset.mems": ""},
    "pids": {"pids.max": "max"},
    "blkio": {"blkio.weight": "500"},
    "freezer": {"freezer.state": "THAWED"},
}
V2_FILES = {
    "memory.max": "max", "memory.swap.max": "max", "memory.low": "0",
    "memory.events": "low 0\nhigh 0\nmax 0\noom 0\noom_kill 0\n", "memory.peak": "0",
    "cpu.weight": "100", "cpu.max": "max 100000", "pids.max": "max", "io.weight": "default 100",
    "cpuset.cpus": "", "cpuset.mems": "", "cgroup.freeze": "0",
    "cgroup.events": "populated 0\nfrozen 0\n", "cgroup.kill": "",
}


class FakeCgroupFS(CgroupFS):
    """A cgroupfs stand-in: mkdir fills interface files, writes are recorded in order."""

    def __init__(self, kinds: dict[str, str], drop: tuple[str, ...] = ()) -> None:
        self.kinds = kinds  # mountpoint -> controller name, or "cgroup2"
        self.drop = drop
        self.writes: list[tuple[str, str]] = []
        self.removed: list[str] = []
        self.busy: dict[str, int] = {}

    def _kind(self, path: str) -> str:
        for mountpoint, kind in self.kinds.items():
            if path.startswith(mountpoint + "/"):
                return kind
        raise AssertionError(f"{path} is outside every fake mount")

    def mkdir(self, path: str) -> bool:
        created = super().mkdir(path)
        if not created:
            return False
        kind = self._kind(path)
        names = [kind] if kind != "cgroup2" else []
        files = {"cgroup.procs": ""}
        for name in names:
            files.update(V1_FILES.get(name, {}))
        if kind == "cgroup2":
            files.update(V2_FILES)
            parent = Path(path).parent / "cgroup.subtree_control"
            files["cgroup.controllers"] = parent.read_text()
            files["cgroup.subtree_control"] = ""
        for name, content in files.items():
            if name not in self.drop:
                Path(path, name).write_text(content)
        return True

    def write(self, path: str, value: str) -> None:
        if not os.path.isfile(path):
            raise CgroupError(f"fake: no such file {path}", path=path, errno=errno.ENOENT)
        self.writes.append((path, value))
        target = Path(path)
        if target.name == "cgroup.subtree_control":
            enabled = target.read_text().split()
            enabled += [item[1:] for item in value.split() if item[1:] not in enabled]
            target.write_text(" ".join(enabled))
        elif target.name == "cgroup.freeze":
            target.write_text(value)
            (target.parent / "cgroup.events").write_text(f"populated 0\nfrozen {value}\n")
        else:
            target.write_text(value)

    def rmdir(self, path: str) -> None:
        if self.busy.get(path, 0) > 0:
            self.busy[path] -= 1
            raise OSError(errno.EBUSY, "Device or resource busy", path)
        for name in os.listdir(path):
            if os.path.isfile(os.path.join(path, name)):
                os.unlink(os.path.join(path, name))
        os.rmdir(path)
        self.removed.append(path)


def make_v1(tmp_path: Path, swap: bool = True, drop: tuple[str, ...] = ()):
    controllers, kinds = {}, {}
    for name in ("cpu", "cpuacct", "cpuset", "memory", "pids", "blkio", "freezer"):
        mountpoint = tmp_path / name
        mountpoint.mkdir()
        (mountpoint / "cgroup.procs").write_text("")
        for file, content in V1_FILES[name].items():
            (mountpoint / file).write_text(content)
        controllers[name] = Controller(name, "v1", str(mountpoint), "/")
        kinds[str(mountpoint)] = name
    (tmp_path / "cpuset" / "cpuset.cpus").write_text("0-3\n")
    (tmp_path / "cpuset" / "cpuset.mems").write_text("0\n")
    info = host_info("v1", controllers, swap=swap, blkio="blkio.weight")
    return info, FakeCgroupFS(kinds, drop=drop)


def make_v2(tmp_path: Path, root_enabled: str = "", available: str = "cpuset cpu io memory pids"):
    root = tmp_path / "unified"
    root.mkdir()
    (root / "cgroup.controllers").write_text(available)
    (root / "cgroup.subtree_control").write_text(root_enabled)
    (root / "cgroup.procs").write_text("")
    controllers = {name: Controller(name, "v2", str(root), "/") for name in available.split()}
    info = host_info("v2", controllers, cgroup2=str(root), cgroup2_controllers=available)
    return info, FakeCgroupFS({str(root): "cgroup2"})


def host_info(layout, controllers, swap=True, blkio=None, cgroup2=None, cgroup2_controllers=""):
    return HostInfo(
        kernel_release="6.1.0", kernel_version=(6, 1), cgroup_layout=layout,
        cgroup_driver="cgroupfs", cgroup2_mountpoint=cgroup2,
        cgroup2_controllers=tuple(cgroup2_controllers.split()), controllers=controllers,
        swap_accounting=swap, blkio_weight_file=blkio, cgroup_ns_nested=False,
        overlay="overlay", namespaces=("cgroup", "mnt", "pid"), seccomp=True,
    )


def written(fs: FakeCgroupFS) -> dict[str, str]:
    return {path: value for path, value in fs.writes}


def test_v1_apply_writes_each_field(tmp_path):
    info, fs = make_v1(tmp_path)
    cgroup = Manager("donkey", info, fs).create("c1")
    warnings = cgroup.apply(Resources(
        memory=100 << 20, memory_swap=300 << 20, memory_reservation=50 << 20, cpu_shares=512,
        cpus=1.5, cpuset_cpus="1", cpuset_mems="0", pids_limit=10, blkio_weight=300,
    ))

    values = written(fs)
    leaf = lambda name, file: str(tmp_path / name / "donkey" / "c1" / file)  # noqa: E731
    assert warnings == []
    assert values[leaf("memory", "memory.limit_in_bytes")] == str(100 << 20)
    assert values[leaf("memory", "memory.memsw.limit_in_bytes")] == str(300 << 20)
    assert values[leaf("memory", "memory.soft_limit_in_bytes")] == str(50 << 20)
    assert values[leaf("cpu", "cpu.shares")] == "512"
    assert values[leaf("cpu", "cpu.cfs_quota_us")] == "150000"
    assert values[leaf("cpu", "cpu.cfs_period_us")] == "100000"
    assert values[leaf("cpuset", "cpuset.cpus")] == "1"
    assert values[leaf("pids", "pids.max")] == "10"
    assert values[leaf("blkio", "blkio.weight")] == "300"


def test_v1_memsw_order_on_new_cgroup(tmp_path):
    info, fs = make_v1(tmp_path)
    cgroup = Manager("donkey", info, fs).create("c1")
    fs.writes.clear()
    cgroup.apply(Resources(memory=100 << 20, memory_swap=200 << 20))

    names = [os.path.basename(path) for path, _ in fs.writes]
    assert names == ["memory.limit_in_bytes", "memory.memsw.limit_in_bytes"]


def test_v1_memsw_order_when_raising_limit(tmp_path):
    info, fs = make_v1(tmp_path)
    cgroup = Manager("donkey", info, fs).create("c1")
    cgroup.apply(Resources(memory=100 << 20, memory_swap=100 << 20))
    fs.writes.clear()
    cgroup.apply(Resources(memory=400 << 20, memory_swap=800 << 20))

    names = [os.path.basename(path) for path, _ in fs.writes]
    assert names == ["memory.memsw.limit_in_bytes", "memory.limit_in_bytes"]


def test_v1_without_swap_accounting_warns_and_limits_memory(tmp_path):
    info, fs = make_v1(tmp_path, swap=False, drop=("memory.memsw.limit_in_bytes",))
    cgroup = Manager("donkey", info, fs).create("c1")
    fs.writes.clear()
    warnings = cgroup.apply(Resources(memory=100 << 20, memory_swap=200 << 20))

    assert len(warnings) == 1
    assert "swap accounting is unavailable" in warnings[0]
    assert "--memory-swap 209715200 is ignored" in warnings[0]
    assert [os.path.basename(p) for p, _ in fs.writes] == ["memory.limit_in_bytes"]


def test_v1_never_writes_kmem(tmp_path):
    info, fs = make_v1(tmp_path)
    cgroup = Manager("donkey", info, fs).create("c1")
    cgroup.apply(Resources(memory=100 << 20, memory_swap=-1, memory_reservation=10 << 20))
    cgroup.apply(Resources(memory=-1))

    assert fs.writes
    assert not [path for path, _ in fs.writes if "kmem" in os.path.basename(path)]


def test_cpu_shares_unset_or_zero_leaves_cpu_files(tmp_path):
    info, fs = make_v1(tmp_path)
    cgroup = Manager("donkey", info, fs).create("c1")
    cgroup.apply(Resources(cpu_shares=0, pids_limit=5))
    cgroup.apply(Resources(memory=64 << 20))

    assert not [path for path, _ in fs.writes if "cpu.shares" in path or "cfs" in path]


def test_v1_cpuset_copied_into_every_created_level(tmp_path):
    info, fs = make_v1(tmp_path)
    Manager("donkey/nested", info, fs).create("c1")

    for level in ("donkey", "donkey/nested", "donkey/nested/c1"):
        directory = tmp_path / "cpuset" / level
        assert (directory / "cpuset.cpus").read_text() == "0-3"
        assert (directory / "cpuset.mems").read_text() == "0"


def test_v1_cpuset_existing_nonempty_parent_kept(tmp_path):
    info, fs = make_v1(tmp_path)
    parent = tmp_path / "cpuset" / "donkey"
    fs.mkdir(str(parent))
    (parent / "cpuset.cpus").write_text("2")
    (parent / "cpuset.mems").write_text("0")
    Manager("donkey", info, fs).create("c1")

    assert (parent / "cpuset.cpus").read_text() == "2"
    assert (parent / "c1" / "cpuset.cpus").read_text() == "2"


def test_v1_add_process_writes_cpuset_first(tmp_path):
    info, fs = make_v1(tmp_path)
    cgroup = Manager("donkey", info, fs).create("c1")
    fs.writes.clear()
    cgroup.add_process(4242)

    assert fs.writes[0][0] == str(tmp_path / "cpuset" / "donkey" / "c1" / "cgroup.procs")
    assert len(fs.writes) == 7
    assert {value for _, value in fs.writes} == {"4242"}


def test_v1_self_join_cpuset_first(tmp_path):
    info, fs = make_v1(tmp_path)
    cgroup = Manager("donkey", info, fs).create("c1")

    files = cgroup.self_join_files()
    assert files[0] == str(tmp_path / "cpuset" / "donkey" / "c1" / "tasks")
    assert all(path.endswith("/c1/tasks") for path in files)
    assert len(files) == len(set(files)) == 7


def test_v1_add_process_without_v1_writes_nothing(tmp_path):
    info, fs = make_v1(tmp_path)
    cgroup = Manager("donkey", info, fs).create("c1")
    fs.writes.clear()
    cgroup.add_process(4242, v1=False)
    assert fs.writes == []


def test_v2_parent_moves_process(tmp_path):
    info, fs = make_v2(tmp_path)
    cgroup = Manager("donkey", info, fs).create("c1")
    fs.writes.clear()

    assert cgroup.self_join_files() == []
    cgroup.add_process(4242, v1=False)
    assert fs.writes == [(str(tmp_path / "unified" / "donkey" / "c1" / "cgroup.procs"), "4242")]


def test_comounted_hierarchy_shares_directory(tmp_path):
    info, fs = make_v1(tmp_path)
    shared = Controller("cpuacct", "v1", info.controllers["cpu"].mountpoint, "/")
    info = host_info("v1", {**info.controllers, "cpuacct": shared}, blkio="blkio.weight")
    cgroup = Manager("donkey", info, fs).create("c1")

    assert cgroup.paths["cpu"] == cgroup.paths["cpuacct"]
    assert len(cgroup.directories()) == 6


def test_v2_enables_controllers_on_ancestors_not_leaf(tmp_path):
    info, fs = make_v2(tmp_path)
    cgroup = Manager("donkey", info, fs).create("c1")

    root = tmp_path / "unified"
    assert set((root / "cgroup.subtree_control").read_text().split()) == {
        "cpuset", "cpu", "io", "memory", "pids"}
    assert set((root / "donkey" / "cgroup.subtree_control").read_text().split()) == {
        "cpuset", "cpu", "io", "memory", "pids"}
    assert (root / "donkey" / "c1" / "cgroup.subtree_control").read_text() == ""
    leaf_writes = [p for p, _ in fs.writes if p.startswith(cgroup.v2_path + "/")]
    assert leaf_writes == []


def test_v2_skips_controllers_already_enabled(tmp_path):
    info, fs = make_v2(tmp_path, root_enabled="cpuset cpu io memory pids")
    Manager("donkey", info, fs).create("c1")

    root_writes = [p for p, _ in fs.writes if p == str(tmp_path / "unified/cgroup.subtree_control")]
    assert root_writes == []


def test_v2_apply_writes_each_field(tmp_path):
    info, fs = make_v2(tmp_path)
    cgroup = Manager("donkey", info, fs).create("c1")
    fs.writes.clear()
    warnings = cgroup.apply(Resources(
        memory=100 << 20, memory_swap=300 << 20, memory_reservation=50 << 20, cpu_shares=512,
        cpus=1.5, cpuset_cpus="0-1", pids_limit=10, blkio_weight=1000,
    ))

    values = {os.path.basename(path): value for path, value in fs.writes}
    assert warnings == []
    assert values["memory.max"] == str(100 << 20)
    assert values["memory.swap.max"] == str(200 << 20)
    assert values["memory.low"] == str(50 << 20)
    assert values["cpu.weight"] == "59"
    assert values["cpu.max"] == "150000 100000"
    assert values["cpuset.cpus"] == "0-1"
    assert values["pids.max"] == "10"
    assert values["io.weight"] == "10000"


def test_v2_unlimited_values(tmp_path):
    info, fs = make_v2(tmp_path)
    cgroup = Manager("donkey", info, fs).create("c1")
    fs.writes.clear()
    cgroup.apply(Resources(memory=-1, memory_swap=-1, pids_limit=0, cpu_period=50000))

    values = {os.path.basename(path): value for path, value in fs.writes}
    assert values["memory.max"] == "max"
    assert values["memory.swap.max"] == "max"
    assert values["pids.max"] == "max"
    assert values["cpu.max"] == "max 50000"


def test_v2_without_swap_file_warns(tmp_path):
    info, fs = make_v2(tmp_path)
    fs.drop = ("memory.swap.max",)
    cgroup = Manager("donkey", info, fs).create("c1")
    warnings = cgroup.apply(Resources(memory=100 << 20, memory_swap=200 << 20))

    assert "has no memory.swap.max" in warnings[0]
    assert (Path(cgroup.v2_path) / "memory.max").read_text() == str(100 << 20)


def test_v2_missing_controller_rejected_and_nothing_left(tmp_path):
    info, fs = make_v2(tmp_path, available="cpu memory pids")
    (tmp_path / "unified" / "cgroup.controllers").write_text("cpu pids")

    with pytest.raises(CgroupError, match="controller memory is not available"):
        Manager("donkey", info, fs).create("c1")
    assert not (tmp_path / "unified" / "donkey" / "c1").exists()


def test_hybrid_612_memory_on_cgroup2_pids_on_v1(tmp_path):
    info, fs = make_v1(tmp_path)
    unified = tmp_path / "unified"
    unified.mkdir()
    (unified / "cgroup.controllers").write_text("cpuset memory")
    (unified / "cgroup.subtree_control").write_text("")
    controllers = {k: v for k, v in info.controllers.items() if k not in ("memory", "cpuset")}
    for name in ("cpuset", "memory"):
        controllers[name] = Controller(name, "v2", str(unified), "/")
    info = host_info("hybrid", controllers, blkio="blkio.weight", cgroup2=str(unified),
                     cgroup2_controllers="cpuset memory")
    fs.kinds[str(unified)] = "cgroup2"

    cgroup = Manager("donkey", info, fs).create("c1")
    cgroup.apply(Resources(memory=100 << 20, memory_swap=200 << 20, pids_limit=7,
                           cpuset_cpus="0"))

    leaf = unified / "donkey" / "c1"
    assert cgroup.paths["memory"] == str(leaf)
    assert cgroup.paths["pids"] == str(tmp_path / "pids" / "donkey" / "c1")
    assert (leaf / "memory.max").read_text() == str(100 << 20)
    assert (leaf / "memory.swap.max").read_text() == str(100 << 20)
    assert (leaf / "cpuset.cpus").read_text() == "0"
    assert (unified / "cgroup.subtree_control").read_text().split() == ["cpuset", "memory"]
    assert (tmp_path / "pids" / "donkey" / "c1" / "pids.max").read_text() == "7"
    assert not (tmp_path / "memory" / "donkey").exists()


def test_check_rejects_missing_controller_before_create(tmp_path):
    info, fs = make_v1(tmp_path)
    controllers = {k: v for k, v in info.controllers.items() if k != "memory"}
    manager = Manager("donkey", host_info("v1", controllers), fs)

    with pytest.raises(CgroupError, match="cannot enforce -m/--memory 104857600") as caught:
        manager.check(Resources(memory=100 << 20))
    assert caught.value.exit_code == 125
    assert not (tmp_path / "pids" / "donkey").exists()


def test_check_rejects_blkio_without_weight_file(tmp_path):
    info, fs = make_v1(tmp_path)
    info = host_info("v1", info.controllers, blkio=None)

    with pytest.raises(CgroupError, match="has no blkio.weight"):
        Manager("donkey", info, fs).check(Resources(blkio_weight=500))


def test_apply_checks_before_writing(tmp_path):
    info, fs = make_v1(tmp_path)
    controllers = {k: v for k, v in info.controllers.items() if k != "cpuset"}
    cgroup = Manager("donkey", host_info("v1", controllers), fs).create("c1")
    fs.writes.clear()

    with pytest.raises(CgroupError, match="no usable cpuset controller"):
        cgroup.apply(Resources(memory=64 << 20, cpuset_cpus="0"))
    assert fs.writes == []


def test_destroy_depth_first_and_idempotent(tmp_path):
    info, fs = make_v1(tmp_path)
    cgroup = Manager("donkey", info, fs).create("c1")
    memory_leaf = Path(cgroup.paths["memory"])
    fs.mkdir(str(memory_leaf / "sub"))
    fs.mkdir(str(memory_leaf / "sub" / "deeper"))
    cgroup.destroy()
    cgroup.destroy()

    memory_removed = [p for p in fs.removed if p.startswith(str(memory_leaf))]
    assert memory_removed == [str(memory_leaf / "sub" / "deeper"), str(memory_leaf / "sub"),
                              str(memory_leaf)]
    for directory in cgroup.directories():
        assert not os.path.exists(directory)
    assert (tmp_path / "memory" / "donkey").exists()


def test_destroy_retries_ebusy(tmp_path):
    info, fs = make_v1(tmp_path)
    cgroup = Manager("donkey", info, fs).create("c1")
    fs.busy[cgroup.paths["pids"]] = 3
    cgroup.destroy()

    assert not os.path.exists(cgroup.paths["pids"])


def test_destroy_gives_up_on_lasting_ebusy(tmp_path):
    info, fs = make_v1(tmp_path)
    cgroup = Manager("donkey", info, fs).create("c1")
    fs.busy[cgroup.paths["pids"]] = 10**6

    with pytest.raises(CgroupError, match="rmdir failed") as caught:
        cgroup.destroy()
    assert caught.value.errno == errno.EBUSY
    assert caught.value.path == cgroup.paths["pids"]


def test_remove_parent_only_when_empty(tmp_path):
    info, fs = make_v1(tmp_path)
    manager = Manager("donkey", info, fs)
    first, second = manager.create("c1"), manager.create("c2")
    first.destroy()
    manager.remove_parent()
    assert (tmp_path / "pids" / "donkey").exists()

    second.destroy()
    manager.remove_parent()
    assert not (tmp_path / "pids" / "donkey").exists()


def test_load_makes_no_directories(tmp_path):
    info, fs = make_v1(tmp_path)
    cgroup = Manager("donkey", info, fs).load("gone")

    assert cgroup.paths["memory"] == str(tmp_path / "memory" / "donkey" / "gone")
    assert not (tmp_path / "memory" / "donkey").exists()
    cgroup.destroy()


@pytest.mark.parametrize("name", ["", "../x", "a/b", ".hidden", "x y"])
def test_invalid_container_id_rejected(tmp_path, name):
    info, fs = make_v1(tmp_path)

    with pytest.raises(Exception, match="invalid cgroup name"):
        Manager("donkey", info, fs).create(name)


def test_oom_kill_count_sources(tmp_path):
    info, fs = make_v1(tmp_path)
    cgroup = Manager("donkey", info, fs).create("c1")
    memory = Path(cgroup.paths["memory"])
    (memory / "memory.oom_control").write_text("oom_kill_disable 0\nunder_oom 0\noom_kill 3\n")
    assert cgroup.oom_kill_count() == 3

    # 3.13: no oom_kill line, so failcnt decides.
    (memory / "memory.oom_control").write_text("oom_kill_disable 0\nunder_oom 0\n")
    assert cgroup.oom_kill_count() == 0
    (memory / "memory.failcnt").write_text("12\n")
    assert cgroup.oom_kill_count() == 1

    (tmp_path / "v2").mkdir()
    info2, fs2 = make_v2(tmp_path / "v2")
    v2_cgroup = Manager("donkey", info2, fs2).create("c1")
    Path(v2_cgroup.v2_path, "memory.events").write_text("oom 2\noom_kill 2\noom_group_kill 0\n")
    assert v2_cgroup.oom_kill_count() == 2


def test_memory_peak_files(tmp_path):
    info, fs = make_v1(tmp_path)
    cgroup = Manager("donkey", info, fs).create("c1")
    Path(cgroup.paths["memory"], "memory.max_usage_in_bytes").write_text("4096\n")

    assert cgroup.memory_peak() == 4096


def test_v2_freeze_and_kill(tmp_path):
    info, fs = make_v2(tmp_path)
    cgroup = Manager("donkey", info, fs).create("c1")
    cgroup.freeze()
    assert Path(cgroup.v2_path, "cgroup.freeze").read_text() == "1"
    cgroup.thaw()
    assert Path(cgroup.v2_path, "cgroup.freeze").read_text() == "0"

    cgroup.kill_all(9)
    assert (os.path.join(cgroup.v2_path, "cgroup.kill"), "1") in fs.writes


def test_v1_freeze_writes_state(tmp_path):
    info, fs = make_v1(tmp_path)
    cgroup = Manager("donkey", info, fs).create("c1")
    cgroup.freeze()

    assert Path(cgroup.paths["freezer"], "freezer.state").read_text() == "FROZEN"
    cgroup.thaw()
    assert Path(cgroup.paths["freezer"], "freezer.state").read_text() == "THAWED"


def test_stats_reports_usage(tmp_path):
    info, fs = make_v1(tmp_path)
    cgroup = Manager("donkey", info, fs).create("c1")
    Path(cgroup.paths["cpuacct"], "cpuacct.usage").write_text("5000000\n")
    Path(cgroup.paths["memory"], "memory.usage_in_bytes").write_text("1024\n")
    Path(cgroup.paths["pids"], "cgroup.procs").write_text("10\n11\n")

    stats = cgroup.stats()
    assert stats["cpu_usage_usec"] == 5000
    assert stats["memory_usage"] == 1024
    assert stats["pids"] == 2
    assert cgroup.pids() == [10, 11]


def test_no_swap_space_warns_but_applies(tmp_path):
    info, fs = make_v1(tmp_path)
    info = host_info("v1", info.controllers, blkio="blkio.weight")
    info = HostInfo(**{**info.__dict__, "swap_total": 0})
    cgroup = Manager("donkey", info, fs).create("c1")
    warnings = cgroup.apply(Resources(memory=100 << 20, memory_swap=200 << 20))

    assert len(warnings) == 1
    assert "no swap space" in warnings[0]
    assert Path(cgroup.paths["memory"], "memory.memsw.limit_in_bytes").read_text() == str(
        200 << 20)
    assert cgroup.apply(Resources(memory=100 << 20, memory_swap=100 << 20)) == []
