"""Resource limits through donkey run: files written, OOM kills, CPU shares, pids, info."""

from __future__ import annotations

import json
import os
import shutil
import time

import pytest

from donkey.hal.probe import host

INFO = host()


def controller_dir(state: dict, controller: str) -> str:
    paths = state["cgroup_paths"]
    if controller in paths:
        return paths[controller]
    pytest.skip(f"this host has no {controller} controller for containers")


def read(directory: str, name: str) -> str:
    with open(os.path.join(directory, name)) as stream:
        return stream.read().strip()


def limits_of_running(donkey, *flags: str) -> dict:
    """Start `sleep` with flags, return its state once it runs; the caller stops it."""
    process = donkey.popen("run", "--rm", *flags, "busybox", "sleep", "30")
    try:
        state = donkey.wait_for_running()
    except AssertionError:
        process.kill()
        _, stderr = process.communicate()
        raise AssertionError(f"container did not start: {stderr}") from None
    state["_process"] = process
    return state


def stop(state: dict) -> None:
    process = state["_process"]
    os.kill(state["pid"], 9)
    process.wait(timeout=20)


@pytest.fixture
def needs_stress(needs_memory):
    if shutil.which("stress") is None:
        pytest.skip("the stress image needs the host's stress binary: apt-get install stress")


@pytest.fixture
def needs_memory():
    if "memory" not in INFO.controllers:
        pytest.skip("this host has no usable memory controller (v1 or cgroup2)")


@pytest.fixture
def needs_cpuset():
    if "cpuset" not in INFO.controllers:
        pytest.skip("this host has no usable cpuset controller (v1 or cgroup2)")


@pytest.fixture
def needs_pids():
    if "pids" not in INFO.controllers:
        pytest.skip("this host has no usable pids controller (added in kernel 4.3)")


@pytest.mark.smoke
def test_memory_flags_land_in_files(donkey, needs_memory):
    state = limits_of_running(donkey, "-m", "100m", "--memory-reservation", "50m")
    try:
        memory = controller_dir(state, "memory")
        if INFO.cgroup_layout == "v2" or memory.startswith("/sys/fs/cgroup/unified"):
            assert read(memory, "memory.max") == str(100 * 1024 * 1024)
            assert read(memory, "memory.low") == str(50 * 1024 * 1024)
        else:
            assert read(memory, "memory.limit_in_bytes") == str(100 * 1024 * 1024)
            assert read(memory, "memory.soft_limit_in_bytes") == str(50 * 1024 * 1024)
    finally:
        stop(state)


@pytest.mark.smoke
def test_cpu_flags_land_in_files(donkey):
    # Half a CPU fits every host, one-CPU guests included (--cpus may not exceed nproc).
    state = limits_of_running(donkey, "--cpu-shares", "512", "--cpus", "0.5")
    try:
        cpu = controller_dir(state, "cpu")
        if "cpu.weight" in os.listdir(cpu):
            assert read(cpu, "cpu.weight") == "59"
            assert read(cpu, "cpu.max") == "50000 100000"
        else:
            assert read(cpu, "cpu.shares") == "512"
            assert read(cpu, "cpu.cfs_quota_us") == "50000"
            assert read(cpu, "cpu.cfs_period_us") == "100000"
    finally:
        stop(state)


@pytest.mark.smoke
def test_init_is_in_every_recorded_cgroup(donkey):
    # The init joins its v1 cgroups itself (through `tasks`) and the parent moves it into
    # cgroup2: the host must see it in each directory recorded in the state.
    state = limits_of_running(donkey)
    try:
        with open(f"/proc/{state['pid']}/cgroup") as stream:
            placed = {line.split(":", 2)[2].strip() for line in stream}
        for controller, directory in state["cgroup_paths"].items():
            assert str(state["pid"]) in read(directory, "cgroup.procs").split(), controller
            assert any(directory.endswith(path) for path in placed if path != "/"), controller
    finally:
        stop(state)


