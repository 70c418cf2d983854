"""Detached containers and the commands on them: ps, logs, exec, stop, kill, wait, rm,
inspect, top, stats, pause, restart; real containers on this host's kernel.

The `donkey` fixture removes every container after each test and fails the test if a
state directory, layer, cgroup or mount is left.
"""

from __future__ import annotations

import json
import os
import signal
import time

import pytest


def run_detached(donkey, *args: str) -> str:
    result = donkey("run", "-d", *args)
    assert result.returncode == 0, result.stderr
    container_id = result.stdout.strip()
    assert len(container_id) == 64, result.stdout
    return container_id


def state_of(donkey, container_id: str) -> dict:
    return donkey.state_of(container_id)


def wait_for(condition, timeout: float = 10.0, message: str = "condition"):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(0.05)
    raise AssertionError(f"timed out after {timeout} s waiting for {message}")


def inspect(donkey, reference: str) -> dict:
    result = donkey("inspect", reference)
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)[0]


def status(donkey, reference: str) -> str:
    return inspect(donkey, reference)["State"]["Status"]


def is_alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat", "rb") as stream:
            data = stream.read()
    except FileNotFoundError:
        return False
    return data[data.rindex(b")") + 2:].split()[0] != b"Z"


def container_processes(init_pid: int) -> list[int]:
    namespace = os.readlink(f"/proc/{init_pid}/ns/pid")
    found = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                if os.readlink(f"/proc/{entry}/ns/pid") == namespace:
                    found.append(int(entry))
            except OSError:
                pass
    return found


def cmdline(pid: int) -> list[str]:
    with open(f"/proc/{pid}/cmdline", "rb") as stream:
        return stream.read().decode().rstrip("\0").split("\0")


# ---- run -d and ps ---------------------------------------------------------------------

def test_run_detached_prints_id_and_returns(donkey):
    started = time.monotonic()
    container_id = run_detached(donkey, "--name", "web", "sleep", "100")
    assert time.monotonic() - started < 10
    state = state_of(donkey, container_id)
    assert state["status"] == "running"
    assert is_alive(state["pid"])
    assert cmdline(state["pid"]) == ["sleep", "100"]


def test_ps_lists_running_and_all(donkey):
    running = run_detached(donkey, "--name", "runner", "sleep", "100")
    exited = run_detached(donkey, "--name", "quitter", "sh", "-c", "exit 3")
    wait_for(lambda: status(donkey, "quitter") == "exited", message="quitter to exit")

    table = donkey("ps").stdout.splitlines()
    assert table[0].split() == ["CONTAINER", "ID", "IMAGE", "COMMAND", "CREATED", "STATUS",
                                "NAMES"]
    assert len(table) == 2
    assert table[1].startswith(running[:12])
    assert "Up " in table[1]
    assert table[1].endswith("runner")
    assert '"sleep 100"' in table[1]

    everything = donkey("ps", "-a").stdout
    assert "quitter" in everything
    assert "Exited (3) " in everything

    assert donkey("ps", "-q").stdout.split() == [running[:12]]
    assert sorted(donkey("ps", "-aq", "--no-trunc").stdout.split()) == sorted([running, exited])

    lines = donkey("ps", "-a", "--format", "json").stdout.splitlines()
    records = {record["Names"]: record for record in map(json.loads, lines)}
    assert records["runner"]["State"] == "running"
    assert records["quitter"]["State"] == "exited"
    assert records["quitter"]["ExitCode"] == 3


def test_name_clash_names_the_holder(donkey):
    holder = run_detached(donkey, "--name", "taken", "sleep", "100")
    result = donkey("run", "-d", "--name", "taken", "sleep", "100")
    assert result.returncode == 125
    assert holder[:12] in result.stderr
    assert len(donkey.states()) == 1


def test_run_detached_missing_command_leaves_nothing(donkey):
    result = donkey("run", "-d", "busybox", "no-such-program")
    assert result.returncode == 127
    assert "no-such-program" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
    assert result.stdout == ""
    assert donkey.states() == []
    assert donkey.layers() == []


def test_detached_rm_removes_after_exit(donkey):
    container_id = run_detached(donkey, "--rm", "sh", "-c", "sleep 0.2")
    wait_for(lambda: container_id not in donkey.states(), message="--rm removal")
    assert container_id not in donkey.layers()


# ---- logs ------------------------------------------------------------------------------

