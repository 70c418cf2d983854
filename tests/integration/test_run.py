"""donkey run against the real kernel: isolation, streams, exit codes, mounts, cleanup."""

from __future__ import annotations

import glob
import json
import os
import signal
import socket
import subprocess
import time

import pytest


@pytest.mark.smoke
def test_echo_prints_and_exits_zero(donkey):
    result = donkey("run", "--rm", "busybox", "echo", "hello")
    assert result.returncode == 0
    assert result.stdout == "hello\n"
    assert result.stderr == ""


@pytest.mark.smoke
def test_streams_kept_apart_with_exit_code(donkey):
    result = donkey("run", "--rm", "busybox", "sh", "-c", "echo out; echo err >&2; exit 3")
    assert result.returncode == 3
    assert result.stdout == "out\n"
    assert result.stderr == "err\n"


def test_image_defaults_to_busybox(donkey):
    result = donkey("run", "--rm", "ls", "/bin/busybox")
    assert result.returncode == 0, result.stderr
    assert result.stdout == "/bin/busybox\n"


@pytest.mark.smoke
def test_command_is_pid_one_and_ps_isolated(donkey):
    result = donkey("run", "--rm", "busybox", "sh", "-c", "echo $$; ps -o pid,comm; echo done")
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0] == "1"
    processes = [line.split() for line in lines[2:-1]]
    assert processes == [["1", "sh"], [processes[1][0], "ps"]]


def test_hostname_defaults_to_short_id(donkey):
    result = donkey("run", "busybox", "hostname")
    assert result.returncode == 0, result.stderr
    (container_id,) = donkey.states()
    assert result.stdout.strip() == container_id[:12]


def test_hostname_flag_and_host_untouched(donkey):
    before = socket.gethostname()
    result = donkey("run", "--rm", "--hostname", "box1", "busybox", "sh", "-c",
                    "hostname; echo $HOSTNAME")
    assert result.stdout == "box1\nbox1\n"
    assert socket.gethostname() == before


@pytest.mark.smoke
def test_namespaces_differ_from_host(donkey):
    kinds = ["mnt", "uts", "ipc", "net", "pid"]
    script = "; ".join(f"readlink /proc/self/ns/{kind}" for kind in kinds)
    result = donkey("run", "--rm", "busybox", "sh", "-c", script)
    assert result.returncode == 0, result.stderr
    inside = result.stdout.split()
    for kind, link in zip(kinds, inside, strict=True):
        assert link != os.readlink(f"/proc/self/ns/{kind}"), f"{kind} namespace is shared"


def test_only_loopback_and_it_is_up(donkey):
    result = donkey("run", "--rm", "busybox", "ip", "-o", "link")
    assert result.returncode == 0, result.stderr
    links = result.stdout.splitlines()
    assert len(links) == 1
    assert " lo: " in links[0]
    assert "UP" in links[0]


@pytest.mark.smoke
def test_mounts_inside_container(donkey):
    result = donkey("run", "--rm", "busybox", "cat", "/proc/mounts")
    assert result.returncode == 0, result.stderr
    mounts = {fields[1]: fields for fields in (line.split() for line in
                                               result.stdout.splitlines())}
    assert mounts["/proc"][2] == "proc"
    assert mounts["/sys"][2] == "sysfs"
    assert "ro" in mounts["/sys"][3].split(",")
    assert mounts["/dev"][2] == "tmpfs"
    assert mounts["/dev/pts"][2] == "devpts"
    assert mounts["/dev/shm"][2] == "tmpfs"
    assert "ro" in mounts["/proc/sys"][3].split(",")
    assert not any(path.startswith("/work") or path.startswith("/root") for path in mounts)


def test_minimal_dev(donkey):
    result = donkey("run", "--rm", "busybox", "sh", "-c",
                    "ls /dev; head -c 4 /dev/zero | wc -c; echo x > /dev/null; "
                    "for link in fd stdin stdout stderr ptmx; do readlink /dev/$link; done")
    assert result.returncode == 0, result.stderr
    lines = result.stdout.split()
    for name in ("null", "zero", "full", "random", "urandom", "tty", "pts", "shm", "fd",
                 "stdin", "stdout", "stderr", "ptmx"):
        assert name in lines, f"/dev/{name} missing"
    assert "sda" not in lines
    assert "vda" not in lines
    assert lines[-6:] == ["4", "/proc/self/fd", "/proc/self/fd/0", "/proc/self/fd/1",
                          "/proc/self/fd/2", "pts/ptmx"]