def test_legacy_cpushare_flag(donkey, needs_memory):
    state = limits_of_running(donkey, "-m", "100m", "-cpushare", "512")
    try:
        cpu = controller_dir(state, "cpu")
        if "cpu.shares" in os.listdir(cpu):
            assert read(cpu, "cpu.shares") == "512"
        else:
            assert read(cpu, "cpu.weight") == "59"
    finally:
        stop(state)


def test_no_cpu_shares_leaves_default(donkey):
    state = limits_of_running(donkey)
    try:
        cpu = controller_dir(state, "cpu")
        if "cpu.shares" in os.listdir(cpu):
            assert read(cpu, "cpu.shares") == "1024"
        else:
            assert read(cpu, "cpu.weight") == "100"
    finally:
        stop(state)


def test_cpuset_and_pids_land_in_files(donkey, needs_pids, needs_cpuset):
    state = limits_of_running(donkey, "--cpuset-cpus", "0", "--pids-limit", "20")
    try:
        assert read(controller_dir(state, "cpuset"), "cpuset.cpus") == "0"
        assert read(controller_dir(state, "pids"), "pids.max") == "20"
    finally:
        stop(state)


@pytest.mark.smoke
def test_oom_kill_exits_137_with_message(donkey, needs_stress):
    result = donkey("run", "--rm", "-m", "100m", "stress", "stress", "--vm", "1",
                    "--vm-bytes", "200M", "--timeout", "20", timeout=120)
    assert result.returncode == 137, result.stderr
    oom_lines = [line for line in result.stderr.splitlines() if "OOM killer" in line]
    assert len(oom_lines) == 1, result.stderr
    assert "100.0 MiB" in oom_lines[0]


def test_oom_recorded_in_state(donkey, needs_stress):
    result = donkey("run", "--name", "oomed", "-m", "64m", "stress", "stress", "--vm", "1",
                    "--vm-bytes", "200M", "--timeout", "20", timeout=120)
    assert result.returncode == 137, result.stderr
    (container_id,) = donkey.states()
    state = donkey.state_of(container_id)
    assert state["oom_killed"] is True
    assert state["exit_code"] == 137


@pytest.mark.smoke
def test_under_limit_completes(donkey, needs_stress):
    result = donkey("run", "--rm", "-m", "300m", "stress", "stress", "--vm", "1",
                    "--vm-bytes", "200M", "--timeout", "3", timeout=120)
    assert result.returncode == 0, result.stderr
    assert "successful run completed" in result.stdout + result.stderr


@pytest.mark.smoke
def test_pids_limit_stops_fork_loop(donkey, tmp_path, needs_pids):
    # busybox sh exits when fork fails, so the count of started sleeps goes to a file
    # with a builtin after each fork.
    script = ("n=0; while [ $n -lt 40 ]; do sleep 5 & n=$((n+1)); echo $n > /out/count; "
              "done")
    result = donkey("run", "--rm", "-v", f"{tmp_path}:/out", "--pids-limit", "10", "busybox",
                    "sh", "-c", script, timeout=60)
    assert "can't fork" in result.stderr, result.stderr
    started = int((tmp_path / "count").read_text())
    # PID 1 (the shell) plus the sleeps make at most 10 processes.
    assert 1 <= started <= 9