def test_logs_keep_streams_apart(donkey):
    container_id = run_detached(donkey, "sh", "-c", "echo out1; echo err1 >&2; echo out2")
    wait_for(lambda: status(donkey, container_id) == "exited", message="exit")

    result = donkey("logs", container_id)
    assert result.returncode == 0
    assert result.stdout == "out1\nout2\n"
    assert result.stderr == "err1\n"

    log_path = inspect(donkey, container_id)["LogPath"]
    with open(log_path) as stream:
        records = [json.loads(line) for line in stream]
    assert [(record["log"], record["stream"]) for record in records if
            record["stream"] == "stderr"] == [("err1\n", "stderr")]
    assert {record["stream"] for record in records} == {"stdout", "stderr"}
    for record in records:
        assert record["time"].endswith("Z")
        assert set(record) == {"log", "stream", "time"}


def test_logs_long_line_comes_back_whole(donkey):
    container_id = run_detached(
        donkey, "sh", "-c", "head -c 40000 /dev/zero | tr '\\0' x; echo; echo after")
    wait_for(lambda: status(donkey, container_id) == "exited", message="exit")

    result = donkey("logs", container_id)
    lines = result.stdout.split("\n")
    assert lines[0] == "x" * 40000
    assert lines[1] == "after"

    with open(inspect(donkey, container_id)["LogPath"]) as stream:
        records = [json.loads(line) for line in stream]
    assert len(records) == 2
    assert records[0]["log"] == "x" * 40000 + "\n"


def test_logs_tail_and_timestamps(donkey):
    container_id = run_detached(donkey, "sh", "-c", "for i in 1 2 3 4 5; do echo $i; done")
    wait_for(lambda: status(donkey, container_id) == "exited", message="exit")

    assert donkey("logs", "--tail", "2", container_id).stdout == "4\n5\n"
    assert donkey("logs", "--tail", "0", container_id).stdout == ""
    stamped = donkey("logs", "-t", "--tail", "1", container_id).stdout
    stamp, text = stamped.split(" ", 1)
    assert text == "5\n"
    assert stamp.endswith("Z")
    assert "T" in stamp
    bad = donkey("logs", "--tail", "many", container_id)
    assert bad.returncode == 125
    assert "--tail" in bad.stderr


def test_logs_follow_ends_when_container_exits(donkey):
    container_id = run_detached(
        donkey, "sh", "-c", "for i in 1 2 3 4; do echo line$i; sleep 0.3; done; echo bye >&2")
    follower = donkey.popen("logs", "-f", container_id)
    stdout, stderr = follower.communicate(timeout=20)
    assert follower.returncode == 0
    assert stdout == "line1\nline2\nline3\nline4\n"
    assert stderr == "bye\n"


def test_logs_of_tty_container(donkey):
    container_id = run_detached(donkey, "-t", "sh", "-c", "tty; echo done")
    wait_for(lambda: status(donkey, container_id) == "exited", message="exit")
    # The pty turns "\n" into "\r\n"; text-mode capture turns it back.
    assert donkey("logs", container_id).stdout == "/dev/pts/0\ndone\n"
    with open(inspect(donkey, container_id)["LogPath"]) as stream:
        records = [json.loads(line) for line in stream]
    assert [record["log"] for record in records] == ["/dev/pts/0\r\n", "done\r\n"]
    assert {record["stream"] for record in records} == {"stdout"}


# ---- exec ------------------------------------------------------------------------------

def test_exec_status_env_workdir_user(donkey):
    container_id = run_detached(donkey, "-e", "FROM_RUN=1", "-w", "/tmp", "sleep", "100")

    assert donkey("exec", container_id, "sh", "-c", "exit 7").returncode == 7
    result = donkey("exec", "-e", "EXTRA=2", container_id, "sh", "-c",
                    'echo $FROM_RUN $EXTRA $HOME; pwd; hostname')
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines() == ["1 2 /root", "/tmp", container_id[:12]]
    assert donkey("exec", "-w", "/etc", container_id, "pwd").stdout == "/etc\n"
    assert donkey("exec", "-u", "nobody", container_id, "id", "-u").stdout == "65534\n"
    assert donkey("exec", "-u", "1234:55", container_id, "id").stdout.startswith(
        "uid=1234 gid=55")

    missing = donkey("exec", container_id, "no-such-program")
    assert missing.returncode == 127
    assert "no-such-program" in missing.stderr