def test_sys_is_read_only(donkey):
    result = donkey("run", "--rm", "busybox", "sh", "-c",
                    "mkdir /sys/kernel/x 2>/dev/null && echo writable || echo readonly")
    assert result.stdout == "readonly\n"


def test_host_mounts_untouched(donkey):
    with open("/proc/self/mountinfo") as stream:
        before = stream.read()
    result = donkey("run", "--rm", "-v", "/tmp:/hosttmp", "busybox", "true")
    assert result.returncode == 0, result.stderr
    with open("/proc/self/mountinfo") as stream:
        assert stream.read() == before


@pytest.mark.smoke
def test_exit_code_127_for_missing_command(donkey):
    result = donkey("run", "--rm", "busybox", "no-such-command")
    assert result.returncode == 127
    assert "no-such-command" in result.stderr
    assert len(result.stderr.splitlines()) == 1
    assert donkey.states() == []


def test_exit_code_126_for_non_executable(donkey):
    result = donkey("run", "--rm", "busybox", "/etc/passwd")
    assert result.returncode == 126
    assert "/etc/passwd" in result.stderr
    assert len(result.stderr.splitlines()) == 1


def test_exit_code_137_when_killed(donkey):
    process = donkey.popen("run", "busybox", "sleep", "30")
    try:
        state = donkey.wait_for_running()
        os.kill(state["pid"], signal.SIGKILL)
        assert process.wait(timeout=20) == 137
    finally:
        process.kill()
        process.wait()


def test_sigterm_forwarded_to_container(donkey):
    process = donkey.popen("run", "--rm", "busybox", "sh", "-c",
                           "trap 'echo got TERM; exit 7' TERM; while true; do sleep 1; done")
    try:
        donkey.wait_for_running()
        time.sleep(0.3)
        process.send_signal(signal.SIGTERM)
        stdout, _ = process.communicate(timeout=20)
    finally:
        process.kill()
        process.wait()
    assert process.returncode == 7
    assert stdout == "got TERM\n"


def test_path_lookup_uses_container_path(donkey):
    # python3 exists on the host's PATH but not in the image.
    result = donkey("run", "--rm", "busybox", "python3", "-c", "print(1)")
    assert result.returncode == 127
    result = donkey("run", "--rm", "-e", "PATH=/nowhere", "busybox", "ls")
    assert result.returncode == 127
    assert "PATH=/nowhere" in result.stderr


def test_environment_is_clean(donkey):
    env = dict(donkey.env, LEAKY_SECRET="host-only")
    result = donkey("run", "--rm", "busybox", "env", env=env)
    assert result.returncode == 0, result.stderr
    variables = dict(line.split("=", 1) for line in result.stdout.splitlines())
    assert "LEAKY_SECRET" not in variables
    assert "TERM" not in variables
    assert variables["HOME"] == "/root"
    assert variables["PATH"] == "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
    assert len(variables["HOSTNAME"]) == 12


def test_env_flags_and_env_file(donkey, tmp_path):
    env_file = tmp_path / "vars.env"
    env_file.write_text("# comment\n\nFROM_FILE=1\nSHARED=file\n")
    env = dict(donkey.env, PASSED_THROUGH="from-host")
    result = donkey("run", "--rm", "--env-file", str(env_file), "-e", "SHARED=flag",
                    "-e", "PASSED_THROUGH", "-e", "HOME=/elsewhere", "busybox", "env", env=env)
    variables = dict(line.split("=", 1) for line in result.stdout.splitlines())
    assert variables["FROM_FILE"] == "1"
    assert variables["SHARED"] == "flag"
    assert variables["PASSED_THROUGH"] == "from-host"
    assert variables["HOME"] == "/elsewhere"


def test_script_in_bind_mount_with_workdir(donkey, tmp_path):
    (tmp_path / "test.sh").write_text("echo running in $(pwd)\necho made > result.txt\n")
    result = donkey("run", "--rm", "-v", f"{tmp_path}:/work", "-w", "/work", "busybox",
                    "sh", "test.sh")
    assert result.returncode == 0, result.stderr
    assert result.stdout == "running in /work\n"
    assert (tmp_path / "result.txt").read_text() == "made\n"