def test_cpu_shares_split_one_cpu(donkey, needs_cpuset):
    if os.cpu_count() < 1:
        pytest.skip("needs a CPU")
    loop = "while true; do :; done"
    heavy = donkey.popen("run", "--rm", "--cpuset-cpus", "0", "--cpu-shares", "1024",
                         "busybox", "sh", "-c", loop)
    light = donkey.popen("run", "--rm", "--cpuset-cpus", "0", "--cpu-shares", "512",
                         "busybox", "sh", "-c", loop)
    try:
        deadline = time.monotonic() + 20
        states = []
        while time.monotonic() < deadline:
            try:
                states = [donkey.state_of(cid) for cid in donkey.states()]
            except (OSError, ValueError):
                # A state.json not written yet, or replaced while read.
                states = []
            if len(states) == 2 and all(s["status"] == "running" for s in states):
                break
            time.sleep(0.05)
        assert len(states) == 2, "both containers should be running"
        by_shares = {}
        for state in states:
            shares = state["config"]["resources"]["cpu_shares"]
            by_shares[shares] = controller_dir(state, "cpuacct" if "cpuacct" in
                                               state["cgroup_paths"] else "cpu")

        def usage(directory):
            if os.path.exists(os.path.join(directory, "cpuacct.usage")):
                return int(read(directory, "cpuacct.usage")) / 1000
            stat = dict(line.split() for line in read(directory, "cpu.stat").splitlines())
            return int(stat["usage_usec"])

        time.sleep(0.5)
        start = {shares: usage(path) for shares, path in by_shares.items()}
        time.sleep(3)
        used = {shares: usage(path) - start[shares] for shares, path in by_shares.items()}
        ratio = used[1024] / used[512]
        assert 1.5 <= ratio <= 2.7, f"CPU split {used} gives ratio {ratio:.2f}, expected ~2"
    finally:
        # Killing each donkey run takes its container with it (PR_SET_PDEATHSIG), and the
        # fixture's rm -f then removes what is left.
        for process in (heavy, light):
            process.kill()
            process.wait(timeout=20)


@pytest.mark.smoke
def test_unenforceable_limit_rejected_before_start(donkey):
    # On cgroup2 io.weight exists only below the root, so the probe cannot see it there.
    if INFO.blkio_weight_file or "io" in INFO.controllers:
        pytest.skip("this host can enforce --blkio-weight")
    result = donkey("run", "--rm", "--blkio-weight", "500", "busybox", "true")
    assert result.returncode == 125
    assert "blkio" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
    assert donkey.states() == []
    assert donkey.cgroups() == []


@pytest.mark.parametrize(
    ("flags", "expected"),
    [
        (["-m", "100x"], "100x"),
        (["-m", "1k"], "6"),
        (["--cpus", "many"], "many"),
        (["--cpu-shares", "lots"], "lots"),
        (["-m", "100m", "--memory-swap", "50m"], "memory-swap"),
    ],
)
def test_bad_limit_values(donkey, flags, expected):
    result = donkey("run", "--rm", *flags, "busybox", "true")
    assert result.returncode == 125
    assert expected in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1, result.stderr
    assert donkey.states() == []
    assert donkey.cgroups() == []


def test_no_cgroups_left_after_many_runs(donkey, needs_memory, needs_pids):
    for _ in range(20):
        result = donkey("run", "--rm", "-m", "50m", "--pids-limit", "50", "busybox", "true")
        assert result.returncode == 0, result.stderr
    assert donkey.cgroups() == []


@pytest.mark.smoke
def test_info_reports_this_host(donkey):
    result = donkey("info", "--json")
    assert result.returncode == 0, result.stderr
    data = json.loads(result.stdout)
    assert data["cgroup_layout"] == INFO.cgroup_layout
    assert data["kernel_release"] == os.uname().release
    text = donkey("info")
    assert text.returncode == 0
    assert INFO.cgroup_layout in text.stdout


def test_oom_survivor_keeps_exit_zero(donkey, needs_stress):
    script = ("stress --vm 1 --vm-bytes 200M --timeout 10 >/dev/null 2>&1; "
              "echo survived; exit 0")
    result = donkey("run", "--name", "survivor", "-m", "64m", "stress", "sh", "-c", script,
                    timeout=120)
    assert result.returncode == 0, result.stderr
    assert result.stdout == "survived\n"
    assert "OOM killer killed a process" in result.stderr
    (container_id,) = donkey.states()
    state = donkey.state_of(container_id)
    assert state["oom_killed"] is True
    assert state["exit_code"] == 0