def test_exec_interactive_reads_stdin(donkey):
    container_id = run_detached(donkey, "sleep", "100")
    piped = donkey("exec", "-i", container_id, "sh", "-c", "tr a-z A-Z; echo err >&2",
                   input="hello\n")
    assert piped.returncode == 0
    assert piped.stdout == "HELLO\n"
    assert piped.stderr == "err\n"
    closed = donkey("exec", container_id, "cat")
    assert closed.returncode == 0
    assert closed.stdout == ""


def test_exec_joins_namespaces_and_cgroup(donkey):
    container_id = run_detached(donkey, "sleep", "100")
    init = state_of(donkey, container_id)["pid"]
    donkey("exec", "-d", container_id, "sleep", "4242", check=True)

    sleeper = wait_for(lambda: [pid for pid in container_processes(init)
                                if cmdline(pid) == ["sleep", "4242"]], message="exec'd sleep")
    pid = sleeper[0]
    for namespace in ("pid", "mnt", "net", "uts", "ipc", "cgroup"):
        assert os.readlink(f"/proc/{pid}/ns/{namespace}") == \
            os.readlink(f"/proc/{init}/ns/{namespace}"), namespace
    with open(f"/proc/{pid}/cgroup") as exec_cgroup, open(f"/proc/{init}/cgroup") as own:
        assert exec_cgroup.read() == own.read()
    assert os.readlink(f"/proc/{pid}/root") == "/"
    assert os.stat(f"/proc/{pid}/root").st_ino == os.stat(f"/proc/{init}/root").st_ino


def test_exec_reaches_nothing_of_the_host(donkey):
    container_id = run_detached(donkey, "sleep", "100")
    init = state_of(donkey, container_id)["pid"]
    # A descriptor the caller leaks without close-on-exec must not reach the command.
    read_end, write_end = os.pipe()
    os.set_inheritable(write_end, True)
    try:
        process = donkey.popen("exec", container_id, "sh", "-c",
                               "ls /proc/$$/fd; readlink /proc/$$/exe; sleep 3; true",
                               pass_fds=(write_end,))
        sleeper = wait_for(lambda: [pid for pid in container_processes(init)
                                    if cmdline(pid)[:1] == ["sh"]], message="exec'd sh")
        exe = os.readlink(f"/proc/{sleeper[0]}/exe")
        stdout, _ = process.communicate(timeout=20)
    finally:
        os.close(read_end)
        os.close(write_end)
    assert "python" not in exe
    assert exe in ("/bin/sh", "/bin/busybox")
    fds, container_exe = stdout.split()[:-1], stdout.split()[-1]
    assert fds == ["0", "1", "2"]
    assert container_exe in ("/bin/sh", "/bin/busybox")


def test_exec_tty_shell(donkey):
    pexpect = pytest.importorskip("pexpect", reason="pexpect drives the tty test")
    container_id = run_detached(donkey, "sleep", "100")
    command = " ".join(donkey.command("exec", "-ti", container_id, "sh"))
    child = pexpect.spawn(command, env=donkey.env, encoding="utf-8", timeout=20)
    child.expect(r"[#$] ")
    child.sendline("tty; echo result=$((6 * 7))")
    child.expect(r"/dev/pts/\d+")
    child.expect("result=42")
    child.sendline("exit 3")
    child.expect(pexpect.EOF)
    child.close()
    assert child.exitstatus == 3


def test_exec_on_stopped_container_fails(donkey):
    container_id = run_detached(donkey, "true")
    wait_for(lambda: status(donkey, container_id) == "exited", message="exit")
    result = donkey("exec", container_id, "true")
    assert result.returncode == 1
    assert "not running" in result.stderr


# ---- stop, kill, wait, rm --------------------------------------------------------------

def test_stop_kills_after_timeout(donkey):
    container_id = run_detached(donkey, "sleep", "100")
    started = time.monotonic()
    result = donkey("stop", "-t", "1", container_id)
    assert result.returncode == 0, result.stderr
    assert result.stdout == f"{container_id}\n"
    assert time.monotonic() - started < 10
    data = inspect(donkey, container_id)
    assert data["State"]["Status"] == "exited"
    assert data["State"]["ExitCode"] == 137
    assert "Exited (137)" in donkey("ps", "-a").stdout