def test_read_only_bind_mount(donkey, tmp_path):
    result = donkey("run", "--rm", "-v", f"{tmp_path}:/data:ro", "busybox", "sh", "-c",
                    "touch /data/x 2>/dev/null && echo writable || echo readonly")
    assert result.stdout == "readonly\n"
    assert not (tmp_path / "x").exists()


def test_symlinked_bind_target_stays_inside_rootfs(donkey, tmp_path, busybox_rootfs):
    rootfs = tmp_path / "rootfs"
    subprocess.run(["cp", "-a", busybox_rootfs, str(rootfs)], check=True)
    escape = tmp_path / "host-target"
    # An absolute symlink in the image that, followed on the host, would leave the rootfs.
    os.symlink(str(escape), rootfs / "data")
    source = tmp_path / "source"
    source.mkdir()
    (source / "marker").write_text("bound")

    result = donkey("run", "--rm", "--rootfs", str(rootfs), "-v", f"{source}:/data",
                    "cat", f"{escape}/marker")
    assert result.returncode == 0, result.stderr
    assert result.stdout == "bound"
    assert not escape.exists()


def test_rootfs_directory_is_not_modified(donkey, tmp_path, busybox_rootfs):
    rootfs = tmp_path / "rootfs"
    subprocess.run(["cp", "-a", busybox_rootfs, str(rootfs)], check=True)
    result = donkey("run", "--rm", "--rootfs", str(rootfs), "sh", "-c",
                    "rm -rf /bin/ls; echo new > /etc/new; ls /etc/new")
    assert result.returncode == 0, result.stderr
    assert (rootfs / "bin" / "ls").exists()
    assert not (rootfs / "etc" / "new").exists()


@pytest.mark.smoke
def test_image_intact_after_rm_rf_bin(donkey):
    result = donkey("run", "--rm", "busybox", "rm", "-rf", "/bin")
    assert result.returncode == 0, result.stderr
    result = donkey("run", "--rm", "busybox", "ls", "/bin")
    assert result.returncode == 0, result.stderr
    assert "sh" in result.stdout.split()


def test_copied_rootfs_without_overlay(donkey):
    env = dict(donkey.env, DONKEY_STORAGE_DRIVER="vfs")
    result = donkey("run", "--rm", "busybox", "sh", "-c", "rm -rf /bin/ls; grep ' / ' "
                    "/proc/mounts", env=env)
    assert result.returncode == 0, result.stderr
    assert "overlay" not in result.stdout
    result = donkey("run", "--rm", "busybox", "ls", "/bin/ls", env=env)
    assert result.stdout == "/bin/ls\n"


def test_container_kept_until_rm(donkey):
    result = donkey("run", "--name", "kept", "busybox", "true")
    assert result.returncode == 0, result.stderr
    (container_id,) = donkey.states()
    state = donkey.state_of(container_id)
    assert state["status"] == "exited"
    assert state["exit_code"] == 0
    assert state["config"]["name"] == "kept"
    assert donkey.layers() == [container_id]

    result = donkey("run", "--name", "kept", "busybox", "true")
    assert result.returncode == 125
    assert "kept" in result.stderr
    assert "already in use" in result.stderr

    result = donkey("rm", "kept")
    assert result.returncode == 0, result.stderr
    assert donkey.states() == []
    assert donkey.layers() == []


@pytest.mark.smoke
def test_rm_flag_leaves_nothing(donkey):
    result = donkey("run", "--rm", "busybox", "sh", "-c", "echo data > /file")
    assert result.returncode == 0, result.stderr
    assert donkey.states() == []
    assert donkey.layers() == []
    assert donkey.cgroups() == []