def test_stop_with_term_handler_exits_cleanly(donkey):
    container_id = run_detached(
        donkey, "sh", "-c", "trap 'echo got TERM; exit 0' TERM; while true; do sleep 0.1; done")
    time.sleep(0.3)
    started = time.monotonic()
    assert donkey("stop", container_id).returncode == 0
    assert time.monotonic() - started < 5
    assert inspect(donkey, container_id)["State"]["ExitCode"] == 0
    assert donkey("logs", container_id).stdout == "got TERM\n"


def test_kill_signal_and_wait(donkey):
    container_id = run_detached(
        donkey, "sh", "-c", "trap 'exit 9' USR1; while true; do sleep 0.1; done")
    waiter = donkey.popen("wait", container_id)
    time.sleep(0.3)
    result = donkey("kill", "-s", "usr1", container_id)
    assert result.returncode == 0
    assert result.stdout == f"{container_id}\n"
    stdout, _ = waiter.communicate(timeout=20)
    assert waiter.returncode == 0
    assert stdout == "9\n"


def test_kill_default_is_sigkill(donkey):
    container_id = run_detached(donkey, "sleep", "100")
    waiter = donkey.popen("wait", container_id)
    assert donkey("kill", container_id).returncode == 0
    stdout, _ = waiter.communicate(timeout=20)
    assert stdout == "137\n"
    again = donkey("kill", container_id)
    assert again.returncode == 1
    assert "not running" in again.stderr


def test_kill_rejects_bad_signal(donkey):
    container_id = run_detached(donkey, "sleep", "100")
    result = donkey("kill", "-s", "SIGNOPE", container_id)
    assert result.returncode == 125
    assert "SIGNOPE" in result.stderr
    assert status(donkey, container_id) == "running"


def test_rm_running_rejected_without_force(donkey):
    container_id = run_detached(donkey, "--name", "busy", "sleep", "100")
    rejected = donkey("rm", "busy")
    assert rejected.returncode == 1
    assert "running" in rejected.stderr
    assert container_id in donkey.states()
    forced = donkey("rm", "-f", "busy")
    assert forced.returncode == 0
    assert donkey.states() == []
    assert donkey.layers() == []


@pytest.mark.parametrize("command", [
    ["exec", "ghost", "true"], ["stop", "ghost"], ["logs", "ghost"], ["kill", "ghost"],
    ["inspect", "ghost"], ["wait", "ghost"], ["top", "ghost"], ["pause", "ghost"],
    ["restart", "ghost"],
])
def test_missing_container_exits_one(donkey, command):
    result = donkey(*command)
    assert result.returncode == 1
    assert "ghost" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1


# ---- inspect, top, stats, pause, restart -----------------------------------------------

def test_inspect_fields(donkey):
    container_id = run_detached(donkey, "--name", "seen", "-v", "/tmp:/host-tmp:ro",
                                "sleep", "100")
    data = inspect(donkey, "seen")
    assert data["Id"] == container_id
    assert data["Name"] == "/seen"
    assert data["State"]["Status"] == "running"
    assert data["State"]["Running"] is True
    assert data["State"]["Pid"] == state_of(donkey, container_id)["pid"]
    assert data["State"]["OOMKilled"] is False
    assert data["State"]["StartedAt"].endswith("Z")
    assert data["Config"]["Cmd"] == ["sleep", "100"]
    assert data["Mounts"] == [{"Type": "bind", "Source": "/tmp", "Destination": "/host-tmp",
                               "RW": False}]
    assert data["Cgroups"]
    for path in data["Cgroups"].values():
        assert os.path.isdir(path)
    formatted = donkey("inspect", "-f", "{{.State.Status}} {{.Name}}", "seen")
    assert formatted.stdout == "running /seen\n"


def test_top_lists_container_processes(donkey):
    container_id = run_detached(donkey, "sh", "-c", "sleep 300 & sleep 301")
    time.sleep(0.3)
    result = donkey("top", container_id)
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0].split() == ["UID", "PID", "PPID", "STIME", "TIME", "CMD"]
    commands = [line.split(None, 5)[5] for line in lines[1:]]
    assert "sleep 300" in commands
    assert "sleep 301" in commands


def test_stats_no_stream(donkey):
    container_id = run_detached(donkey, "--name", "busy", "sh", "-c",
                                "while true; do :; done")
    result = donkey("stats", "--no-stream", "busy")
    assert result.returncode == 0, result.stderr
    header, row = result.stdout.splitlines()
    assert header.split()[:3] == ["CONTAINER", "ID", "NAME"]
    assert row.startswith(container_id[:12])
    cpu = float(row.split()[2].rstrip("%"))
    assert cpu > 20.0
    assert "MiB" in row or "KiB" in row


def test_pause_and_unpause(donkey):
    container_id = run_detached(donkey, "sh", "-c",
                                "i=0; while true; do i=$((i+1)); echo $i; sleep 0.05; done")
    assert donkey("pause", container_id).returncode == 0
    assert "(Paused)" in donkey("ps").stdout
    assert status(donkey, container_id) == "paused"
    time.sleep(0.2)
    before = donkey("logs", container_id).stdout
    time.sleep(0.5)
    assert donkey("logs", container_id).stdout == before
    assert donkey("unpause", container_id).returncode == 0
    wait_for(lambda: donkey("logs", container_id).stdout != before, message="output again")
    assert status(donkey, container_id) == "running"


def test_restart_keeps_layer(donkey):
    container_id = run_detached(donkey, "--name", "again", "sh", "-c",
                                "echo x >> /count; wc -l < /count; sleep 100")
    wait_for(lambda: donkey("logs", "again").stdout == "1\n", message="first start")
    first_pid = state_of(donkey, container_id)["pid"]
    assert donkey("restart", "-t", "0", "again").returncode == 0
    wait_for(lambda: donkey("logs", "again").stdout == "1\n2\n", message="second start")
    assert status(donkey, "again") == "running"
    assert state_of(donkey, container_id)["pid"] != first_pid


def test_oom_kill_shown_in_ps_and_inspect(donkey):
    container_id = run_detached(donkey, "-m", "10m", "sh", "-c", "tail /dev/zero")
    wait_for(lambda: status(donkey, container_id) == "exited", timeout=30,
             message="the OOM kill")
    data = inspect(donkey, container_id)
    assert data["State"]["OOMKilled"] is True
    assert data["State"]["ExitCode"] == 137
    assert "Exited (137)" in donkey("ps", "-a").stdout
    assert "(OOM killed)" in donkey("ps", "-a").stdout


def test_restart_of_rm_container_keeps_it(donkey):
    container_id = run_detached(donkey, "--rm", "sleep", "100")
    assert donkey("restart", "-t", "0", container_id).returncode == 0
    assert status(donkey, container_id) == "running"
    assert inspect(donkey, container_id)["HostConfig"]["AutoRemove"] is True


def test_monitor_holds_only_its_descriptors(donkey):
    container_id = run_detached(donkey, "sh", "-c", "while true; do sleep 1; done")
    monitor = state_of(donkey, container_id)["monitor_pid"]

    def descriptors() -> list[str]:
        targets = []
        for fd in os.listdir(f"/proc/{monitor}/fd"):
            try:
                targets.append(os.readlink(f"/proc/{monitor}/fd/{fd}"))
            except FileNotFoundError:
                # Closed between the listing and the readlink, while the monitor starts.
                continue
        return sorted(targets)

    # The watch phase has started once the log file is open.
    targets = wait_for(lambda: [target for target in descriptors()
                                if target.endswith("-json.log")] and descriptors(),
                       message="the watch phase")
    assert targets.count("/dev/null") == 3
    assert [target for target in targets if target.endswith("-json.log")] == \
        [inspect(donkey, container_id)["LogPath"]]
    assert len([target for target in targets if target.startswith("pipe:")]) == 2
    assert len(targets) <= 7, targets


# ---- faults ----------------------------------------------------------------------------

def test_monitor_killed_container_keeps_running(donkey):
    container_id = run_detached(donkey, "sleep", "100")
    state = state_of(donkey, container_id)
    os.kill(state["monitor_pid"], signal.SIGKILL)
    wait_for(lambda: not is_alive(state["monitor_pid"]), message="monitor death")

    assert is_alive(state["pid"])
    assert "Up " in donkey("ps").stdout
    assert donkey("rm", "-f", container_id).returncode == 0
    assert not is_alive(state["pid"])


def test_monitor_then_init_killed_shows_exited(donkey):
    container_id = run_detached(donkey, "sleep", "100")
    state = state_of(donkey, container_id)
    os.kill(state["monitor_pid"], signal.SIGKILL)
    wait_for(lambda: not is_alive(state["monitor_pid"]), message="monitor death")
    os.kill(state["pid"], signal.SIGKILL)
    wait_for(lambda: not is_alive(state["pid"]), message="init death")

    assert donkey("ps", "-q").stdout == ""
    assert "Exited (255)" in donkey("ps", "-a").stdout
    assert inspect(donkey, container_id)["State"]["Status"] == "exited"