@pytest.mark.parametrize(
    ("arguments", "expected"),
    [
        (["no-such-image:1.0", "sh"], "no-such-image:1.0"),
        (["busybox", ""], "command"),
        (["--rootfs", "/no/such/dir", "sh"], "/no/such/dir"),
        (["-v", "/tmp", "busybox", "true"], "/tmp"),
        (["-v", "relative:/x", "busybox", "true"], "relative"),
        (["-v", "/no/such/source:/x", "busybox", "true"], "/no/such/source"),
        (["-v", "/tmp:/x:rx", "busybox", "true"], "rx"),
        (["-v", "/tmp:/", "busybox", "true"], "/tmp:/"),
        (["-v", "/tmp:/proc/x", "busybox", "true"], "/proc/x"),
        (["--env-file", "/tmp", "busybox", "true"], "/tmp"),
        (["-e", "=value", "busybox", "true"], "=value"),
        (["-e", "BAD KEY=1", "busybox", "true"], "BAD KEY"),
        (["--env-file", "/no/such/file", "busybox", "true"], "/no/such/file"),
        (["-w", "relative", "busybox", "true"], "relative"),
        (["--name", "bad name", "busybox", "true"], "bad name"),
        (["--no-such-flag", "busybox", "true"], "--no-such-flag"),
    ],
)
def test_bad_input_clear_error_nothing_left(donkey, arguments, expected):
    result = donkey("run", *arguments)
    assert result.returncode == 125, result.stderr
    assert expected in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1, result.stderr
    assert donkey.states() == []
    assert donkey.layers() == []
    assert donkey.cgroups() == []


def test_non_root_caller_rejected(donkey):
    script = (
        "import os, sys\n"
        # Import everything first, because uid 65534 cannot read the interpreter under /root.
        "import donkey.cli.main, donkey.cli.run, donkey.logs.engine, donkey.runtime.engine\n"
        "os.setgid(65534); os.setuid(65534)\n"
        "donkey.cli.main.main(['run', 'busybox', 'true'])\n"
    )
    result = subprocess.run([os.sys.executable, "-c", script], capture_output=True, text=True,
                            env=donkey.env, timeout=60)
    assert result.returncode == 125
    assert "root" in result.stderr
    assert donkey.states() == []


@pytest.mark.smoke
def test_kill_9_of_donkey_then_cleanup(donkey):
    process = donkey.popen("run", "--rm", "busybox", "sleep", "60")
    state = donkey.wait_for_running()
    process.kill()
    process.wait()

    # The container dies with its parent (PR_SET_PDEATHSIG), leaving state on disk ...
    deadline = time.monotonic() + 10
    while os.path.exists(f"/proc/{state['pid']}") and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not os.path.exists(f"/proc/{state['pid']}")
    assert donkey.states() == [state["config"]["id"]]

    # ... which the next --rm run collects.
    result = donkey("run", "--rm", "busybox", "true")
    assert result.returncode == 0, result.stderr
    assert donkey.states() == []
    assert donkey.layers() == []
    assert donkey.cgroups() == []


def test_kill_9_of_donkey_then_rm(donkey):
    process = donkey.popen("run", "--name", "orphan", "busybox", "sleep", "60")
    donkey.wait_for_running()
    process.kill()
    process.wait()
    result = donkey("rm", "-f", "orphan")
    assert result.returncode == 0, result.stderr
    assert donkey.states() == []
    assert donkey.layers() == []
    assert donkey.cgroups() == []


def test_engine_logs_stay_off_container_streams(donkey):
    result = donkey("--debug", "run", "--rm", "busybox", "echo", "only-this")
    assert result.returncode == 0, result.stderr
    assert result.stdout == "only-this\n"
    assert "forked container init" in result.stderr


def test_json_log_file(donkey, tmp_path):
    log_file = tmp_path / "engine.log"
    result = donkey("--log-level", "info", "--log-format", "json", "--log", str(log_file),
                    "run", "--rm", "busybox", "true")
    assert result.returncode == 0, result.stderr
    assert result.stderr == ""
    records = [json.loads(line) for line in log_file.read_text().splitlines()]
    assert records, "no log records written"
    for record in records:
        assert set(record) >= {"level", "msg", "time"}
        assert record["level"] in ("debug", "info", "warning", "error")


def test_quiet_by_default(donkey):
    result = donkey("run", "--rm", "busybox", "true")
    assert result.stderr == ""


def test_images_lists_busybox(donkey):
    donkey("run", "--rm", "busybox", "true", check=True)
    result = donkey("images")
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines()[0].split()[:2] == ["REPOSITORY", "TAG"]
    assert any(line.split()[0] == "busybox" for line in result.stdout.splitlines()[1:])


def test_fds_of_caller_not_inherited(donkey, tmp_path):
    leaked = open(tmp_path / "secret", "w")  # noqa: SIM115
    os.set_inheritable(leaked.fileno(), True)
    try:
        result = subprocess.run(donkey.command("run", "--rm", "busybox", "ls", "/proc/self/fd"),
                                env=donkey.env, capture_output=True, text=True, timeout=60,
                                pass_fds=(leaked.fileno(),))
    finally:
        leaked.close()
    assert result.returncode == 0, result.stderr
    assert sorted(result.stdout.split()) == ["0", "1", "2", "3"]