def test_init_killed_is_recorded(donkey):
    container_id = run_detached(donkey, "sleep", "100")
    state = state_of(donkey, container_id)
    os.kill(state["pid"], signal.SIGKILL)
    wait_for(lambda: state_of(donkey, container_id)["status"] == "exited",
             message="exit record")
    assert "Exited (137)" in donkey("ps", "-a").stdout
    assert not is_alive(state["monitor_pid"])


@pytest.mark.parametrize("delay", [0.0, 0.1, 0.2, 0.35, 0.5])
def test_cli_killed_during_run_detached(donkey, delay):
    process = donkey.popen("run", "-d", "sleep", "100")
    time.sleep(delay)
    process.kill()
    process.communicate(timeout=20)
    time.sleep(0.5)

    result = donkey("ps", "-a", "--format", "json")
    assert result.returncode == 0, result.stderr
    for line in result.stdout.splitlines():
        record = json.loads(line)
        assert record["State"] in ("created", "running", "exited")
        if record["State"] == "running":
            full_id = next(item for item in donkey.states() if item.startswith(record["ID"]))
            assert is_alive(state_of(donkey, full_id)["pid"])


def test_fifty_concurrent_detached_runs(donkey):
    processes = [donkey.popen("run", "-d", "--rm", "--name", f"many{index}", "sh", "-c",
                              "sleep 1")
                 for index in range(50)]
    outputs = [process.communicate(timeout=120) for process in processes]
    assert [process.returncode for process in processes] == [0] * 50, \
        [stderr for _, stderr in outputs if stderr]
    ids = {stdout.strip() for stdout, _ in outputs}
    assert len(ids) == 50

    same_name = [donkey.popen("run", "-d", "--rm", "--name", "shared", "sleep", "2")
                 for _ in range(10)]
    codes = [process.wait(timeout=120) for process in same_name]
    assert codes.count(0) == 1

    wait_for(lambda: donkey.states() == [], timeout=60, message="every --rm removal")
    assert donkey.layers() == []
    assert donkey.cgroups() == []


# ---- --init ----------------------------------------------------------------------------

def _has_run_flag(donkey, flag: str) -> bool:
    return flag in donkey("run", "--help").stdout


def test_init_reaps_orphan_and_forwards_term(donkey):
    if not _has_run_flag(donkey, "--init"):
        pytest.skip("donkey run has no --init flag in this build")
    # The subshell's child is orphaned when the subshell exits; only a reaping PID 1
    # keeps it from staying a zombie.
    container_id = run_detached(
        donkey, "--init", "sh", "-c",
        "(sleep 0.2 &) ; trap 'echo term; exit 0' TERM; while true; do sleep 0.1; done")
    init = state_of(donkey, container_id)["pid"]
    time.sleep(1.0)
    zombies = []
    for pid in container_processes(init):
        with open(f"/proc/{pid}/stat", "rb") as stream:
            data = stream.read()
        if data[data.rindex(b")") + 2:].split()[0] == b"Z":
            zombies.append(pid)
    assert zombies == []
    assert cmdline(init)[:1] != ["sh"]

    started = time.monotonic()
    assert donkey("stop", "-t", "5", container_id).returncode == 0
    assert time.monotonic() - started < 4
    assert inspect(donkey, container_id)["State"]["ExitCode"] == 0
    assert donkey("logs", container_id).stdout == "term\n"


def test_restart_policy_on_failure(donkey):
    if not _has_run_flag(donkey, "--restart"):
        pytest.skip("donkey run has no --restart flag in this build")
    container_id = run_detached(donkey, "--restart", "on-failure:2", "sh", "-c",
                                "echo run; exit 1")
    wait_for(lambda: inspect(donkey, container_id)["RestartCount"] == 2
             and status(donkey, container_id) == "exited", timeout=20,
             message="two restarts")
    time.sleep(0.5)
    assert donkey("logs", container_id).stdout == "run\nrun\nrun\n"


def test_rm_force_stops_restart_policy(donkey):
    if not _has_run_flag(donkey, "--restart"):
        pytest.skip("donkey run has no --restart flag in this build")
    container_id = run_detached(donkey, "--restart", "always", "sh", "-c", "sleep 0.3")
    time.sleep(1.0)
    started = time.monotonic()
    assert donkey("rm", "-f", container_id).returncode == 0
    assert time.monotonic() - started < 4
    assert donkey.states() == []