def test_concurrent_rm_runs_do_not_collect_each_other(donkey):
    # Each run's start collects leftover --rm containers. One that has exited while its
    # own donkey run still records the exit must be left to that run.
    processes = [donkey.popen("run", "--rm", "busybox", "true") for _ in range(30)]
    results = [process.communicate(timeout=120) for process in processes]
    for process, (_, stderr) in zip(processes, results, strict=True):
        assert process.returncode == 0, stderr
        assert stderr == ""
    assert donkey.states() == []
    assert donkey.layers() == []


def test_garbage_collection_spares_recording_run(donkey):
    from donkey.config.container import ContainerConfig
    from donkey.runtime.engine import Engine
    from donkey.runtime.state import ContainerState, process_start_time

    engine = Engine(root=donkey.root, data_root=donkey.data_root,
                    cgroup_parent=donkey.cgroup_parent)
    exited = subprocess.Popen(["true"])
    exited.wait()

    def leftover(name: str, monitor_pid: int) -> ContainerState:
        config = ContainerConfig(id=os.urandom(32).hex(), name="", image="busybox",
                                 rootfs="/nonexistent", command=["true"], env=[],
                                 hostname="h", auto_remove=True)
        state = ContainerState(config=config, pid=exited.pid, pid_start_time=1,
                               monitor_pid=monitor_pid,
                               monitor_start_time=process_start_time(monitor_pid) or 0)
        engine.states.create(state, name)
        return state

    # The init has exited, but the run that records it (a stand-in process) still lives.
    recorder = subprocess.Popen(["sleep", "60"])
    try:
        recording = leftover("recording", recorder.pid)
        abandoned = leftover("abandoned", exited.pid)
        engine.collect_garbage()
        assert donkey.states() == [recording.id]
        assert abandoned.id not in donkey.states()
    finally:
        recorder.kill()
        recorder.wait()


def test_garbage_collection_takes_start_killed_before_fork(donkey):
    # donkey run --rm killed after it wrote the state and before it forked the init.
    creator = subprocess.Popen(["true"])
    creator.wait()
    killed = donkey.popen("run", "--rm", "--name", "early", "busybox", "sleep", "30")
    state = donkey.wait_for_running()
    killed.kill()
    killed.wait()
    os.kill(state["pid"], 9)
    path = os.path.join(donkey.root, state["config"]["id"], "state.json")
    with open(path) as stream:
        record = json.load(stream)
    record.update(status="created", pid=0, pid_start_time=0, monitor_pid=0,
                  creator_pid=creator.pid, creator_start_time=1)
    with open(path, "w") as stream:
        json.dump(record, stream)

    result = donkey("run", "--rm", "--name", "early", "busybox", "true")
    assert result.returncode == 0, result.stderr
    assert donkey.states() == []


def test_init_hides_caller_command_line(donkey):
    env = dict(donkey.env, HOST_ONLY="host-value")
    result = donkey("run", "--rm", "--init", "-e", "PASSWORD=hunter2", "busybox", "sh", "-c",
                    "tr '\\0' ' ' < /proc/1/cmdline", env=env)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "donkey-init"
    assert "hunter2" not in result.stdout


def test_rmi_refuses_image_in_use(donkey):
    donkey("run", "--name", "user-of-busybox", "busybox", "true", check=True)
    result = donkey("rmi", "busybox")
    assert result.returncode == 1
    assert "user-of-busybox" in result.stderr
    assert donkey("run", "--rm", "busybox", "true").returncode == 0


def test_mistyped_image_hint(donkey):
    result = donkey("run", "--rm", "no-such-image-name", "true")
    assert result.returncode == 127
    assert "no-such-image-name is meant as an image" in result.stderr


def test_cgroup_parent_removed_when_empty(donkey):
    parent = f"{donkey.cgroup_parent}-own"
    env = dict(donkey.env, DONKEY_CGROUP_PARENT=parent)
    result = donkey("run", "--rm", "-m", "50m", "busybox", "true", env=env)
    assert result.returncode == 0, result.stderr
    left = [path for path in glob.glob(f"/sys/fs/cgroup/*/{parent}")]
    assert left == []
